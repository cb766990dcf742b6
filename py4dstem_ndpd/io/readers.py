"""Open the data a user gives us as a lazily indexable 4D array plus its calibration.

Accepted: a ``py4DSTEM.DataCube``; a 4D numpy or dask array ``(Rx, Ry, Qx, Qy)``; a path to a py4DSTEM/EMD file,
a generic HDF5 file (``dataset_path=`` picks the dataset; otherwise the first 4D dataset) or a ``.npy`` file
(memory-mapped). Nothing is read into memory here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..calibration import Calibration
from ..exceptions import InputError

#: Smallest pattern side the detector accepts, px.
MIN_PATTERN_SIDE = 16


@dataclass
class InputData:
    """A 4D dataset ready to be read batch by batch.

    Attributes
    ----------
    array : numpy.ndarray, dask.array.Array or h5py.Dataset
        Shape (Rx, Ry, Qx, Qy).
    calibration : Calibration
    name : str
    path : str or None
        File the data comes from (lets Dask workers read their own chunks).
    dataset_path : str or None
        HDF5 path of the dataset inside ``path``.
    """

    array: object
    calibration: Calibration
    name: str = "datacube"
    path: str | None = None
    dataset_path: str | None = None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def scan_shape(self) -> tuple[int, int]:
        return self.shape[:2]

    @property
    def pattern_shape(self) -> tuple[int, int]:
        return self.shape[2:]


def validate_shape(shape, dtype) -> None:
    """Raise :class:`InputError` unless ``shape`` is a non-empty 4D scan of patterns the detector can take."""
    if len(shape) != 4:
        raise InputError(
            f"expected 4D data (Rx, Ry, Qx, Qy), got {len(shape)}D with shape {tuple(shape)}. For a single pattern "
            "use py4dstem_ndpd.detect_pattern; for a 3D stack (N, Qx, Qy) reshape it to (N, 1, Qx, Qy)."
        )
    if min(shape[:2]) < 1:
        raise InputError(f"the scan is empty: shape {tuple(shape)} has no positions.")
    if min(shape[2:]) < MIN_PATTERN_SIDE:
        raise InputError(
            f"patterns of {shape[2]}x{shape[3]} px are too small (the detector needs >= {MIN_PATTERN_SIDE} px a side)."
        )
    kind = np.dtype(dtype).kind
    if kind not in "uif":
        raise InputError(f"unsupported dtype {dtype}: use integer counts or floats.")


def _find_4d_dataset(f) -> str | None:
    found = []

    def visit(name, obj):
        import h5py

        if isinstance(obj, h5py.Dataset) and obj.ndim == 4:
            found.append((obj.size, name))

    f.visititems(visit)
    return max(found)[1] if found else None  # the largest 4D dataset (EMD files also hold small 4D arrays)


def load_input(data, *, dataset_path: str | None = None) -> InputData:
    """Wrap ``data`` as :class:`InputData` (lazily; see module docstring).

    Raises
    ------
    InputError
        Not 4D, empty, patterns too small, unsupported dtype, unreadable file or wrong dataset path.
    """
    if isinstance(data, (str, os.PathLike)):
        return _load_path(Path(data), dataset_path)
    if hasattr(data, "data") and hasattr(data, "calibration") and hasattr(data, "Rshape"):
        arr = data.data
        validate_shape(arr.shape, arr.dtype)
        return InputData(arr, Calibration.from_py4dstem(data.calibration), name=getattr(data, "name", "datacube"))
    if hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "ndim"):
        validate_shape(data.shape, data.dtype)
        return InputData(data, Calibration(q_pixel_units="pixels", r_pixel_units="pixels"))
    raise InputError(
        f"cannot read data of type {type(data).__name__}: give a py4DSTEM DataCube, a 4D numpy/dask array or a path."
    )


def _load_path(path: Path, dataset_path: str | None) -> InputData:
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r")
        except Exception as err:  # noqa: BLE001
            raise InputError(f"{path}: unreadable .npy file ({err}).") from None
        validate_shape(arr.shape, arr.dtype)
        return InputData(arr, Calibration(q_pixel_units="pixels", r_pixel_units="pixels"), name=path.stem, path=str(path))
    import h5py

    try:
        f = h5py.File(path, "r")
    except Exception as err:  # noqa: BLE001
        raise InputError(
            f"{path}: not a readable HDF5/EMD file ({type(err).__name__}: {err}). Is it complete (not truncated)?"
        ) from None
    if dataset_path is None:
        dataset_path = _find_4d_dataset(f)
        if dataset_path is None:
            f.close()
            raise InputError(f"{path}: no 4D dataset found; pass dataset_path= (CLI: --dataset) to name it.")
    elif dataset_path not in f:
        f.close()
        raise InputError(f"{path}: no dataset {dataset_path!r}; list its contents with `h5ls -r {path}`.")
    arr = f[dataset_path]
    validate_shape(arr.shape, arr.dtype)
    cal = _emd_calibration(path)
    return InputData(arr, cal, name=path.stem, path=str(path), dataset_path=dataset_path)


def _emd_calibration(path: Path) -> Calibration:
    """Calibration of a py4DSTEM EMD file, or pixel units when there is none."""
    try:
        import py4DSTEM

        dc = py4DSTEM.read(str(path), mem="MEMMAP")
        if hasattr(dc, "calibration"):
            return Calibration.from_py4dstem(dc.calibration)
    except Exception:  # noqa: BLE001 - generic HDF5 files have no py4DSTEM calibration
        pass
    return Calibration(q_pixel_units="pixels", r_pixel_units="pixels")
