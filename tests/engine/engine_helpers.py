"""Helpers of the engine tests: small real peak finders (importable by Dask worker processes and subprocesses)
and result comparison."""
from __future__ import annotations

import time

import numpy as np
from scipy import ndimage as ndi

from py4dstem_ndpd.peaks import make_peaks


class LocalMaxima:
    """Local maxima of a gaussian-smoothed pattern: a plain but real disk finder.

    Parameters
    ----------
    sigma : float
        Gaussian smoothing, px.
    min_distance : int
        Peaks are maxima of a ``(2 * min_distance + 1)`` square neighbourhood.
    threshold_rel : float
        Keep maxima above this fraction of the pattern's highest smoothed value.
    num_peaks : int
        Keep at most this many, brightest first.
    delay_s : float
        Extra seconds per frame (to make a run last long enough to interrupt it).
    """

    def __init__(self, sigma: float = 1.0, min_distance: int = 3, threshold_rel: float = 0.02, num_peaks: int = 64,
                 delay_s: float = 0.0) -> None:
        self.sigma = sigma
        self.min_distance = min_distance
        self.threshold_rel = threshold_rel
        self.num_peaks = num_peaks
        self.delay_s = delay_s

    def params(self) -> dict:
        return {"sigma": self.sigma, "min_distance": self.min_distance, "threshold_rel": self.threshold_rel,
                "num_peaks": self.num_peaks, "delay_s": self.delay_s}

    def infer(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = ndi.gaussian_filter(frames.astype(np.float32), (0, self.sigma, self.sigma))
        size = 2 * self.min_distance + 1
        m = ndi.maximum_filter(s, size=(1, size, size), mode="constant", cval=-np.inf)
        if self.delay_s:
            time.sleep(self.delay_s * len(frames))
        return s, m

    def postprocess(self, raw: tuple[np.ndarray, np.ndarray], frames: np.ndarray) -> list[np.ndarray]:
        s, m = raw
        out = []
        for si, mi in zip(s, m):
            top = float(si.max())
            qx, qy = np.nonzero((si == mi) & (si >= self.threshold_rel * top) & (si > 0))
            inten = si[qx, qy]
            order = np.argsort(-inten, kind="stable")[: self.num_peaks]
            conf = inten[order] / top if top > 0 else inten[order]
            out.append(make_peaks(qx[order], qy[order], inten[order], conf))
        return out

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        return self.postprocess(self.infer(frames), frames)


class LocalMaximaDetectOnly:
    """The same finder exposing only ``detect`` (the minimal backend interface)."""

    def __init__(self, **params) -> None:
        self._inner = LocalMaxima(**params)

    def params(self) -> dict:
        return self._inner.params()

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        return self._inner.detect(frames)


class FailingBackend(LocalMaxima):
    """Raises ``ValueError`` on the batch that contains a frame whose maximum equals ``poison`` (or on any batch
    when ``poison`` is None)."""

    def __init__(self, poison: float | None = None, **params) -> None:
        super().__init__(**params)
        self.poison = poison

    def params(self) -> dict:
        return {**super().params(), "poison": self.poison}

    def infer(self, frames: np.ndarray):
        if self.poison is None or np.any(frames.reshape(len(frames), -1).max(1) == self.poison):
            raise ValueError("poisoned batch")
        return super().infer(frames)


def assert_same_peaks(result, reference) -> None:
    """Every position has exactly the reference table (same peaks, same order, same values)."""
    assert len(result.peaks) == len(reference)
    for k, (got, want) in enumerate(zip(result.peaks, reference)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want, err_msg=f"position {k}")
