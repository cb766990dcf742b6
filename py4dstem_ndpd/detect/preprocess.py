"""Intensity normalisation and resizing shared by training and inference.

Normalisation (the same in ``ndpd train`` and in inference, documented in ``docs/model-card.md``):

1. negative values (dark-subtracted data) are clipped to 0;
2. ``s = P99.5(x)``, the 99.5th percentile of the pattern (the top 0.5 % of pixels: the direct beam and the
   brightest disks); if it is 0, the maximum is used, and an all-zero pattern stays zero;
3. ``v = log1p(C * x / s) / log1p(C)`` with ``C = 100``, clipped to [0, 1].

The result does not depend on the counts' scale (16/32-bit counts, floats), keeps a 100:1 range below the
brightest 0.5 % of pixels on a log scale, and saturates the direct beam instead of letting it compress every
other disk into a few grey levels (which cost recall at low dose in our first experiments).
"""
from __future__ import annotations

import numpy as np

#: Log compression constant C of the normalisation.
LOG_RANGE = 100.0
#: Percentile that maps to ~1.
SCALE_PERCENTILE = 99.5


def normalize(frames: np.ndarray) -> np.ndarray:
    """Normalise patterns to float32 in [0, 1].

    Parameters
    ----------
    frames : ndarray, shape (Qx, Qy) or (N, Qx, Qy)
        Counts of any real dtype.

    Returns
    -------
    ndarray of float32, same shape.
    """
    x = np.asarray(frames, dtype=np.float32)
    single = x.ndim == 2
    if single:
        x = x[None]
    x = np.maximum(x, 0.0)
    n = x.shape[0]
    flat = x.reshape(n, -1)
    k = int(round(flat.shape[1] * SCALE_PERCENTILE / 100.0))
    k = min(max(k, 0), flat.shape[1] - 1)
    s = np.partition(flat, k, axis=1)[:, k]
    s = np.where(s > 0, s, flat.max(axis=1))
    s = np.where(s > 0, s, 1.0).astype(np.float32)
    v = np.log1p(x * (LOG_RANGE / s)[:, None, None]) / np.float32(np.log1p(LOG_RANGE))
    np.clip(v, 0.0, 1.0, out=v)
    return v[0] if single else v


def to_uint8(v: np.ndarray) -> np.ndarray:
    """Quantise normalised images (0..1) to uint8, as written to training PNGs."""
    return np.clip(np.round(v * 255.0), 0, 255).astype(np.uint8)
