"""The engine with the real neural backend (NDPDBackend, CPU): sync == async == distributed, per worker one model.

Uses the shipped weights, or the file named by the environment variable ``NDPD_TEST_WEIGHTS``; skipped when
neither is available.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from engine_helpers import assert_same_peaks

from py4dstem_ndpd.engine import BatchRunner, EngineOptions
from py4dstem_ndpd.exceptions import ModelLoadError

BATCH = 8


@pytest.fixture(scope="module")
def ndpd():
    pytest.importorskip("torch")
    from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend

    weights = os.environ.get("NDPD_TEST_WEIGHTS") or None
    try:
        return NDPDBackend(weights, DetectOptions(device="cpu", batch_size=BATCH, refine="none"))
    except ModelLoadError as e:
        pytest.skip(f"no detector weights: {e}")


@pytest.fixture(scope="module")
def scan128():
    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(4, 4), pattern_shape=(128, 128),
                                                             dose=1e6, seed=5))
    return np.asarray(scan.datacube.data)


def test_ndpd_sync_async_distributed_agree(ndpd, scan128, dask_client):
    from py4dstem_ndpd.engine.distributed import DistributedOptions, DistributedRunner, backend_cache_info

    # NDPDBackend measures the disk radius per batch, so all runs use the same batches (chunk = 1 batch).
    eng = EngineOptions(batch_size=BATCH, chunk_size=BATCH, progress=False)
    sync = BatchRunner(ndpd, EngineOptions(batch_size=BATCH, chunk_size=BATCH, mode="sync", progress=False)).run(
        scan128)
    assert sync.n_peaks >= 16  # at least the direct beam everywhere
    reference = sync.peaks
    import torch

    threads = torch.get_num_threads()
    lanes = BatchRunner(ndpd, eng)
    assert lanes.lanes() == (2 if threads >= 2 else 1)  # on a CPU: two batches at once, one per thread
    got = lanes.run(scan128)
    assert torch.get_num_threads() == threads  # restored after the run
    for a, b in zip(got.peaks, reference):  # one torch thread per lane: allow float rounding of the kernels
        assert len(a) == len(b)
        for f in ("qx", "qy", "confidence"):
            np.testing.assert_allclose(a[f], b[f], atol=1e-3)
    one = BatchRunner(ndpd, EngineOptions(batch_size=BATCH, chunk_size=BATCH, lanes=1, progress=False))
    assert_same_peaks(one.run(scan128), reference)

    runner = DistributedRunner(ndpd, None, dask_client, options=DistributedOptions(engine=eng))
    res = runner.run(scan128)
    for got, want in zip(res.peaks, reference):  # other processes: allow float rounding of torch kernels
        assert len(got) == len(want)
        for f in ("qx", "qy", "confidence"):
            np.testing.assert_allclose(got[f], want[f], atol=1e-3)
    key_cls = "py4dstem_ndpd.detect.backend.NDPDBackend"
    builds = [n for info in dask_client.run(backend_cache_info).values() for (cls, _), n in info["builds"].items()
              if cls == key_cls]
    assert builds and max(builds) == 1
    if sys.platform.startswith("linux"):  # the workers reuse large buffers despite the nanny's malloc setting
        from py4dstem_ndpd._allocator import large_buffers_kept

        assert all(dask_client.run(large_buffers_kept).values())


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_overlapping_runs_share_the_lane_threads_and_restore_them(ndpd):
    import torch

    before, blas_before = torch.get_num_threads(), _blas_threads()
    first, second = ndpd.lanes(2), ndpd.lanes(2)
    first.__enter__()
    inside = torch.get_num_threads()
    assert inside == max(1, before // 2)
    assert all(n == max(1, before // 2) for n in _blas_threads())  # BLAS gets the same share as torch
    second.__enter__()
    first.__exit__(None, None, None)
    assert torch.get_num_threads() == inside  # the second run is still going
    second.__exit__(None, None, None)
    assert torch.get_num_threads() == before
    assert _blas_threads() == blas_before
