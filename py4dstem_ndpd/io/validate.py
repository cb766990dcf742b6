"""Checks on pattern batches before they reach torch: clear errors instead of deep tracebacks.

What is refused and what is accepted (documented in ``docs/input-formats.md``):

* NaN or Inf values: :class:`InputError` naming the first bad pattern (the normalisation would spread them over
  the whole pattern and the network would return nonsense).
* float64 values beyond the float32 range (|x| > 3.4e38): :class:`InputError` (inference runs in float32).
* Negative values are **accepted**, with one logged warning per process. Dark- and gain-corrected data (EMPAD,
  background-subtracted frames) legitimately hold small negative noise around 0, and refusing them would force
  every EMPAD user to preprocess. Detection treats them as 0: the normalisation used in training and inference
  clips at 0 (``detect/preprocess.py``), so that is what the network has always seen. The ``intensity`` of a disk
  sums the stored values, negatives included (for dark-subtracted data clipping would bias the sums upwards). The
  warning is there for the case where negatives mean a real problem (unsigned counts read as signed integers).
* All-zero patterns are valid and give no peaks; saturated pixels (the dtype's maximum) are ordinary counts.
"""
from __future__ import annotations

import logging

import numpy as np

from ..exceptions import InputError

logger = logging.getLogger(__name__)

#: Largest magnitude the float32 inference can represent.
FLOAT32_MAX = float(np.finfo(np.float32).max)

_warned_negative = False


def check_frames(frames: np.ndarray, *, first_index: int | None = None) -> None:
    """Raise :class:`InputError` for data the detector cannot process; warn (once) about negative values.

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy)
        A batch of patterns in their stored dtype.
    first_index : int, optional
        Flat scan index of ``frames[0]``, used in messages (without it they give the index in the batch).

    Raises
    ------
    InputError
        Not real numbers (complex, bool, object...), NaN or Inf, or float values beyond the float32 range.
    """
    global _warned_negative
    frames = np.asarray(frames)
    if frames.dtype.kind not in "uif":
        raise InputError(
            f"unsupported dtype {frames.dtype}: patterns must be real numbers (unsigned/signed integer counts or "
            "floats); convert them first, e.g. data.astype(np.float32)."
        )
    if frames.size == 0:
        return
    flat = frames.reshape(len(frames), -1)
    if frames.dtype.kind == "f":
        finite = np.isfinite(flat).all(1)
        if not finite.all():
            raise InputError(
                f"{_which(int(np.argmin(finite)), first_index)} contains NaN or Inf values; replace them "
                "(e.g. np.nan_to_num(data, nan=0, posinf=0), or dask.array.nan_to_num for a file opened with "
                "py4dstem_ndpd.io.readers.load_input) or mask those pixels before detection."
            )
        if frames.dtype.itemsize > 4:
            big = np.abs(flat).max(1) > FLOAT32_MAX
            if big.any():
                raise InputError(
                    f"{_which(int(np.argmax(big)), first_index)} holds values beyond the float32 range "
                    "(|x| > 3.4e38), which the detector computes in; rescale the data (e.g. divide by its maximum) "
                    "before detection."
                )
    if frames.dtype.kind in "if" and not _warned_negative and flat.min() < 0:
        _warned_negative = True
        hint = (" If these are unsigned counts read as signed integers, reinterpret them (e.g. data.view(np.uint16))."
                if frames.dtype.kind == "i" else "")
        logger.warning("data contain negative values: detection treats them as 0 counts, disk intensities sum the "
                       "stored values (fine for dark-subtracted data).%s", hint)


def _which(k: int, first_index: int | None) -> str:
    if first_index is None:
        return f"a pattern (number {k} of its batch)"
    return f"pattern {first_index + k} (flat scan index)"
