"""Autocorrelation of diffraction patterns (paper eq. 4) and origin-free lattice fits from it.

The autocorrelation ``R = F^-1(|F[I]|^2)`` (Wiener-Khinchin; no logarithm, Patterson-like) of a pattern ``I`` has
a peak at every difference between two disk centres. For a crystal these differences are lattice vectors
``u * g1 + v * g2``, so the peaks of ``R`` give the reciprocal lattice without knowing the pattern origin, and each
peak averages over every pair of disks with that difference. Every pair contributes a centrosymmetric term
(the autocorrelation of two disks), so intensity differences between disks do not move the peaks.

Two measured choices (256 x 256 Si [110] patterns, ``py4dstem_ndpd.refine.benchmark``):

* **zero padding** to about 1.5 x the pattern size: without it lags wrap around and the lattice fitted from the
  peaks is wrong by ~0.3 %;
* **no Hann window**: multiplying the pattern by a window pulls every disk towards the pattern centre and shrinks
  the fitted lattice by ~0.25 % (a fake compressive strain). Background is removed instead by an optional
  Gaussian high-pass (``background_px``), which keeps every disk centrosymmetric.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.fft as sfft

from ..exceptions import ConfigError, InputError
from ._windows import extract_windows
from .lattice import _check_basis, find_basis, fit_basis

__all__ = ["LatticeFit", "autocorrelation", "autocorrelation_shape", "lattice_from_autocorrelation",
           "refine_autocorrelation_peaks", "robust_basis_fit"]


def _as_frames(frames: np.ndarray) -> tuple[np.ndarray, bool]:
    x = np.asarray(frames)
    if x.ndim not in (2, 3) or min(x.shape[-2:]) < 8:
        raise InputError(f"frames must have shape (Qx, Qy) or (N, Qx, Qy) with Qx, Qy >= 8, got {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise InputError(f"frames must be real numbers, got dtype {x.dtype}")
    single = x.ndim == 2
    x = x[None] if single else x
    return x, single


def autocorrelation_shape(pattern_shape: tuple[int, int], pad: bool = True) -> tuple[int, int]:
    """Shape of :func:`autocorrelation`'s output for patterns of ``pattern_shape``.

    With ``pad`` each side is ``next_fast_len(ceil(1.5 * Q))`` (256 -> 384); lags ``|dq| <= P - Q`` along that
    axis are free of wrap-around.
    """
    if not pad:
        return (int(pattern_shape[0]), int(pattern_shape[1]))
    return tuple(sfft.next_fast_len(int(np.ceil(1.5 * q)), real=True) for q in pattern_shape)


def autocorrelation(
    frames: np.ndarray, *, background_px: float | None = None, pad: bool = True, workers: int | None = None
) -> np.ndarray:
    """Autocorrelation ``R = F^-1(|F[I]|^2)`` of patterns (paper eq. 4), zero lag at the centre.

    Parameters
    ----------
    frames : ndarray, shape (Qx, Qy) or (N, Qx, Qy)
        Patterns (counts, any real dtype). ``qx`` is the row.
    background_px : float, optional
        If given, the smooth background is removed first with a Gaussian high-pass of this standard deviation
        (px): ``R`` becomes the autocorrelation of ``I - G * I`` (computed in Fourier space, at no extra cost).
        The disk radius is a good value. This flattens the broad hump that the diffuse background and the
        direct beam put under the lattice peaks. None gives the plain eq. 4.
    pad : bool
        Zero-pad to :func:`autocorrelation_shape` so that ``R`` is the linear (not circular) autocorrelation
        for the lags that matter. Without padding, pairs of disks more than half a pattern apart wrap around
        onto other lags.
    workers : int, optional
        Threads for ``scipy.fft``.

    Returns
    -------
    ndarray of float32, shape (P0, P1) or (N, P0, P1)
        ``R[..., P0 // 2 + dx, P1 // 2 + dy]`` is the autocorrelation at the lag ``(dx, dy)`` px (qx, qy).
        ``P = autocorrelation_shape((Qx, Qy), pad)``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((32, 32)); img[10, 10] = img[10, 17] = 1.0
    >>> R = autocorrelation(img)
    >>> R.shape, round(float(R[24, 24 + 7]), 6)
    ((48, 48), 1.0)
    """
    x, single = _as_frames(frames)
    if background_px is not None and not background_px > 0:
        raise ConfigError(f"background_px must be > 0 px or None, got {background_px}")
    shape = autocorrelation_shape(x.shape[-2:], pad)
    F = sfft.rfft2(x.astype(np.float32, copy=False), s=shape, workers=workers)
    S = F.real**2 + F.imag**2
    if background_px is not None:
        kx = sfft.fftfreq(shape[0]).astype(np.float32)[:, None]
        ky = sfft.rfftfreq(shape[1]).astype(np.float32)[None, :]
        S *= (1.0 - np.exp(-2.0 * np.pi**2 * background_px**2 * (kx * kx + ky * ky))) ** 2
    R = sfft.irfft2(S, s=shape, workers=workers)
    R = sfft.fftshift(R, axes=(-2, -1)).astype(np.float32, copy=False)
    return R[0] if single else R


def refine_autocorrelation_peaks(
    R: np.ndarray, frame_index: np.ndarray, lags: np.ndarray, peak_radius_px: float, *, iterations: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel positions of autocorrelation peaks by an iterated, soft-masked centroid (vectorised).

    Each peak of ``R`` is a sum of centrosymmetric terms, so the centroid of the background-subtracted peak
    within a disk of ``peak_radius_px`` centred on the current estimate converges to its centre. The local
    background is the mean of a ring just outside that disk. Pixels are weighted by their area inside the
    disk (anti-aliased edge), which removes most pixel locking.

    Parameters
    ----------
    R : ndarray, shape (N, P0, P1)
        Autocorrelations from :func:`autocorrelation` (zero lag at ``(P0 // 2, P1 // 2)``).
    frame_index : ndarray of int, shape (M,)
        Pattern of each peak.
    lags : ndarray, shape (M, 2)
        Approximate peak positions (qx, qy lags), px.
    peak_radius_px : float
        Radius of the peaks (twice the disk radius for disk pairs), px.
    iterations : int

    Returns
    -------
    lags : ndarray, shape (M, 2)
        Refined positions; NaN where the peak vanished (no positive signal).
    height : ndarray, shape (M,)
        Peak value above the local background at the nearest pixel.
    """
    R = np.asarray(R)
    zero = np.array([R.shape[-2] // 2, R.shape[-1] // 2], dtype=np.float64)
    rad = float(peak_radius_px)
    half = int(np.ceil(rad)) + 2
    o = np.arange(-half, half + 1, dtype=np.float64)
    c = np.asarray(lags, dtype=np.float64) + zero
    for _ in range(iterations):
        win, anc = extract_windows(R, frame_index, c, half)
        loc = c - anc
        rr = np.hypot(o[None, :, None] - loc[:, 0, None, None], o[None, None, :] - loc[:, 1, None, None])
        inside = np.clip(rad + 0.5 - rr, 0.0, 1.0)
        ring = rr > rad + 0.5
        bg = (win * ring).sum((1, 2)) / np.maximum(ring.sum((1, 2)), 1)
        m = np.clip(win - bg[:, None, None], 0.0, None) * inside
        s = m.sum((1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.stack([(m * o[None, :, None]).sum((1, 2)), (m * o[None, None, :]).sum((1, 2))], 1) / s[:, None]
        new = np.where((s > 0)[:, None], new, np.nan)
        step = anc + new - c
        c = anc + new
        if not np.any(np.abs(np.nan_to_num(step)) > 1e-4):
            break
    ok = np.all(np.isfinite(c), 1)
    ic = np.rint(np.where(ok[:, None], c, 0)).astype(np.int64)
    ic[:, 0] = np.clip(ic[:, 0], 0, R.shape[-2] - 1)
    ic[:, 1] = np.clip(ic[:, 1], 0, R.shape[-1] - 1)
    height = np.where(ok, R[frame_index, ic[:, 0], ic[:, 1]] - np.nan_to_num(bg), 0.0)
    return c - zero, height


@dataclass
class LatticeFit:
    """A reciprocal lattice fitted to autocorrelation peaks (origin-free).

    Attributes
    ----------
    basis : ndarray, shape (..., 2, 2)
        Rows ``g1``, ``g2``: reciprocal lattice vectors (qx, qy) in px. NaN where the fit failed.
    uv : ndarray of int, shape (P, 2)
        Lattice indices of the peaks that were looked for.
    peaks : ndarray, shape (..., P, 2)
        Refined peak positions (lags, px); NaN for peaks outside the usable lags or rejected.
    weights : ndarray, shape (..., P)
        Least-squares weight of each peak (squared peak height; 0 if unused).
    residual : ndarray, shape (...)
        Weighted RMS distance between the used peaks and the fitted lattice, px.
    n_peaks : ndarray of int, shape (...)
        Number of peaks used.
    """

    basis: np.ndarray
    uv: np.ndarray
    peaks: np.ndarray
    weights: np.ndarray
    residual: np.ndarray
    n_peaks: np.ndarray

    @property
    def g1(self) -> np.ndarray:
        """First basis vector, shape (..., 2), px."""
        return self.basis[..., 0, :]

    @property
    def g2(self) -> np.ndarray:
        """Second basis vector, shape (..., 2), px."""
        return self.basis[..., 1, :]


def _usable_lag(lag: np.ndarray, R_shape: tuple[int, int], pattern_shape: tuple[int, int] | None,
                inner: float, margin: float) -> np.ndarray:
    """Lags far enough from zero (central peak) and from the wrap-around zone / the edge of R."""
    P = np.asarray(R_shape, dtype=np.float64)
    lim = P / 2 - margin - 1
    if pattern_shape is not None and any(p > q for p, q in zip(R_shape, pattern_shape)):
        lim = np.minimum(lim, P - np.asarray(pattern_shape, dtype=np.float64) - margin)
    return (np.linalg.norm(lag, axis=-1) > inner) & np.all(np.abs(lag) < lim, axis=-1)


def _auto_basis(R: np.ndarray, radius_px: float, usable, min_rel: float = 0.05) -> np.ndarray | None:
    """Basis from the strongest non-central local maxima of one autocorrelation.

    Up to 24 local maxima at usable lags are kept, and only those at least ``min_rel`` times the strongest
    (weaker maxima are mostly noise and let a finer, wrong lattice win).
    """
    from scipy import ndimage

    zero = np.array([R.shape[0] // 2, R.shape[1] // 2])
    size = int(2 * np.ceil(2 * radius_px) + 1)
    mx = ndimage.maximum_filter(R, size=size, mode="constant", cval=-np.inf)
    ii, jj = np.nonzero((R == mx) & (R > 0))
    lag = np.stack([ii, jj], 1) - zero
    keep = usable(lag)
    lag, val = lag[keep], R[ii[keep], jj[keep]]
    if len(lag) < 2:
        return None
    order = np.argsort(val)[::-1][:24]
    order = order[val[order] >= min_rel * val[order[0]]]
    return find_basis(lag[order].astype(np.float64), tol_px=max(1.5, 0.5 * radius_px))


def lattice_from_autocorrelation(
    data: np.ndarray,
    approx_basis: np.ndarray | None = None,
    *,
    radius_px: float,
    kind: Literal["frame", "autocorrelation"] = "frame",
    max_order: int = 4,
    pattern_shape: tuple[int, int] | None = None,
) -> LatticeFit:
    """Fit the reciprocal lattice of patterns from the peaks of their autocorrelation.

    The peaks near ``u * g1 + v * g2`` (``|u|, |v| <= max_order``) are located to sub-pixel precision with
    :func:`refine_autocorrelation_peaks`, and ``g1, g2`` are fitted to them by weighted least squares through the
    zero lag (weights: squared peak heights), twice, dropping peaks that lie more than 4 x the median distance
    (at least 0.5 px) from the first fit. No pattern origin is involved.

    Parameters
    ----------
    data : ndarray, shape (Qx, Qy) or (N, Qx, Qy)
        Patterns (``kind="frame"``), or their autocorrelations from :func:`autocorrelation`
        (``kind="autocorrelation"``; pass ``pattern_shape`` then, to exclude wrapped lags).
    approx_basis : ndarray, shape (2, 2) or (N, 2, 2), optional
        Approximate rows ``g1, g2`` (px), e.g. from the detected disk centres. They only select which peaks are
        used: each must be within about ``radius_px`` of the truth (for the highest order used). None finds
        them from the strongest autocorrelation peaks of each pattern (a reduced basis; see
        :func:`~py4dstem_ndpd.refine.lattice.reduce_basis`); where two crystals overlap, that is the lattice
        that explains the most peaks, and a superlattice where there is one.
    radius_px : float
        Disk radius, px. Sets the background high-pass (``background_px = radius_px``) and the peak radius
        (``2 * radius_px``).
    kind : {"frame", "autocorrelation"}
    max_order : int
        Largest ``|u|`` and ``|v|`` looked for.
    pattern_shape : (int, int), optional
        Shape of the patterns, for ``kind="autocorrelation"``.

    Returns
    -------
    LatticeFit
        With leading dimension N when ``data`` is 3D.

    Raises
    ------
    ConfigError
        Bad ``radius_px``, ``kind`` or ``max_order``.
    InputError
        Bad array shapes or a degenerate ``approx_basis``.
    """
    if not radius_px > 0:
        raise ConfigError(f"radius_px must be > 0 (the disk radius in px), got {radius_px}")
    if kind not in ("frame", "autocorrelation"):
        raise ConfigError(f"kind must be 'frame' or 'autocorrelation', got {kind!r}")
    if int(max_order) < 1:
        raise ConfigError(f"max_order must be >= 1, got {max_order}")
    x, single = _as_frames(data)
    if kind == "frame":
        pattern_shape = x.shape[-2:]
        R = autocorrelation(x, background_px=radius_px)
    else:
        R = x
    N = R.shape[0]
    peak_r = 2.0 * radius_px
    usable = lambda lag: _usable_lag(lag, R.shape[-2:], pattern_shape, 2 * peak_r + 1, peak_r + 3)  # noqa: E731

    if approx_basis is None:
        basis0 = np.full((N, 2, 2), np.nan)
        for n in range(N):
            b = _auto_basis(R[n], radius_px, usable)
            if b is not None:
                basis0[n] = b
    else:
        basis0 = np.broadcast_to(_check_basis(approx_basis), (N, 2, 2)).astype(np.float64)

    r = np.arange(-int(max_order), int(max_order) + 1)
    uv = np.stack(np.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)
    uv = uv[np.any(uv != 0, axis=1)]
    lags = np.einsum("pu,nuj->npj", uv.astype(np.float64), basis0)  # (N, P, 2)
    valid = usable(lags) & np.all(np.isfinite(lags), -1)
    n_idx, p_idx = np.nonzero(valid)
    peaks = np.full(lags.shape, np.nan)
    weights = np.zeros(valid.shape)
    if n_idx.size:
        pos, height = refine_autocorrelation_peaks(R, n_idx, lags[n_idx, p_idx], peak_r)
        good = np.all(np.isfinite(pos), 1) & (height > 0) & (np.linalg.norm(pos - lags[n_idx, p_idx], axis=1) < peak_r)
        peaks[n_idx[good], p_idx[good]] = pos[good]
        weights[n_idx[good], p_idx[good]] = height[good] ** 2
    basis, residual, n_used = robust_basis_fit(uv, peaks, weights)
    fit = LatticeFit(basis=basis, uv=uv, peaks=np.where((weights > 0)[..., None], peaks, np.nan), weights=weights,
                     residual=residual, n_peaks=n_used)
    if single:
        fit = LatticeFit(basis=fit.basis[0], uv=uv, peaks=fit.peaks[0], weights=fit.weights[0],
                         residual=fit.residual[0], n_peaks=fit.n_peaks[0])
    return fit


def robust_basis_fit(uv: np.ndarray, peaks: np.ndarray, weights: np.ndarray, rounds: int = 2):
    """Weighted least-squares bases through the zero lag, per pattern, dropping outlying peaks.

    Parameters
    ----------
    uv : ndarray of int, shape (P, 2) or (N, P, 2)
        Indices of the peaks (the same for every pattern, or per pattern).
    peaks : ndarray, shape (N, P, 2)
        Peak positions (NaN where missing).
    weights : ndarray, shape (N, P)
        Weights (0 where missing). Outliers get weight 0 **in place**: a peak farther than
        ``max(4 x median distance, 0.5 px)`` from its pattern's fit is dropped and the fit repeated, ``rounds``
        times at most.

    Returns
    -------
    basis : ndarray, shape (N, 2, 2)
    residual : ndarray, shape (N,)
        Weighted RMS distance of the used peaks to the fit, px.
    n_used : ndarray of int, shape (N,)
    """
    N, P = weights.shape
    u = np.broadcast_to(np.asarray(uv, dtype=np.float64), (N, P, 2))
    grp = np.repeat(np.arange(N), P)
    uf = u.reshape(-1, 2)
    pk = np.nan_to_num(np.asarray(peaks, dtype=np.float64).reshape(-1, 2))
    w = weights.reshape(-1)  # a view: outliers are zeroed in place
    zero = np.zeros((N, 2))
    for round_ in range(rounds + 1):
        use = w > 0
        basis, _ = fit_basis(uf[use], pk[use], w[use], grp[use], N, origin=zero)
        pred = np.einsum("ku,kuj->kj", uf, np.nan_to_num(basis[grp]))
        dist = np.where(use, np.linalg.norm(pk - pred, axis=1), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(dist.reshape(N, P), axis=1)
        cut = np.maximum(4.0 * np.nan_to_num(med), 0.5)
        bad = use & ~(dist <= cut[grp])
        if round_ == rounds or not np.any(bad):
            break
        w[bad] = 0.0
    wd = weights * np.nan_to_num(dist.reshape(N, P)) ** 2
    with np.errstate(all="ignore"):
        residual = np.sqrt(wd.sum(1) / weights.sum(1))
    return basis, residual, (weights > 0).sum(1)
