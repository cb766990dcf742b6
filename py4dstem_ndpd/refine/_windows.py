"""Stacked disk windows and band-limited evaluation of their spectra at sub-pixel positions.

Everything here works on stacks of small windows cut from a batch of patterns, so that one numpy expression
handles every disk of every pattern (no Python loop over disks).

Conventions: a window of odd size ``w = 2 * half + 1`` is cut around the pixel ``ix = rint(centre)``; *local*
coordinates are relative to that pixel, so the window pixel ``[half + i, half + j]`` has local coordinates
``(i, j)``, and a disk centred exactly on ``ix`` has local centre ``(0, 0)``.
"""
from __future__ import annotations

import numpy as np


def extract_windows(
    frames: np.ndarray, frame_index: np.ndarray, centres: np.ndarray, half: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``(2 * half + 1)``-pixel square windows around ``rint(centres)``.

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy)
    frame_index : ndarray of int, shape (K,)
        Pattern each window is cut from.
    centres : ndarray, shape (K, 2)
        Approximate centres (qx, qy), px.
    half : int
        Half-width of the windows, px.

    Returns
    -------
    windows : ndarray of float64, shape (K, w, w)
        Pixels outside the detector are 0.
    anchor : ndarray of int, shape (K, 2)
        The pixel each window is centred on (``rint(centres)``).
    """
    N, H, W = frames.shape
    anchor = np.rint(centres).astype(np.int64)
    offs = np.arange(-half, half + 1)
    X = anchor[:, 0, None, None] + offs[None, :, None]
    Y = anchor[:, 1, None, None] + offs[None, None, :]
    inside = (X >= 0) & (X < H) & (Y >= 0) & (Y < W)
    win = frames[frame_index[:, None, None], np.clip(X, 0, H - 1), np.clip(Y, 0, W - 1)].astype(np.float64)
    win *= inside
    return win, anchor


def radial_grid(half: int) -> np.ndarray:
    """Distance of each window pixel from the window centre, shape (w, w)."""
    o = np.arange(-half, half + 1, dtype=np.float64)
    return np.hypot(o[:, None], o[None, :])


#: With ``remove_background(robust=True)``, ring pixels this many robust standard deviations off the ring's median
#: (then off the plane fitted without them) are left out of the background fit.
OUTLIER_SIGMA = 4.0


def remove_background(windows: np.ndarray, half: int, inner: float, robust: bool = False) -> np.ndarray:
    """Subtract a plane fitted to each window's pixels farther than ``inner`` px from its centre.

    Removes the local diffuse background and its gradient (which would pull intensity-weighted estimators
    towards the pattern centre). With ``robust=True`` ring pixels more than :data:`OUTLIER_SIGMA` robust standard
    deviations (at least the shot noise of counts at the ring's median) off the ring's median, then off the plane
    fitted without them (the edge of a neighbouring disk reaching into the window, a hot pixel), are left out.
    Vectorised over the windows.
    """
    o = np.arange(-half, half + 1, dtype=np.float64)
    X, Y = np.meshgrid(o, o, indexing="ij")
    ring = np.hypot(X, Y) > inner
    A = np.stack([np.ones(ring.sum()), X[ring], Y[ring]], 1)
    v = windows[:, ring].astype(np.float64)
    coef = v @ np.linalg.pinv(A).T  # (K, 3): least squares on the whole ring
    if not robust:
        return windows - (coef[:, 0, None, None] + coef[:, 1, None, None] * X + coef[:, 2, None, None] * Y)
    # outliers against the ring's median (a first plane would already lean towards them), then against the plane
    # fitted without them
    base = np.median(v, axis=1, keepdims=True)
    # never below the shot noise of counts at the ring's level: the upper tail of faint Poisson counts is not an
    # outlier (leaving it out would put the plane too low and make background noise look like a disk)
    floor = np.sqrt(np.abs(base[:, 0]) + 1.0)
    for _ in range(2):
        res = v - base
        mad = np.median(np.abs(res - np.median(res, axis=1, keepdims=True)), axis=1)
        sigma = np.maximum(np.where(mad > 0, 1.4826 * mad, res.std(axis=1)), floor)
        keep = np.abs(res) <= OUTLIER_SIGMA * sigma[:, None]
        redo = (~keep).any(axis=1) & (keep.sum(axis=1) >= 0.5 * ring.sum()) & (sigma > 0)
        if not redo.any():
            break
        w = keep[redo].astype(np.float64)
        AtA = np.einsum("kp,pi,pj->kij", w, A, A)
        Atb = np.einsum("kp,pi,kp->ki", w, A, v[redo])
        coef[redo] = np.linalg.solve(AtA, Atb[..., None])[..., 0]
        base = coef @ A.T
    plane = coef[:, 0, None, None] + coef[:, 1, None, None] * X + coef[:, 2, None, None] * Y
    return windows - plane


def taper(half: int, inner: float, outer: float) -> np.ndarray:
    """Radial mask: 1 within ``inner`` px of the window centre, cosine fall-off to 0 at ``outer`` px."""
    r = radial_grid(half)
    t = np.clip((r - inner) / max(outer - inner, 1e-9), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def dft_matrices(w: int, x: np.ndarray) -> np.ndarray:
    """Inverse-DFT kernel ``exp(2 pi i k x / w)`` for signed frequencies, shape ``x.shape + (w,)``, complex128.

    ``w`` must be odd so that the band-limited interpolant is real.
    """
    k = np.fft.fftfreq(w)
    return np.exp(2j * np.pi * np.asarray(x, dtype=np.float64)[..., None] * k)


def evaluate_spectra(spectra: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Evaluate the band-limited interpolants of stacked spectra on per-window grids.

    Parameters
    ----------
    spectra : ndarray of complex, shape (K, w, w)
        ``fft2`` of real (K, w, w) arrays (odd ``w``).
    x, y : ndarray, shape (K, nx) and (K, ny)
        Row and column coordinates (in pixels of the array, periodic with period ``w``) of each window's grid.

    Returns
    -------
    ndarray of float64, shape (K, nx, ny)
        The interpolated real function at ``(x[k, i], y[k, j])``.
    """
    w = spectra.shape[-1]
    Ex = dft_matrices(w, x)  # (K, nx, w)
    Ey = dft_matrices(w, y)  # (K, ny, w)
    out = np.matmul(np.matmul(Ex, spectra), np.swapaxes(Ey, 1, 2))
    return out.real / (w * w)


def parabola_vertex(values: np.ndarray) -> np.ndarray:
    """Sub-sample offset (-0.5..0.5, in grid steps) of the vertex of 1D parabolas through 3 points.

    ``values`` has shape (..., 3); flat or convex triples give 0.
    """
    a, b, c = values[..., 0], values[..., 1], values[..., 2]
    den = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(den < 0, 0.5 * (a - c) / den, 0.0)
    return np.clip(off, -0.5, 0.5)


def grid_maximum(spectra: np.ndarray, start: np.ndarray, span: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximum of band-limited interpolants on a square grid around ``start``, refined by a parabola.

    Parameters
    ----------
    spectra : ndarray of complex, shape (K, w, w)
    start : ndarray, shape (K, 2)
        Grid centres, array pixels.
    span : float
        Half-width of the grid, px.
    steps : int
        Grid points per side (odd).

    Returns
    -------
    position : ndarray, shape (K, 2)
        Position of the maximum (array pixels).
    value : ndarray, shape (K,)
        Interpolated value at the grid maximum.
    """
    g = np.linspace(-span, span, steps)
    step = g[1] - g[0]
    x = start[:, 0, None] + g
    y = start[:, 1, None] + g
    vals = evaluate_spectra(spectra, x, y)  # (K, n, n)
    K = vals.shape[0]
    flat = vals.reshape(K, -1).argmax(1)
    i, j = np.divmod(flat, steps)
    i = np.clip(i, 1, steps - 2)
    j = np.clip(j, 1, steps - 2)
    kk = np.arange(K)
    di = parabola_vertex(np.stack([vals[kk, i - 1, j], vals[kk, i, j], vals[kk, i + 1, j]], -1))
    dj = parabola_vertex(np.stack([vals[kk, i, j - 1], vals[kk, i, j], vals[kk, i, j + 1]], -1))
    pos = np.stack([x[kk, i] + di * step, y[kk, j] + dj * step], -1)
    return pos, vals[kk, i, j]


def newton_maximum(spectra: np.ndarray, start: np.ndarray, *, iterations: int = 4, max_step: float = 0.25,
                   tol: float = 1e-4) -> np.ndarray:
    """Polish maxima of band-limited interpolants with Newton steps (analytic gradient and Hessian).

    Steps are taken only where the Hessian is negative definite, and are limited to ``max_step`` px per axis.

    Parameters
    ----------
    spectra : ndarray of complex, shape (K, w, w)
    start : ndarray, shape (K, 2)
        Starting points (array pixels), e.g. from :func:`grid_maximum`.

    Returns
    -------
    ndarray, shape (K, 2)
    """
    w = spectra.shape[-1]
    f = 2j * np.pi * np.fft.fftfreq(w)
    p = np.array(start, dtype=np.float64, copy=True)
    for _ in range(iterations):
        Ex = np.exp(f[None, :] * p[:, 0, None])
        Ey = np.exp(f[None, :] * p[:, 1, None])
        # rows: Ex, Ex*f, Ex*f^2 times the spectra, then contracted with Ey, Ey*f, Ey*f^2
        E = np.stack([Ex, Ex * f, Ex * f * f], 1)  # (K, 3, w)
        A = np.matmul(E, spectra)  # (K, 3, w)
        Fy = np.stack([Ey, Ey * f, Ey * f * f], 2)  # (K, w, 3)
        M = np.matmul(A, Fy).real  # M[a, b] = d^a/dx^a d^b/dy^b
        gx, gy = M[:, 1, 0], M[:, 0, 1]
        hxx, hyy, hxy = M[:, 2, 0], M[:, 0, 2], M[:, 1, 1]
        det = hxx * hyy - hxy * hxy
        good = (hxx < 0) & (det > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            dx = np.where(good, -(hyy * gx - hxy * gy) / det, 0.0)
            dy = np.where(good, -(hxx * gy - hxy * gx) / det, 0.0)
        d = np.clip(np.stack([dx, dy], 1), -max_step, max_step)
        p += d
        if np.max(np.abs(d), initial=0.0) < tol:
            break
    return p


def group_median(values: np.ndarray, group: np.ndarray, use: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of ``values[use]`` within each group (NaN for empty groups), without a loop over groups."""
    med = np.full(n_groups, np.nan)
    if not np.any(use):
        return med
    v, gg = values[use], group[use]
    order = np.lexsort((v, gg))
    gg, v = gg[order], v[order]
    bounds = np.searchsorted(gg, np.arange(n_groups + 1))
    cnt = np.diff(bounds)
    has = cnt > 0
    lo = bounds[:-1][has] + (cnt[has] - 1) // 2
    hi = bounds[:-1][has] + cnt[has] // 2
    med[has] = 0.5 * (v[lo] + v[hi])
    return med
