"""Plain-array peak tables: the currency between the detector core and the py4DSTEM bridge.

Conventions (as in py4DSTEM): ``qx`` is the detector **row** index, ``qy`` the **column** index, both in pixels,
with pixel ``i`` centred on the integer coordinate ``i`` (the first pixel spans -0.5..0.5). ``rx, ry`` index the
scan position.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: dtype of one pattern's peak table: qx (row, px), qy (column, px), intensity (counts), confidence (0..1).
PEAK_DTYPE = np.dtype([("qx", "f4"), ("qy", "f4"), ("intensity", "f4"), ("confidence", "f4")])


def empty_peaks(n: int = 0) -> np.ndarray:
    """Return a zero-filled peak table of length ``n`` with :data:`PEAK_DTYPE`."""
    return np.zeros(n, dtype=PEAK_DTYPE)


def make_peaks(qx, qy, intensity=None, confidence=None) -> np.ndarray:
    """Build a peak table from columns.

    Parameters
    ----------
    qx, qy : array_like, shape (N,)
        Row and column positions in pixels.
    intensity : array_like, shape (N,), optional
        Integrated or peak intensity (counts); 1 where not given.
    confidence : array_like, shape (N,), optional
        Detector confidence in 0..1; 1 where not given.

    Returns
    -------
    numpy.ndarray
        Structured array of :data:`PEAK_DTYPE`, shape (N,).
    """
    qx = np.asarray(qx, dtype=np.float32).ravel()
    out = empty_peaks(qx.size)
    out["qx"] = qx
    out["qy"] = np.asarray(qy, dtype=np.float32).ravel()
    out["intensity"] = 1.0 if intensity is None else np.asarray(intensity, dtype=np.float32).ravel()
    out["confidence"] = 1.0 if confidence is None else np.asarray(confidence, dtype=np.float32).ravel()
    return out


@dataclass
class ScanPeaks:
    """Peak tables of a whole scan, in C order of the scan positions.

    Attributes
    ----------
    scan_shape : tuple of int
        ``(Rx, Ry)``.
    peaks : list of numpy.ndarray
        ``Rx * Ry`` tables of :data:`PEAK_DTYPE`; position ``(rx, ry)`` is at index ``rx * Ry + ry``.
    pattern_shape : tuple of int
        ``(Qx, Qy)`` of the patterns the peaks were found on.
    timings : dict
        Seconds spent per stage (read, infer, decode, refine...), where measured.
    """

    scan_shape: tuple[int, int]
    peaks: list[np.ndarray]
    pattern_shape: tuple[int, int]
    timings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = int(np.prod(self.scan_shape))
        if len(self.peaks) != n:
            raise ValueError(f"ScanPeaks: {len(self.peaks)} tables for a scan of {self.scan_shape} ({n} positions)")

    def at(self, rx: int, ry: int) -> np.ndarray:
        """Peak table at scan position ``(rx, ry)``."""
        return self.peaks[rx * self.scan_shape[1] + ry]

    @property
    def n_peaks(self) -> int:
        """Total number of peaks in the scan."""
        return int(sum(len(p) for p in self.peaks))
