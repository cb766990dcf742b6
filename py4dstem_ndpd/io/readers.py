"""Open the data a user gives us as a lazily indexable 4D array plus its calibration.

Accepted (see ``docs/input-formats.md``):

* a ``py4DSTEM.DataCube``; a 4D numpy or dask array ``(Rx, Ry, Qx, Qy)``; an :class:`InputData` (returned as is);
* a 3D stack ``(N, Qx, Qy)`` with ``scan_shape=(Rx, Ry)``;
* a file path: py4DSTEM/EMD and generic HDF5 (``dataset_path=`` picks the dataset), ``.npy`` (memory-mapped),
  Dectris/Arina HDF5 master files (bitshuffle/LZ4 through ``hdf5plugin``), and through the optional
  ``rosettasciio`` (``pip install 'py4dstem-ndpd[formats]'``) Merlin ``.mib``, EMPAD ``.xml``/``.raw`` and
  Gatan ``.dm3``/``.dm4``. The format is recognised from the file's content, not only its name
  (:mod:`py4dstem_ndpd.io.formats`).

Nothing is read into memory here: ``InputData.array`` is a numpy memmap, an ``h5py.Dataset``, a dask array or a
:class:`~py4dstem_ndpd.io.formats.StackSource`, read batch by batch by the engine. :func:`to_numpy` and
:func:`to_datacube` materialise a scan, and refuse with :class:`InputError` when it would not fit in memory.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..calibration import Calibration
from ..exceptions import InputError

logger = logging.getLogger(__name__)

#: Smallest pattern side the detector accepts, px.
MIN_PATTERN_SIDE = 16

#: Calibration of data that carry none: sizes of 1 pixel.
PIXELS = Calibration(q_pixel_units="pixels", r_pixel_units="pixels")


@dataclass
class InputData:
    """A 4D dataset ready to be read batch by batch.

    Attributes
    ----------
    array : numpy.ndarray, numpy.memmap, dask.array.Array, h5py.Dataset or StackSource
        Shape (Rx, Ry, Qx, Qy), C order of the scan (``rx`` slow, ``ry`` fast); ``qx`` is the detector row.
    calibration : Calibration
        Pixel sizes read from the data (pixels when it has none).
    name : str
    path : str or None
        File the data comes from.
    dataset_path : str or None
        HDF5 path of ``array`` inside ``path``, set only when ``array`` is that 4D dataset as stored (so that Dask
        workers can reopen it and read their own chunks).
    format : str
        Key of :data:`py4dstem_ndpd.io.formats.FORMATS` (``"array"`` and ``"datacube"`` for in-memory data).
    """

    array: object
    calibration: Calibration
    name: str = "datacube"
    path: str | None = None
    dataset_path: str | None = None
    format: str = "array"

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(Rx, Ry, Qx, Qy)``."""
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def scan_shape(self) -> tuple[int, int]:
        """``(Rx, Ry)``."""
        return self.shape[:2]

    @property
    def pattern_shape(self) -> tuple[int, int]:
        """``(Qx, Qy)``."""
        return self.shape[2:]

    @property
    def dtype(self) -> np.dtype:
        """dtype of the stored patterns."""
        return np.dtype(self.array.dtype)

    @property
    def nbytes(self) -> int:
        """Bytes the whole scan takes in memory in its stored dtype."""
        return int(math.prod(self.shape)) * self.dtype.itemsize


def validate_shape(shape, dtype) -> None:
    """Raise :class:`InputError` unless ``shape`` is a non-empty 4D scan of patterns the detector can take.

    Parameters
    ----------
    shape : tuple of int
        ``(Rx, Ry, Qx, Qy)``.
    dtype : numpy dtype
        Must be unsigned/signed integer or float.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise InputError(
            f"expected 4D data (Rx, Ry, Qx, Qy), got {len(shape)}D with shape {shape}. For a single pattern "
            "use py4dstem_ndpd.detect_pattern; for a 3D stack (N, Qx, Qy) pass scan_shape=(Rx, Ry) to load_input "
            "(CLI: --scan-shape RX RY) or reshape it to (Rx, Ry, Qx, Qy)."
        )
    if min(shape[:2]) < 1:
        raise InputError(f"the scan is empty: shape {shape} has no positions; give a scan with at least one pattern.")
    if min(shape[2:]) < MIN_PATTERN_SIDE:
        raise InputError(
            f"patterns of {shape[2]}x{shape[3]} px are too small (the detector needs >= {MIN_PATTERN_SIDE} px a "
            "side); check the axis order is (Rx, Ry, Qx, Qy) and that the data are not binned too far."
        )
    validate_dtype(dtype)


def validate_dtype(dtype) -> None:
    """Raise :class:`InputError` unless ``dtype`` is unsigned/signed integer or float."""
    if np.dtype(dtype).kind not in "uif":
        raise InputError(
            f"unsupported dtype {np.dtype(dtype)}: patterns must be real numbers (unsigned/signed integer counts or "
            "floats); convert them, e.g. data.astype(np.float32) for booleans or np.abs(data) for complex values."
        )


def _check_scan_shape(scan_shape) -> tuple[int, int] | None:
    if scan_shape is None:
        return None
    try:
        rx, ry = (int(s) for s in scan_shape)
    except (TypeError, ValueError):
        raise InputError(f"scan_shape must be two integers (Rx, Ry), got {scan_shape!r}.") from None
    if rx < 1 or ry < 1:
        raise InputError(f"scan_shape must be two positive integers (Rx, Ry), got {scan_shape!r}.")
    return rx, ry


def reshape_scan(array, scan_shape, what: str = "the data"):
    """View a 3D stack ``(N, Qx, Qy)`` (or a 4D scan) as ``scan_shape + (Qx, Qy)`` without copying.

    Parameters
    ----------
    array : numpy or dask array, 3D or 4D
    scan_shape : (int, int) or None
        ``(Rx, Ry)``; ``Rx * Ry`` must equal the number of patterns. ``None`` returns ``array`` unchanged.
    what : str
        Names the data in error messages.

    Raises
    ------
    InputError
        The number of patterns does not match ``scan_shape``.
    """
    scan_shape = _check_scan_shape(scan_shape)
    if scan_shape is None or array.ndim not in (3, 4):
        return array
    n = int(math.prod(array.shape[:-2]))
    if n != scan_shape[0] * scan_shape[1]:
        raise InputError(
            f"{what} holds {n} patterns (shape {tuple(array.shape)}) but scan_shape {scan_shape} needs "
            f"{scan_shape[0] * scan_shape[1]}; give the scan shape the data was recorded with."
        )
    return array.reshape(scan_shape + tuple(array.shape[-2:]))


def load_input(data, *, dataset_path: str | None = None, scan_shape: tuple[int, int] | None = None) -> InputData:
    """Wrap ``data`` as :class:`InputData`, lazily (see the module docstring for what is accepted).

    Parameters
    ----------
    data : py4DSTEM.DataCube, numpy/dask array, InputData, str or path-like
    dataset_path : str, optional
        HDF5 dataset path inside a generic HDF5 file (default: the DataCube of a py4DSTEM file, else the largest
        4D dataset).
    scan_shape : (int, int), optional
        ``(Rx, Ry)`` for a 3D stack of patterns ``(N, Qx, Qy)`` or for files that do not record the scan shape
        (Merlin without ``.hdr``, Dectris/Arina: default square).

    Returns
    -------
    InputData

    Raises
    ------
    InputError
        Not 4D, empty, patterns too small, unsupported dtype, invalid calibration, unreadable or unrecognised
        file, wrong dataset path, missing optional reader.

    Examples
    --------
    >>> import numpy as np
    >>> from py4dstem_ndpd.io.readers import load_input
    >>> load_input(np.zeros((2, 3, 32, 32), np.uint16)).scan_shape
    (2, 3)
    >>> load_input(np.zeros((6, 32, 32), np.uint16), scan_shape=(2, 3)).shape
    (2, 3, 32, 32)
    """
    if isinstance(data, InputData):
        if scan_shape is not None and tuple(scan_shape) != data.scan_shape:
            raise InputError(f"the InputData already has scan shape {data.scan_shape}; load it again with "
                             f"scan_shape={tuple(scan_shape)}.")
        return data
    if isinstance(data, (str, os.PathLike)):
        from .formats import open_path

        return open_path(Path(data), dataset_path=dataset_path, scan_shape=scan_shape)
    if hasattr(data, "data") and hasattr(data, "calibration") and hasattr(data, "Rshape"):  # py4DSTEM.DataCube
        arr = reshape_scan(data.data, scan_shape, "the DataCube")
        validate_shape(arr.shape, arr.dtype)
        return InputData(arr, Calibration.from_py4dstem(data.calibration), name=getattr(data, "name", "datacube"),
                         format="datacube")
    if hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "ndim"):
        arr = reshape_scan(data, scan_shape, "the array")
        validate_shape(arr.shape, arr.dtype)
        return InputData(arr, PIXELS)
    raise InputError(
        f"cannot read data of type {type(data).__module__}.{type(data).__name__}: give a py4DSTEM DataCube, a 4D "
        "numpy/dask array or a file path (see docs/input-formats.md)."
    )


# -- materialising ------------------------------------------------------------------------------------------------
def available_memory() -> int:
    """Bytes of memory this process can still allocate: ``psutil.virtual_memory().available``, capped by the
    cgroup (container) limit when there is one."""
    avail = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except ImportError:  # psutil is optional; /proc or sysconf give the same on Linux
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            avail = None
    cg = Path("/sys/fs/cgroup")
    try:
        limit = (cg / "memory.max").read_text().strip()
        if limit != "max":
            left = int(limit) - int((cg / "memory.current").read_text().strip())
            avail = left if avail is None else min(avail, left)
    except (OSError, ValueError):
        pass
    return int(avail) if avail is not None else 2**63 - 1


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def to_numpy(inp: InputData, *, max_bytes: int | None = None) -> np.ndarray:
    """Read the whole scan into memory (for code that needs a numpy array, e.g. a py4DSTEM DataCube).

    In-memory numpy arrays are returned as they are (no copy).

    Parameters
    ----------
    inp : InputData
    max_bytes : int, optional
        Refuse to read more than this; default :func:`available_memory`.

    Returns
    -------
    numpy.ndarray, shape (Rx, Ry, Qx, Qy), stored dtype

    Raises
    ------
    InputError
        The scan does not fit: the message gives the sizes and suggests ``ndpd detect`` / ``find_Bragg_disks``,
        which stream the file batch by batch.
    """
    arr = inp.array
    if type(arr) is np.ndarray:
        return arr
    limit = available_memory() if max_bytes is None else int(max_bytes)
    if inp.nbytes > limit:
        raise InputError(
            f"{inp.path or inp.name}: the scan {inp.shape} {inp.dtype} needs {_fmt_bytes(inp.nbytes)} in memory but "
            f"only {_fmt_bytes(limit)} is available. Detect without loading it: `ndpd detect FILE -o OUT` or "
            "py4dstem_ndpd.find_Bragg_disks(path) stream it batch by batch; or crop/bin the scan first."
        )
    try:
        if hasattr(arr, "dask"):
            import dask

            out = dask.compute(arr, scheduler="threads")[0]
        elif hasattr(arr, "read") and hasattr(arr, "n_positions"):  # StackSource / ScanSource
            out = arr.read(0, arr.n_positions).reshape(inp.shape)
        else:
            out = arr[()]
    except MemoryError:
        raise InputError(f"{inp.path or inp.name}: out of memory while reading {_fmt_bytes(inp.nbytes)}; use "
                         "`ndpd detect` or find_Bragg_disks(path), which stream the data.") from None
    except OSError as err:
        raise InputError(f"{inp.path or inp.name}: cannot read the data ({err}); the file may be truncated or "
                         "corrupt.") from None
    return np.asarray(out)


def to_datacube(inp: InputData, *, max_bytes: int | None = None):
    """A calibrated ``py4DSTEM.DataCube`` of ``inp``, read into memory by :func:`to_numpy` (same checks)."""
    import py4DSTEM

    dc = py4DSTEM.DataCube(data=to_numpy(inp, max_bytes=max_bytes))
    inp.calibration.apply_to(dc.calibration)
    return dc
