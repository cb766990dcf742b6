"""This machine, CPU workers, in plain Python (the same as cluster/local_cpu.yaml).

    python cluster/local_cpu.py scan.emd
"""
from __future__ import annotations

import sys

from py4dstem_ndpd.engine import ClusterSpec, DistributedOptions, EngineOptions, run_distributed

if __name__ == "__main__":  # required: the local cluster spawns worker processes
    from py4dstem_ndpd.detect.backend import NDPDBackend

    spec = ClusterSpec(kind="local", n_workers=2, threads_per_worker=1, options={"memory_limit": "4GiB"})
    options = DistributedOptions(engine=EngineOptions(batch_size=16, chunk_size=256), chunks_per_worker=2)
    peaks = run_distributed(sys.argv[1], NDPDBackend, {"weights": None}, spec, options=options)
    print(f"{peaks.n_peaks} peaks in {len(peaks.peaks)} patterns, {peaks.timings['wall']:.1f} s")
