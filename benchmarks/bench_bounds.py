"""How close the measured centre errors come to the Cramer-Rao bound of the simulated patterns.

Same scans as ``bench_accuracy.py`` (same seeds, 4 x 4 positions, 256 and 512 px, doses 1e3..1e7, both presets),
simulated without noise; :func:`py4dstem_ndpd.synth.bounds.centre_bounds` gives each true disk's bound on its
own (``per_disk``) and within a joint lattice fit (``lattice``). The disks counted are those of the accuracy
targets (peak SNR >= 3, at least a radius from the edge); at 1e3 electrons, where none reaches a peak SNR of 3,
those with integrated SNR >= 3. The measured RMS errors (NDPD refined, template matching) are read from
``benchmarks/results/accuracy.json``, so run that first.

    python benchmarks/bench_bounds.py

Writes benchmarks/results/bounds.json and benchmarks/out/bounds.png.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from _machine import machine_info
from _plots import preset_columns
from py4dstem_ndpd.evaluate import edge_distance, integrated_snr
from py4dstem_ndpd.synth import Acquisition, simulate_preset
from py4dstem_ndpd.synth.bounds import centre_bounds

HERE = Path(__file__).parent


def main() -> None:
    acc = json.loads((HERE / "results" / "accuracy.json").read_text())
    rows = []
    for r in acc["rows"]:
        size, preset, dose = r["size"], r["preset"], r["dose"]
        acq = Acquisition(scan_shape=tuple(acc["scan"]), pattern_shape=(size, size), dose=dose,
                          seed=1000 + int(np.log10(dose)))
        scan = simulate_preset(preset, replace(acq, noise=False))
        T = scan.truth
        b = centre_bounds(T, acq, scan.datacube.data)
        inside = edge_distance(T.disks["qx"], T.disks["qy"], T.pattern_shape) >= T.disk_radius
        peak = inside & (T.disks["snr"] >= 3.0)
        rule, use, measured = "peak_snr3", peak, r["ndpd"]
        if not peak.any():
            rule, use = "integrated_snr3", inside & (integrated_snr(T.disks, T.disk_radius) >= 3.0)
            measured = r["ndpd"]["integrated_snr3"]
        tm = r["template"] if rule == "peak_snr3" else r["template"]["integrated_snr3"]
        row = {
            "size": size, "preset": preset, "dose": dose, "disks": rule, "n": int(use.sum()),
            "bound_per_disk": float(np.sqrt(np.mean(b.per_disk[use] ** 2))),
            "bound_lattice": float(np.sqrt(np.mean(b.lattice[use] ** 2))),
            "ndpd_rms": measured["error_rms"], "template_rms": tm["error_rms"],
        }
        row["ndpd_over_bound"] = row["ndpd_rms"] / row["bound_lattice"]
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    out = {"benchmark": "bounds", "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
           "accuracy_date": acc["date"], "rows": rows}
    (HERE / "results" / "bounds.json").write_text(json.dumps(out, indent=1, default=float))
    plot(rows, HERE / "out" / "bounds.png")


def plot(rows, path: Path) -> None:
    fig, axes, combos = preset_columns(rows, path, 1, 3.6)
    for j, (size, preset) in enumerate(combos):
        ax = axes[0, j]
        rs = [r for r in rows if r["size"] == size and r["preset"] == preset]
        d = [r["dose"] for r in rs]
        ax.loglog(d, [r["template_rms"] for r in rs], "s-", label="template matching")
        ax.loglog(d, [r["ndpd_rms"] for r in rs], "o-", label="NDPD (refined)")
        ax.loglog(d, [r["bound_per_disk"] for r in rs], "k--", label="CRLB, disk alone")
        ax.loglog(d, [r["bound_lattice"] for r in rs], "k:", label="CRLB, joint lattice")
        ax.axhline(0.05, color="grey", lw=0.5)
        ax.set_title(f"{preset}, {size} px", fontsize=9)
        ax.set_xlabel("dose (electrons / pattern)")
    axes[0, 0].set_ylabel("centre RMS error (px)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
