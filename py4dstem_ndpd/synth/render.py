"""Vectorised rendering of nano-beam diffraction patterns from disk lists.

All patterns of a batch are drawn at once: every disk becomes a small patch, all patches are evaluated in one
numpy expression and summed into the batch with a single ``bincount``. Coordinates follow py4DSTEM: ``qx`` is the
row, ``qy`` the column, pixel ``i`` is centred on integer ``i``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


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
        Counter depth, 16 or 32; counts are clipped to ``2**bits - 1``.
    seed : int
        Seed of the hot/dead pixel map (the same detector for the whole scan).
    """

    blur_sigma: float = 0.6
    hot_fraction: float = 0.0
    dead_fraction: float = 0.0
    bits: int = 32
    seed: int = 1234

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
    """

    qx: np.ndarray
    qy: np.ndarray
    weight: np.ndarray
    radius: np.ndarray
    edge: np.ndarray
    ripple: np.ndarray
    ripple_period: np.ndarray
    shape_matrix: np.ndarray


def disk_profile(r: np.ndarray, radius, edge) -> np.ndarray:
    """Soft-edged top-hat: 1 inside, 0 outside, tanh transition of width ``edge`` (px)."""
    return 0.5 * (1.0 - np.tanh((r - radius) / edge))


def render_disks(disks: DiskBatch, shape: tuple[int, int]) -> np.ndarray:
    """Expected image of the disks alone (no background, no noise).

    Each disk integrates to ``weight`` electrons (up to the part cut by the detector edge).

    Returns
    -------
    ndarray, shape (B, Qx, Qy), float64
    """
    B, D = disks.qx.shape
    H, W = shape
    radius = np.broadcast_to(np.asarray(disks.radius, float).reshape(B, -1), (B, D))
    edge = np.broadcast_to(np.asarray(disks.edge, float).reshape(B, 1), (B, D))
    valid = (disks.weight > 0) & np.isfinite(disks.qx) & np.isfinite(disks.qy)
    b_idx, d_idx = np.nonzero(valid)
    out = np.zeros(B * H * W)
    if b_idx.size == 0:
        return out.reshape(B, H, W)
    cx = disks.qx[b_idx, d_idx]
    cy = disks.qy[b_idx, d_idx]
    R = radius[b_idx, d_idx]
    E = edge[b_idx, d_idx]
    M = disks.shape_matrix[b_idx]
    Minv = np.linalg.inv(M)
    stretch = np.linalg.norm(M, ord=2, axis=(1, 2))
    half = int(np.ceil(np.max(R * stretch + 3.5 * E))) + 1
    offs = np.arange(-half, half + 1)
    x0 = np.round(cx).astype(np.int64)
    y0 = np.round(cy).astype(np.int64)
    X = x0[:, None, None] + offs[None, :, None]  # (n, P, 1)
    Y = y0[:, None, None] + offs[None, None, :]  # (n, 1, P)
    dx = X - cx[:, None, None]
    dy = Y - cy[:, None, None]
    ux = Minv[:, 0, 0, None, None] * dx + Minv[:, 0, 1, None, None] * dy
    uy = Minv[:, 1, 0, None, None] * dx + Minv[:, 1, 1, None, None] * dy
    r = np.sqrt(ux * ux + uy * uy)
    prof = disk_profile(r, R[:, None, None], E[:, None, None])
    rip = disks.ripple[b_idx, d_idx]
    if np.any(rip != 0):
        per = disks.ripple_period[b_idx, d_idx]
        prof = prof * (1.0 + rip[:, None, None] * np.cos(2 * np.pi * r / per[:, None, None]))
    # normalise each disk to its weight (area of the full, unclipped disk)
    norm = prof.sum(axis=(1, 2))
    prof *= (disks.weight[b_idx, d_idx] / np.maximum(norm, 1e-12))[:, None, None]
    inside = (X >= 0) & (X < H) & (Y >= 0) & (Y < W)
    flat = b_idx[:, None, None] * (H * W) + np.clip(X, 0, H - 1) * W + np.clip(Y, 0, W - 1)
    out += np.bincount(flat[inside], weights=prof[inside], minlength=B * H * W)
    return out.reshape(B, H, W)


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
    """Expected diffuse background, shape (B, Qx, Qy)."""
    H, W = shape
    x = np.arange(H, dtype=np.float32)[None, :, None]
    y = np.arange(W, dtype=np.float32)[None, None, :]
    ox = bg.origin[:, 0].astype(np.float32)[:, None, None]
    oy = bg.origin[:, 1].astype(np.float32)[:, None, None]
    r = np.sqrt((x - ox) ** 2 + (y - oy) ** 2)
    halo = np.exp(-r / bg.decay.astype(np.float32)[:, None, None])
    ring = np.exp(
        -0.5 * ((r - bg.ring_radius.astype(np.float32)[:, None, None]) / bg.ring_width.astype(np.float32)[:, None, None]) ** 2
    )
    halo /= halo.sum(axis=(1, 2), keepdims=True)
    ring /= np.maximum(ring.sum(axis=(1, 2), keepdims=True), 1e-12)
    f = bg.ring_fraction.astype(np.float32)[:, None, None]
    return (bg.weight.astype(np.float32)[:, None, None] * ((1 - f) * halo + f * ring)).astype(np.float64)


def detect_counts(
    expected: np.ndarray,
    detector: DetectorModel,
    rng: np.random.Generator,
    *,
    noise: bool = True,
) -> np.ndarray:
    """Apply the detector: blur, Poisson counting, hot/dead pixels, saturation.

    Parameters
    ----------
    expected : ndarray, shape (B, Qx, Qy)
        Expected electrons per pixel.
    detector : DetectorModel
    rng : numpy.random.Generator
    noise : bool
        False returns the blurred expected image as float32 (noise-free truth images).

    Returns
    -------
    ndarray, shape (B, Qx, Qy)
        uint16 or uint32 counts (float32 when ``noise`` is False).
    """
    img = expected
    if detector.blur_sigma > 0:
        img = ndimage.gaussian_filter(img, sigma=(0, detector.blur_sigma, detector.blur_sigma), mode="constant")
    if not noise:
        return img.astype(np.float32)
    dtype = np.uint16 if detector.bits <= 16 else np.uint32
    top = np.iinfo(dtype).max
    counts = rng.poisson(np.clip(img, 0, None))
    hot, dead = detector.defect_masks(img.shape[1:])
    if hot.any():
        counts[:, hot] = top
    if dead.any():
        counts[:, dead] = 0
    return np.clip(counts, 0, top).astype(dtype)
