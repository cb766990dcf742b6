"""The per-process runner: sync == async == reference, scan order, bounded memory, errors surface."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from engine_helpers import FailingBackend, LocalMaxima, LocalMaximaDetectOnly, assert_same_peaks

from py4dstem_ndpd.engine import ArraySource, BatchRunner, EngineOptions, H5Source, run_scan
from py4dstem_ndpd.exceptions import NDPDError
from py4dstem_ndpd.peaks import PEAK_DTYPE


def _opts(**kw):
    return EngineOptions(**{"progress": False, **kw})


@pytest.mark.parametrize("backend_cls", [LocalMaxima, LocalMaximaDetectOnly])
@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "sync", "batch_size": 8},
        {"mode": "async", "batch_size": 5, "chunk_size": 16},  # batches cut at chunk ends
        {"mode": "async", "batch_size": 64, "postprocess_threads": 0},
        {"mode": "async", "batch_size": 3, "prefetch": 1, "postprocess_threads": 2},
        {"mode": "async", "batch_size": 4, "lanes": 3, "chunk_size": 16},  # whole batches in 3 threads at once
    ],
)
def test_modes_give_the_reference_result(sim, reference, backend_cls, kw):
    res = run_scan(sim.data, backend_cls(), options=_opts(**kw))
    assert res.scan_shape == (8, 8) and res.pattern_shape == (64, 64)
    assert_same_peaks(res, reference)
    assert res.n_peaks > 64  # several disks per pattern
    assert set(res.timings) == {"read", "detect", "postprocess", "wall"}


def test_streaming_from_the_emd_file_gives_the_reference_result(sim, reference):
    assert_same_peaks(run_scan(str(sim.path), LocalMaxima(), options=_opts(batch_size=6, chunk_size=20)), reference)


def test_positions_land_in_scan_order():
    # one bright pixel per pattern, at a place that encodes the flat position k = rx * Ry + ry
    Rx, Ry = 3, 5
    data = np.zeros((Rx, Ry, 32, 32), np.float32)
    for k in range(Rx * Ry):
        data[k // Ry, k % Ry, 3 + 2 * k, 30 - k] = 100.0
    for mode in ("sync", "async"):
        res = run_scan(data, LocalMaxima(sigma=0.5), options=_opts(mode=mode, batch_size=4, chunk_size=6))
        for rx in range(Rx):
            for ry in range(Ry):
                k = rx * Ry + ry
                top = res.at(rx, ry)[0]
                assert (top["qx"], top["qy"]) == (3 + 2 * k, 30 - k)


class _CountingSource(ArraySource):
    """Counts batch reads; the model may wait on the count (deterministic back-pressure check)."""

    def __init__(self, array):
        super().__init__(array)
        self.reads = 0
        self.changed = threading.Condition()

    def read(self, start, stop):
        out = super().read(start, stop)
        with self.changed:
            self.reads += 1
            self.changed.notify_all()
        return out


@pytest.mark.parametrize("n_rx", [4, 16])
def test_async_memory_bound_does_not_grow_with_the_scan(n_rx):
    data = np.random.default_rng(1).random((n_rx, 8, 32, 32), dtype=np.float32)
    runner = BatchRunner(LocalMaxima(delay_s=0.001), _opts(batch_size=4, prefetch=2, postprocess_threads=1))
    runner.run(data)
    s = runner.stats
    assert s.batches == n_rx * 8 // 4
    assert s.max_queued <= 2
    assert s.max_pending_postprocess <= 1 + 1
    assert s.max_alive_batches <= 2 + 2 + 1  # prefetch + reader + model + post-processing


def test_lanes_bound_the_batches_in_flight():
    data = np.random.default_rng(4).random((16, 8, 32, 32), dtype=np.float32)
    runner = BatchRunner(LocalMaxima(delay_s=0.002), _opts(batch_size=4, prefetch=2, lanes=3))
    assert runner.lanes() == 3
    runner.run(data)
    s = runner.stats
    assert s.batches == 32
    assert 2 <= s.max_pending_postprocess <= 3  # the lanes were used at once, never more than 3
    assert s.max_alive_batches <= 2 + 1 + 3  # prefetch + reader + lanes
    assert BatchRunner(LocalMaxima(), _opts()).lanes() == 1  # a backend without default_lanes() gets one


def test_reader_stops_at_the_prefetch_bound():
    """While the model is stalled, the reader reads prefetch + 1 batches ahead and no more (back-pressure)."""
    prefetch = 3
    src = _CountingSource(np.random.default_rng(2).random((16, 8, 16, 16), dtype=np.float32))  # 32 batches
    seen = []

    class Stalling(LocalMaximaDetectOnly):
        def detect(self, frames):
            if not seen:
                with src.changed:
                    assert src.changed.wait_for(lambda: src.reads >= prefetch + 2, timeout=20)
                time.sleep(0.3)  # the reader would race through all 32 batches here if the queue were unbounded
                seen.append(src.reads)
            return super().detect(frames)

    runner = BatchRunner(Stalling(), _opts(batch_size=4, prefetch=prefetch))
    res = runner.run(src)
    assert seen == [prefetch + 2]  # 1 in the model, `prefetch` queued, 1 read and waiting to be queued
    assert runner.stats.max_alive_batches <= prefetch + 2 + 1
    assert len(res.peaks) == 128


def test_sync_mode_holds_one_batch():
    runner = BatchRunner(LocalMaxima(), _opts(mode="sync", batch_size=4))
    runner.run(np.random.default_rng(3).random((4, 4, 16, 16), dtype=np.float32))
    assert runner.stats.max_alive_batches == 1


def _reader_threads():
    return [t for t in threading.enumerate() if t.name == "ndpd-reader"]


def test_backend_error_surfaces_and_threads_stop(sim):
    poison = float(sim.data[3, 5].max())
    with pytest.raises(ValueError, match="poisoned batch"):
        run_scan(sim.data, FailingBackend(poison=poison), options=_opts(batch_size=4, prefetch=2))
    assert not _reader_threads()
    with pytest.raises(ValueError, match="poisoned batch"):  # raised in a lane thread
        run_scan(sim.data, FailingBackend(poison=poison), options=_opts(batch_size=4, prefetch=2, lanes=2))
    assert not _reader_threads()
    assert not [t for t in threading.enumerate() if t.name.startswith("ndpd-lane")]


def test_read_error_surfaces_and_threads_stop(sim):
    class Broken(ArraySource):
        def _read_block(self, rx, ry0, ry1):
            if rx == 5:
                raise OSError("disk gone")
            return super()._read_block(rx, ry0, ry1)

    with pytest.raises(OSError, match="disk gone"):
        run_scan(Broken(sim.data), LocalMaxima(), options=_opts(batch_size=4))
    assert not _reader_threads()


def test_bad_backend_output_is_an_error():
    data = np.zeros((2, 2, 16, 16), np.float32)

    class TooFew:
        def detect(self, frames):
            return [np.zeros(0, PEAK_DTYPE)]

    class Unstructured:
        def detect(self, frames):
            return [np.zeros((0, 4)) for _ in frames]

    class FieldsOnly:
        def detect(self, frames):
            return [np.array([(1.5, 2.5)], dtype=[("qx", "f8"), ("qy", "f8")]) for _ in frames]

    with pytest.raises(NDPDError, match="TooFew.detect returned 1 tables for 4 frames"):
        run_scan(data, TooFew(), options=_opts(batch_size=4))
    with pytest.raises(NDPDError, match="expected a structured array of py4dstem_ndpd.peaks.PEAK_DTYPE"):
        run_scan(data, Unstructured(), options=_opts(batch_size=4, mode="sync"))
    res = run_scan(data, FieldsOnly(), options=_opts(batch_size=3))
    assert res.at(1, 1).dtype == PEAK_DTYPE and res.at(1, 1)["qy"][0] == 2.5 and res.at(1, 1)["confidence"][0] == 1
    with pytest.raises(NDPDError, match="has no detect"):
        BatchRunner(object())


def test_progress_bar_shows_rate(sim, capsys):
    run_scan(sim.data, LocalMaxima(), options=EngineOptions(batch_size=16, progress=True))
    err = capsys.readouterr().err
    assert "64/64" in err and "pattern/s" in err


def test_h5_source_is_closed_after_a_run(sim):
    src = H5Source(sim.path)
    run_scan(src, LocalMaxima(), options=_opts(batch_size=32))
    assert src._file is None


class _BatchRecorder(LocalMaximaDetectOnly):
    """Records the size of every batch it gets; optionally prefers a batch size."""

    def __init__(self, preferred: int | None = None) -> None:
        super().__init__()
        self.sizes: list[int] = []
        if preferred is not None:
            self.preferred_batch_size = lambda: preferred

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        self.sizes.append(len(frames))
        return super().detect(frames)


def test_automatic_batch_size_comes_from_the_backend_and_is_capped_by_pattern_memory():
    from py4dstem_ndpd.engine.runner import AUTO_BATCH_BYTES, DEFAULT_BATCH

    data = np.random.default_rng(0).poisson(2.0, (5, 20, 16, 16)).astype(np.float32)
    for preferred, want in ((None, DEFAULT_BATCH), (12, 12)):
        b = _BatchRecorder(preferred)
        run_scan(data, b, options=EngineOptions(progress=False, mode="sync"))
        assert max(b.sizes) == want and sum(b.sizes) == 100
    b = _BatchRecorder(12)
    run_scan(data, b, options=EngineOptions(batch_size=7, progress=False, mode="sync"))
    assert max(b.sizes) == 7  # an explicit batch size wins
    runner = BatchRunner(_BatchRecorder(256), EngineOptions(progress=False))
    big = (2048, 2048)  # 16 MB per float32 pattern
    assert runner.batch_size(big) == AUTO_BATCH_BYTES // (4 * 2048 * 2048) == 16
    assert runner.batch_size((64, 64)) == 256
