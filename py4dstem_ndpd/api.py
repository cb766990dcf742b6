"""The drop-in entry points: ``find_Bragg_disks`` (a whole scan -> py4DSTEM BraggVectors) and ``detect_pattern``.

Swap one line of a py4DSTEM script::

    # braggpeaks = datacube.find_Bragg_disks(template=probe.kernel, minAbsoluteIntensity=..., ...)
    braggpeaks = py4dstem_ndpd.find_Bragg_disks(datacube)

and everything downstream (origin fitting, calibration, StrainMap, py4DSTEM.save/read) runs unchanged.
"""
from __future__ import annotations

import logging

import numpy as np

from .detect.backend import DetectOptions, get_backend
from .exceptions import InputError
from .io.readers import load_input
from .peaks import ScanPeaks

logger = logging.getLogger(__name__)


def find_Bragg_disks(  # noqa: N802 - py4DSTEM's name, on purpose
    data,
    *,
    options: DetectOptions | None = None,
    weights: str | None = None,
    engine=None,
    distributed=None,
    dataset_path: str | None = None,
    progress: bool = True,
):
    """Find Bragg disks in every pattern of a 4D-STEM scan with the neural detector.

    Parameters
    ----------
    data : py4DSTEM.DataCube, ndarray, dask array or path
        ``(Rx, Ry, Qx, Qy)`` data, or a py4DSTEM/EMD/HDF5/.npy file (read lazily, batch by batch).
    options : DetectOptions, optional
        Detector options (confidence, refinement, device, batch size...). Defaults need no tuning.
    weights : str, optional
        A weights file (e.g. fine-tuned on your data); default: the shipped model.
    engine : EngineOptions, optional
        Batching options of :mod:`py4dstem_ndpd.engine` (async prefetch, checkpoints, resume).
    distributed : distributed.Client, str or None
        Run on a Dask cluster: a ``Client``, a scheduler address, or ``"local"`` for a ``LocalCluster``.
    dataset_path : str, optional
        HDF5 dataset path when ``data`` is a generic HDF5 file.
    progress : bool
        Show a progress bar with patterns/s.

    Returns
    -------
    py4DSTEM.BraggVectors
        Raw vectors in detector pixels (``qx`` row, ``qy`` column, ``intensity``) plus a ``confidence`` field,
        with the data's calibration (Q and R pixel sizes and units).

    Raises
    ------
    InputError, ConfigError, ModelLoadError, DeviceError
        Bad data or options, missing weights, unavailable device; the message says what to do.
    """
    from .bridge import to_braggvectors

    inp = load_input(data, dataset_path=dataset_path)  # opened once; detect_scan takes the InputData as is
    peaks = detect_scan(inp, options=options, weights=weights, engine=engine, distributed=distributed,
                        progress=progress)
    return to_braggvectors(peaks, inp.calibration)


def detect_scan(data, *, options=None, weights=None, engine=None, distributed=None, dataset_path=None,
                progress=True) -> ScanPeaks:
    """Like :func:`find_Bragg_disks` but returns the plain :class:`~py4dstem_ndpd.peaks.ScanPeaks`."""
    from .detect.backend import NDPDBackend
    from .engine import DistributedOptions, EngineOptions, H5Source, run_distributed, run_scan

    inp = load_input(data, dataset_path=dataset_path)
    options = options or DetectOptions()
    engine = engine or EngineOptions(batch_size=options.batch_size, progress=progress)
    if distributed is not None:
        source = inp.array if inp.path is None or inp.dataset_path is None else H5Source(inp.path, inp.dataset_path)
        dopts = DistributedOptions(engine=engine)
        return run_distributed(source, NDPDBackend, {"weights": weights, "options": options}, distributed,
                               options=dopts)
    backend = get_backend(weights, options)
    return run_scan(inp.array, backend, options=engine)


def detect_pattern(pattern, *, options: DetectOptions | None = None, weights: str | None = None) -> np.ndarray:
    """Detect the disks of one pattern.

    Parameters
    ----------
    pattern : ndarray, shape (Qx, Qy)
    options, weights
        As in :func:`find_Bragg_disks`.

    Returns
    -------
    ndarray, shape (K, 4), float32
        Columns ``qx`` (row, px), ``qy`` (column, px), ``intensity`` (counts in the disk), ``confidence``.
    """
    p = np.asarray(pattern)
    if p.ndim != 2:
        raise InputError(f"detect_pattern takes one 2D pattern (Qx, Qy), got shape {p.shape}.")
    from .io.validate import check_frames

    check_frames(p[None])
    t = get_backend(weights, options).detect(p[None])[0]
    return np.stack([t["qx"], t["qy"], t["intensity"], t["confidence"]], 1).astype(np.float32)
