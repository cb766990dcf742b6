"""Dask distribution on a real LocalCluster: same result as the reference, backend built once per worker,
workers read their own chunks of files, bounded submission window, checkpoints shared with run_scan."""
from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import FailingBackend, LocalMaxima, assert_same_peaks

from py4dstem_ndpd.engine import BatchRunner, EngineOptions, H5Source
from py4dstem_ndpd.engine import source as source_module
from py4dstem_ndpd.exceptions import ConfigError

distributed = pytest.importorskip("distributed")
from py4dstem_ndpd.engine.distributed import (  # noqa: E402
    DistributedOptions, DistributedRunner, backend_cache_info, run_distributed)


def _opts(chunks_per_worker=2, **kw):
    eng = EngineOptions(**{"progress": False, "batch_size": 4, "chunk_size": 8, **kw})
    return DistributedOptions(engine=eng, chunks_per_worker=chunks_per_worker)


def _h5_opens(client):
    return sum(client.run(lambda: source_module.H5_OPEN_COUNT).values())


def test_numpy_dask_and_file_sources_give_the_reference(sim, reference, dask_client):
    da = pytest.importorskip("dask.array")
    params = LocalMaxima().params()
    assert_same_peaks(run_distributed(sim.data, LocalMaxima, params, dask_client, options=_opts()), reference)
    lazy = da.from_array(sim.data, chunks=(2, 8, 64, 64))
    assert_same_peaks(run_distributed(lazy, LocalMaxima, params, dask_client, options=_opts()), reference)

    opened_here, opened_there = source_module.H5_OPEN_COUNT, _h5_opens(dask_client)
    res = run_distributed(str(sim.path), LocalMaxima(), client=dask_client, options=_opts(chunk_size=16))
    assert_same_peaks(res, reference)
    assert source_module.H5_OPEN_COUNT == opened_here  # the client never read the patterns...
    assert _h5_opens(dask_client) - opened_there == 4  # ...each of the 4 chunk tasks opened the file on a worker
    assert res.timings["wall"] > 0 and res.timings["detect"] > 0


def test_backend_is_built_once_per_worker(sim, dask_client):
    params = LocalMaxima(min_distance=4).params()
    for _ in range(3):
        run_distributed(sim.data, LocalMaxima, params, dask_client, options=_opts())
    key = ("engine_helpers.LocalMaxima", repr(dict(sorted(params.items()))))
    builds = [info["builds"].get(key, 0) for info in dask_client.run(backend_cache_info).values()]
    assert max(builds) == 1 and sum(builds) >= 1


@pytest.mark.parametrize("per_worker", [1, 3])
def test_submission_window_bounds_chunks_in_flight(sim, reference, dask_client, per_worker):
    runner = DistributedRunner(LocalMaxima, None, dask_client, options=_opts(per_worker, chunk_size=4))
    assert_same_peaks(runner.run(sim.data), reference)
    assert runner.stats.submitted == runner.stats.completed == 16
    assert runner.stats.max_in_flight == per_worker * 2


def test_distributed_resumes_a_run_scan_checkpoint(sim, reference, dask_client, tmp_path):
    ck = tmp_path / "ck"
    BatchRunner(LocalMaxima(), EngineOptions(progress=False, batch_size=4, chunk_size=8, checkpoint_dir=ck)).run(
        sim.data)
    for i in (1, 5):
        (ck / f"chunk-{i:06d}.npz").unlink()
    runner = DistributedRunner(LocalMaxima, {}, dask_client, options=_opts(checkpoint_dir=ck, resume=True))
    assert_same_peaks(runner.run(H5Source(sim.path)), reference)
    assert (runner.stats.from_checkpoint, runner.stats.submitted) == (6, 2)
    assert len(list(ck.glob("chunk-*.npz"))) == 8


def test_worker_errors_reach_the_caller(sim, dask_client):
    poison = float(sim.data[6, 2].max())
    with pytest.raises(ValueError, match="poisoned batch"):
        run_distributed(sim.data, FailingBackend, {"poison": poison}, dask_client, options=_opts())


def test_bad_arguments():
    data = np.zeros((2, 2, 16, 16), np.float32)
    with pytest.raises(ConfigError, match="either a backend class with backend_params, or a backend instance"):
        run_distributed(data, LocalMaxima(), {"sigma": 1.0})
    with pytest.raises(ConfigError, match="not a backend class"):
        run_distributed(data, dict, {})
    with pytest.raises(ConfigError, match="options must be a DistributedOptions"):
        run_distributed(data, LocalMaxima, options=EngineOptions())
    with pytest.raises(ConfigError, match="client must be 'local'"):
        run_distributed(data, LocalMaxima, client=42, options=_opts())


def test_local_cuda_without_dask_cuda_says_what_to_install():
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("dask-cuda is installed")
    with pytest.raises(ConfigError, match="pip install dask-cuda"):
        run_distributed(np.zeros((1, 2, 16, 16)), LocalMaxima, client="local-cuda", options=_opts())
