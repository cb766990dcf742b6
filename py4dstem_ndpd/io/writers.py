"""Atomic, non-overwriting writes of py4DSTEM objects."""
from __future__ import annotations

import os
from pathlib import Path


class OutputExistsError(FileExistsError):
    """The output exists and overwriting was not asked for."""


#: File name endings py4DSTEM.read recognises as EMD/HDF5 (py4DSTEM 0.14 ``parse_filetype``).
EMD_SUFFIXES = (".h5", ".hdf5", ".emd", ".py4dstem")


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Check an EMD output path before any work: raise :class:`~py4dstem_ndpd.exceptions.ConfigError` unless it
    ends in one of :data:`EMD_SUFFIXES` (py4DSTEM.read goes by the ending), :class:`OutputExistsError` if it exists
    and ``overwrite`` is False; create parent folders."""
    from ..exceptions import ConfigError

    path = Path(path)
    if path.suffix.lower() not in EMD_SUFFIXES:
        raise ConfigError(
            f"{path}: outputs are py4DSTEM EMD (HDF5) files, and py4DSTEM.read only opens names ending in "
            f"{', '.join(EMD_SUFFIXES)}; use e.g. {path.with_suffix('.h5')}."
        )
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_py4dstem(path: str | os.PathLike, obj, *, overwrite: bool = False) -> Path:
    """``py4DSTEM.save`` to a temporary file, then rename: a crash never leaves a half-written output.

    Only ``obj`` is written (``tree=False``; its calibration is kept): py4DSTEM 0.14 cannot read back a file whose
    tree holds a ``StrainMap`` attached to the BraggVectors.
    """
    import py4DSTEM

    path = check_writable(path, overwrite)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        py4DSTEM.save(str(tmp), obj, mode="o", tree=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
