"""Vectorised rendering of nano-beam diffraction patterns from disk lists.

All patterns of a batch are drawn at once: every disk becomes a small patch, all patches are evaluated in one
float32 numpy expression and added into the batch with a single unbuffered ``np.add.at``. The detector stage
(blur, Poisson counting) then works pattern by pattern, so its arrays stay in the CPU caches. Coordinates follow
py4DSTEM: ``qx`` is the row, ``qy`` the column, pixel ``i`` is centred on integer ``i``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..exceptions import ConfigError


@dataclass(frozen=True)
class DetectorModel:
    """What the camera does to the expected image.

    Attributes
    ----------
    blur_sigma : float
        Gaussian point-spread function, px (applied to the expected image).
    hot_fraction, dead_fraction : float
        Fraction of hot (saturated) and dead (zero) pixels, fixed per detector.
    bits : int
        Counter depth, 8, 12, 16 or 32; counts are clipped to ``2**bits - 1`` and stored as uint16 (up to 16
        bits) or uint32.
    seed : int
        Seed of the hot/dead pixel map (the same detector for the whole scan).
    """

    blur_sigma: float = 0.6
    hot_fraction: float = 0.0
    dead_fraction: float = 0.0
    bits: int = 32
    seed: int = 1234

    def __post_init__(self) -> None:
        if not self.blur_sigma >= 0:
            raise ConfigError(f"blur_sigma must be >= 0 px (0 = no blur), got {self.blur_sigma}")
        if not (0 <= self.hot_fraction <= 1 and 0 <= self.dead_fraction <= 1
                and self.hot_fraction + self.dead_fraction <= 1):
            raise ConfigError(
                f"hot_fraction and dead_fraction must be in 0..1 with a sum <= 1, got {self.hot_fraction} and "
                f"{self.dead_fraction}"
            )
        if self.bits not in (8, 12, 16, 32):
            raise ConfigError(f"bits must be 8, 12, 16 or 32 (counter depth), got {self.bits}")

    def defect_masks(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Boolean (hot, dead) pixel maps of the given pattern shape."""
        rng = np.random.default_rng(self.seed)
        u = rng.random(shape)
        hot = u < self.hot_fraction
        dead = (u >= self.hot_fraction) & (u < self.hot_fraction + self.dead_fraction)
        return hot, dead


@dataclass
class DiskBatch:
    """Disks of ``B`` patterns, padded to ``D`` disks per pattern (padding has ``weight == 0``).

    Attributes
    ----------
    qx, qy : ndarray, shape (B, D)
        Disk centres, px.
    weight : ndarray, shape (B, D)
        Expected electrons in each disk (before noise).
    radius : ndarray, shape (B,) or (B, D)
        Disk radius, px.
    edge : ndarray, shape (B,)
        Edge softness (1/e width of the tanh edge), px.
    ripple : ndarray, shape (B, D)
        Relative amplitude of a centrosymmetric internal ring structure (thickness fringes), 0..~0.3.
    ripple_period : ndarray, shape (B, D)
        Radial period of that structure, px.
    shape_matrix : ndarray, shape (B, 2, 2)
        Linear map applied to the disk shape (elliptic distortion); identity for round disks.
    texture : DiskTexture or None
        Non-centrosymmetric contrast inside the disks (dynamical diffraction); None: none.
    """

    qx: np.ndarray
    qy: np.ndarray
    weight: np.ndarray
    radius: np.ndarray
    edge: np.ndarray
    ripple: np.ndarray
    ripple_period: np.ndarray
    shape_matrix: np.ndarray
    texture: DiskTexture | None = None


@dataclass
class DiskTexture:
    """Contrast inside the disks of a :class:`DiskBatch` that moves their intensity centroid off the centre.

    Dynamical diffraction fills real CBED disks with structure: Kossel-Moellenstedt fringes centred away from the
    disk centre in a tilted crystal, intensity gradients, bright or dark deficiency lines (rocking curves, HOLZ
    lines) crossing the disk. The disk *edge* (the condenser aperture's image) stays centred on the reflection,
    which is what a detector must find. All arrays are (B, D); lengths in units of the disk radius.

    Attributes
    ----------
    gradient : ndarray (B, D, 2)
        Relative intensity change per radius along qx, qy (a linear ramp, clipped at 0).
    fringe_centre : ndarray (B, D, 2)
        Centre of the ``ripple`` rings relative to the disk centre (qx, qy), radii.
    line_amplitude : ndarray (B, D)
        Depth of a Gaussian line across the disk: > 0 dark (deficiency), < 0 bright (excess).
    line_angle : ndarray (B, D)
        Direction of the line's normal, rad.
    line_offset, line_width : ndarray (B, D)
        Signed distance of the line from the centre and its 1/e half-width, radii.
    """

    gradient: np.ndarray
    fringe_centre: np.ndarray
    line_amplitude: np.ndarray
    line_angle: np.ndarray
    line_offset: np.ndarray
    line_width: np.ndarray

    def modulation(self, sel: tuple[np.ndarray, np.ndarray], ux: np.ndarray, uy: np.ndarray,
                   R: np.ndarray) -> np.ndarray:
        """Multiplicative factor (n, P, P) for the disks ``sel = (b_idx, d_idx)`` at offsets ``ux, uy`` (px)."""
        b, d = sel
        f32 = np.float32
        inv = (1.0 / np.maximum(R, 1e-3)).astype(f32)[:, None, None]
        tx, ty = ux * inv, uy * inv  # offsets in radii
        g = self.gradient[b, d].astype(f32)
        mod = 1.0 + g[:, 0, None, None] * tx + g[:, 1, None, None] * ty
        np.clip(mod, 0.0, None, out=mod)
        a = self.line_angle[b, d]
        c, s_ = np.cos(a).astype(f32)[:, None, None], np.sin(a).astype(f32)[:, None, None]
        t = (c * tx + s_ * ty - self.line_offset[b, d].astype(f32)[:, None, None])
        t /= np.maximum(self.line_width[b, d], 1e-3).astype(f32)[:, None, None]
        mod *= 1.0 - self.line_amplitude[b, d].astype(f32)[:, None, None] * np.exp(-np.square(t))
        np.clip(mod, 0.0, None, out=mod)
        return mod


def disk_profile(r: np.ndarray, radius, edge) -> np.ndarray:
    """Soft-edged top-hat: 1 inside, 0 outside, tanh transition of width ``edge`` (px)."""
    return 0.5 * (1.0 - np.tanh((r - radius) / edge))


def _inverse_2x2(M: np.ndarray) -> np.ndarray:
    """Inverse of a stack of 2x2 matrices, shape (..., 2, 2) (closed form: no LAPACK call per batch)."""
    det = M[..., 0, 0] * M[..., 1, 1] - M[..., 0, 1] * M[..., 1, 0]
    inv = np.empty_like(M, dtype=float)
    inv[..., 0, 0] = M[..., 1, 1] / det
    inv[..., 1, 1] = M[..., 0, 0] / det
    inv[..., 0, 1] = -M[..., 0, 1] / det
    inv[..., 1, 0] = -M[..., 1, 0] / det
    return inv


def _spectral_norm_2x2(M: np.ndarray) -> np.ndarray:
    """Largest singular value of a stack of 2x2 matrices, shape (...,)."""
    a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
    s1 = a * a + b * b + c * c + d * d
    s2 = np.sqrt((a * a + b * b - c * c - d * d) ** 2 + 4 * (a * c + b * d) ** 2)
    return np.sqrt(0.5 * (s1 + s2))


def render_disks(disks: DiskBatch, shape: tuple[int, int]) -> np.ndarray:
    """Expected image of the disks alone (no background, no blur, no noise).

    Each disk integrates to ``weight`` electrons (up to the part cut by the detector edge). Every disk is drawn
    as a square patch around its centre; the profiles of all patches are evaluated in float32 in one numpy
    expression (the sub-pixel offset of each centre is taken in float64 first, so the centre is exact to ~1e-6
    px) and added into the batch with one unbuffered ``np.add.at``.

    Returns
    -------
    ndarray, shape (B, Qx, Qy), float32
        Expected electrons per pixel.
    """
    B, D = disks.qx.shape
    H, W = shape
    canvas = np.zeros(B * H * W + 1, dtype=np.float32)  # the last element collects pixels off the detector
    out = canvas[:-1].reshape(B, H, W)
    radius = np.broadcast_to(np.asarray(disks.radius, float).reshape(B, -1), (B, D))
    edge = np.broadcast_to(np.asarray(disks.edge, float).reshape(B, 1), (B, D))
    M = np.asarray(disks.shape_matrix, float).reshape(B, 2, 2)
    stretch = _spectral_norm_2x2(M)  # (B,)
    # patch half-size per disk: big enough for the stretched radius and the tanh tail
    reach = radius * stretch[:, None] + 3.5 * edge
    with np.errstate(invalid="ignore"):
        valid = (
            (disks.weight > 0) & np.isfinite(disks.qx) & np.isfinite(disks.qy)
            & (disks.qx > -reach - 1) & (disks.qx < H + reach) & (disks.qy > -reach - 1) & (disks.qy < W + reach)
        )
    b_idx, d_idx = np.nonzero(valid)
    if b_idx.size == 0:
        return out
    cx = disks.qx[b_idx, d_idx]
    cy = disks.qy[b_idx, d_idx]
    R = radius[b_idx, d_idx].astype(np.float32)
    E = edge[b_idx, d_idx].astype(np.float32)
    half = int(np.ceil(np.max(reach[b_idx, d_idx]))) + 1
    offs = np.arange(-half, half + 1)
    x0 = np.round(cx).astype(np.int64)
    y0 = np.round(cy).astype(np.int64)
    # pixel offsets from the exact centre, (n, P): float64 subtraction, then float32
    dx = (offs[None, :] - (cx - x0)[:, None]).astype(np.float32)
    dy = (offs[None, :] - (cy - y0)[:, None]).astype(np.float32)
    Minv = _inverse_2x2(M)
    tex = disks.texture
    if tex is None and np.allclose(Minv, np.eye(2), rtol=0, atol=1e-12):
        r = np.add(np.square(dx)[:, :, None], np.square(dy)[:, None, :])
    else:
        mi = Minv[b_idx].astype(np.float32)
        ux = mi[:, 0, 0, None, None] * dx[:, :, None] + mi[:, 0, 1, None, None] * dy[:, None, :]
        uy = mi[:, 1, 0, None, None] * dx[:, :, None] + mi[:, 1, 1, None, None] * dy[:, None, :]
        if tex is not None:  # ux, uy are kept for the texture
            r = np.square(ux) + np.square(uy)
        else:
            r = np.square(ux, out=ux)
            r += np.square(uy, out=uy)
    np.sqrt(r, out=r)  # (n, P, P) radius in the undistorted frame, px
    # soft top-hat 0.5 * (1 - tanh((r - R) / E)), in place
    prof = np.subtract(r, R[:, None, None])
    prof *= (1.0 / E)[:, None, None]
    np.tanh(prof, out=prof)
    prof *= -0.5
    prof += 0.5
    rip = disks.ripple[b_idx, d_idx].astype(np.float32)
    has_rip = rip != 0
    if np.any(has_rip):
        per = disks.ripple_period[b_idx, d_idx].astype(np.float32)
        k = np.where(has_rip, np.float32(2 * np.pi) / per, 0).astype(np.float32)
        if tex is not None:  # rings centred off the disk centre (tilted crystal)
            fc = tex.fringe_centre[b_idx, d_idx].astype(np.float32) * R[:, None]
            rr = np.sqrt(np.square(ux - fc[:, 0, None, None]) + np.square(uy - fc[:, 1, None, None]))
        else:
            rr = r
        mod = rr * k[:, None, None]
        np.cos(mod, out=mod)
        mod *= rip[:, None, None]
        mod += 1.0
        prof *= mod
    if tex is not None:
        prof *= tex.modulation((b_idx, d_idx), ux, uy, R)
    # normalise each disk to its weight (area of the full, unclipped disk)
    norm = prof.sum(axis=(1, 2), dtype=np.float64)
    prof *= (disks.weight[b_idx, d_idx] / np.maximum(norm, 1e-12)).astype(np.float32)[:, None, None]
    X = x0[:, None] + offs[None, :]  # (n, P)
    Y = y0[:, None] + offs[None, :]
    row = np.where((X >= 0) & (X < H), X * W, -1)
    col = np.where((Y >= 0) & (Y < W), Y, -1)
    flat = (b_idx * (H * W))[:, None, None] + row[:, :, None] + col[:, None, :]
    off = (row[:, :, None] < 0) | (col[:, None, :] < 0)
    flat[off] = B * H * W
    np.add.at(canvas, flat.ravel(), prof.ravel())
    return out


@dataclass
class BackgroundBatch:
    """Smooth diffuse background of ``B`` patterns, each integrating to ``weight`` electrons.

    Attributes
    ----------
    origin : ndarray, shape (B, 2)
        Centre (qx, qy) of the diffuse scattering, px (the pattern origin).
    weight : ndarray, shape (B,)
        Expected electrons in the background.
    decay : ndarray, shape (B,)
        Exponential decay length of the thermal-diffuse halo, px.
    ring_fraction : ndarray, shape (B,)
        Fraction of the background in an amorphous ring.
    ring_radius, ring_width : ndarray, shape (B,)
        Ring radius and Gaussian width, px.
    """

    origin: np.ndarray
    weight: np.ndarray
    decay: np.ndarray
    ring_fraction: np.ndarray
    ring_radius: np.ndarray
    ring_width: np.ndarray


def render_background(bg: BackgroundBatch, shape: tuple[int, int]) -> np.ndarray:
    """Expected diffuse background: an exponential halo plus a Gaussian amorphous ring around ``origin``.

    Returns
    -------
    ndarray, shape (B, Qx, Qy), float32
        Expected electrons per pixel; each pattern sums to ``weight`` (over the detector).
    """
    H, W = shape
    B = len(bg.weight)
    f32 = np.float32
    dx = np.arange(H, dtype=np.float64)[None, :] - np.asarray(bg.origin, float)[:, 0, None]  # (B, H)
    dy = np.arange(W, dtype=np.float64)[None, :] - np.asarray(bg.origin, float)[:, 1, None]  # (B, W)
    r = np.add(np.square(dx).astype(f32)[:, :, None], np.square(dy).astype(f32)[:, None, :])
    np.sqrt(r, out=r)
    halo = r * (-1.0 / np.asarray(bg.decay, float)).astype(f32)[:, None, None]
    np.exp(halo, out=halo)
    ring = np.subtract(r, np.asarray(bg.ring_radius, f32)[:, None, None], out=r)
    ring *= (1.0 / np.asarray(bg.ring_width, float)).astype(f32)[:, None, None]
    np.square(ring, out=ring)
    ring *= -0.5
    np.exp(ring, out=ring)
    f = np.asarray(bg.ring_fraction, float)
    w = np.asarray(bg.weight, float)
    a = w * (1 - f) / np.maximum(halo.reshape(B, -1).sum(1, dtype=np.float64), 1e-30)
    b = w * f / np.maximum(ring.reshape(B, -1).sum(1, dtype=np.float64), 1e-12)
    halo *= a.astype(f32)[:, None, None]
    ring *= b.astype(f32)[:, None, None]
    halo += ring
    return halo


@lru_cache(maxsize=8)
def _defect_masks(detector: DetectorModel, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    hot, dead = detector.defect_masks(shape)
    hot.flags.writeable = False
    dead.flags.writeable = False
    return hot, dead


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Normalised 1D Gaussian kernel of ``sigma`` px, radius ``int(truncate * sigma + 0.5)`` (as scipy.ndimage)."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(expected: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian point-spread function of ``sigma`` px over the last two axes, zero outside the detector.

    Same result as ``scipy.ndimage.gaussian_filter(expected, (0, ..., sigma, sigma), mode="constant")`` (to
    float32 rounding), written as symmetric shifted sums, which is ~3x faster for the small kernels of a camera
    PSF. ``sigma <= 0`` returns the input unchanged.

    Parameters
    ----------
    expected : ndarray, shape (..., Qx, Qy)
    sigma : float
        Standard deviation, px.

    Returns
    -------
    ndarray, same shape, float32
    """
    if sigma <= 0:
        return expected
    k = gaussian_kernel(sigma).astype(np.float32)
    r = len(k) // 2
    img = np.asarray(expected, np.float32)
    for axis in (-2, -1):
        n = img.shape[axis]
        pad = [(0, 0)] * img.ndim
        pad[axis] = (r, r)
        p = np.pad(img, pad)

        def sl(a, b, axis=axis):
            idx = [slice(None)] * img.ndim
            idx[axis] = slice(a, b)
            return p[tuple(idx)]

        out = sl(r, r + n) * k[r]
        for j in range(1, r + 1):
            pair = np.add(sl(r - j, r - j + n), sl(r + j, r + j + n))
            pair *= k[r + j]
            out += pair
        img = out
    return img


def _count_one(img: np.ndarray, sigma: float, rng: np.random.Generator, top: int, out: np.ndarray) -> None:
    """Blur and count one pattern into ``out`` (runs in a worker thread: numpy releases the GIL here)."""
    lam = blur(img, sigma)
    lam = np.maximum(lam, 0, out=lam if lam is not img else None)
    c = rng.poisson(lam)
    np.minimum(c, top, out=c)
    out[...] = c


def detect_counts(
    expected: np.ndarray,
    detector: DetectorModel,
    rng: np.random.Generator | Sequence[np.random.Generator],
    *,
    noise: bool = True,
    workers: int = 1,
) -> np.ndarray:
    """Apply the detector: blur, Poisson counting, hot/dead pixels, saturation.

    Parameters
    ----------
    expected : ndarray, shape (B, Qx, Qy)
        Expected electrons per pixel.
    detector : DetectorModel
    rng : numpy.random.Generator or sequence of them
        One generator for the whole batch, or one per pattern (``len(rng) == B``): the noise of each pattern then
        depends only on its own generator, not on the batch it is drawn in or on ``workers``.
    noise : bool
        False returns the blurred expected image as float32 (noise-free truth images).
    workers : int
        Threads counting patterns in parallel (only with one generator per pattern).

    Returns
    -------
    ndarray, shape (B, Qx, Qy)
        uint16 or uint32 counts (float32 when ``noise`` is False).
    """
    if not noise:
        return np.asarray(blur(expected, detector.blur_sigma), np.float32)
    dtype = np.uint16 if detector.bits <= 16 else np.uint32
    top = (1 << detector.bits) - 1
    counts = np.empty(expected.shape, dtype)
    if isinstance(rng, np.random.Generator):
        _count_one(expected, detector.blur_sigma, rng, top, counts)
    else:
        if len(rng) != len(expected):
            raise ConfigError(f"got {len(rng)} generators for {len(expected)} patterns; pass one per pattern, or one")
        jobs = [(expected[b], detector.blur_sigma, g, top, counts[b]) for b, g in enumerate(rng)]
        if workers > 1 and len(jobs) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(lambda job: _count_one(*job), jobs))
        else:
            for job in jobs:
                _count_one(*job)
    hot, dead = _defect_masks(detector, tuple(expected.shape[-2:]))
    if detector.hot_fraction > 0 and hot.any():
        counts[..., hot] = top
    if detector.dead_fraction > 0 and dead.any():
        counts[..., dead] = 0
    return counts
