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
from .exceptions import ConfigError, InputError
from .io.readers import load_input
from .peaks import ScanPeaks

logger = logging.getLogger(__name__)


def find_Bragg_disks(  # noqa: N802 - py4DSTEM's name, on purpose
    data,
    template=None,
    *,
    options: DetectOptions | dict | None = None,
    weights: str | None = None,
    engine=None,
    distributed=None,
    dataset_path: str | None = None,
    scan_shape: tuple[int, int] | None = None,
    progress: bool = True,
):
    """Find Bragg disks in every pattern of a 4D-STEM scan with the neural detector.

    Parameters
    ----------
    data : py4DSTEM.DataCube, ndarray, dask array or path
        ``(Rx, Ry, Qx, Qy)`` data, a 3D stack ``(N, Qx, Qy)`` with ``scan_shape``, or a py4DSTEM/EMD/HDF5/.npy
        file (read lazily, batch by batch).
    template : ignored
        Accepted so that ``find_Bragg_disks(datacube, probe.kernel)`` from a py4DSTEM script still runs: the
        detector needs no probe template. Giving one logs a warning and changes nothing.
    options : DetectOptions or dict, optional
        Detector options (confidence, refinement, device, batch size...); a dict is read as
        ``DetectOptions(**options)``. Defaults need no tuning.
    weights : str, optional
        A weights file (e.g. fine-tuned on your data); default: the shipped model.
    engine : EngineOptions or dict, optional
        Batching options of :mod:`py4dstem_ndpd.engine` (async prefetch, checkpoints, resume).
    distributed : distributed.Client, str or None
        Run on a Dask cluster: a ``Client``, a scheduler address, or ``"local"`` for a ``LocalCluster``.
    dataset_path : str, optional
        HDF5 dataset path when ``data`` is a generic HDF5 file.
    scan_shape : (int, int), optional
        Scan shape ``(Rx, Ry)`` of a 3D stack of patterns (array or file).
    progress : bool
        Show a progress bar with patterns/s (``False`` also silences the bar of a given ``engine``).

    Returns
    -------
    py4DSTEM.BraggVectors
        Raw vectors in detector pixels (``qx`` row, ``qy`` column, ``intensity``) plus a ``confidence`` field,
        brightest first at every position (the direct beam is usually row 0), as py4DSTEM orders them. With a
        ``DataCube`` it is attached to the datacube's tree and shares its calibration, exactly as
        ``datacube.find_Bragg_disks`` leaves it (so ``bv.fit_origin`` writes the origin into
        ``datacube.calibration`` and ``py4DSTEM.save(path, datacube)`` saves the vectors too); otherwise it has
        its own calibration with the data's Q and R pixel sizes and units. The calibration state starts all
        ``False`` as in py4DSTEM (``bv.cal`` applies nothing until ``bv.setcal()`` or an origin fit).

    Raises
    ------
    InputError, ConfigError, ModelLoadError, DeviceError
        Bad data or options, missing weights, unavailable device; the message says what to do.
    """
    from .bridge import to_braggvectors

    if template is not None:
        logger.warning("find_Bragg_disks: the template is not used (the neural detector needs no probe kernel); "
                       "drop it from the call")
    inp = load_input(data, dataset_path=dataset_path, scan_shape=scan_shape)  # opened once, passed on as is
    peaks = detect_scan(inp, options=options, weights=weights, engine=engine, distributed=distributed,
                        progress=progress)
    if inp.format == "datacube" and inp is not data and tuple(data.Rshape) == tuple(peaks.scan_shape):
        # as py4DSTEM does: the vectors join the datacube's tree and share its calibration
        bv = to_braggvectors(peaks, data.calibration)
        data.attach(bv)
        return bv
    return to_braggvectors(peaks, inp.calibration)


def _as_options(value, cls, what: str):
    """``value`` as a ``cls`` dataclass: ``None`` gives the defaults, a dict its fields, anything else an error."""
    import dataclasses

    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    names = [f.name for f in dataclasses.fields(cls)]
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigError(f"unknown {what} {unknown}; {cls.__name__} has {names}.")
        return cls(**value)
    raise ConfigError(f"{what} must be a {cls.__name__} (or a dict of its fields {names}), got "
                      f"{type(value).__name__}.")


def detect_scan(data, *, options=None, weights=None, engine=None, distributed=None, dataset_path=None,
                scan_shape=None, progress=True) -> ScanPeaks:
    """Like :func:`find_Bragg_disks` but returns the plain :class:`~py4dstem_ndpd.peaks.ScanPeaks`."""
    import dataclasses

    from .detect.backend import NDPDBackend
    from .engine import DistributedOptions, EngineOptions, H5Source, run_distributed, run_scan

    inp = load_input(data, dataset_path=dataset_path, scan_shape=scan_shape)
    options = _as_options(options, DetectOptions, "options")
    if engine is None:
        engine = EngineOptions(batch_size=options.batch_size, progress=progress)
    else:
        engine = _as_options(engine, EngineOptions, "engine options")
        if not progress:
            engine = dataclasses.replace(engine, progress=False)
    if distributed is not None:
        source = inp.array if inp.path is None or inp.dataset_path is None else H5Source(inp.path, inp.dataset_path)
        dopts = DistributedOptions(engine=engine)
        return _warn_if_empty(run_distributed(source, NDPDBackend, {"weights": weights, "options": options},
                                              distributed, options=dopts))
    backend = get_backend(weights, options)
    return _warn_if_empty(run_scan(inp.array, backend, options=engine))


def _warn_if_empty(peaks: ScanPeaks) -> ScanPeaks:
    """Warn when not one disk was found in the whole scan: almost always data the detector cannot see."""
    if peaks.n_peaks == 0 and peaks.peaks:
        qx, qy = peaks.pattern_shape
        logger.warning(
            "no disk found in any of the %d patterns (%d x %d px). The detector sees disks of about 1.5-20 px "
            "radius (docs/model-card.md): if the data were binned so far that the disks are below 1.5 px (likely "
            "for patterns under 64 px), use less binning; also check the scan is not dark or saturated.",
            len(peaks.peaks), qx, qy)
    return peaks


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
    t = get_backend(weights, _as_options(options, DetectOptions, "options")).detect(p[None])[0]
    return np.stack([t["qx"], t["qy"], t["intensity"], t["confidence"]], 1).astype(np.float32)
