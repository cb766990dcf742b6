"""The backend interface: what the engine (sync, async, Dask) runs on batches of patterns.

A backend is a small class with one batch method, ``detect(frames) -> list[np.ndarray]`` (one
:data:`~py4dstem_ndpd.peaks.PEAK_DTYPE` table per frame, native pixel coordinates), and can be rebuilt from
its parameters: ``type(b)(**b.params())``. A Dask worker therefore builds its own copy and loads the weights
once; a torch model never travels inside the task graph.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """Detects disks in a batch of patterns."""

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """Peaks of each frame.

        Parameters
        ----------
        frames : ndarray, shape (N, Qx, Qy)
            Patterns (any real dtype).

        Returns
        -------
        list of ndarray
            ``N`` tables of PEAK_DTYPE (qx row, qy column in px; intensity; confidence).
        """

    def params(self) -> dict[str, Any]:
        """Picklable constructor arguments: ``type(self)(**self.params())`` rebuilds an equivalent backend."""
