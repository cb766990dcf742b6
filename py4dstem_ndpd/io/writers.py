"""Atomic, non-overwriting writes of py4DSTEM objects."""
from __future__ import annotations

import os
from pathlib import Path


class OutputExistsError(FileExistsError):
    """The output exists and overwriting was not asked for."""


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Raise :class:`OutputExistsError` if ``path`` exists and ``overwrite`` is False; create parent folders."""
    path = Path(path)
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
