"""Options of the throughput engine: small frozen dataclasses checked when they are built."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

from ..exceptions import ConfigError

Mode = Literal["sync", "async"]


def _check_int(owner: str, name: str, value, minimum: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be an integer >= {minimum}, got {value!r}; {hint}")


def _check_bool(owner: str, name: str, value) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{owner}.{name} must be True or False, got {value!r}")


def default_postprocess_threads() -> int:
    """1 where there are spare cores, 0 on machines with <= 2 cores.

    Measured on a 2-core CPU (16 x 16 Si/SiGe scan, 256 px): sync 100 patterns/s; async with a post-processing
    thread 72 (it takes a core from torch's two threads); async with post-processing in the model thread 108.
    """
    return 1 if (os.cpu_count() or 1) > 2 else 0


@dataclass(frozen=True)
class EngineOptions:
    """How one process streams a scan through a backend.

    Attributes
    ----------
    batch_size : int or None
        Patterns per call of ``backend.detect``. Larger batches use the GPU better and need
        ``batch_size * Qx * Qy`` more values in memory per queued batch. ``None`` (default): the backend's
        ``preferred_batch_size()`` (the NDPD detector: 32 on a CPU, from the free memory on a GPU), else 32, and
        at most what keeps one batch of patterns below
        :data:`~py4dstem_ndpd.engine.runner.AUTO_BATCH_BYTES` (256 MB).
    mode : {"async", "sync"}
        ``"async"`` (default): a reader thread prefetches the next batches into a bounded queue while the
        backend runs, and post-processing overlaps with the model, in a small thread pool or, with ``lanes > 1``,
        by running several batches at once. ``"sync"``: read, detect and
        post-process one batch after the other (for comparison and debugging).
    prefetch : int
        Async mode: batches the reader may hold ready in the queue (default 2). At most
        ``prefetch + 1 + max(lanes, 1 + postprocess_threads)`` batches of patterns are alive at any time, whatever
        the scan size.
    postprocess_threads : int
        Async mode: threads that post-process finished batches while the next batch runs (0 runs
        post-processing in the model thread). Default :func:`default_postprocess_threads`: 1, or 0 on machines
        with <= 2 cores, where a post-processing thread slows torch down.
    lanes : int or None
        Async mode: batches that go through the whole backend (model and post-processing) at the same time, each
        in its own thread; the backend divides its CPU threads among them (:meth:`NDPDBackend.lanes`). With
        ``lanes > 1`` post-processing runs in the lanes and ``postprocess_threads`` is not used. ``None``
        (default): what the backend asks for (``backend.default_lanes()``: 2 for the NDPD detector on a CPU, 1 on a
        GPU), else 1. Measured on a 2-core CPU (``benchmarks/bench_throughput.py``, 16 x 16 Si/SiGe patterns
        read from an HDF5 file, two runs): two lanes gave 1.11-1.16x the patterns/s of sync mode at 256 px and
        1.32-1.73x at 512 px; one lane 0.90-1.07x and 1.10-1.11x. On 2026-12-02, with a faster sync mode, two lanes
        gave 1.17-1.19x and 1.14-1.34x (``docs/performance.md``).
    progress : bool
        Show a progress bar (``tqdm.auto``) with patterns/s and the remaining time (default True).
    chunk_size : int
        Scan positions per chunk (default 1024): the unit of checkpointing and of Dask distribution. Batches never
        straddle two chunks, so a multiple of ``batch_size`` wastes nothing.
    checkpoint_dir : str or path-like, optional
        Write every finished chunk atomically to this directory (one ``.npz`` per chunk and a manifest).
    resume : bool
        With ``checkpoint_dir``: reuse the chunks already there and compute only the missing ones. Without it, a
        directory that already holds a checkpoint is refused (nothing is overwritten by accident).
    """

    batch_size: int | None = None
    mode: Mode = "async"
    prefetch: int = 2
    postprocess_threads: int = field(default_factory=lambda: default_postprocess_threads())
    lanes: int | None = None
    progress: bool = True
    chunk_size: int = 1024
    checkpoint_dir: str | os.PathLike | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        o = "EngineOptions"
        if self.batch_size is not None:
            _check_int(o, "batch_size", self.batch_size, 1, "use None (chosen for the device), 8..64 on a CPU or "
                       "32..256 on a GPU.")
        if self.mode not in ("sync", "async"):
            raise ConfigError(f"EngineOptions.mode must be 'sync' or 'async', got {self.mode!r}")
        _check_int(o, "prefetch", self.prefetch, 1, "2 batches are enough to hide the reading time.")
        _check_int(o, "postprocess_threads", self.postprocess_threads, 0, "0 post-processes in the model thread.")
        if self.lanes is not None:
            _check_int(o, "lanes", self.lanes, 1, "use None (the backend's choice), or 1-4 on a CPU.")
        _check_bool(o, "progress", self.progress)
        _check_int(o, "chunk_size", self.chunk_size, 1, "use a multiple of batch_size, e.g. 1024 positions.")
        _check_bool(o, "resume", self.resume)
        if self.checkpoint_dir is not None:
            if not isinstance(self.checkpoint_dir, (str, os.PathLike)) or str(self.checkpoint_dir) == "":
                raise ConfigError(
                    f"EngineOptions.checkpoint_dir must be a directory path, got {self.checkpoint_dir!r}"
                )
            object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))
        elif self.resume:
            raise ConfigError("EngineOptions.resume=True (CLI --resume) needs checkpoint_dir (CLI --checkpoint-dir): "
                              "the directory of the run to resume")


@dataclass(frozen=True)
class DistributedOptions:
    """How a scan is spread over Dask workers (where they run is a
    :class:`~py4dstem_ndpd.engine.clusters.ClusterSpec` or a client).

    Attributes
    ----------
    engine : EngineOptions
        Batching inside each worker (``batch_size``, ``mode``, ``prefetch``...), and ``chunk_size``,
        ``checkpoint_dir``, ``resume`` and ``progress`` for the whole run (progress is shown by the client only).
    chunks_per_worker : int
        At most this many chunks are submitted per worker at any time (default 2: one running, one waiting with its
        data ready), so a GPU worker is never flooded and client memory stays bounded.
    resources : mapping of str to float, optional
        Dask resources every chunk task needs, e.g. ``{"GPU": 1}`` on workers started with ``--resources GPU=1``.
    """

    engine: EngineOptions = field(default_factory=lambda: EngineOptions())
    chunks_per_worker: int = 2
    resources: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        o = "DistributedOptions"
        if not isinstance(self.engine, EngineOptions):
            raise ConfigError(f"DistributedOptions.engine must be an EngineOptions, got {type(self.engine).__name__}")
        _check_int(o, "chunks_per_worker", self.chunks_per_worker, 1, "2 keeps one chunk queued per worker.")
        if self.resources is not None:
            if not isinstance(self.resources, Mapping) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                for k, v in self.resources.items()
            ):
                raise ConfigError(
                    f"DistributedOptions.resources must map resource names to positive amounts, e.g. "
                    f"{{'GPU': 1}}, got {self.resources!r}"
                )
            object.__setattr__(self, "resources", dict(self.resources))
