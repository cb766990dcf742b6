"""Detector counts per electron, read from the data's own quantum.

The refinement's SNR estimates (which disks to trust, where the hybrid correlation starts, which detections are
noise) need the shot noise of a disk's counts, ``gain * counts``. Counting detectors store integer counts (gain 1),
also when they are stored as floats. Data that were scaled after counting, e.g. averaged 2 x 2 (each electron
worth 0.25) or normalised by a constant, take only multiples of one non-integer value, which
:func:`estimate_gain` returns. Continuous data (integrating cameras, dark-subtracted floats) have no such quantum;
then the gain is taken as 1. ``RefineOptions(gain=...)`` overrides the estimate.
"""
from __future__ import annotations

import numpy as np

#: At most this many pixels of a batch are looked at.
SAMPLE = 200_000


def estimate_gain(frames: np.ndarray) -> float:
    """Counts per electron of a batch of patterns, from the smallest step between their values.

    Parameters
    ----------
    frames : ndarray
        Patterns of any shape and real dtype.

    Returns
    -------
    float
        1.0 for integer-valued data (any dtype) and for data without a quantum; otherwise the smallest positive value
        ``q`` when every sampled positive value is within 1 % of a multiple of it (the counts are then
        ``frames / q``). Integer-valued data are taken as counts even if every value happens to be a multiple of
        some integer > 1 (high-dose patterns without single counts).

    Examples
    --------
    >>> import numpy as np
    >>> counts = np.random.default_rng(0).poisson(2.0, (4, 32, 32))
    >>> estimate_gain(counts), estimate_gain(counts / 4.0), estimate_gain(counts + 0.3), estimate_gain(3.0 * counts)
    (1.0, 0.25, 1.0, 1.0)
    """
    x = np.asarray(frames)
    if x.dtype.kind in "uib" or x.size == 0:
        return 1.0
    v = x.ravel()[:: max(1, x.size // SAMPLE)].astype(np.float64)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 10 or np.all(v == np.round(v)):
        return 1.0
    q = float(v.min())
    r = v / q
    if np.max(np.abs(r - np.round(r))) < 0.01:
        return q
    return 1.0
