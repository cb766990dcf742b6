"""What lattice completion (``DetectOptions(min_snr_empty_sites=...)``) adds, on data never used to design it.

It was designed on validation data (preset scans of seeds 5800+, randomised patterns of seed 90 000); this runs
the held-out sets:

* the presets at 256 and 512 px, 10^3-10^6 electrons per pattern, 4 x 4 positions, the seeds of
  ``bench_accuracy.py`` (1000 + log10(dose)); scored with :func:`py4dstem_ndpd.evaluate.evaluate_detections` (peak
  SNR >= 3, integrated SNR >= 3, every disk);
* randomised patterns (ranges v1 and v3, seed 91 000, as ``bench_noise_filter.py``), detected one at a time;
  labelled disks (integrated SNR >= 3) at least a radius from the edge matched within one radius. An unmatched
  detection is not necessarily false: disks fainter than the label threshold exist in these patterns.

    python benchmarks/bench_completion.py               # about 5 min
    python benchmarks/bench_completion.py --quick       # 1e3 and 1e5 at 256 px, 20 random patterns per range

Writes benchmarks/results/completion.json (completion_quick.json with --quick).
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

from _machine import machine_info
from _randomised import match_counts
from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend
from py4dstem_ndpd.evaluate import evaluate_detections
from py4dstem_ndpd.peaks import ScanPeaks
from py4dstem_ndpd.synth import Acquisition, simulate_preset

HERE = Path(__file__).parent
THRESHOLDS = (None, 3.0, 4.0)


def _key(t) -> str:
    return "off" if t is None else f"snr_{t:g}"


def presets(backends: dict, sizes, doses) -> list[dict]:
    rows = []
    for preset, size, dose in itertools.product(["si_sige_multilayer", "tinb_multiphase"], sizes, doses):
        acq = Acquisition(scan_shape=(4, 4), pattern_shape=(size, size), dose=dose, seed=1000 + int(np.log10(dose)))
        scan = simulate_preset(preset, acq)
        frames = np.asarray(scan.data).reshape(-1, size, size)
        row = {"preset": preset, "size": size, "dose": dose}
        for t, be in backends.items():
            sp = ScanPeaks((4, 4), be.detect(frames), (size, size))
            m = {name: evaluate_detections(sp, scan.truth, min_snr=ms, snr=kind).to_dict()
                 for name, ms, kind in (("peak_snr3", 3.0, "peak"), ("integrated_snr3", 3.0, "integrated"),
                                        ("all_disks", 0.0, "peak"))}
            row[_key(t)] = {name: {k: v[k] for k in ("recall", "precision", "error_rms", "n_true", "n_detected")}
                            for name, v in m.items()} | {"n_peaks": int(sp.n_peaks)}
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("preset", "size", "dose")}
                         | {_key(t): [round(row[_key(t)][n]["recall"], 4) for n in ("integrated_snr3", "all_disks")]
                            + [round(row[_key(t)]["peak_snr3"]["precision"], 4)] for t in backends}), flush=True)
    return rows


def randomised(thresholds, seed: int, n: int) -> list[dict]:
    backends = {t: NDPDBackend(None, DetectOptions(batch_size=1, min_snr_empty_sites=t)) for t in thresholds}
    rows = []
    for name in ("v1", "v3"):
        n_true, counts = match_counts(backends, name, seed, n)
        row = {"randomization": name, "patterns": n, "seed": seed, "labelled_disks": n_true}
        for t, v in counts.items():
            row[_key(t)] = dict(v, recall=v["matched"] / max(n_true, 1))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seed", type=int, default=91_000, help="seed of the randomised patterns")
    a = p.parse_args()
    sizes, doses, n = ([256], [1e3, 1e5], 20) if a.quick else ([256, 512], [1e3, 1e4, 1e5, 1e6], 200)
    backends = {t: NDPDBackend(None, DetectOptions(min_snr_empty_sites=t)) for t in THRESHOLDS}
    out = {"benchmark": "lattice completion", "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
           "thresholds": [_key(t) for t in THRESHOLDS], "presets": presets(backends, sizes, doses),
           "randomised": randomised(THRESHOLDS, a.seed, n)}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / ("completion_quick.json" if a.quick else "completion.json")).write_text(
        json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
