"""The allocator setting: large buffers are reused between batches instead of being faulted in again."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc/Linux only")

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np

    def faults(n=30, mb=16):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(n):
            a = np.empty(mb << 18, np.float32)  # mb MB
            a[:] = 1.0                           # touch every page
            del a
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    out = {"default": faults()}
    if sys.argv[1] == "backend":
        from py4dstem_ndpd.detect.backend import NDPDBackend
        NDPDBackend()
    else:
        from py4dstem_ndpd._allocator import keep_large_buffers
        out["set"] = keep_large_buffers()
    from py4dstem_ndpd._allocator import large_buffers_kept
    out["kept"] = large_buffers_kept()
    faults(1)  # the first block after the change is faulted in once
    out["tuned"] = faults()
    print(json.dumps(out))
    """
)


def _run(mode: str, **env: str) -> dict:
    e = dict(os.environ, **env)
    r = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, env=e, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@glibc
def test_buffers_reused_under_dasks_trim_setting():
    # Dask's nanny spawns workers with MALLOC_TRIM_THRESHOLD_=65536: every 16 MB block is mmapped and faulted anew
    out = _run("function", MALLOC_TRIM_THRESHOLD_="65536")
    assert out["set"] and out["kept"]
    assert out["default"] >= 30 * 8, out  # each block faulted in again (8 = 16 MB in 2 MB huge pages)
    assert out["tuned"] < 0.05 * out["default"], out


@glibc
def test_building_the_detector_keeps_large_buffers():
    out = _run("backend", MALLOC_TRIM_THRESHOLD_="65536")
    assert out["kept"]
    assert out["tuned"] < 0.05 * out["default"], out


@glibc
def test_switch_leaves_malloc_alone():
    out = _run("function", MALLOC_TRIM_THRESHOLD_="65536", NDPD_KEEP_LARGE_BUFFERS="0")
    assert not out["set"] and not out["kept"]
    assert out["tuned"] > 0.5 * out["default"], out
