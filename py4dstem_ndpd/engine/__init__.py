"""Throughput engine: stream a scan through a backend in one process (sync or async) or over Dask workers.

Core works on plain arrays and files (no py4DSTEM import); results are :class:`~py4dstem_ndpd.peaks.ScanPeaks`.

* :func:`run_scan` -- one process; a reader thread prefetches batches into a bounded queue (``mode="async"``).
* :func:`run_distributed` -- chunks of positions on a Dask cluster (``"local"``, ``"local-cuda"``, an address,
  a ``Client`` or a cluster); the backend is built once per worker; workers read their own chunks of files.
* :class:`ClusterSpec` / :func:`load_config` -- where to run (local, local-cuda, an address, SLURM, PBS), from
  YAML files like ``cluster/*.yaml``.
* Both can checkpoint finished chunks and resume (``EngineOptions(checkpoint_dir=..., resume=True)``).

``distributed`` is imported only by :func:`run_distributed`.
"""
from .checkpoint import Checkpoint
from .clusters import ClusterSpec, load_config, open_client
from .options import DistributedOptions, EngineOptions
from .runner import BatchRunner, EngineStats, run_scan
from .source import ArraySource, DaskSource, H5Source, ScanSource, as_source


def __getattr__(name: str):
    # run_distributed imports dask.distributed, which takes a second: load it on first use only.
    if name in ("run_distributed", "DistributedRunner", "DistributedStats"):
        from . import distributed

        return getattr(distributed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ArraySource", "BatchRunner", "Checkpoint", "ClusterSpec", "DaskSource", "DistributedOptions",
    "DistributedRunner", "DistributedStats", "EngineOptions", "EngineStats", "H5Source", "ScanSource", "as_source",
    "load_config", "open_client", "run_distributed", "run_scan",
]
