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

from _machine import machine_info
from _randomised import match_counts
from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend

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
        n_true, counts = match_counts(backends, name, a.seed, a.patterns)
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
