"""Use a Dask scheduler that is already running (started by hand, by an admin, or by `dask-mpi`).

    dask scheduler --port 8786 &
    dask worker tcp://127.0.0.1:8786 --nworkers 2 --nthreads 1 &
    python cluster/connect_existing.py tcp://127.0.0.1:8786 scan.emd

The run does not stop the cluster. Workers must be able to import py4dstem_ndpd and read the file.
"""
from __future__ import annotations

import sys

from py4dstem_ndpd.engine import DistributedOptions, EngineOptions, run_distributed

if __name__ == "__main__":
    from py4dstem_ndpd.detect.backend import NDPDBackend

    options = DistributedOptions(engine=EngineOptions(batch_size=32, chunk_size=1024))
    peaks = run_distributed(sys.argv[2], NDPDBackend, {"weights": None}, sys.argv[1], options=options)
    print(f"{peaks.n_peaks} peaks in {len(peaks.peaks)} patterns, {peaks.timings['wall']:.1f} s")
