"""Print the Markdown tables of docs/performance.md and docs/model-card.md from benchmarks/results/*.json.

    python benchmarks/summarise.py > /tmp/tables.md
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

R = Path(__file__).parent / "results"
NAMES = {"ndpd": "NDPD", "ndpd_dfl": "NDPD, DFL centres only", "ndpd_box": "NDPD, rounded boxes", "template": "template matching"}


def load(name: str) -> dict | None:
    """A result file of benchmarks/results, or None if it has not been made."""
    p = R / name
    return json.loads(p.read_text()) if p.exists() else None


def f(x, n=4):
    return "n/a" if x is None or x != x else f"{x:.{n}g}"


def accuracy() -> None:
    d = load("accuracy.json")
    if d is None:
        return
    print(f"Accuracy ({d['date']}, scan {d['scan']} per case, disks with peak SNR >= {d['min_snr']}):\n")
    print("| preset | px | dose | method | recall | precision | centre RMS (px) | median (px) | integrated SNR >= 3: recall / RMS (px) | all disks: recall / RMS (px) | patterns/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in d["rows"]:
        for m in ("ndpd", "ndpd_dfl", "ndpd_box", "template"):
            v = r[m]
            a = v.get("all_disks", {})
            i = v.get("integrated_snr3", {})
            print(f"| {r['preset']} | {r['size']} | {r['dose']:.0e} | {NAMES[m]} | {f(v['recall'])} | {f(v['precision'])} | "
                  f"{f(v['error_rms'], 3)} | {f(v['error_median'], 3)} | {f(i.get('recall'))} / {f(i.get('error_rms'), 3)} | "
                  f"{f(a.get('recall'))} / {f(a.get('error_rms'), 3)} | "
                  f"{f(v['patterns_per_second'], 3)} |")
    print()


def precision() -> None:
    d = load("precision.json")
    if d is None:
        return
    models = list(d["rows"][0]["models"])
    print(f"Precision on {d['scan'][0]} x {d['scan'][1]} scans ({d['date']}, disks with peak SNR >= {d['min_snr']}; "
          "recall / precision (false positives)):\n")
    print("| preset | px | dose | true disks | " + " | ".join(models) + " |")
    print("|---|---|---|---|" + "---|" * len(models))
    for r in d["rows"]:
        n = r["models"][models[0]]["n_true"]
        cells = [f"{f(m['recall'])} / {100 * m['precision']:.2f} % ({m['n_false_positive']})"
                 for m in (r["models"][k] for k in models)]
        print(f"| {r['preset']} | {r['size']} | {r['dose']:.0e} | {n} | " + " | ".join(cells) + " |")
    print()


def bounds() -> None:
    d = load("bounds.json")
    if d is None:
        return
    print(f"Cramer-Rao bounds ({d['date']}, errors from accuracy.json of {d['accuracy_date']}):\n")
    print("| preset | px | dose | disks counted | n | CRLB, disk alone (px) | CRLB, joint lattice (px) | NDPD (px) | "
          "NDPD / joint bound | template matching (px) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in d["rows"]:
        rule = "peak SNR >= 3" if r["disks"] == "peak_snr3" else "integrated SNR >= 3"
        print(f"| {r['preset']} | {r['size']} | {r['dose']:.0e} | {rule} | {r['n']} | {f(r['bound_per_disk'], 3)} | "
              f"{f(r['bound_lattice'], 3)} | {f(r['ndpd_rms'], 3)} | {f(r['ndpd_over_bound'], 3)} | "
              f"{f(r['template_rms'], 3)} |")
    print()


def strain() -> None:
    for p in sorted(R.glob("strain_*.json")):
        d = json.loads(p.read_text())
        print(f"Strain ({p.name}, {d['date']}):\n")
        print("| px | dose | method | std e_xx substrate | mean e_xx SiGe | truth | abs error | RMS vs truth |")
        print("|---|---|---|---|---|---|---|---|")
        for r in d["rows"]:
            for m in ("ndpd", "template", "autocorrelation"):
                v = r[m]
                print(f"| {r['size']} | {r['dose']:.0e} | {m} | {v['std_e_xx_substrate']:.2e} | {v['mean_e_xx_sige']:.5f} | "
                      f"{v['truth_mean_e_xx_sige']:.5f} | {v['abs_error_mean_sige']:.1e} | {v['rms_vs_truth']:.1e} |")
        print()


def external() -> None:
    d = load("external.json")
    if d is None:
        return
    print(f"Another simulator ({d['date']}, weights {d.get('weights', 'shipped')}; counted: {d['counted']}):\n")
    print("| patterns | dose | radius (px) | method | peak SNR >= 3: disks / recall / precision / RMS (px) / median (px) | "
          "integrated SNR >= 3: disks / recall / precision / RMS (px) |")
    print("|---|---|---|---|---|---|")
    for r in d["rows"]:
        for m in ("ndpd", "ndpd_dfl", "template", "tempo4d"):
            if m in r:
                p, i = r[m]["peak"], r[m]["integrated"]
                sim = r.get("simulator", d.get("simulator", "")).split(", seed")[0].replace("multislice, ", "")
                if "thickness_nm" in r:
                    sim += ", " + "/".join(f"{t:g}" for t in r["thickness_nm"]) + " nm"
                if r.get("tilt_mrad"):
                    sim += ", tilt " + "/".join(f"{np.hypot(*t):.0f}" for t in r["tilt_mrad"]) + " mrad"
                print(f"| {sim} | {r['dose']:.0e} | {r['radius_px']:.1f} | {NAMES.get(m, m)} | {p['n_true']} / {f(p['recall'])} / "
                      f"{f(p['precision'])} / {f(p['error_rms'], 3)} / {f(p['error_median'], 3)} | {i['n_true']} / "
                      f"{f(i['recall'])} / {f(i['precision'])} / {f(i['error_rms'], 3)} |")
    print()


def external_distortion() -> None:
    """Spurious lattice distortion (RMS of e_xx, e_yy, e_xy over the patterns, 1e-3) per abTEM file and dose."""
    for name in ("external.json", "external_validation.json"):
        d = load(name)
        if d is None or not any("distortion" in r.get("ndpd", {}) for r in d["rows"]):
            continue
        print(f"Lattice distortion, {name} ({d['date']}; RMS over patterns of e_xx, e_yy, e_xy, units of 1e-3):\n")
        print("| file | radius (px) | dose | NDPD | NDPD, DFL centres only | template matching |")
        print("|---|---|---|---|---|---|")
        for r in d["rows"]:
            if "distortion" not in r["ndpd"]:
                continue
            v = [r[m]["distortion"]["rms"] * 1e3 if m in r else float("nan") for m in ("ndpd", "ndpd_dfl", "template")]
            print(f"| {r['file']} | {r['radius_px']:.1f} | {r['dose']:.0e} | " + " | ".join(f(x, 3) for x in v) + " |")
        print()


if __name__ == "__main__":
    accuracy()
    precision()
    bounds()
    strain()
    external()
    external_distortion()
