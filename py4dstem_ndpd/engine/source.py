"""Where the patterns come from: in-memory arrays, Dask arrays and HDF5/EMD datasets read lazily.

Every source is a 4D scan ``(Rx, Ry, Qx, Qy)`` read by *flat* position ranges: positions ``start..stop-1`` in C
order of the scan (position ``(rx, ry)`` has flat index ``rx * Ry + ry``), so batches and chunks are plain
integer ranges. :class:`H5Source` is a small picklable description (file path + dataset path): a Dask worker
given one reads its own chunk from the file, the data never travels through the scheduler.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import InputError

log = logging.getLogger(__name__)

#: Number of HDF5 file openings in this process (lets tests check that Dask workers read their own chunk).
H5_OPEN_COUNT = 0
_H5_COUNT_LOCK = threading.Lock()


class ScanSource:
    """A 4D scan read by flat position ranges.

    Attributes
    ----------
    scan_shape : tuple of int
        ``(Rx, Ry)``.
    pattern_shape : tuple of int
        ``(Qx, Qy)``; ``qx`` is the detector row, ``qy`` the column.
    dtype : numpy.dtype
        dtype of the stored patterns.
    """

    scan_shape: tuple[int, int]
    pattern_shape: tuple[int, int]
    dtype: np.dtype

    @property
    def n_positions(self) -> int:
        """``Rx * Ry``."""
        return int(self.scan_shape[0] * self.scan_shape[1])

    def _read_block(self, rx: int, ry0: int, ry1: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _segments(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        if not 0 <= start <= stop <= self.n_positions:
            raise InputError(f"positions {start}..{stop} are outside the scan of {self.n_positions} positions")
        ry_n = self.scan_shape[1]
        segs = []
        pos = start
        while pos < stop:
            rx, ry0 = divmod(pos, ry_n)
            ry1 = min(ry_n, ry0 + (stop - pos))
            segs.append((rx, ry0, ry1))
            pos += ry1 - ry0
        return segs

    def read(self, start: int, stop: int) -> np.ndarray:
        """Patterns at flat positions ``start..stop-1``.

        Returns
        -------
        numpy.ndarray, shape (stop - start, Qx, Qy)
            In the stored dtype.
        """
        segs = self._segments(start, stop)
        if len(segs) == 1:
            return np.ascontiguousarray(self._read_block(*segs[0]))
        return np.concatenate([self._read_block(*s) for s in segs], axis=0)

    def fingerprint(self) -> dict[str, Any]:
        """Identity of the data for checkpoints: shapes, dtype and a hash of three patterns (first, middle, last).

        Content-based, so the same data read from a copied file or from memory has the same fingerprint.
        """
        n = self.n_positions
        h = hashlib.sha256()
        for i in sorted({0, n // 2, n - 1}):
            h.update(np.ascontiguousarray(self.read(i, i + 1)).tobytes())
        return {
            "scan_shape": list(self.scan_shape),
            "pattern_shape": list(self.pattern_shape),
            "dtype": str(np.dtype(self.dtype)),
            "sha256_sample": h.hexdigest(),
        }

    def close(self) -> None:
        """Release open files (no-op for in-memory sources)."""


def _check_shape(shape, what: str) -> tuple[tuple[int, int], tuple[int, int]]:
    if len(shape) != 4:
        raise InputError(
            f"{what} has shape {tuple(shape)}; expected a 4D scan (Rx, Ry, Qx, Qy). Reshape a stack of N patterns "
            "to (1, N, Qx, Qy), or give the 4D dataset of the file."
        )
    if min(shape) < 1:
        raise InputError(f"{what} has shape {tuple(shape)}: an empty scan has nothing to detect")
    return (int(shape[0]), int(shape[1])), (int(shape[2]), int(shape[3]))


def _check_dtype(dtype, what: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in "uif":
        raise InputError(f"{what} has dtype {dtype}; patterns must be real numbers (unsigned/signed int or float)")
    return dtype


class ArraySource(ScanSource):
    """An in-memory (or memory-mapped) 4D numpy array, or anything sliced like one (e.g. an open h5py dataset).

    Parameters
    ----------
    array : array_like, shape (Rx, Ry, Qx, Qy)
    """

    def __init__(self, array) -> None:
        if not hasattr(array, "shape") or not hasattr(array, "__getitem__"):
            array = np.asarray(array)
        self.array = array
        self.scan_shape, self.pattern_shape = _check_shape(array.shape, "the array")
        self.dtype = _check_dtype(array.dtype, "the array")

    def _read_block(self, rx: int, ry0: int, ry1: int) -> np.ndarray:
        return np.asarray(self.array[rx, ry0:ry1])


class DaskSource(ScanSource):
    """A 4D ``dask.array.Array``; each read computes only the slices it needs.

    Parameters
    ----------
    array : dask.array.Array, shape (Rx, Ry, Qx, Qy)
    """

    def __init__(self, array) -> None:
        self.array = array
        self.scan_shape, self.pattern_shape = _check_shape(array.shape, "the dask array")
        self.dtype = _check_dtype(array.dtype, "the dask array")

    def lazy(self, start: int, stop: int):
        """Dask array of the patterns at flat positions ``start..stop-1``, shape (n, Qx, Qy) (not computed)."""
        import dask.array as da

        blocks = [self.array[rx, a:b] for rx, a, b in self._segments(start, stop)]
        return blocks[0] if len(blocks) == 1 else da.concatenate(blocks, axis=0)

    def read(self, start: int, stop: int) -> np.ndarray:
        import dask

        # The synchronous scheduler: a read runs inside the engine's reader thread or a Dask task.
        return np.ascontiguousarray(dask.compute(self.lazy(start, stop), scheduler="sync")[0])


def _find_4d_dataset(f) -> str:
    """The dataset path of the 4D scan in an open HDF5/EMD file: the ``data`` of a py4DSTEM DataCube if there is
    one, else the 4D dataset (the largest, if several)."""
    import h5py

    datacubes: list[tuple[int, str]] = []
    four_d: list[tuple[int, str]] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and obj.attrs.get("python_class") == "DataCube" and "data" in obj:
            datacubes.append((obj["data"].size, obj["data"].name))
        elif isinstance(obj, h5py.Dataset) and obj.ndim == 4:
            four_d.append((obj.size, obj.name))

    f.visititems(visit)
    found = datacubes or four_d
    if not found:
        raise InputError(f"{f.filename} holds no 4D dataset; give H5Source(path, dataset='/path/to/4d/data')")
    if len(found) > 1:
        log.info("%s holds several 4D datasets; using the largest, %s", f.filename, max(found)[1])
    return max(found)[1]


class H5Source(ScanSource):
    """A 4D dataset of an HDF5 file (py4DSTEM/EMD files included), read lazily, chunk by chunk.

    Picklable: only the file path and the dataset path travel (to Dask workers, for example); the file is opened
    on first read in the process that reads.

    Parameters
    ----------
    path : str or path-like
        The HDF5/EMD file.
    dataset : str, optional
        Path of the 4D dataset ``(Rx, Ry, Qx, Qy)`` inside the file. Default: the ``data`` of the DataCube of a
        py4DSTEM EMD file, else the 4D dataset of the file (the largest, if several).

    Raises
    ------
    InputError
        The file is missing or unreadable, or the dataset cannot be found or is not a 4D real array.
    """

    def __init__(self, path: str | os.PathLike, dataset: str | None = None) -> None:
        import h5py

        self.path = str(Path(path).resolve())
        if not os.path.isfile(self.path):
            raise InputError(f"{self.path} does not exist; give the path of an HDF5/EMD file")
        try:
            with h5py.File(self.path, "r") as f:
                dataset = dataset or _find_4d_dataset(f)
                if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
                    raise InputError(f"{self.path} has no dataset {dataset!r}")
                ds = f[dataset]
                self.dataset = ds.name
                self.scan_shape, self.pattern_shape = _check_shape(ds.shape, f"{self.path}:{ds.name}")
                self.dtype = _check_dtype(ds.dtype, f"{self.path}:{ds.name}")
        except OSError as e:
            raise InputError(f"cannot read {self.path} as HDF5 ({e}); is it an HDF5/EMD file?") from e
        self._file = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"] = None
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"H5Source({self.path!r}, dataset={self.dataset!r})"

    def _ds(self):
        global H5_OPEN_COUNT
        import h5py

        with self._lock:
            if self._file is None:
                self._file = h5py.File(self.path, "r")
                with _H5_COUNT_LOCK:
                    H5_OPEN_COUNT += 1
            return self._file[self.dataset]

    def _read_block(self, rx: int, ry0: int, ry1: int) -> np.ndarray:
        return self._ds()[rx, ry0:ry1]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def as_source(data) -> ScanSource:
    """Wrap scan data as a :class:`ScanSource`.

    Parameters
    ----------
    data : ScanSource, numpy.ndarray, dask.array.Array, h5py.Dataset, py4DSTEM.DataCube, InputData, str or path
        A 4D scan ``(Rx, Ry, Qx, Qy)``. An HDF5/EMD file path is read lazily (:class:`H5Source`, the 4D dataset is
        found automatically); an open h5py dataset, or the ``InputData`` of an HDF5 file
        (:func:`py4dstem_ndpd.io.readers.load_input`), becomes an :class:`H5Source` of its file, so that Dask
        workers read it themselves; a ``DataCube`` gives its ``.data``.

    Returns
    -------
    ScanSource

    Raises
    ------
    InputError
        Unsupported type, not 4D, empty, or not real numbers.
    """
    if isinstance(data, ScanSource):
        return data
    if isinstance(data, (str, os.PathLike)):
        return H5Source(data)
    try:
        import h5py

        if isinstance(data, h5py.Dataset):
            return H5Source(data.file.filename, data.name)
    except ImportError:  # pragma: no cover - h5py is a dependency
        pass
    if type(data).__module__.startswith("dask.") and hasattr(data, "dask"):
        return DaskSource(data)
    if isinstance(data, np.ndarray):
        return ArraySource(data)
    if hasattr(data, "array") and hasattr(data, "dataset_path"):  # py4dstem_ndpd.io.readers.InputData
        if getattr(data, "path", None) and data.dataset_path:
            return H5Source(data.path, data.dataset_path)
        return as_source(data.array)
    if hasattr(data, "data") and hasattr(data, "calibration"):  # py4DSTEM DataCube, without importing py4DSTEM
        return as_source(data.data)
    raise InputError(
        f"cannot read patterns from a {type(data).__module__}.{type(data).__name__}; give a 4D numpy or dask "
        "array, a py4DSTEM DataCube, an h5py dataset, an HDF5/EMD file path, or an H5Source"
    )
