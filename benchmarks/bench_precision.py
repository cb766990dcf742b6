"""Detection precision and recall at low dose on scans large enough to measure them.

At 10⁴ electrons per pattern only the direct beam reaches a peak SNR of 3, so ``bench_accuracy.py``'s 4 x 4 scans
count 16 disks and one false positive moves precision by 6 %. Here: 8 x 8 positions (seeds 7004/7005, never used
for training or for choosing the confidence threshold), both presets, 256 and 512 px, 10⁴ and 10⁵ electrons; and
since 2026-12-03 3 x 10⁴ (seed 7045), where validation scans showed false positives next to bright disks.
Each model runs with the default options (``refine="lattice"``, which also drops faint detections that no fitted
lattice indexes: ``DetectOptions.min_snr_off_lattice``) and with that filter off (``*_keep_off_lattice``).

    python benchmarks/bench_precision.py                                  # the shipped weights
    python benchmarks/bench_precision.py --weights a.pt b.pt              # several models side by side

Writes benchmarks/results/precision.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _machine import machine_info
from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend
from py4dstem_ndpd.engine import EngineOptions, run_scan
from py4dstem_ndpd.evaluate import evaluate_detections
from py4dstem_ndpd.synth import Acquisition, simulate_preset

HERE = Path(__file__).parent
CASES = [(256, "si_sige_multilayer", 1e4), (256, "tinb_multiphase", 1e4), (512, "si_sige_multilayer", 1e4),
         (512, "tinb_multiphase", 1e4), (256, "si_sige_multilayer", 1e5), (256, "tinb_multiphase", 1e5),
         (512, "si_sige_multilayer", 1e5), (512, "tinb_multiphase", 1e5), (256, "si_sige_multilayer", 3e4),
         (256, "tinb_multiphase", 3e4), (512, "si_sige_multilayer", 3e4), (512, "tinb_multiphase", 3e4)]
#: Scan seed per dose (never used for training or for choosing anything).
SEEDS = {1e4: 7004, 1e5: 7005, 3e4: 7045}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", nargs="+", default=[None], help="weights files (default: the shipped model)")
    a = p.parse_args()
    backends = {}
    for w in a.weights:
        name = Path(w).stem if w else "shipped"
        backends[name] = NDPDBackend(w, DetectOptions())
        backends[name + "_keep_off_lattice"] = NDPDBackend(w, DetectOptions(min_snr_off_lattice=None))
    rows = []
    for size, preset, dose in CASES:
        acq = Acquisition(scan_shape=(8, 8), pattern_shape=(size, size), dose=dose, seed=SEEDS[dose])
        scan = simulate_preset(preset, acq)
        row = {"size": size, "preset": preset, "dose": dose, "models": {}}
        for name, be in backends.items():
            peaks = run_scan(scan.datacube.data, be, options=EngineOptions(progress=False))
            m = evaluate_detections(peaks, scan.truth, min_snr=3.0)
            row["models"][name] = {"conf": be.conf, "min_snr_off_lattice": be.options.min_snr_off_lattice,
                                   "recall": m.recall, "precision": m.precision, "n_true": m.n_true,
                                   "n_false_positive": m.n_false_positive}
        rows.append(row)
        print(json.dumps(row))
    out = {"benchmark": "precision", "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
           "scan": [8, 8], "min_snr": 3.0, "rows": rows}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "precision.json").write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
