"""Spread a scan over Dask workers: chunks of positions in, compact peak arrays out, assembled in scan order.

Design
------
* The scan is cut into chunks of ``chunk_size`` flat positions. Each chunk is one task,
  ``_detect_chunk(backend_cls, backend_params, payload, start, stop, engine_options)``, that runs the per-worker
  :class:`~py4dstem_ndpd.engine.runner.BatchRunner` (async prefetch inside the worker) and returns
  ``(counts, peaks, timings)``: a few kB per chunk instead of the patterns.
* The backend is built once per worker process, from its class and parameters, and cached there
  (:func:`worker_backend`); the model never travels in the task graph.
* Data: an :class:`~py4dstem_ndpd.engine.source.H5Source` (file path, or a py4DSTEM/EMD file) is sent as
  *path + dataset + range*: each worker reads its own chunk from the file, which must be visible to the workers
  at the same path. A Dask array chunk is computed on the cluster and handed to the detection task there. An
  in-memory numpy array is sliced on the client and each chunk travels with its task.
* At most ``chunks_per_worker * n_workers`` chunks are submitted at any time (a submission window over
  ``distributed.as_completed``), so a GPU worker is never flooded and client memory stays bounded. Dask itself
  places the tasks and recomputes those of a worker that dies; every chunk's result is taken exactly once.
* Finished chunks can be checkpointed on the client (same format as :func:`~py4dstem_ndpd.engine.run_scan`, so
  a run can be resumed by either).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from collections import Counter, OrderedDict
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping

import numpy as np

from ..exceptions import ConfigError, NDPDError
from ..peaks import ScanPeaks
from .checkpoint import chunk_ranges, pack_tables, unpack_tables
from .clusters import ClusterSpec, open_client
from .options import DistributedOptions, EngineOptions
from .progress import progress_bar
from .runner import BatchRunner, backend_identity, resume_checkpoint
from .source import ArraySource, DaskSource, H5Source, ScanSource, as_source

log = logging.getLogger(__name__)

#: Backends kept per worker process (least recently used evicted first).
CACHE_SIZE = 2

_CACHE: "OrderedDict[tuple[str, str], Any]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_BUILDS: Counter = Counter()


def _cache_key(backend_cls: type, backend_params: Mapping[str, Any]) -> tuple[str, str]:
    ident = backend_identity(backend_cls, dict(backend_params))
    return ident["backend"], ident["backend_params"]


def worker_backend(backend_cls: type, backend_params: Mapping[str, Any]) -> Any:
    """The backend ``backend_cls(**backend_params)`` of this process, built on first use and then reused.

    Thread-safe; keeps the :data:`CACHE_SIZE` most recently used backends (e.g. the weights of two models).
    """
    key = _cache_key(backend_cls, backend_params)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        backend = backend_cls(**backend_params)
        _BUILDS[key] += 1
        _CACHE[key] = backend
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        log.info("built %s in this worker process", key[0])
        return backend


def backend_cache_info() -> dict[str, Any]:
    """What :func:`worker_backend` did in this process: ``{"builds": {(class, params): n}, "cached": [...]}``."""
    with _CACHE_LOCK:
        return {"builds": dict(_BUILDS), "cached": list(_CACHE)}


def _detect_chunk(backend_cls: type, backend_params: Mapping[str, Any], payload: Any, start: int, stop: int,
                  options: EngineOptions) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Task run on a worker: peaks of flat positions ``start..stop-1``.

    ``payload`` is a :class:`ScanSource` the worker reads itself (an H5Source) or the patterns of the chunk,
    shape (stop - start, Qx, Qy).
    """
    backend = worker_backend(backend_cls, backend_params)
    if isinstance(payload, ScanSource):
        src, rng = payload, (start, stop)
    else:
        frames = np.asarray(payload)
        if frames.shape[0] != stop - start:
            raise NDPDError(f"chunk {start}..{stop} received {frames.shape[0]} patterns")
        src, rng = ArraySource(frames.reshape((1,) + frames.shape)), (0, stop - start)
    runner = BatchRunner(backend, options, index_offset=0 if isinstance(payload, ScanSource) else start)
    try:
        with closing(runner.iter_ranges(src, [rng])) as it:
            _, tables = next(it)
    finally:
        src.close()
    counts, flat = pack_tables(tables)
    return counts, flat, runner.stats.timings()


@contextmanager
def connect(client: Any = "local") -> Iterator[Any]:
    """A ``distributed.Client`` for ``client``, closed afterwards (with its cluster) if it was opened here.

    Parameters
    ----------
    client : "local", "local-cuda", str, ClusterSpec, distributed.Client or a cluster object
        ``"local"``: ``ClusterSpec()`` (a ``LocalCluster`` of 2 single-threaded worker processes);
        ``"local-cuda"``: ``ClusterSpec(kind="local-cuda")`` (a ``dask_cuda.LocalCUDACluster``, one worker per
        GPU); any other string: the address of a running scheduler (``"tcp://host:8786"``); a
        :class:`~py4dstem_ndpd.engine.clusters.ClusterSpec`: started by
        :func:`~py4dstem_ndpd.engine.clusters.open_client`; a ``Client``: used as is and left open; a cluster
        object (``LocalCluster``, ``SLURMCluster``...): a client is opened on it (the cluster is left running).

    Raises
    ------
    ConfigError
        Unknown ``client`` type, missing optional package, or unreachable scheduler.
    """
    from distributed import Client

    if isinstance(client, Client):
        yield client
        return
    if isinstance(client, str):
        spec = ClusterSpec(kind=client) if client in ("local", "local-cuda") else ClusterSpec(kind="address",
                                                                                             address=client)
        client = spec
    if isinstance(client, ClusterSpec):
        with open_client(client) as c:
            yield c
    elif hasattr(client, "scheduler_address"):
        with Client(client) as c:
            yield c
    else:
        raise ConfigError(
            "client must be 'local', 'local-cuda', a scheduler address, a ClusterSpec, a distributed.Client or a "
            f"cluster object, got {type(client).__name__}"
        )


@dataclass
class DistributedStats:
    """Counters of a distributed run (cumulative over the runs of one :class:`DistributedRunner`).

    Attributes
    ----------
    submitted : int
        Chunk tasks submitted (each missing chunk exactly once; Dask recomputes lost ones by itself).
    completed : int
        Chunk results taken.
    from_checkpoint : int
        Chunks restored from the checkpoint directory.
    max_in_flight : int
        Most chunk tasks submitted and not yet taken at once (``<= chunks_per_worker * n_workers``).
    """

    submitted: int = 0
    completed: int = 0
    from_checkpoint: int = 0
    max_in_flight: int = 0


class DistributedRunner:
    """Runs a backend over a scan on a Dask cluster (see :func:`run_distributed` for the parameters).

    Attributes
    ----------
    stats : DistributedStats
    """

    def __init__(self, backend_cls: Any, backend_params: Mapping[str, Any] | None = None, client: Any = "local",
                 *, options: DistributedOptions | None = None) -> None:
        opts = options if options is not None else DistributedOptions()
        if not isinstance(opts, DistributedOptions):
            raise ConfigError(f"options must be a DistributedOptions, got {type(opts).__name__}")
        if not isinstance(backend_cls, type):
            if backend_params is not None:
                raise ConfigError("give either a backend class with backend_params, or a backend instance alone")
            if not callable(getattr(backend_cls, "params", None)):
                raise ConfigError(f"{type(backend_cls).__name__} has no params(); it cannot be rebuilt on workers")
            backend_params = backend_cls.params()
            backend_cls = type(backend_cls)
        if not callable(getattr(backend_cls, "detect", None)):
            raise ConfigError(f"{backend_cls.__name__} has no detect(frames) method; it is not a backend class")
        self.backend_cls = backend_cls
        self.backend_params = dict(backend_params or {})
        self.client = client
        self.options = opts
        self.stats = DistributedStats()

    def run(self, source: Any) -> ScanPeaks:
        """Detect peaks in every pattern of ``source`` on the cluster."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        opts, stats = self.options, self.stats
        backend_cls, backend_params = self.backend_cls, self.backend_params
        src = as_source(source)
        eng = opts.engine
        n = src.n_positions
        ranges = chunk_ranges(n, eng.chunk_size)
        ckpt, results = resume_checkpoint(src, backend_cls, backend_params, eng, len(ranges))
        todo = [i for i, r in enumerate(results) if r is None]
        stats.from_checkpoint += len(ranges) - len(todo)
        worker_opts = replace(eng, progress=False, checkpoint_dir=None, resume=False)
        if not isinstance(src, (H5Source, DaskSource)):
            log.info("in-memory source: each chunk travels to its worker; give a file path for large scans")
        token = uuid.uuid4().hex[:10]
        timings: Counter = Counter()
        t0 = time.perf_counter()
        bar = progress_bar(n, enabled=eng.progress, initial=n - sum(ranges[i][1] - ranges[i][0] for i in todo))

        with connect(self.client) as c:
            in_flight: dict[Any, int] = {}
            pending = iter(todo)
            ac = as_completed()

            def submit_more() -> None:
                window = opts.chunks_per_worker * max(1, len(c.nthreads()))
                while len(in_flight) < window:
                    i = next(pending, None)
                    if i is None:
                        return
                    a, b = ranges[i]
                    if isinstance(src, H5Source):
                        payload: Any = src  # path + dataset; the worker reads positions a..b itself
                    elif isinstance(src, DaskSource):
                        payload = c.compute(src.lazy(a, b))  # computed on the cluster, handed over there
                    else:
                        payload = src.read(a, b)
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message="Sending large graph")
                        fut = c.submit(_detect_chunk, backend_cls, backend_params, payload, a, b, worker_opts,
                                       key=f"ndpd-chunk-{token}-{i:06d}", resources=opts.resources, pure=False)
                    in_flight[fut] = i
                    ac.add(fut)
                    stats.submitted += 1
                    stats.max_in_flight = max(stats.max_in_flight, len(in_flight))

            try:
                submit_more()
                for fut in ac:
                    i = in_flight.pop(fut)
                    try:
                        counts, flat, t = fut.result()
                    except KilledWorker as e:
                        raise NDPDError(
                            f"chunk {i} (positions {ranges[i][0]}..{ranges[i][1] - 1}) killed its worker "
                            "repeatedly, probably out of memory; lower batch_size or chunk_size, or give workers "
                            "more memory"
                        ) from e
                    fut.release()
                    if results[i] is not None:  # cannot happen with futures; guards "exactly once"
                        raise NDPDError(f"chunk {i} came back twice")
                    tables = unpack_tables(counts, flat)
                    results[i] = tables
                    stats.completed += 1
                    if ckpt is not None:
                        ckpt.save(i, tables)
                    timings.update(t)
                    bar.update(ranges[i][1] - ranges[i][0])
                    submit_more()
            finally:
                if in_flight:
                    c.cancel(list(in_flight))
                bar.close()
                src.close()

        out = {k: float(timings.get(k, 0.0)) for k in ("read", "detect", "postprocess")}
        out["wall"] = time.perf_counter() - t0
        peaks = [t for r in results for t in r]  # type: ignore[union-attr]
        return ScanPeaks(scan_shape=src.scan_shape, peaks=peaks, pattern_shape=src.pattern_shape, timings=out)


def run_distributed(source: Any, backend_cls: Any, backend_params: Mapping[str, Any] | None = None,
                    client: Any = "local", *, options: DistributedOptions | None = None) -> ScanPeaks:
    """Detect Bragg disks in every pattern of a scan on a Dask cluster.

    Parameters
    ----------
    source : numpy.ndarray, dask.array.Array, py4DSTEM.DataCube, h5py.Dataset, str, path-like or ScanSource
        4D scan ``(Rx, Ry, Qx, Qy)``. Give a file (path, h5py dataset, :class:`H5Source`) for large scans: the
        workers then read their own chunks and the data never goes through the client or the scheduler.
    backend_cls : type or backend instance
        The backend class, rebuilt on each worker as ``backend_cls(**backend_params)``, once per worker process.
        A backend instance may be given instead (with ``backend_params=None``): its class and ``params()`` are
        used, the instance itself is not sent.
    backend_params : mapping, optional
        Picklable constructor arguments (e.g. the weights path, which must exist on the workers).
    client : "local", "local-cuda", str, ClusterSpec, distributed.Client or cluster
        Where to run (see :func:`connect`). Default: a local cluster of 2 single-threaded worker processes,
        started and closed here; ``ClusterSpec(n_workers=...)`` for another size.
    options : DistributedOptions, optional
        Chunking, checkpoint/resume, in-flight window, per-worker batching.

    Returns
    -------
    ScanPeaks
        The same tables as :func:`~py4dstem_ndpd.engine.run_scan`, in C order of the scan; ``timings`` sums the
        workers' read/detect/postprocess seconds and adds the client's wall time.

    Raises
    ------
    ConfigError
        Bad options, unknown client, unreachable scheduler, or a checkpoint directory of another run.
    NDPDError
        A chunk killed its worker several times (``distributed.scheduler.allowed-failures``), e.g. out of memory:
        lower ``batch_size`` or ``chunk_size``.

    Notes
    -----
    Scripts that use ``client="local"`` must guard their entry point with ``if __name__ == "__main__":`` (worker
    processes are spawned).
    """
    return DistributedRunner(backend_cls, backend_params, client, options=options).run(source)
