"""Checkpoints: atomic chunk files, refusal of foreign or unrequested reuse, resume after a killed process."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import LocalMaxima, assert_same_peaks

from py4dstem_ndpd.engine import BatchRunner, EngineOptions
from py4dstem_ndpd.engine.checkpoint import pack_tables, unpack_tables
from py4dstem_ndpd.exceptions import ConfigError
from py4dstem_ndpd.peaks import PEAK_DTYPE, make_peaks

REPO = Path(__file__).resolve().parents[2]


def _opts(ckpt, **kw):
    return EngineOptions(**{"progress": False, "batch_size": 4, "chunk_size": 8, "checkpoint_dir": ckpt, **kw})


def test_pack_unpack_roundtrip_with_empty_tables():
    tables = [make_peaks([1, 2], [3, 4]), np.zeros(0, PEAK_DTYPE), make_peaks([5.5], [6.5], [7], [0.5])]
    counts, flat = pack_tables(tables)
    assert counts.tolist() == [2, 0, 1] and flat.dtype == PEAK_DTYPE
    back = unpack_tables(counts, flat)
    for a, b in zip(back, tables):
        np.testing.assert_array_equal(a, b)
    assert unpack_tables(*pack_tables([])) == []


def test_checkpointed_run_writes_every_chunk_and_resumes_without_work(sim, reference, tmp_path):
    ck = tmp_path / "ck"
    assert_same_peaks(BatchRunner(LocalMaxima(), _opts(ck)).run(sim.data), reference)
    manifest = json.loads((ck / "manifest.json").read_text())
    assert manifest["n_chunks"] == 8 and manifest["chunk_size"] == 8
    assert manifest["identity"]["backend"] == "engine_helpers.LocalMaxima"
    assert sorted(p.name for p in ck.glob("chunk-*.npz")) == [f"chunk-{i:06d}.npz" for i in range(8)]
    assert not list(ck.glob(".*tmp"))

    with pytest.raises(ConfigError, match="already holds a checkpoint; pass resume=True"):
        BatchRunner(LocalMaxima(), _opts(ck)).run(sim.data)

    again = BatchRunner(LocalMaxima(), _opts(ck, resume=True, mode="sync"))
    assert_same_peaks(again.run(str(sim.path)), reference)  # same data from the file: same fingerprint
    assert again.stats.batches == 0


def test_resume_refuses_another_run(sim, tmp_path):
    ck = tmp_path / "ck"
    BatchRunner(LocalMaxima(), _opts(ck)).run(sim.data)
    with pytest.raises(ConfigError, match="different run .*identity.backend_params; was .*'sigma': 1.0.*now "
                                          ".*'sigma': 2.0"):
        BatchRunner(LocalMaxima(sigma=2.0), _opts(ck, resume=True)).run(sim.data)
    other = sim.data.copy()
    other[0, 0] += 1
    with pytest.raises(ConfigError, match="different run .*identity.source"):
        BatchRunner(LocalMaxima(), _opts(ck, resume=True)).run(other)
    with pytest.raises(ConfigError, match="different run .*chunk_size"):
        BatchRunner(LocalMaxima(), _opts(ck, resume=True, chunk_size=16)).run(sim.data)


def test_corrupt_or_missing_chunks_are_recomputed(sim, reference, tmp_path, caplog):
    ck = tmp_path / "ck"
    BatchRunner(LocalMaxima(), _opts(ck)).run(sim.data)
    (ck / "chunk-000003.npz").write_bytes(b"truncated")
    (ck / "chunk-000006.npz").unlink()
    runner = BatchRunner(LocalMaxima(), _opts(ck, resume=True))
    assert_same_peaks(runner.run(sim.data), reference)
    assert runner.stats.batches == 2 * 2  # two chunks of two batches
    assert "chunk-000003.npz is unreadable" in caplog.text


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from engine_helpers import LocalMaxima
    from py4dstem_ndpd.engine import ArraySource, EngineOptions, run_scan

    class Hanging(ArraySource):
        # batch reads hang for good from flat position HANG_AT on (the single-pattern reads of the checkpoint
        # fingerprint do not): the run is stuck until it is killed
        def read(self, start, stop):
            if stop - start > 1 and stop > HANG_AT:
                time.sleep(600)
            return super().read(start, stop)

    HANG_AT = int(sys.argv[3])
    data = np.load(sys.argv[1])
    run_scan(Hanging(data), LocalMaxima(), options=EngineOptions(
        batch_size=4, chunk_size=8, progress=False, checkpoint_dir=sys.argv[2], mode="async"))
    """
)


def test_resume_after_the_process_was_killed(sim, reference, tmp_path):
    np.save(tmp_path / "scan.npy", sim.data)
    ck = tmp_path / "ck"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent)])}
    hang_at = 24  # chunks 0, 1, 2 (positions 0..23) can finish; the read of position 24 never returns
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "scan.npy"), str(ck), str(hang_at)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while len(list(ck.glob("chunk-*.npz"))) < 3:
            assert child.poll() is None, child.stdout.read().decode()
            assert time.monotonic() < deadline, "the child never wrote its first chunks"
            time.sleep(0.05)
        assert child.poll() is None  # still running: we interrupt it mid-run
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    done = sorted(p.name for p in ck.glob("chunk-*.npz"))
    assert done == ["chunk-000000.npz", "chunk-000001.npz", "chunk-000002.npz"]

    runner = BatchRunner(LocalMaxima(), _opts(ck, resume=True))
    assert_same_peaks(runner.run(sim.data), reference)
    assert runner.stats.batches == (8 - 3) * 2  # only the missing chunks were computed
    assert len(list(ck.glob("chunk-*.npz"))) == 8


def test_a_run_that_finished_no_chunk_does_not_block_the_next(sim, reference, tmp_path):
    """A cluster that never started (dask-cuda missing) leaves only a manifest: the retry needs no resume=True."""
    pytest.importorskip("distributed")
    try:
        import dask_cuda  # noqa: F401
        pytest.skip("dask-cuda is installed here, so a local-cuda cluster would start")
    except ImportError:
        pass
    from py4dstem_ndpd.engine import DistributedOptions, run_distributed
    from py4dstem_ndpd.exceptions import NDPDError

    ck = tmp_path / "ck"
    with pytest.raises(NDPDError, match="dask.cuda|dask_cuda"):
        run_distributed(sim.data, LocalMaxima, {}, "local-cuda", options=DistributedOptions(engine=_opts(ck)))
    assert (ck / "manifest.json").exists() and not list(ck.glob("chunk-*.npz"))
    assert_same_peaks(BatchRunner(LocalMaxima(), _opts(ck)).run(sim.data), reference)
    assert len(list(ck.glob("chunk-*.npz"))) == 8
