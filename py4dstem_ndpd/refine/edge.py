"""Per-disk centres from the disk's edge alone: the circle, of the direct beam's radius, along which intensity
falls most steeply outwards.

Why: in thick crystals the intensity inside a diffracted disk is far from uniform. Measured on abTEM multislice
patterns (SrTiO3 [001] at 50 nm, Si [110] at 30-60 nm), many disks are bright crescents hugging the side that
faces the direct beam. Every estimator that weighs intensity (the plain cross-correlation with the probe, and
even the whitened *hybrid* correlation, which also weighs the crescent's inner boundary) places such a disk
0.3-1.5 px towards the pattern centre. The same bias in every disk of a lattice reads as a lattice 2-4 % too
small, i.e. a spurious strain.

What stays put is the disk's boundary, the image of the condenser aperture: where the crescent touches it, the
intensity drops from bright to zero going outwards. The *edge score* of a trial centre ``c`` sums that drop
along a ring of radius ``R`` around ``c``:

    S(c) = sum_x  exp(-(|x - c| - R)^2 / (2 w^2)) * max(0, -dI/dr_c(x)),

``dI/dr_c`` the derivative of the (low-passed) window along the ray from ``c`` and ``w`` the ring width. Only
falling-outwards gradients count (``max(0, .)``): the crescent's inner boundary, where intensity rises outwards
with respect to a circle shifted away from the pattern centre, neither helps nor, unlike in any linear
correlation, pulls. A dark part of the rim contributes nothing; the lit arc pins the centre along its normal,
which is the direction the dynamical bias acts in.

The ring radius is the direct beam's own, measured with the same score (its centre fixed at its centroid), so a
soft aperture edge or detector blur enters the probe and the disks alike. It is not unbiased: blurring a bright
rim moves its steepest descent outwards, so a crescent hugging the rim still comes out 0.3-0.5 px towards the
direct beam (rendered crescents, ``tests/refine/test_edge.py``), against 1.5-2.5 px for the correlations.

Everything is vectorised over the disks of a batch. Within each of 8 angular sectors of the ring the outward
direction is taken as constant, which makes the score a sum of 8 linear correlations (FFTs); its maximum within
``max_shift_px`` of the detector's centre is then found on the band-limited interpolant, as for the correlations
of :mod:`~py4dstem_ndpd.refine.probe`.
"""
from __future__ import annotations

import numpy as np

from ._windows import evaluate_spectra, grid_maximum, newton_maximum, parabola_vertex

#: Ring width ``w`` of the edge score, px.
RING_WIDTH_PX = 0.8
#: Median :func:`~py4dstem_ndpd.refine.probe.asymmetry` of the bright disks above which a pattern's disks get
#: edge positions (:func:`~py4dstem_ndpd.refine.probe.asymmetric_patterns`).
ASYMMETRY_GATE = 0.1
#: Angular sectors of the ring (within one the outward direction is taken as constant: <= 22.5 degrees off).
SECTORS = 8
#: Radius search around the nominal radius: half-range and step, px.
RADIUS_SEARCH_PX = (1.5, 0.05)
#: Disks scored at once (bounds the temporary arrays to a few MB each).
CHUNK = 128


def window_gradients(spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column derivatives of stacked windows from their (low-passed) spectra.

    Parameters
    ----------
    spectra : ndarray of complex, shape (K, w, w)
        ``fft2`` of the windows (odd ``w``), already multiplied by any low-pass.

    Returns
    -------
    gx, gy : ndarray of float32, shape (K, w, w)
        d/dqx and d/dqy, counts per px.
    """
    w = spectra.shape[-1]
    k = 2j * np.pi * np.fft.fftfreq(w)
    gx = np.fft.ifft2(spectra * k[None, :, None]).real.astype(np.float32)
    gy = np.fft.ifft2(spectra * k[None, None, :]).real.astype(np.float32)
    return gx, gy


def remove_interior_slope(gx: np.ndarray, gy: np.ndarray, centres: np.ndarray, radius: np.ndarray | float,
                          half: int, *, inner: float = 1.5,
                          width: float = RING_WIDTH_PX) -> tuple[np.ndarray, np.ndarray]:
    """Window gradients without the mean slope of each disk's interior.

    Intensity that slopes across a disk (a crystal off its zone axis: ``I = (a + b . x) D(x - c)``) adds ``b D``
    to the gradient, which falls outwards on the dim side, inside the rim, and pulls the edge score towards the
    bright side (0.11-0.17 px for a +-50 % ramp across the direct beam). Subtracting ``b``, the mean gradient
    within ``radius - inner`` of the centre, times a soft disk of the centre and radius leaves the rim's own
    gradient ``(a + b . x) grad D``, centred on the true centre. A uniform disk's interior slope is zero up to shot
    noise.

    Parameters
    ----------
    gx, gy : ndarray, shape (K, w, w)
    centres : ndarray, shape (K, 2)
        Current centre estimates, local px.
    radius : float or ndarray (K,)
        Disk radii, px.
    half : int
        Window half-width, px.

    Returns
    -------
    gx, gy : ndarray, shape (K, w, w)
    """
    o = np.arange(-half, half + 1, dtype=np.float32)
    c = np.asarray(centres, dtype=np.float32)
    R = np.broadcast_to(np.asarray(radius, dtype=np.float32), (len(c),))[:, None, None]
    r = np.hypot(o[None, :, None] - c[:, 0, None, None], o[None, None, :] - c[:, 1, None, None])
    inside = r < R - inner
    n = np.maximum(inside.sum((1, 2)), 1)
    bx = (gx * inside).sum((1, 2)) / n
    by = (gy * inside).sum((1, 2)) / n
    soft = 0.5 * (1.0 - np.tanh((r - R) / width))
    return gx - bx[:, None, None] * soft, gy - by[:, None, None] * soft


def _ring_pixels(half: int, r_min: float, r_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices and local coordinates of the window pixels at ``r_min..r_max`` px from the window centre."""
    o = np.arange(-half, half + 1, dtype=np.float32)
    X, Y = np.meshgrid(o, o, indexing="ij")
    r = np.hypot(X, Y)
    idx = np.flatnonzero((r >= r_min) & (r <= r_max))
    return idx, X.ravel()[idx], Y.ravel()[idx]


def edge_score(gx: np.ndarray, gy: np.ndarray, X: np.ndarray, Y: np.ndarray, centres: np.ndarray,
               radius: np.ndarray, width: float = RING_WIDTH_PX) -> np.ndarray:
    """Edge score ``S`` (module docstring) of trial centres.

    Parameters
    ----------
    gx, gy : ndarray, shape (K, P)
        Derivatives at P window pixels.
    X, Y : ndarray, shape (P,)
        Local coordinates of those pixels, px.
    centres : ndarray, shape (K, T, 2)
        Trial centres, local px.
    radius : ndarray, shape (K,) or (K, T)
        Ring radius of each disk (or of each trial), px.

    Returns
    -------
    ndarray, shape (K, T)
    """
    dx = X[None, None, :] - centres[..., 0, None].astype(np.float32)
    dy = Y[None, None, :] - centres[..., 1, None].astype(np.float32)
    r = np.sqrt(dx * dx + dy * dy) + np.float32(1e-6)
    R = np.asarray(radius, dtype=np.float32)
    R = R[:, None, None] if R.ndim == 1 else R[..., None]
    weight = np.exp(np.float32(-0.5 / width**2) * (r - R) ** 2)
    fall = np.maximum(-(gx[:, None, :] * dx + gy[:, None, :] * dy) / r, 0.0)
    return (weight * fall).sum(-1)


def probe_radius(gx: np.ndarray, gy: np.ndarray, half: int, centres: np.ndarray, nominal: float) -> np.ndarray:
    """Radius of each probe (direct beam) by its edge score, centre fixed.

    Parameters
    ----------
    gx, gy : ndarray, shape (N, w, w)
        Derivatives of the probe windows.
    half : int
        Window half-width, px.
    centres : ndarray, shape (N, 2)
        Probe centres, local px.
    nominal : float
        Radius the search is centred on, px.

    Returns
    -------
    ndarray, shape (N,)
        The radius of the largest score (parabola-refined), px; ``nominal`` where the score is flat.
    """
    span, step = RADIUS_SEARCH_PX
    radii = np.arange(max(nominal - span, 1.0), nominal + span + step / 2, step)
    # only pixels the rings reach (weights beyond 5 ring widths are < 4e-6 of the peak)
    reach = float(np.max(np.hypot(*np.asarray(centres, dtype=np.float64).T), initial=0.0)) + 5.0 * RING_WIDTH_PX
    idx, X, Y = _ring_pixels(half, max(radii[0] - reach, 0.0), radii[-1] + reach)
    n = len(centres)
    s = edge_score(gx.reshape(n, -1)[:, idx], gy.reshape(n, -1)[:, idx], X, Y,
                   np.repeat(centres[:, None, :], len(radii), 1), np.broadcast_to(radii, (n, len(radii))))
    i = np.clip(s.argmax(1), 1, len(radii) - 2)
    off = parabola_vertex(np.stack([s[np.arange(n), i + d] for d in (-1, 0, 1)], -1))
    out = radii[i] + off * step
    return np.where(s.max(1) > 0, out, nominal)


def _sector_rings(half: int, radius: float, sectors: int, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Ring of ``radius`` split into angular sectors with smooth weights summing to the ring.

    Returns
    -------
    rings : ndarray, shape (sectors, w, w)
        ``exp(-(r - radius)^2 / (2 width^2)) * cos^2`` sector weights, centred on the window centre.
    normals : ndarray, shape (sectors, 2)
        Each sector's outward direction (qx, qy).
    """
    o = np.arange(-half, half + 1, dtype=np.float64)
    X, Y = np.meshgrid(o, o, indexing="ij")
    r = np.hypot(X, Y)
    phi = np.arctan2(Y, X)
    ring = np.exp(-0.5 * ((r - radius) / width) ** 2)
    centres = 2 * np.pi * np.arange(sectors) / sectors
    step = 2 * np.pi / sectors
    rel = np.angle(np.exp(1j * (phi[None] - centres[:, None, None])))  # -pi..pi
    wts = np.where(np.abs(rel) < step, np.cos(0.5 * np.pi * rel / step) ** 2, 0.0)  # adjacent sectors sum to 1
    return ring[None] * wts, np.stack([np.cos(centres), np.sin(centres)], 1)


def edge_spectra(gx: np.ndarray, gy: np.ndarray, radius: np.ndarray, half: int, *, sectors: int = SECTORS,
                 width: float = RING_WIDTH_PX) -> np.ndarray:
    """Spectra of the edge score ``S`` of every disk as a function of its (local) centre.

    In each angular sector ``s`` of the ring the outward direction is taken as the sector's ``n_s``, so ``S`` is a
    sum of linear correlations: ``S(c) = sum_s (ring_s * max(0, -grad I . n_s))(c)``, one FFT per sector. Its
    maximum is then found on the band-limited interpolant like any correlation's
    (:func:`~py4dstem_ndpd.refine._windows.grid_maximum`).

    Parameters
    ----------
    gx, gy : ndarray, shape (K, w, w)
    radius : ndarray, shape (K,)
        Ring radius per disk, px (rounded to 0.01 px; one set of rings per distinct value).
    half : int

    Returns
    -------
    ndarray of complex, shape (K, w, w)
        ``fft2`` of ``S`` sampled at integer local centres (index ``i`` <-> local ``i`` px, periodic).
    """
    K = len(gx)
    out = np.zeros(gx.shape, dtype=np.complex128)
    if K == 0:
        return out
    from scipy import fft as sfft

    w = gx.shape[-1]
    k1 = (-np.arange(w)) % w
    k2 = np.arange(w // 2 + 1, w)
    key = np.round(np.asarray(radius, dtype=np.float64), 2)
    for R in np.unique(key):
        k = np.nonzero(key == R)[0]
        rings, normals = _sector_rings(half, float(R), sectors, width)
        # ring centred on index 0; real FFTs in float32 (4x cheaper than complex128 ones)
        Fr = np.conj(sfft.rfft2(np.fft.ifftshift(rings, axes=(-2, -1)).astype(np.float32)))
        nx = normals[:, 0, None, None].astype(np.float32)
        ny = normals[:, 1, None, None].astype(np.float32)
        for a in range(0, len(k), CHUNK):
            kk = k[a:a + CHUNK]
            fall = np.maximum(-(gx[kk, None] * nx + gy[kk, None] * ny), 0.0)  # (k, S, w, w)
            # correlation sum_x ring_s(x - c) fall_s(x), origin of the window at index half
            half_spec = (sfft.rfft2(np.roll(fall, (-half, -half), axis=(-2, -1))) * Fr[None]).sum(1)
            out[kk, :, : w // 2 + 1] = half_spec
            out[kk, :, w // 2 + 1:] = np.conj(half_spec[:, k1][:, :, w - k2])  # Hermitian symmetry
    return out


def edge_positions(gx: np.ndarray, gy: np.ndarray, half: int, start: np.ndarray, radius: np.ndarray,
                   max_shift_px: float = 1.5, also: np.ndarray | None = None) -> np.ndarray:
    """Local centre of each disk maximising its edge score within ``max_shift_px`` of ``start`` (and, given
    ``also``, of those second starts too: the better-scoring of the two maxima).

    Parameters
    ----------
    gx, gy : ndarray, shape (K, w, w)
        Derivatives of the disk windows.
    half : int
        Window half-width, px.
    start : ndarray, shape (K, 2)
        Centres the search is centred on, local px (the detector's).
    radius : ndarray, shape (K,)
        Ring radius per disk (its pattern's probe radius), px.
    max_shift_px : float
        Half-width of the searched square, px.
    also : ndarray, shape (K, 2), optional
        Second starts, local px (the hybrid correlation's positions, where the detector's centres are far off).

    Returns
    -------
    ndarray, shape (K, 2)
        Local centres, px.
    """
    K = len(start)
    if K == 0:
        return np.zeros((0, 2))
    spec = edge_spectra(gx, gy, radius, half)
    c, score = _search(spec, np.asarray(start, dtype=np.float64), max_shift_px)
    if also is not None:
        c2, score2 = _search(spec, np.asarray(also, dtype=np.float64), max_shift_px)
        better = score2 > score
        c[better], score[better] = c2[better], score2[better]
    return c


def _search(spec: np.ndarray, start: np.ndarray, max_shift_px: float) -> tuple[np.ndarray, np.ndarray]:
    """The maximum of each score within ``max_shift_px`` of ``start`` and its value (``start`` and 0 where the
    score is nowhere positive)."""
    c, value = grid_maximum(spec, start, max_shift_px, 2 * int(np.ceil(2 * max_shift_px)) + 1)
    c = newton_maximum(spec, c)
    c = start + np.clip(c - start, -max_shift_px, max_shift_px)
    at = evaluate_spectra(spec, c[:, :1], c[:, 1:])[:, 0, 0]  # the score at c (index i <-> local i px)
    ok = value > 0
    return np.where(ok[:, None], c, start), np.where(ok, at, 0.0)


__all__ = ["ASYMMETRY_GATE", "RING_WIDTH_PX", "edge_positions", "edge_score", "probe_radius", "remove_interior_slope",
           "window_gradients"]
