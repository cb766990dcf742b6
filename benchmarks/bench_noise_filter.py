"""What the filter of faint detections off the lattice costs on the training distribution.

Randomised patterns (:func:`py4dstem_ndpd.synth.randomized.random_pattern`, ranges v1 and v3) of a seed never used
for training or for choosing the filter (91 000; 90 000 was the validation seed), each detected one at a time with
the default options and with ``min_snr_off_lattice=None``. Labelled disks (integrated SNR >= 3) at least a radius
from the edge are matched within one radius.

    python benchmarks/bench_noise_filter.py                 # 200 patterns per range (about 3 min)
    python benchmarks/bench_noise_filter.py --seed 90000    # the validation patterns

Writes benchmarks/results/noise_filter.json (or noise_filter_<seed>.json for another seed).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _machine import machine_info
from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend
from py4dstem_ndpd.evaluate import edge_distance, match_peaks
from py4dstem_ndpd.synth.randomized import RANDOMIZATIONS, random_pattern

HERE = Path(__file__).parent
HELD_OUT_SEED = 91_000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    p.add_argument("--patterns", type=int, default=200, help="patterns per randomisation range")
    a = p.parse_args()
    backends = {"default": NDPDBackend(None, DetectOptions(batch_size=1)),
                "filter_off": NDPDBackend(None, DetectOptions(batch_size=1, min_snr_off_lattice=None))}
    rows = []
    for name in ("v1", "v3"):
        rng = np.random.default_rng(a.seed)
        counts = {k: {"matched": 0, "unmatched": 0, "detections": 0} for k in backends}
        n_true = 0
        for _ in range(a.patterns):
            pat = random_pattern(rng, RANDOMIZATIONS[name])
            shape = pat.counts.shape
            c = pat.centres
            true = c[edge_distance(c[:, 0], c[:, 1], shape) >= pat.radius] if len(c) else np.zeros((0, 2))
            n_true += len(true)
            for key, be in backends.items():
                d = be.detect(pat.counts)[0]
                q = np.stack([d["qx"], d["qy"]], 1)
                q = q[edge_distance(q[:, 0], q[:, 1], shape) >= pat.radius]
                di, _ = match_peaks(q, true, pat.radius)
                counts[key]["matched"] += len(di)
                counts[key]["unmatched"] += len(q) - len(di)
                counts[key]["detections"] += len(q)
        row = {"randomization": name, "patterns": a.patterns, "labelled_disks": n_true}
        for key, v in counts.items():
            row[key] = dict(v, recall=v["matched"] / max(n_true, 1))
        row["removed"] = {k: counts["filter_off"][k] - counts["default"][k] for k in ("matched", "unmatched")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"benchmark": "noise filter on randomised patterns", "date": time.strftime("%Y-%m-%d %H:%M"),
           "machine": machine_info(), "seed": a.seed, "rows": rows}
    (HERE / "results").mkdir(exist_ok=True)
    name = "noise_filter.json" if a.seed == HELD_OUT_SEED else f"noise_filter_{a.seed}.json"
    (HERE / "results" / name).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
