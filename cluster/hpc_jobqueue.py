"""SLURM (or PBS) batch jobs with dask-jobqueue (`pip install dask-jobqueue`), in plain Python.

    python cluster/hpc_jobqueue.py /shared/scan.emd /shared/ndpd.pt

Run it on a login node (or inside an allocation). The file and the weights must be on a shared filesystem.
The checkpoint lets a run cut short by the wall-time limit continue where it stopped (resume=True).
"""
from __future__ import annotations

import sys

from py4dstem_ndpd.engine import DistributedOptions, EngineOptions, run_distributed

if __name__ == "__main__":
    from dask_jobqueue import SLURMCluster  # PBSCluster takes the same arguments (plus resource_spec)
    from distributed import Client

    from py4dstem_ndpd.detect.backend import NDPDBackend

    cluster = SLURMCluster(queue="gpu", cores=8, processes=1, memory="64GB", walltime="02:00:00",
                           job_extra_directives=["--gres=gpu:1"], worker_extra_args=["--resources", "GPU=1"])
    cluster.scale(jobs=4)
    options = DistributedOptions(
        engine=EngineOptions(batch_size=128, chunk_size=4096, checkpoint_dir="ndpd-checkpoint", resume=True),
        chunks_per_worker=2, resources={"GPU": 1},
    )
    with cluster, Client(cluster) as client:
        peaks = run_distributed(sys.argv[1], NDPDBackend, {"weights": sys.argv[2]}, client, options=options)
    print(f"{peaks.n_peaks} peaks in {len(peaks.peaks)} patterns, {peaks.timings['wall']:.1f} s")
