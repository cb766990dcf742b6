"""A worker process killed mid-run: Dask recomputes its chunks and every pattern appears exactly once."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

import psutil
import pytest
from engine_helpers import LocalMaxima, assert_same_peaks

from py4dstem_ndpd.engine import EngineOptions

distributed = pytest.importorskip("distributed")
from py4dstem_ndpd.engine.distributed import DistributedOptions, DistributedRunner  # noqa: E402


def test_killing_a_worker_mid_run_loses_nothing(sim, reference):
    opts = DistributedOptions(engine=EngineOptions(progress=False, batch_size=4, chunk_size=8), chunks_per_worker=2)
    # 8 chunks of 8 patterns, 0.03 s per pattern: each chunk runs ~0.25 s, the run lasts well over a second
    runner = DistributedRunner(LocalMaxima, {"delay_s": 0.03}, None, options=opts)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as client:
        runner.client = client
        pids = client.run(os.getpid)
        victim = sorted(pids)[0]
        out: dict = {}

        def run():
            try:
                out["result"] = runner.run(str(sim.path))
            except BaseException as e:  # noqa: BLE001 - re-raised below
                out["error"] = e

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 60
        while not any(str(k).startswith("ndpd-chunk") for k in client.processing(workers=[victim])[victim]):
            assert time.monotonic() < deadline, "the victim never received a chunk"
            time.sleep(0.01)
        running_when_killed = thread.is_alive() and runner.stats.completed < 8
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(120)
        assert not thread.is_alive()
        lost = client.run_on_scheduler(_chunks_lost_with_a_worker)
    if "error" in out:
        raise out["error"]
    assert running_when_killed
    assert not psutil.pid_exists(pids[victim]) or psutil.Process(pids[victim]).status() == psutil.STATUS_ZOMBIE
    assert_same_peaks(out["result"], reference)
    assert lost  # the scheduler took chunks back from the dead worker...
    assert runner.stats.submitted == runner.stats.completed == 8  # ...and recomputed them; each taken once


def _chunks_lost_with_a_worker(dask_scheduler):
    """Chunk tasks the scheduler moved from 'processing' back to 'released' when a worker disappeared."""
    return [ev[0] for ev in dask_scheduler.transition_log
            if str(ev[0]).startswith("ndpd-chunk") and ev[1] == "processing" and ev[2] == "released"
            and "worker-cleanup" in str(ev[4])]
