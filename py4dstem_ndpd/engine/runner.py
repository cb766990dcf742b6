"""Per-process batch runner: stream a scan through a backend, batch after batch, with bounded memory.

Async mode (paper section 3.1, Fig. 5) keeps the model busy: a reader thread reads the next batches into a
bounded queue while the backend runs, and either post-processing runs in a small thread pool while the next batch
goes through the model, or (``lanes > 1``, the NDPD detector's choice on a CPU) several batches go through model
and post-processing at once, one per thread, so that the cores left idle by one batch's single-threaded
post-processing run another batch's model. Results come back in scan order either way. The bounded queue and the
bounded number of batches in flight give back-pressure: at most ``prefetch + 1 + max(lanes, 1 +
postprocess_threads)`` batches of patterns are in memory, however large the scan. Sync mode does the same steps
one after the other.

A backend only needs ``detect(frames) -> list of PEAK_DTYPE tables``. A backend that also has
``infer(frames) -> raw`` and ``postprocess(raw, frames) -> list of tables`` (with ``detect`` equivalent to
``postprocess(infer(frames), frames)``) gets its post-processing (e.g. box decoding, sub-pixel refinement on the
CPU) overlapped with the model call of the next batch. Device transfers (pinned memory, non-blocking copies) are
the backend's business; the runner hands it numpy arrays in the stored dtype.
"""
from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..exceptions import NDPDError
from ..io.validate import check_frames
from ..peaks import PEAK_DTYPE, ScanPeaks, make_peaks
from .checkpoint import Checkpoint, chunk_ranges
from .options import EngineOptions
from .progress import progress_bar
from .source import ScanSource, as_source

log = logging.getLogger(__name__)

_DONE = object()

#: Batch size of ``EngineOptions(batch_size=None)`` for backends without ``preferred_batch_size()``.
DEFAULT_BATCH = 32
#: An automatic batch holds at most this many bytes of float32 patterns (e.g. 64 patterns of 1024 x 1024).
AUTO_BATCH_BYTES = 256 * 2**20


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@dataclass
class EngineStats:
    """What a runner measured (counters, not timings, are what tests rely on).

    Attributes
    ----------
    batches : int
        Batches processed.
    max_alive_batches : int
        Most batches of patterns held in memory at once (read and not yet fully processed). Bounded by
        ``prefetch + 1 + max(lanes, 1 + postprocess_threads)`` in async mode and by 1 in sync mode.
    max_queued : int
        Most batches waiting in the prefetch queue at once (``<= prefetch``).
    max_pending_postprocess : int
        Most batches submitted (to post-processing, or to a lane) and not yet collected, counted just after a
        submission and before the oldest is collected (``<= max(lanes, postprocess_threads + 1)``).
    read_s, detect_s, postprocess_s : float
        Seconds spent reading, in the backend's model call, and post-processing (they overlap in async mode).
    """

    batches: int = 0
    max_alive_batches: int = 0
    max_queued: int = 0
    max_pending_postprocess: int = 0
    read_s: float = 0.0
    detect_s: float = 0.0
    postprocess_s: float = 0.0
    _alive: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _alive_add(self, n: int) -> None:
        with self._lock:
            self._alive += n
            self.max_alive_batches = max(self.max_alive_batches, self._alive)

    def _add_time(self, name: str, dt: float) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + dt)

    def timings(self) -> dict[str, float]:
        """Seconds per stage, as stored in :attr:`ScanPeaks.timings`."""
        return {"read": self.read_s, "detect": self.detect_s, "postprocess": self.postprocess_s}


def check_tables(tables: Any, n: int, backend: Any) -> list[np.ndarray]:
    """Validate a backend's output: ``n`` tables of :data:`PEAK_DTYPE` (structured tables with the same field
    names are converted).

    Raises
    ------
    NDPDError
        Wrong number of tables or a table without ``qx``/``qy`` fields: a bug in the backend.
    """
    name = type(backend).__name__
    if isinstance(tables, np.ndarray) or not hasattr(tables, "__len__") or len(tables) != n:
        got = f"{len(tables)} tables" if hasattr(tables, "__len__") else f"a {type(tables).__name__}"
        raise NDPDError(
            f"{name}.detect returned {got} for {n} frames; a backend must return a list with one PEAK_DTYPE "
            "table per frame"
        )
    out = []
    for t in tables:
        if isinstance(t, np.ndarray) and t.dtype == PEAK_DTYPE:
            out.append(t)
        elif isinstance(t, np.ndarray) and t.dtype.names and {"qx", "qy"} <= set(t.dtype.names):
            f = t.dtype.names
            out.append(make_peaks(t["qx"], t["qy"], t["intensity"] if "intensity" in f else None,
                                  t["confidence"] if "confidence" in f else None))
        else:
            raise NDPDError(
                f"{name}.detect returned a table of {getattr(t, 'dtype', type(t).__name__)}; expected a structured "
                "array of py4dstem_ndpd.peaks.PEAK_DTYPE (build it with make_peaks)"
            )
    return out


def backend_identity(backend_cls: type, params: Any) -> dict[str, str]:
    """Class path and parameters of a backend, as strings (checkpoint manifests, per-worker cache keys).

    Parameters are completed with the constructor's defaults, so ``{}`` and the explicit defaults compare equal.
    """
    if isinstance(params, dict):
        try:
            sig = inspect.signature(backend_cls)
            bound = sig.bind(**params)
            bound.apply_defaults()
            full = dict(bound.arguments)
            for p in sig.parameters.values():
                if p.kind is p.VAR_KEYWORD:
                    full.update(full.pop(p.name, {}))
                elif p.kind is p.VAR_POSITIONAL:
                    full.pop(p.name, None)
            params = full
        except (TypeError, ValueError):  # not bindable: the constructor will say why; keep the params as given
            pass
        params = repr(dict(sorted(params.items())))
    else:
        params = repr(params)
    return {"backend": f"{backend_cls.__module__}.{backend_cls.__qualname__}", "backend_params": params}


def _params_of(backend: Any) -> Any:
    params_fn = getattr(backend, "params", None)
    if not callable(params_fn):
        log.warning("%s has no params(); a checkpoint cannot tell two settings of it apart", type(backend).__name__)
        return None
    return params_fn()


def resume_checkpoint(src, backend_cls: type, params: Any, options, n_chunks: int):
    """Open the checkpoint of a run (if ``options.checkpoint_dir``) and load its finished chunks.

    Returns ``(checkpoint or None, results)`` with ``results[i]`` the tables of chunk ``i`` or None if still to do.
    Shared by :class:`BatchRunner` and the distributed runner, so both write and resume the same format.
    """
    results: list[list[np.ndarray] | None] = [None] * n_chunks
    if options.checkpoint_dir is None:
        return None, results
    identity = {"source": src.fingerprint(), **backend_identity(backend_cls, params)}
    ckpt = Checkpoint(options.checkpoint_dir, identity, n_positions=src.n_positions, chunk_size=options.chunk_size,
                      resume=options.resume)
    for i in sorted(ckpt.done()):
        results[i] = ckpt.load(i)
    return ckpt, results


class BatchRunner:
    """Runs a backend over a scan, batch by batch.

    Parameters
    ----------
    backend : Backend
        Any object with ``detect(frames (N, Qx, Qy)) -> list of PEAK_DTYPE tables``; optionally ``infer`` +
        ``postprocess`` (see the module docstring) and ``params()`` (used to identify checkpoints).
    options : EngineOptions, optional
    index_offset : int
        Flat scan index of the source's first pattern (a Dask chunk handed over as an array starts at its own
        ``start``); error messages about a bad pattern give ``index_offset`` plus its index in the source.

    Attributes
    ----------
    stats : EngineStats
        Counters and timings of the runs made with this runner (cumulative).
    """

    def __init__(self, backend: Any, options: EngineOptions | None = None, *, index_offset: int = 0) -> None:
        if not callable(getattr(backend, "detect", None)):
            raise NDPDError(f"{type(backend).__name__} has no detect(frames) method; it is not a backend")
        self.backend = backend
        self.options = options if options is not None else EngineOptions()
        self.index_offset = int(index_offset)
        self.stats = EngineStats()
        self._split = callable(getattr(backend, "infer", None)) and callable(getattr(backend, "postprocess", None))

    # -- one batch -----------------------------------------------------------------------------------------------
    def _model(self, frames: np.ndarray) -> Any:
        t = time.perf_counter()
        out = self.backend.infer(frames) if self._split else self.backend.detect(frames)
        self.stats._add_time("detect_s", time.perf_counter() - t)
        return out

    def _post(self, raw: Any, frames: np.ndarray) -> list[np.ndarray]:
        t = time.perf_counter()
        tables = self.backend.postprocess(raw, frames) if self._split else raw
        tables = check_tables(tables, len(frames), self.backend)
        self.stats._add_time("postprocess_s", time.perf_counter() - t)
        return tables

    def _whole(self, frames: np.ndarray) -> list[np.ndarray]:
        return self._post(self._model(frames), frames)

    def batch_size(self, pattern_shape: Sequence[int] | None = None) -> int:
        """Patterns per batch: ``options.batch_size``, else the backend's ``preferred_batch_size()`` (else
        :data:`DEFAULT_BATCH`), capped so that one batch of float32 patterns of ``pattern_shape`` (Qx, Qy) stays
        below :data:`AUTO_BATCH_BYTES`."""
        if self.options.batch_size is not None:
            return int(self.options.batch_size)
        pref = getattr(self.backend, "preferred_batch_size", None)
        bs = max(1, int(pref())) if callable(pref) else DEFAULT_BATCH
        if pattern_shape is not None:
            per = 4 * int(np.prod([int(n) for n in pattern_shape]))
            bs = min(bs, max(1, AUTO_BATCH_BYTES // max(per, 1)))
        return bs

    def lanes(self) -> int:
        """Batches the async mode runs at once: ``options.lanes``, else ``backend.default_lanes()``, else 1."""
        if self.options.lanes is not None:
            return int(self.options.lanes)
        default = getattr(self.backend, "default_lanes", None)
        return max(1, int(default())) if callable(default) else 1

    def _read(self, source: ScanSource, a: int, b: int) -> np.ndarray:
        t = time.perf_counter()
        frames = source.read(a, b)
        check_frames(frames, first_index=self.index_offset + a)  # NaN/Inf/dtype errors name the scan position
        self.stats._add_time("read_s", time.perf_counter() - t)
        return frames

    # -- batch streams (both yield (item, tables) in plan order) -----------------------------------------------
    def _sync(self, source: ScanSource, plan: Sequence[tuple[int, int, int]]) -> Iterator[tuple[tuple, list]]:
        for item in plan:
            self.stats._alive_add(1)
            frames = self._read(source, item[1], item[2])
            tables = self._post(self._model(frames), frames)
            del frames
            self.stats._alive_add(-1)
            self.stats.batches += 1
            yield item, tables

    def _async(self, source: ScanSource, plan: Sequence[tuple[int, int, int]]) -> Iterator[tuple[tuple, list]]:
        opts = self.options
        q: queue.Queue = queue.Queue(maxsize=opts.prefetch)
        stop = threading.Event()

        def put(obj) -> bool:
            while not stop.is_set():
                try:
                    q.put(obj, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def reader() -> None:
            try:
                for item in plan:
                    if stop.is_set():
                        return
                    self.stats._alive_add(1)
                    frames = self._read(source, item[1], item[2])
                    if not put((item, frames)):
                        return
                    with self.stats._lock:
                        self.stats.max_queued = max(self.stats.max_queued, q.qsize())
                put(_DONE)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
                put(_Failure(e))

        thread = threading.Thread(target=reader, name="ndpd-reader", daemon=True)
        lanes = self.lanes()
        if lanes > 1:  # whole batches (model + post-processing) in `lanes` threads at once
            pool = ThreadPoolExecutor(lanes, "ndpd-lane")
            in_flight = lanes
        else:  # the model here, post-processing in a small pool
            pool = ThreadPoolExecutor(opts.postprocess_threads, "ndpd-post") if opts.postprocess_threads else None
            in_flight = opts.postprocess_threads + 1
        pending: deque = deque()
        lane_context = getattr(self.backend, "lanes", None)
        threads = lane_context(lanes) if lanes > 1 and callable(lane_context) else nullcontext()

        def collect_oldest():
            item, fut = pending.popleft()
            tables = fut.result() if pool is not None else fut
            self.stats._alive_add(-1)
            self.stats.batches += 1
            return item, tables

        thread.start()
        threads.__enter__()
        try:
            while True:
                try:
                    got = q.get(timeout=0.02)
                except queue.Empty:
                    # Reading is the bottleneck: hand over finished batches instead of holding them.
                    while pending and (pool is None or pending[0][1].done()):
                        yield collect_oldest()
                    continue
                if got is _DONE:
                    break
                if isinstance(got, _Failure):
                    raise got.exc
                item, frames = got
                if lanes > 1:
                    pending.append((item, pool.submit(self._whole, frames)))
                else:
                    raw = self._model(frames)
                    if pool is not None:
                        pending.append((item, pool.submit(self._post, raw, frames)))
                    else:
                        pending.append((item, self._post(raw, frames)))
                    del raw
                del frames, got
                self.stats.max_pending_postprocess = max(self.stats.max_pending_postprocess, len(pending))
                while len(pending) >= in_flight:
                    yield collect_oldest()
            while pending:
                yield collect_oldest()
        finally:
            stop.set()
            while True:  # unblock a reader waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
            thread.join(timeout=60)
            if thread.is_alive():  # a read that does not return (e.g. a hung network filesystem)
                log.warning("the reader thread is still blocked in a read; leaving it behind (daemon thread)")
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            threads.__exit__(None, None, None)

    # -- public ----------------------------------------------------------------------------------------------------
    def iter_ranges(self, source: Any, ranges: Sequence[tuple[int, int]],
                    on_batch: Callable[[int], None] | None = None) -> Iterator[tuple[int, list[np.ndarray]]]:
        """Detect peaks in flat position ranges of a scan, yielding each range as soon as it is complete.

        Parameters
        ----------
        source : ScanSource or anything :func:`~py4dstem_ndpd.engine.source.as_source` accepts
        ranges : sequence of (start, stop)
            Flat position ranges (C order of the scan); batches never straddle two ranges.
        on_batch : callable, optional
            Called with the number of patterns of each finished batch (progress bars).

        Yields
        ------
        (int, list of numpy.ndarray)
            Index into ``ranges`` and its ``stop - start`` peak tables, in the order of ``ranges``.
        """
        src = as_source(source)
        bs = self.batch_size(src.pattern_shape)
        plan = [(k, a, min(a + bs, stop)) for k, (start, stop) in enumerate(ranges) for a in range(start, stop, bs)]
        acc: dict[int, list[np.ndarray]] = {}
        for k, (start, stop) in enumerate(ranges):
            if stop <= start:
                yield k, []
        stream = self._sync(src, plan) if self.options.mode == "sync" else self._async(src, plan)
        with closing(stream):
            for (k, a, b), tables in stream:
                got = acc.setdefault(k, [])
                got.extend(tables)
                if on_batch is not None:
                    on_batch(b - a)
                start, stop = ranges[k]
                if len(got) == stop - start:
                    yield k, acc.pop(k)

    def run(self, source: Any) -> ScanPeaks:
        """Detect peaks in every pattern of a scan (see :func:`run_scan`)."""
        src = as_source(source)
        opts = self.options
        n = src.n_positions
        ranges = chunk_ranges(n, opts.chunk_size)
        ckpt, results = (None, [None] * len(ranges)) if opts.checkpoint_dir is None else resume_checkpoint(
            src, type(self.backend), _params_of(self.backend), opts, len(ranges))
        todo = [i for i, r in enumerate(results) if r is None]
        n_done = n - sum(ranges[i][1] - ranges[i][0] for i in todo)
        if ckpt is not None:
            log.info("checkpoint %s: %d of %d chunks done, computing %d", ckpt.directory, len(ranges) - len(todo),
                     len(ranges), len(todo))
        t0 = time.perf_counter()
        before = self.stats.timings()
        bar = progress_bar(n, enabled=opts.progress, initial=n_done)
        try:
            with closing(self.iter_ranges(src, [ranges[i] for i in todo], on_batch=bar.update)) as it:
                for k, tables in it:
                    i = todo[k]
                    results[i] = tables
                    if ckpt is not None:
                        ckpt.save(i, tables)
        finally:
            bar.close()
            src.close()
        timings = {k: v - before[k] for k, v in self.stats.timings().items()}
        timings["wall"] = time.perf_counter() - t0
        peaks = [t for r in results for t in r]  # type: ignore[union-attr]
        return ScanPeaks(scan_shape=src.scan_shape, peaks=peaks, pattern_shape=src.pattern_shape, timings=timings)


def run_scan(source: Any, backend: Any, *, options: EngineOptions | None = None) -> ScanPeaks:
    """Detect Bragg disks in every pattern of a scan, in this process.

    Parameters
    ----------
    source : numpy.ndarray, dask.array.Array, py4DSTEM.DataCube, h5py.Dataset, str, path-like or ScanSource
        4D scan ``(Rx, Ry, Qx, Qy)``; files (HDF5/EMD) and Dask arrays are read batch by batch, never whole.
    backend : Backend
        Object with ``detect(frames (N, Qx, Qy)) -> list of PEAK_DTYPE tables`` (see
        :mod:`py4dstem_ndpd.backend`).
    options : EngineOptions, optional
        Batch size, sync/async, prefetch depth, progress bar, chunking and checkpoint/resume.

    Returns
    -------
    ScanPeaks
        One PEAK_DTYPE table per position in C order of the scan (qx row, qy column in pixels); ``timings`` holds
        seconds spent reading, in the model, post-processing, and the wall time (``"wall"``).

    Raises
    ------
    InputError
        The source is not a readable 4D real-valued scan.
    ConfigError
        The checkpoint directory holds another run, or holds a run and ``resume`` is False.
    NDPDError
        The backend returned something other than one PEAK_DTYPE table per frame.

    Examples
    --------
    >>> import numpy as np
    >>> from py4dstem_ndpd.peaks import make_peaks
    >>> class Brightest:
    ...     def detect(self, frames):
    ...         return [make_peaks(*np.unravel_index(f.argmax(), f.shape)) for f in frames]
    ...     def params(self):
    ...         return {}
    >>> data = np.zeros((2, 3, 8, 8), dtype=np.float32); data[..., 2, 5] = 1
    >>> peaks = run_scan(data, Brightest(), options=EngineOptions(batch_size=4, progress=False))
    >>> peaks.at(1, 2)[["qx", "qy"]].tolist()
    [(2.0, 5.0)]
    """
    return BatchRunner(backend, options).run(source)
