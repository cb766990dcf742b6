"""Strain precision and accuracy on the Si/SiGe multilayer (issue targets: std of e_xx over the strain-free
substrate <= 2e-4; mean e_xx in the SiGe layers within 5e-4 of the truth), NDPD vs py4DSTEM template matching vs
the origin-free autocorrelation lattice (paper eq. 4), side by side on the same scan.

    python benchmarks/bench_strain.py                # 97 x 10 scan, 256 px, doses 1e5 and 1e6
    python benchmarks/bench_strain.py --size 512     # 512 px patterns

Writes benchmarks/results/strain_<size>.json and benchmarks/out/strain_<size>.png.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from py4dstem_ndpd.analysis import strain_map
from py4dstem_ndpd.api import detect_scan
from py4dstem_ndpd.baseline import TemplateOptions, template_matching
from py4dstem_ndpd.bridge import to_braggvectors
from py4dstem_ndpd.detect.backend import DetectOptions
from py4dstem_ndpd.refine import lattice_from_autocorrelation, lattice_strain
from py4dstem_ndpd.synth import Acquisition, simulate_preset

HERE = Path(__file__).parent


def summarise(e_xx, truth_exx, ref, core):
    return {
        "std_e_xx_substrate": float(np.nanstd(e_xx[ref])),
        "mean_e_xx_sige": float(np.nanmean(e_xx[core])),
        "truth_mean_e_xx_sige": float(np.mean(truth_exx[core])),
        "abs_error_mean_sige": float(abs(np.nanmean(e_xx[core]) - np.mean(truth_exx[core]))),
        "rms_vs_truth": float(np.sqrt(np.nanmean((e_xx - truth_exx) ** 2))),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scan", type=int, nargs=2, default=[97, 10])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--doses", type=float, nargs="+", default=[1e5, 1e6])
    a = p.parse_args()
    rows = []
    for dose in a.doses:
        scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=tuple(a.scan), pattern_shape=(a.size, a.size),
                                                                 dose=dose, seed=77))
        tr = scan.truth
        ref = np.zeros(tr.scan_shape, bool)
        ref[: int(0.15 * tr.scan_shape[0])] = True  # substrate: the first 25 nm of 145 nm
        truth_exx = tr.strain[..., 0]
        core = truth_exx > 0.95 * truth_exx.max()
        row = {"dose": dose, "size": a.size, "scan": a.scan, "n_reference": int(ref.sum()), "n_sige_core": int(core.sum())}
        t = time.perf_counter()
        peaks = detect_scan(scan.datacube, options=DetectOptions(), progress=False)
        row["ndpd_detect_s"] = time.perf_counter() - t
        st = strain_map(to_braggvectors(peaks, tr.calibration), reference=ref)
        row["ndpd"] = summarise(st.e_xx, truth_exx, ref, core)
        t = time.perf_counter()
        tm = template_matching(scan.datacube, options=TemplateOptions.accurate())
        row["template_detect_s"] = time.perf_counter() - t
        stt = strain_map(tm.braggvectors, reference=ref)
        row["template"] = summarise(stt.e_xx, truth_exx, ref, core)
        # origin-free: lattice from the autocorrelation of each pattern, seeded by NDPD's reference basis
        frames = np.asarray(scan.data, np.float32).reshape(-1, a.size, a.size)
        t = time.perf_counter()
        fit = lattice_from_autocorrelation(frames, np.stack([st.g1, st.g2]), radius_px=tr.disk_radius)
        row["autocorrelation_s"] = time.perf_counter() - t
        g1 = fit.g1.reshape(*tr.scan_shape, 2)
        g2 = fit.g2.reshape(*tr.scan_shape, 2)
        r1, r2 = np.nanmedian(g1[ref], 0), np.nanmedian(g2[ref], 0)
        e_ac = lattice_strain(g1, g2, r1, r2)[0]
        row["autocorrelation"] = summarise(e_ac, truth_exx, ref, core)
        rows.append(row)
        print(json.dumps(row, default=float))
        _plot(HERE / "out" / f"strain_{a.size}_{dose:.0e}.png", tr, st.e_xx, stt.e_xx, e_ac)
    out = {"benchmark": "strain", "date": time.strftime("%Y-%m-%d %H:%M"),
           "targets": {"std_e_xx_substrate": 2e-4, "abs_error_mean_sige": 5e-4}, "rows": rows}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"strain_{a.size}.json").write_text(json.dumps(out, indent=1, default=float))


def _plot(path, tr, e_ndpd, e_tm, e_ac):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(exist_ok=True)
    x = (np.arange(tr.scan_shape[0]) + 0.5) * tr.calibration.r_pixel_size
    fig, ax = plt.subplots(figsize=(8, 4))
    for e, lab in ((e_ndpd, "NDPD"), (e_tm, "template matching"), (e_ac, "autocorrelation lattice")):
        ax.plot(x, 100 * np.nanmean(e, 1), label=lab)
    ax.plot(x, 100 * tr.strain[:, 0, 0], "k--", label="truth")
    ax.set_xlabel("distance along growth (nm)")
    ax.set_ylabel("e_xx (%)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
