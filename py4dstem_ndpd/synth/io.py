"""Save and load a simulated scan: the DataCube through ``py4DSTEM.save`` and the truth in the same file."""
from __future__ import annotations

import os
from pathlib import Path

from ..exceptions import InputError
from .scan import SimulatedScan
from .truth import ScanTruth

TRUTH_GROUP = "ndpd_truth"


def save_scan(path: str | os.PathLike, scan: SimulatedScan, *, overwrite: bool = False) -> Path:
    """Write ``scan.datacube`` with ``py4DSTEM.save`` and the truth into group ``/ndpd_truth`` of the same file.

    The file stays a plain py4DSTEM EMD file: ``py4DSTEM.read(path)`` returns the DataCube. The write is atomic
    (temporary file, then rename).
    """
    import h5py
    import py4DSTEM

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()
    py4DSTEM.save(str(tmp), scan.datacube, mode="o")
    with h5py.File(tmp, "a") as f:
        scan.truth.to_h5(f.create_group(TRUTH_GROUP))
    os.replace(tmp, path)
    return path


def load_scan(path: str | os.PathLike) -> SimulatedScan:
    """Read a file written by :func:`save_scan`."""
    import h5py
    import py4DSTEM

    dc = py4DSTEM.read(str(path))
    if isinstance(dc, dict) or not hasattr(dc, "data"):
        raise InputError(f"{path}: expected a single DataCube at the EMD root; was it written by save_scan?")
    with h5py.File(path, "r") as f:
        if TRUTH_GROUP not in f:
            raise InputError(f"{path} has no ground truth (group /{TRUTH_GROUP}); it was not written by save_scan")
        truth = ScanTruth.from_h5(f[TRUTH_GROUP])
    return SimulatedScan(datacube=dc, truth=truth)
