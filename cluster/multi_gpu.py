"""Several GPUs of one machine with dask-cuda (`pip install dask-cuda`): one worker per GPU.

    python cluster/multi_gpu.py scan.emd

Each worker builds the NDPD backend once, on its own GPU (``device="auto"`` picks the GPU dask-cuda assigned
through CUDA_VISIBLE_DEVICES); the backend moves batches to the GPU with pinned memory and non-blocking copies.
"""
from __future__ import annotations

import sys

from py4dstem_ndpd.engine import DistributedOptions, EngineOptions, run_distributed

if __name__ == "__main__":
    from dask_cuda import LocalCUDACluster
    from distributed import Client

    from py4dstem_ndpd.detect.backend import NDPDBackend

    options = DistributedOptions(engine=EngineOptions(batch_size=128, prefetch=3, postprocess_threads=2,
                                                      chunk_size=2048), chunks_per_worker=2)
    with LocalCUDACluster(threads_per_worker=1) as cluster, Client(cluster) as client:
        peaks = run_distributed(sys.argv[1], NDPDBackend, {"weights": None}, client, options=options)
    # Equivalent shortcut: run_distributed(path, NDPDBackend, {}, "local-cuda", options=options)
    print(f"{peaks.n_peaks} peaks in {len(peaks.peaks)} patterns, {peaks.timings['wall']:.1f} s")
