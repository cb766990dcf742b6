"""The same input, weights and options give bit-identical BraggVectors on the CPU, run after run (same engine
mode, cached or freshly built backend).

Bit-identity holds for a given torch thread count: float reductions in the network differ in the last bit
(~4e-6 px) between thread counts (measured; see docs/input-formats.md). The async engine's lanes run the network
on a share of the threads each (one on a 2-core CPU), so it is compared with itself, and sync with one lane. Across processes, fix the count
(``OMP_NUM_THREADS`` or ``torch.set_num_threads``); tests/io/test_io_cli.py checks identical results across
processes that way.
"""
from __future__ import annotations

import numpy as np
import py4DSTEM

from py4dstem_ndpd import find_Bragg_disks
from py4dstem_ndpd.bridge import to_braggvectors
from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend
from py4dstem_ndpd.engine import EngineOptions, run_scan
from py4dstem_ndpd.io.readers import load_input


def _assert_identical(a, b):
    assert a.Rshape == b.Rshape
    n = 0
    for rx in range(a.Rshape[0]):
        for ry in range(a.Rshape[1]):
            da, db = a.raw[rx, ry].data, b.raw[rx, ry].data
            assert da.dtype == db.dtype
            np.testing.assert_array_equal(da, db)  # exact: every field of every peak
            n += da.size
    assert n > 0


def test_cpu_runs_are_bit_identical(si_scan):
    dc = py4DSTEM.DataCube(data=np.asarray(si_scan.data[:4, :2]))  # 8 patterns, 256 x 256
    load_input(si_scan.datacube).calibration.apply_to(dc.calibration)
    opts = DetectOptions(device="cpu", batch_size=4)  # default refinement (lattice)
    first = find_Bragg_disks(dc, options=opts, progress=False)
    second = find_Bragg_disks(dc, options=opts, progress=False)
    _assert_identical(first, second)
    fresh = NDPDBackend(None, opts)  # a new model load, the async engine as find_Bragg_disks runs it
    peaks = run_scan(dc.data, fresh, options=EngineOptions(batch_size=4, progress=False))
    _assert_identical(first, to_braggvectors(peaks, load_input(dc).calibration))
    sync = run_scan(dc.data, fresh, options=EngineOptions(batch_size=4, mode="sync", progress=False))
    one_lane = run_scan(dc.data, fresh, options=EngineOptions(batch_size=4, lanes=1, progress=False))
    cal = load_input(dc).calibration
    _assert_identical(to_braggvectors(sync, cal), to_braggvectors(one_lane, cal))
