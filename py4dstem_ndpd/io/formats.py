"""File formats: which reader opens which file, lazily, with the calibration the file records.

:func:`open_path` recognises a file from its first bytes (and its name where the content is not enough) and
returns :class:`~py4dstem_ndpd.io.readers.InputData` without reading the patterns: ``.npy`` files are
memory-mapped, HDF5 datasets stay on disk (``h5py``), Dectris/Arina stacks become a :class:`StackSource` read by
flat position ranges, and the detector formats read by ``rosettasciio`` (optional: ``pip install
'py4dstem-ndpd[formats]'``) are dask arrays over memory maps (``lazy=True``). :data:`FORMATS` is the table shown in
``docs/input-formats.md``.

Orientation: arrays keep the axis order of the file, ``(Rx, Ry, Qx, Qy)`` with ``rx`` the slow scan axis and ``qx``
the detector row, like ``py4DSTEM.import_file``. (rosettasciio flips Merlin frames upside down; we undo that so
that a ``.mib`` file gives the same array here as in py4DSTEM.)
"""
from __future__ import annotations

import importlib
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..calibration import Calibration
from ..engine.source import ScanSource
from ..exceptions import InputError
from .readers import PIXELS, InputData, _check_scan_shape, reshape_scan, validate_dtype, validate_shape

logger = logging.getLogger(__name__)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NPY_SIGNATURE = b"\x93NUMPY"
MIB_SIGNATURE = b"MQ1,"


@dataclass(frozen=True)
class FileFormat:
    """One readable file format.

    Attributes
    ----------
    name : str
        What users call it.
    suffixes : tuple of str
        Usual file name endings (the content decides, see :func:`sniff_format`).
    reading : str
        How it is read lazily.
    calibration : str
        What calibration is taken from the file.
    needs : str or None
        Optional package needed (``None``: core dependencies only).
    """

    name: str
    suffixes: tuple[str, ...]
    reading: str
    calibration: str
    needs: str | None = None


#: Readable formats by key (``InputData.format``).
FORMATS: dict[str, FileFormat] = {
    "emd": FileFormat("py4DSTEM / EMD 1.0 (HDF5)", (".h5", ".hdf5", ".emd"), "h5py dataset, batch by batch",
                      "Q and R pixel sizes and units of the file's py4DSTEM Calibration"),
    "hdf5": FileFormat("generic HDF5 (4D dataset, or 3D stack + scan_shape)", (".h5", ".hdf5", ".nxs"),
                       "h5py dataset, batch by batch; dataset_path= / --dataset picks it", "none (pixels)"),
    "dectris": FileFormat("Dectris Arina / Eiger HDF5 master file (+ linked data files)", ("_master.h5",),
                          "h5py + hdf5plugin (bitshuffle/LZ4), frame ranges; flagged pixels (pixel_mask) read as 0",
                          "R from the Arina '<name>.h5' STEM metadata; Q from x_pixel_size, detector_distance and "
                          "incident_wavelength when the master has all three", "hdf5plugin"),
    "npy": FileFormat("NumPy .npy (4D, or 3D + scan_shape)", (".npy",), "numpy memory map", "none (pixels)"),
    "mib": FileFormat("Quantum Detectors Merlin .mib (+ .hdr)", (".mib",), "rosettasciio lazy (memory map)",
                      "none (pixels); scan shape from the .hdr, else frame timestamps, or scan_shape",
                      "rosettasciio"),
    "empad": FileFormat("EMPAD .xml + .raw", (".xml", ".raw"), "rosettasciio lazy (memory map)",
                        "Q and R pixel sizes from the XML when it records them", "rosettasciio"),
    "dm": FileFormat("Gatan DigitalMicrograph .dm3 / .dm4", (".dm3", ".dm4"), "rosettasciio lazy (memory map)",
                     "Q and R pixel sizes and units of the image's calibration", "rosettasciio"),
}


def _positive_finite(v) -> bool:
    """True for a finite number > 0 (a usable pixel size)."""
    try:
        return math.isfinite(float(v)) and float(v) > 0
    except (TypeError, ValueError):
        return False


def _supported() -> str:
    return "; ".join(f"{f.name}" for f in FORMATS.values())


# -- recognising a file --------------------------------------------------------------------------------------------
def _empad_xml_for(raw: Path) -> Path | None:
    """The EMPAD XML next to ``raw`` that names it (or has its stem)."""
    same = raw.with_suffix(".xml")
    if same.is_file():
        return same
    for xml in sorted(raw.parent.glob("*.xml")):
        try:
            if raw.name.encode() in xml.read_bytes()[:65536]:
                return xml
        except OSError:
            continue
    return None


def sniff_format(path: str | Path) -> str:
    """Key of :data:`FORMATS` for ``path``, from its first bytes (and its name for DM and EMPAD files).

    HDF5 files give ``"hdf5"`` here; :func:`open_path` tells py4DSTEM/EMD and Dectris files apart by their layout.

    Raises
    ------
    InputError
        Missing file, a directory, or a format we do not read (e.g. a text file).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path} is a directory; give the data file inside it (see docs/input-formats.md).")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as err:
        raise InputError(f"{path}: cannot open it ({err.strerror or err}); check the path and its permissions.") \
            from None
    suffix = path.suffix.lower()
    if head.startswith(NPY_SIGNATURE):
        return "npy"
    import h5py

    if head.startswith(HDF5_SIGNATURE) or h5py.is_hdf5(str(path)):  # the signature may follow a user block
        return "hdf5"
    if head.startswith(MIB_SIGNATURE):
        return "mib"
    if suffix in (".dm3", ".dm4") and len(head) >= 4 and int.from_bytes(head[:4], "big") in (3, 4):
        return "dm"
    if suffix == ".xml" and b"<" in head:
        return "empad"
    if suffix == ".raw" and _empad_xml_for(path) is not None:
        return "empad"
    if not head:
        raise InputError(f"{path} is empty (0 bytes); was the acquisition or the copy interrupted?")
    raise InputError(
        f"{path}: not a file format ndpd reads. Supported: {_supported()}. Convert the data, or load it "
        "yourself and pass a 4D numpy/dask array (see docs/input-formats.md)."
    )


def open_path(path: str | Path, *, dataset_path: str | None = None,
              scan_shape: tuple[int, int] | None = None) -> InputData:
    """Open a data file lazily (see the module docstring).

    Parameters
    ----------
    path : str or path-like
    dataset_path : str, optional
        HDF5 files only: the dataset to read.
    scan_shape : (int, int), optional
        ``(Rx, Ry)`` for 3D stacks and files that do not record the scan shape.

    Returns
    -------
    InputData

    Raises
    ------
    InputError
        See :func:`sniff_format`, plus unreadable content, wrong dataset path, bad calibration, missing optional
        package.
    """
    path = Path(path)
    scan_shape = _check_scan_shape(scan_shape)
    kind = sniff_format(path)
    if dataset_path is not None and kind != "hdf5":
        raise InputError(f"{path} is not an HDF5 file, so dataset_path={dataset_path!r} (--dataset) does not apply; "
                         "leave it out.")
    if kind == "npy":
        return read_npy(path, scan_shape)
    if kind == "hdf5":
        return read_hdf5(path, dataset_path, scan_shape)
    return {"mib": read_mib, "empad": read_empad, "dm": read_dm}[kind](path, scan_shape)


# -- calibration ---------------------------------------------------------------------------------------------------
_Q_TO_INV_ANGSTROM = {"1/a": 1.0, "a^-1": 1.0, "a-1": 1.0, "1/å": 1.0, "å^-1": 1.0, "å-1": 1.0, "1/nm": 0.1,
                      "nm^-1": 0.1, "nm-1": 0.1, "1/pm": 100.0, "pm^-1": 100.0, "1/m": 1e-10, "m^-1": 1e-10}
_R_TO_NM = {"nm": 1.0, "a": 0.1, "å": 0.1, "pm": 1e-3, "um": 1e3, "µm": 1e3, "μm": 1e3, "m": 1e9}
_NO_UNITS = {"", "px", "pixel", "pixels", "1", "<undefined>", "none", "t", "f"}


def _unit_key(units) -> str:
    if isinstance(units, bytes):
        units = units.decode(errors="replace")
    return "" if units is None else str(units).strip().lower().replace(" ", "")


def calibration_from_scales(q_scale, q_units, r_scale, r_units, where: str) -> Calibration:
    """Calibration from per-pixel scales and units as files record them.

    Q sizes in 1/nm, 1/pm, 1/m or 1/Å become 1/Å (``"A^-1"``); ``mrad`` is kept. R sizes in Å, pm, nm, µm or m
    become nm. Missing or unknown units give pixels (unknown ones are logged).

    Raises
    ------
    InputError
        A pixel size is not a finite positive number.
    """
    for what, v in (("detector (Q) pixel size", q_scale), ("scan step (R pixel size)", r_scale)):
        if not _positive_finite(v):
            raise InputError(
                f"{where}: the file's {what} is {v!r}; it must be a finite positive number. Fix the calibration in "
                "the file, or load the data as an array and set it on a py4DSTEM DataCube "
                "(datacube.calibration.set_Q_pixel_size / set_R_pixel_size)."
            )
    q_scale, r_scale = float(q_scale), float(r_scale)
    qk, rk = _unit_key(q_units), _unit_key(r_units)
    if qk in _Q_TO_INV_ANGSTROM:
        q, qu = q_scale * _Q_TO_INV_ANGSTROM[qk], "A^-1"
    elif qk == "mrad":
        q, qu = q_scale, "mrad"
    else:
        if qk not in _NO_UNITS:
            logger.warning("%s: detector units %r not understood; using pixels", where, q_units)
        q, qu = 1.0, "pixels"
    if rk in _R_TO_NM:
        r, ru = r_scale * _R_TO_NM[rk], "nm"
    else:
        if rk not in _NO_UNITS:
            logger.warning("%s: scan units %r not understood; using pixels", where, r_units)
        r, ru = 1.0, "pixels"
    return Calibration(q_pixel_size=q, r_pixel_size=r, q_pixel_units=qu, r_pixel_units=ru)


def _calibration_from_axes(axes: list[dict], ndim: int, where: str) -> Calibration:
    """Calibration of a rosettasciio signal dictionary's axes (array axes 0, 1 = scan, 2, 3 = detector)."""
    by_index = {}
    for i, ax in enumerate(axes):
        by_index[int(ax.get("index_in_array", i))] = ax
    if ndim != 4 or sorted(by_index) != [0, 1, 2, 3]:
        return PIXELS
    qx, qy, rx = by_index[2], by_index[3], by_index[0]
    qs, qys = qx.get("scale", 1.0), qy.get("scale", 1.0)
    try:
        if math.isfinite(float(qs)) and math.isfinite(float(qys)) and not math.isclose(float(qs), float(qys),
                                                                                         rel_tol=1e-4):
            logger.warning("%s: detector pixels are not square (%g x %g %s); using %g", where, qs, qys,
                           qx.get("units"), qs)
    except (TypeError, ValueError):
        pass
    return calibration_from_scales(qs, qx.get("units"), rx.get("scale", 1.0), rx.get("units"), where)


def _read_scalar(group, name):
    if name not in group:
        return None
    v = group[name][()]
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        v = v.reshape(-1)[0] if v.size else None
    if isinstance(v, (np.bytes_, bytes)):
        return bytes(v).decode(errors="replace")
    return v.item() if hasattr(v, "item") else v


def emd_calibration(f, dataset_path: str, where: str) -> Calibration:
    """Calibration stored in a py4DSTEM EMD file for the dataset at ``dataset_path``, or pixels.

    Reads the ``Calibration`` metadata of the dataset's EMD root with h5py (the patterns are not read).

    Raises
    ------
    InputError
        The file's calibration holds a pixel size that is not a finite positive number.
    """
    import h5py

    root = "/" + dataset_path.strip("/").split("/")[0]
    found: list[str] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and obj.attrs.get("python_class") in ("Calibration", b"Calibration"):
            found.append(name)

    if root in f and isinstance(f[root], h5py.Group):
        f[root].visititems(visit)
        found = [f"{root}/{n}" for n in found]
    if not found:
        return PIXELS
    g = f[sorted(found, key=len)[0]]
    qs, rs = _read_scalar(g, "Q_pixel_size"), _read_scalar(g, "R_pixel_size")
    qu, ru = _read_scalar(g, "Q_pixel_units"), _read_scalar(g, "R_pixel_units")
    for what, v in (("Q_pixel_size", qs), ("R_pixel_size", rs)):
        if v is None:
            continue
        if not _positive_finite(v):
            raise InputError(
                f"{where}: the file's calibration has {what} = {v!r}; it must be a finite positive number. Fix it: "
                "dc = py4DSTEM.read(path); dc.calibration.set_Q_pixel_size(...) / set_R_pixel_size(...); "
                "py4DSTEM.save(new_path, dc)."
            )
    return Calibration(q_pixel_size=float(qs) if qs is not None else 1.0,
                       r_pixel_size=float(rs) if rs is not None else 1.0,
                       q_pixel_units=str(qu) if qu is not None else "pixels",
                       r_pixel_units=str(ru) if ru is not None else "pixels")


# -- checks --------------------------------------------------------------------------------------------------------
def _import_hdf5plugin() -> bool:
    try:
        import hdf5plugin  # noqa: F401 - registers bitshuffle/LZ4/Blosc/Zstd filters with h5py
    except ImportError:
        return False
    return True


def _check_filters(ds, where: str) -> None:
    """Raise :class:`InputError` if the dataset is compressed with an HDF5 filter that is not available."""
    import h5py

    plist = ds.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code, _flags, _values, name = plist.get_filter(i)
        if not h5py.h5z.filter_avail(code):
            label = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            raise InputError(
                f"{where} is compressed with HDF5 filter {code} ({label}), which is not installed; "
                "`pip install hdf5plugin` (bitshuffle, LZ4, Blosc, Zstd...) and try again."
            )


def _probe(read_one, where: str) -> None:
    """Read the first and the last pattern now, so a truncated or corrupt file fails here with a clear message
    instead of in the middle of a run."""
    try:
        read_one(0)
        read_one(-1)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - h5py/numpy/dask raise many types for a damaged file
        raise InputError(
            f"{where}: cannot read its patterns ({type(err).__name__}: {err}). The file is probably truncated "
            "(an interrupted acquisition or copy) or corrupt; copy it again or re-export it."
        ) from None


# -- .npy ----------------------------------------------------------------------------------------------------------
def read_npy(path: Path, scan_shape: tuple[int, int] | None = None) -> InputData:
    """A ``.npy`` file, memory-mapped (4D, or 3D with ``scan_shape``)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - numpy raises ValueError/OSError/EOFError for damaged files
        raise InputError(f"{path}: unreadable .npy file ({type(err).__name__}: {err}); is it complete (not "
                         "truncated)?") from None
    arr = reshape_scan(arr, scan_shape, str(path))
    validate_shape(arr.shape, arr.dtype)
    return InputData(arr, PIXELS, name=path.stem, path=str(path), format="npy")


# -- HDF5 (py4DSTEM/EMD, generic, Dectris) -------------------------------------------------------------------------
def _datasets(f, ndim: int | None = None) -> list[tuple[int, str, tuple]]:
    import h5py

    out = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and (ndim is None or obj.ndim == ndim):
            out.append((int(obj.size), "/" + name, obj.shape))

    f.visititems(visit)
    return out


def _find_scan_dataset(f) -> str | None:
    """The ``data`` of a py4DSTEM DataCube if there is one, else the largest 4D dataset."""
    import h5py

    cubes: list[tuple[int, str]] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and obj.attrs.get("python_class") in ("DataCube", b"DataCube") \
                and isinstance(obj.get("data"), h5py.Dataset):
            cubes.append((int(obj["data"].size), obj["data"].name))

    f.visititems(visit)
    found = cubes or [(s, n) for s, n, _ in _datasets(f, 4)]
    return max(found)[1] if found else None


def _is_dectris(f) -> bool:
    import h5py

    g = f.get("entry/data", getlink=False) if "entry" in f else None
    if not isinstance(g, h5py.Group):
        return False
    names = [k for k in g.keys() if k.startswith("data_")]
    return bool(names)


def _list_datasets(f, limit: int = 8) -> str:
    ds = sorted(_datasets(f), key=lambda t: -t[0])[:limit]
    return ", ".join(f"{n} {tuple(s)}" for _, n, s in ds) or "none"


def read_hdf5(path: Path, dataset_path: str | None = None, scan_shape: tuple[int, int] | None = None) -> InputData:
    """A py4DSTEM/EMD, generic or Dectris HDF5 file (see :data:`FORMATS`)."""
    import h5py

    _import_hdf5plugin()
    try:
        f = h5py.File(path, "r")
    except Exception as err:  # noqa: BLE001 - h5py raises OSError subclasses with HDF5's message
        raise InputError(
            f"{path}: not a readable HDF5/EMD file ({type(err).__name__}: {err}). Is it complete (not truncated)?"
        ) from None
    try:
        if dataset_path is None and _is_dectris(f):
            f.close()
            return read_dectris(path, scan_shape)
        fmt = "hdf5"
        if dataset_path is None:
            dataset_path = _find_scan_dataset(f)
            if dataset_path is None:
                three = _datasets(f, 3)
                if scan_shape is not None and three:
                    dataset_path = max(three)[1]
                else:
                    raise InputError(
                        f"{path}: no 4D dataset (Rx, Ry, Qx, Qy) found (datasets: {_list_datasets(f)}). Name the "
                        "dataset with dataset_path= (CLI: --dataset); for a 3D stack (N, Qx, Qy) also give "
                        "scan_shape=(Rx, Ry) (CLI: --scan-shape RX RY)."
                    )
        else:
            obj = f.get(dataset_path)
            if not isinstance(obj, h5py.Dataset):
                what = "a group, not a dataset" if obj is not None else "not in the file"
                raise InputError(
                    f"{path}: {dataset_path!r} is {what}. Datasets in the file: {_list_datasets(f)}. Pass one of "
                    f"them as dataset_path= (CLI: --dataset), or list them with `h5ls -r {path}`."
                )
        ds = f[dataset_path]
        where = f"{path}:{ds.name}"
        validate_dtype(ds.dtype)
        _check_filters(ds, where)
        root_attrs = f[ds.name.split("/")[1]].attrs if ds.name.count("/") > 1 else {}
        if root_attrs.get("emd_group_type") in ("root", b"root"):
            fmt = "emd"
        cal = emd_calibration(f, ds.name, str(path)) if fmt == "emd" else PIXELS
        name = ds.parent.name.strip("/").split("/")[-1] or path.stem
        if ds.ndim == 4:
            if scan_shape is not None and tuple(ds.shape[:2]) != scan_shape:
                raise InputError(f"{where} is a 4D scan of shape {ds.shape}; scan_shape={scan_shape} does not match "
                                 "it (scan_shape is for 3D stacks); leave it out.")
            validate_shape(ds.shape, ds.dtype)
            _probe(lambda i: ds[i, i], where)
            return InputData(ds, cal, name=name, path=str(path), dataset_path=ds.name, format=fmt)
        if ds.ndim != 3:
            validate_shape(ds.shape, ds.dtype)
        n = int(math.prod(ds.shape[:-2]))
        if scan_shape is None:  # as for a 3D .npy: never guess a scan shape
            raise InputError(
                f"{where} is a 3D stack of {n} patterns (shape {ds.shape}) and the file gives no scan shape; pass "
                f"scan_shape=(Rx, Ry) with Rx * Ry = {n} (CLI: --scan-shape RX RY), or scan_shape=(1, {n}) for "
                "a series of patterns that is not a 2D scan."
            )
        src = StackSource([(str(path), ds.name, n)], scan_shape, tuple(ds.shape[-2:]), ds.dtype)
        f.close()
        return _stack_input(src, cal, name, path, fmt)
    except BaseException:
        f.close()
        raise


def _stack_input(src: "StackSource", cal: Calibration, name: str, path: Path, fmt: str) -> InputData:
    validate_shape(src.shape, src.dtype)
    _probe(lambda i: src.read(i % src.n_positions, i % src.n_positions + 1), str(path))
    return InputData(src, cal, name=name, path=str(path), format=fmt)


class StackSource(ScanSource):
    """Patterns stored as 3D stacks ``(n, Qx, Qy)`` in one or several HDF5 datasets, seen as a 4D scan.

    Reading flat positions ``start..stop-1`` reads the matching frame range(s) directly (Dectris/Arina files: one
    chunk per frame, bitshuffle/LZ4). Picklable like :class:`~py4dstem_ndpd.engine.source.H5Source`: only paths
    travel, files open on first read in the reading process. It also indexes like a read-only 4D array
    (``shape``, ``dtype``, ``src[rx, ry0:ry1]``).

    Parameters
    ----------
    parts : list of (file path, dataset path, number of frames)
        In scan order.
    scan_shape : (int, int)
        ``(Rx, Ry)``; ``Rx * Ry`` must equal the total number of frames.
    pattern_shape : (int, int)
    dtype : numpy dtype
    mask : ndarray of bool, shape pattern_shape, optional
        Pixels read as 0 (e.g. a Dectris ``pixel_mask``: gaps, dead and hot pixels).
    """

    def __init__(self, parts, scan_shape, pattern_shape, dtype, mask: np.ndarray | None = None) -> None:
        self.parts = [(str(p), str(d), int(n)) for p, d, n in parts]
        self.scan_shape = (int(scan_shape[0]), int(scan_shape[1]))
        self.pattern_shape = (int(pattern_shape[0]), int(pattern_shape[1]))
        self.dtype = np.dtype(dtype)
        total = sum(n for _, _, n in self.parts)
        if total != self.n_positions:
            raise InputError(f"{self.parts[0][0]}: {total} patterns do not fill a {self.scan_shape} scan; give "
                             "scan_shape=(Rx, Ry) with Rx * Ry = the number of patterns.")
        self.mask = None if mask is None or not np.any(mask) else np.asarray(mask, bool)
        self._starts = np.cumsum([0] + [n for _, _, n in self.parts])
        self._files: dict = {}
        self._dsets: dict = {}
        self._lock = threading.Lock()

    # array-like view
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.scan_shape + self.pattern_shape

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return self.scan_shape[0]

    def __repr__(self) -> str:
        return f"StackSource({self.parts[0][0]!r}, {len(self.parts)} part(s), shape={self.shape})"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_files"], state["_dsets"] = {}, {}
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _ds(self, i: int):
        import h5py

        with self._lock:
            if i not in self._dsets:
                _import_hdf5plugin()
                path, name, _ = self.parts[i]
                if path not in self._files:
                    self._files[path] = h5py.File(path, "r")
                self._dsets[i] = self._files[path][name]  # follows external links (Dectris data files)
            return self._dsets[i]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Patterns at flat positions ``start..stop-1``, shape (stop - start, Qx, Qy)."""
        self._segments(start, stop)  # range check
        out = []
        pos = start
        while pos < stop:
            i = int(np.searchsorted(self._starts, pos, side="right") - 1)
            a = pos - int(self._starts[i])
            b = min(stop - int(self._starts[i]), self.parts[i][2])
            try:
                out.append(np.asarray(self._ds(i)[a:b]))
            except OSError as err:
                raise InputError(
                    f"{self.parts[i][0]}: cannot read patterns {pos}..{pos + b - a - 1} ({err}); the file (or its "
                    "linked data file) is truncated or corrupt, or was moved."
                ) from None
            pos += b - a
        frames = out[0] if len(out) == 1 else np.concatenate(out, axis=0)
        if self.mask is not None:
            frames = np.array(frames, copy=True)
            frames[:, self.mask] = 0
        return np.ascontiguousarray(frames)

    def _read_block(self, rx: int, ry0: int, ry1: int) -> np.ndarray:
        ry = self.scan_shape[1]
        return self.read(rx * ry + ry0, rx * ry + ry1)

    def __getitem__(self, key) -> np.ndarray:
        """Read-only 4D indexing: ``src[()]``, ``src[rx]``, ``src[rx, ry]``, ``src[rx, ry0:ry1, ...]``..."""
        if (isinstance(key, tuple) and not key) or key is Ellipsis:
            return self.read(0, self.n_positions).reshape(self.shape)
        key = key if isinstance(key, tuple) else (key,)
        k0, k1, rest = key[0], (key[1] if len(key) > 1 else slice(None)), key[2:]
        rows = range(self.scan_shape[0])[k0]
        cols = range(self.scan_shape[1])[k1]

        def row(rx):
            if isinstance(cols, int):
                return self.read(rx * self.scan_shape[1] + cols, rx * self.scan_shape[1] + cols + 1)[0]
            if cols.step == 1:
                block = self.read(rx * self.scan_shape[1] + cols.start, rx * self.scan_shape[1] + cols.stop)
            else:
                block = np.stack([self.read(rx * self.scan_shape[1] + c, rx * self.scan_shape[1] + c + 1)[0]
                                  for c in cols]) if len(cols) else np.zeros((0,) + self.pattern_shape, self.dtype)
            return block

        out = row(rows) if isinstance(rows, int) else np.stack([row(r) for r in rows]) if len(rows) else \
            np.zeros((0, len(cols) if not isinstance(cols, int) else 1) + self.pattern_shape, self.dtype)
        return out[(Ellipsis,) + rest] if rest else out

    def close(self) -> None:
        with self._lock:
            for ds in self._dsets.values():
                ds.file.close()
            for f in self._files.values():
                f.close()
            self._files, self._dsets = {}, {}


def read_dectris(path: Path, scan_shape: tuple[int, int] | None = None) -> InputData:
    """A Dectris (Arina, Eiger) master file: the frames of all ``/entry/data/data_*`` datasets, in order.

    The scan shape is not in the file: give ``scan_shape``; by default a square scan is assumed (like
    ``py4DSTEM.import_file(..., filetype="arina")``). Pixels flagged in ``.../detectorSpecific/pixel_mask``
    (module gaps, dead, hot pixels; stored as the dtype's maximum) are read as 0.
    """
    import h5py

    if not _import_hdf5plugin():
        logger.warning("hdf5plugin is not installed; Dectris files compressed with bitshuffle/LZ4 cannot be read "
                       "(pip install hdf5plugin)")
    parts = []
    with h5py.File(path, "r") as f:
        g = f["entry/data"]
        for key in sorted(k for k in g.keys() if k.startswith("data_")):
            link = g.get(key, getlink=True)
            try:
                ds = g[key]
            except (KeyError, OSError) as err:
                target = getattr(link, "filename", key)
                raise InputError(
                    f"{path}: the data file {target!r} linked as entry/data/{key} cannot be opened ({err}); keep the "
                    "*_data_*.h5 files next to the master file."
                ) from None
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 3:
                raise InputError(f"{path}: entry/data/{key} is not a 3D stack of frames; is this a Dectris master "
                                 "file? Otherwise name the dataset with dataset_path= (CLI: --dataset).")
            _check_filters(ds, f"{path}:entry/data/{key}")
            parts.append((str(Path(path).resolve()), f"/entry/data/{key}", int(ds.shape[0]), ds.shape[1:],
                          ds.dtype))
        if not parts:
            raise InputError(f"{path}: entry/data holds no frames.")
        det = f.get("entry/instrument/detector")
        mask = None
        if det is not None and "detectorSpecific/pixel_mask" in det:
            mask = np.asarray(det["detectorSpecific/pixel_mask"][()]) != 0
        q_cal = _dectris_q(f)
    pattern_shape, dtype = parts[0][3], parts[0][4]
    if any(p[3] != pattern_shape or p[4] != dtype for p in parts):
        raise InputError(f"{path}: the data files hold frames of different shapes or dtypes.")
    n = sum(p[2] for p in parts)
    if scan_shape is None:
        side = math.isqrt(n)
        if side * side != n:
            raise InputError(f"{path}: {n} frames do not form a square scan and the file does not record the scan "
                             "shape; give scan_shape=(Rx, Ry) (CLI: --scan-shape RX RY).")
        scan_shape = (side, side)
        logger.info("%s: no scan shape in the file; assuming a square %d x %d scan", path, side, side)
    if mask is not None and mask.shape != tuple(pattern_shape):
        logger.warning("%s: pixel_mask shape %s differs from the frames %s; ignored", path, mask.shape,
                       tuple(pattern_shape))
        mask = None
    src = StackSource([p[:3] for p in parts], scan_shape, pattern_shape, dtype, mask=mask)
    r_nm = _arina_r_pixel_nm(path)
    cal = Calibration(q_pixel_size=q_cal[0] if q_cal else 1.0, q_pixel_units="A^-1" if q_cal else "pixels",
                      r_pixel_size=r_nm or 1.0, r_pixel_units="nm" if r_nm else "pixels")
    stem = path.name[: -len("_master.h5")] if path.name.endswith("_master.h5") else path.stem
    return _stack_input(src, cal, stem, path, "dectris")


def _dectris_q(f) -> tuple[float] | None:
    """Q pixel size (1/Å) from x_pixel_size (m), detector_distance (m) and incident_wavelength (Å), if present."""
    try:
        px = float(f["entry/instrument/detector/x_pixel_size"][()])
        dist = float(f["entry/instrument/detector/detector_distance"][()])
        lam = float(f["entry/instrument/beam/incident_wavelength"][()])
    except (KeyError, TypeError, ValueError, OSError):
        return None
    q = px / (dist * lam)
    return (q,) if math.isfinite(q) and q > 0 else None


def _arina_r_pixel_nm(master: Path) -> float | None:
    """Scan step (nm) from the Arina STEM metadata file ``<name>.h5`` next to ``<name>_master.h5``."""
    import h5py

    if not master.name.endswith("_master.h5"):
        return None
    meta = master.with_name(master.name[: -len("_master.h5")] + ".h5")
    if not meta.is_file():
        return None
    try:
        with h5py.File(meta, "r") as f:
            v = float(np.ravel(f["STEM Metadata"].attrs["Pixel Size"])[0])
    except (OSError, KeyError, TypeError, ValueError, IndexError):
        return None
    return v if math.isfinite(v) and v > 0 else None


# -- rosettasciio formats --------------------------------------------------------------------------------------------
def _rsciio(module: str, path: Path, what: str):
    try:
        return importlib.import_module(f"rsciio.{module}")
    except ImportError:
        raise InputError(
            f"{path}: reading {what} files needs rosettasciio: pip install 'py4dstem-ndpd[formats]' (or "
            "pip install rosettasciio)."
        ) from None


def _dask_input(data, axes, path: Path, fmt: str, scan_shape, what: str) -> InputData:
    data = reshape_scan(data, scan_shape, str(path))
    validate_shape(data.shape, data.dtype)
    cal = _calibration_from_axes(axes, data.ndim, str(path)) if axes is not None else PIXELS
    _probe(lambda i: np.asarray(data[i, i]), f"{path} ({what})")
    return InputData(data, cal, name=path.stem, path=str(path), format=fmt)


def read_mib(path: Path, scan_shape: tuple[int, int] | None = None) -> InputData:
    """A Merlin ``.mib`` file (rosettasciio, lazy). The scan shape comes from the ``.hdr`` file next to it, else
    from the frame timestamps (flyback), or from ``scan_shape``."""
    qd = _rsciio("quantumdetector", path, "Merlin .mib")
    nav = None if scan_shape is None else (scan_shape[1], scan_shape[0])  # rosettasciio wants (x, y)
    try:
        sig = qd.file_reader(str(path), lazy=True, navigation_shape=nav)[0]
    except Exception as err:  # noqa: BLE001 - rosettasciio raises many types for damaged headers
        raise InputError(f"{path}: cannot read it as a Merlin .mib file ({type(err).__name__}: {err}).") from None
    data = sig["data"]
    data = data[..., ::-1, :]  # rosettasciio flips the rows; keep the file's (and py4DSTEM's) orientation
    if data.ndim == 3 and scan_shape is None:
        raise InputError(f"{path}: {data.shape[0]} frames and no scan shape in the file (no .hdr); give "
                         "scan_shape=(Rx, Ry) (CLI: --scan-shape RX RY).")
    if scan_shape is not None and data.ndim == 4 and tuple(data.shape[:2]) != scan_shape:
        logger.warning("%s holds %s complete scan lines, not %s (interrupted acquisition?); reading those",
                       path, data.shape[:2], scan_shape)
        scan_shape = None
    return _dask_input(data, None, path, "mib", scan_shape, "Merlin .mib")


def read_empad(path: Path, scan_shape: tuple[int, int] | None = None) -> InputData:
    """An EMPAD acquisition: its ``.xml`` (or the ``.raw`` next to it); rosettasciio, lazy. Frames are
    128 x 128 float32 (the two footer rows are dropped)."""
    empad = _rsciio("empad", path, "EMPAD")
    xml = path if path.suffix.lower() == ".xml" else _empad_xml_for(path)
    if xml is None:
        raise InputError(f"{path}: EMPAD .raw files are described by an .xml file; give the .xml.")
    try:
        sig = empad.file_reader(str(xml), lazy=True)[0]
        raw = xml.parent / str(sig["original_metadata"]["root"]["raw_file"]["filename"])
    except Exception as err:  # noqa: BLE001 - XML and memmap errors of many types
        raise InputError(f"{xml}: cannot read it as an EMPAD XML + raw file ({type(err).__name__}: {err}).") \
            from None
    data, axes = sig["data"], sig["axes"]
    n = int(math.prod(data.shape[:-2]))
    need = n * 130 * 128 * 4
    size = raw.stat().st_size if raw.is_file() else 0
    if size < need:
        raise InputError(f"{raw}: {size} bytes, but the XML describes {n} frames ({need} bytes); the raw file is "
                         "missing or truncated.")
    if data.ndim == 3:  # rosettasciio squeezes a 1-long scan axis
        names = [a.get("name") for a in axes]
        shape = (n, 1) if "scan_y" in names else (1, n)
        data = data.reshape(shape + tuple(data.shape[-2:]))
        axes = None
    return _dask_input(data, axes, xml, "empad", scan_shape, "EMPAD")


def read_dm(path: Path, scan_shape: tuple[int, int] | None = None) -> InputData:
    """A Gatan ``.dm3``/``.dm4`` file holding a 4D scan (or a 3D stack with ``scan_shape``); rosettasciio, lazy."""
    dm = _rsciio("digitalmicrograph", path, "Gatan DigitalMicrograph")
    try:
        sigs = dm.file_reader(str(path), lazy=True)
    except Exception as err:  # noqa: BLE001 - tag parsing errors of many types for damaged files
        raise InputError(f"{path}: cannot read it as a DigitalMicrograph file ({type(err).__name__}: {err}); "
                         "is it complete (not truncated)?") from None
    four = [s for s in sigs if s["data"].ndim == 4]
    three = [s for s in sigs if s["data"].ndim == 3]
    if four:
        sig = max(four, key=lambda s: s["data"].size)
    elif three and scan_shape is not None:
        sig = max(three, key=lambda s: s["data"].size)
    else:
        shapes = [tuple(s["data"].shape) for s in sigs]
        raise InputError(f"{path} holds no 4D scan (images: {shapes}); for a 3D stack give scan_shape=(Rx, Ry) "
                         "(CLI: --scan-shape RX RY).")
    axes = sig["axes"] if sig["data"].ndim == 4 else None
    return _dask_input(sig["data"], axes, path, "dm", scan_shape, "DigitalMicrograph")
