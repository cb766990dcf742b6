"""Checks on pattern batches before they reach torch (clear errors instead of deep tracebacks)."""
from __future__ import annotations

import logging

import numpy as np

from ..exceptions import InputError

logger = logging.getLogger(__name__)
_warned_negative = False


def check_frames(frames: np.ndarray, *, first_index: int = 0) -> None:
    """Raise :class:`InputError` for NaN/Inf or non-numeric data in a batch ``(N, Qx, Qy)``.

    Negative values (dark-subtracted data) are accepted: the normalisation clips them to 0 (logged once).
    All-zero patterns are valid and give no peaks.

    Parameters
    ----------
    frames : ndarray (N, Qx, Qy)
    first_index : int
        Flat scan index of ``frames[0]``, used in the message.
    """
    global _warned_negative
    if frames.dtype.kind not in "uif":
        raise InputError(f"unsupported dtype {frames.dtype}: use integer counts or floats.")
    if frames.dtype.kind == "f":
        finite = np.isfinite(frames.reshape(len(frames), -1)).all(1)
        if not finite.all():
            bad = first_index + int(np.argmin(finite))
            raise InputError(
                f"pattern {bad} (flat scan index) contains NaN or Inf values; replace them "
                "(e.g. np.nan_to_num(data, nan=0, posinf=0)) or mask those pixels before detection."
            )
    if frames.dtype.kind in "if" and not _warned_negative and frames.size and frames.min() < 0:
        _warned_negative = True
        logger.warning("data contain negative values; they are treated as 0 counts")
