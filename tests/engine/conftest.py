"""Fixtures of the engine tests: a small simulated scan on disk and in memory, a real peak finder, a Dask cluster."""
from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import LocalMaxima

SCAN_SHAPE = (8, 8)
PATTERN_SHAPE = (64, 64)


@pytest.fixture(scope="session")
def sim(tmp_path_factory):
    """A simulated Si/SiGe scan, 8 x 8 positions of 64 x 64 px: ``.data`` (uint32 array) and ``.path`` (EMD file
    written by ``save_scan``)."""
    from py4dstem_ndpd.synth import Acquisition, save_scan, simulate_preset

    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=SCAN_SHAPE, pattern_shape=PATTERN_SHAPE,
                                                             dose=1e5, seed=11))
    path = save_scan(tmp_path_factory.mktemp("engine") / "scan.emd", scan)

    class Sim:
        pass

    s = Sim()
    s.data = np.asarray(scan.datacube.data)
    s.path = path
    s.datacube = scan.datacube
    return s


@pytest.fixture(scope="session")
def reference(sim):
    """Peak tables of every pattern found by calling the backend on each frame alone (no engine involved)."""
    backend = LocalMaxima()
    frames = sim.data.reshape((-1,) + PATTERN_SHAPE)
    return [backend.detect(f[None])[0] for f in frames]


@pytest.fixture(scope="session")
def dask_client():
    """A real LocalCluster: 2 worker processes, 1 thread each."""
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        yield client
