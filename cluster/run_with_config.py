"""Detect Bragg disks in a 4D-STEM file on the cluster a run configuration describes, and save BraggVectors.

    python cluster/run_with_config.py cluster/local_cpu.yaml scan.emd --out braggvectors.h5
    python cluster/run_with_config.py cluster/slurm.yaml /shared/scan.emd --weights /shared/ndpd.pt --resume

The data file is read by the workers themselves (only its path travels), so on a multi-node cluster it must be
on a filesystem every node sees, at the same path; so must the weights.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging

from py4dstem_ndpd.engine import H5Source, load_config, run_distributed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="run configuration YAML (cluster/*.yaml)")
    ap.add_argument("data", help="py4DSTEM/EMD or HDF5 file with a 4D (Rx, Ry, Qx, Qy) dataset")
    ap.add_argument("--dataset", default=None, help="HDF5 path of the 4D dataset (default: found automatically)")
    ap.add_argument("--weights", default=None, help="detector weights (default: the shipped model)")
    ap.add_argument("--resume", action="store_true", help="reuse the chunks in the configured checkpoint_dir")
    ap.add_argument("--out", default="braggvectors.h5", help="output file (py4DSTEM BraggVectors)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    spec, options = load_config(args.config)
    if args.resume:
        options = dataclasses.replace(options, engine=dataclasses.replace(options.engine, resume=True))
    from py4dstem_ndpd.detect.backend import NDPDBackend

    peaks = run_distributed(H5Source(args.data, args.dataset), NDPDBackend, {"weights": args.weights}, spec,
                            options=options)

    from py4dstem_ndpd.bridge import to_braggvectors
    from py4dstem_ndpd.io.readers import load_input
    from py4dstem_ndpd.io.writers import save_py4dstem

    bv = to_braggvectors(peaks, load_input(args.data, dataset_path=args.dataset).calibration)
    save_py4dstem(args.out, bv, overwrite=True)
    logging.getLogger("run_with_config").info("%d peaks in %d patterns -> %s (%.1f s)", peaks.n_peaks,
                                              len(peaks.peaks), args.out, peaks.timings["wall"])


if __name__ == "__main__":  # required: local clusters spawn worker processes
    main()
