"""Generalisation to cameras the detector never saw: the same electrons recorded by other detectors.

The training randomisation covers counting detectors and integrating cameras with a Gaussian blur, gain spread,
read noise, hot and dead pixels. This benchmark holds out three camera families
(:mod:`py4dstem_ndpd.synth.cameras`): the chip gaps of a 2 x 2 hybrid pixel detector, a scintillator camera whose
point-spread function has a long tail, and 2 x 2 binning (a 128 px camera). One more row, ``integrating_blur``
(a 1.2 px Gaussian point-spread function, 20 ADU per electron, no tail), is inside the training's camera family
but not its sources: it asks what such a blur does to the refinement of thick-crystal disks. Each source pattern
set is counted once at each dose (a counting detector, the ``counting`` rows), then passed through each camera
model; NDPD (default options, shipped weights) and py4DSTEM template matching (most accurate settings, probe from
the data) run on the same frames.

Sources: the held-out abTEM Si [110] fixture (10 / 30 / 60 nm, two convergence angles; another simulator) and our
``si_sige_multilayer`` preset (256 px, 4 x 4 positions). Disks are counted by peak SNR >= 3 on the counting
detector (the issue's rule), the same disks for every camera, so the rows of one source and dose compare.

    python benchmarks/bench_detectors.py              # ~6 min on 2 cores
    python benchmarks/bench_detectors.py --quick      # the abTEM file at 1e5 only
    python benchmarks/bench_detectors.py --validation # what the handling of these cameras was designed on
    python benchmarks/bench_detectors.py --no-repair --out detectors_no_repair   # without the dead-pixel repair

For the scintillator cameras NDPD also runs with ``DetectOptions(camera_tail=...)``, the tail measured on a
simulated vacuum recording of the same camera (``ndpd_camera_tail`` in the JSON).

Writes benchmarks/results/detectors.json and benchmarks/out/detectors.png.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _machine import machine_info
from py4dstem_ndpd.api import detect_scan
from py4dstem_ndpd.compare import CompareOptions, compare
from py4dstem_ndpd.detect.backend import DetectOptions
from py4dstem_ndpd.detect.camera_tail import measure_camera_tail
from py4dstem_ndpd.evaluate import evaluate_detections, lattice_distortion
from py4dstem_ndpd.synth import Acquisition, simulate_preset
from py4dstem_ndpd.synth.cameras import CAMERAS, Binned, QuadGaps, Scintillator
from py4dstem_ndpd.synth.external import load_external

HERE = Path(__file__).parent
ABTEM = HERE.parent / "tests" / "data" / "abtem_si110.npz"
#: ``--validation``: what the refinement's handling of these cameras was designed on. Another abTEM file (the
#: thick-crystal validation set) and cameras of other settings, so that the default run stays a held-out test.
VALIDATION_ABTEM = HERE.parent / "tests" / "data" / "abtem_si110_40-80nm.npz"
VALIDATION_CAMERAS = {
    "counting": None,
    "quad_gaps": QuadGaps(width_px=3, offset_px=(-8, 4)),
    "quad_gaps_centred": QuadGaps(width_px=3, offset_px=(0, 0)),
    "scintillator": Scintillator(tail_fraction=0.15, tail_px=12.0, gain=35.0, gain_shape=5.0),
    "binned_2x": Binned(2),
    "integrating_blur": Scintillator(gain=35.0, gain_shape=5.0, core_sigma_px=1.0, tail_fraction=0.0),
}
#: Per frame of a simulated vacuum recording (electrons) and frames averaged, for ``DetectOptions.camera_tail``.
VACUUM_DOSE, VACUUM_FRAMES = 1e5, 16


def vacuum_recording(cam: Scintillator, radius: float, shape: tuple[int, int], seed: int) -> np.ndarray:
    """The mean of :data:`VACUUM_FRAMES` vacuum patterns (a flat disk of ``radius`` px at the detector centre)
    recorded by ``cam``, as a user would record one to measure the camera's tail."""
    from bench_external import vacuum_probe

    rng = np.random.default_rng(seed)
    v = vacuum_probe(shape, radius)
    v = v / v.sum() * VACUUM_DOSE
    return cam.apply(rng.poisson(np.broadcast_to(v, (1, VACUUM_FRAMES) + tuple(shape))), rng).mean((0, 1))


def sources(doses, quick: bool, validation: bool):
    """(name, dose, counts (Rx, Ry, Qx, Qy), truth) of every source pattern set."""
    for dose in doses:
        for ext in load_external(VALIDATION_ABTEM if validation else ABTEM, dose=dose, seed=int(np.log10(dose))):
            yield f"abTEM Si [110], R {ext.truth.disk_radius:.1f} px", dose, ext.frames, ext.truth
        if not quick:
            seed = (9000 if validation else 8000) + int(np.log10(dose))
            acq = Acquisition(scan_shape=(4, 4), pattern_shape=(256, 256), dose=dose, seed=seed)
            scan = simulate_preset("si_sige_multilayer", acq)
            yield "si_sige_multilayer 256 px", dose, np.asarray(scan.data), scan.truth


def _snr_reference(truth, counted_truth):
    """``counted_truth`` with the SNRs of ``truth`` (the counting detector's), so every camera counts the same
    disks."""
    d = counted_truth.disks.copy()
    d["snr"] = truth.disks["snr"]
    from dataclasses import replace

    return replace(counted_truth, disks=d)


def _scores(peaks, truth) -> dict:
    """Recall, precision, centre errors (px) and the RMS spurious strain of one method's detections."""
    md = evaluate_detections(peaks, truth, min_snr=3.0).to_dict()
    dist = lattice_distortion(peaks, truth, min_snr=3.0)[0]
    out = {k: md[k] for k in ("recall", "precision", "error_rms", "error_median", "n_true", "n_detected")}
    out["distortion_rms"] = float(np.sqrt(np.nanmean(dist**2))) if np.isfinite(dist).any() else float("nan")
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--doses", type=float, nargs="+", default=[1e5, 1e6])
    p.add_argument("--cameras", nargs="+", default=None, choices=list(CAMERAS),
                   help="default: every camera of the set (the validation set has no lorentzian tail)")
    p.add_argument("--quick", action="store_true", help="the abTEM file at 1e5 only")
    p.add_argument("--validation", action="store_true",
                   help="the validation abTEM file, preset seeds and camera settings (detectors_validation.json)")
    p.add_argument("--no-repair", action="store_true",
                   help="NDPD without DetectOptions.repair_dead_pixels (the detector before it existed)")
    p.add_argument("--weights", default=None, help="detector weights (default: the shipped model)")
    p.add_argument("--out", default=None, help="name of the JSON (benchmarks/results/) and plot (default: "
                   "detectors, or detectors_validation with --validation)")
    a = p.parse_args()
    if a.quick:
        a.doses = [1e5]
    cameras = VALIDATION_CAMERAS if a.validation else CAMERAS
    a.cameras = a.cameras or list(cameras)
    if set(a.cameras) - set(cameras):
        p.error(f"--cameras {sorted(set(a.cameras) - set(cameras))} not in this set: {list(cameras)}")
    a.out = a.out or ("detectors_validation" if a.validation else "detectors")
    import py4DSTEM

    rows = []
    for name, dose, counts, truth in sources(a.doses, a.quick, a.validation):
        for cam_name in a.cameras:
            cam = cameras[cam_name]
            frames = counts if cam is None else cam.apply(counts, np.random.default_rng(int(np.log10(dose))))
            cam_truth = truth if cam is None else _snr_reference(truth, cam.truth(truth))
            t = time.perf_counter()
            opts = CompareOptions(stages=False, weights=a.weights,
                                  detect=DetectOptions(repair_dead_pixels=not a.no_repair))
            res = compare(py4DSTEM.DataCube(data=frames), truth=cam_truth, options=opts)
            row = {"source": name, "dose": dose, "camera": cam_name, "pattern_shape": list(frames.shape[-2:]),
                   "radius_px": cam_truth.disk_radius,
                   # errors are in the camera's pixels; this many counting-detector pixels make one
                   "counting_px_per_px": counts.shape[-1] / frames.shape[-1], "seconds": time.perf_counter() - t}
            for method, m in res.methods.items():
                row[method] = _scores(m.peaks, cam_truth)
            if isinstance(cam, Scintillator) and cam.tail_fraction > 0:
                # the same frames with the camera's tail measured on a vacuum recording and taken off
                tail = measure_camera_tail(vacuum_recording(cam, cam_truth.disk_radius, frames.shape[-2:], 77))
                peaks = detect_scan(frames, options=DetectOptions(repair_dead_pixels=not a.no_repair,
                                                                  camera_tail=tail), weights=a.weights,
                                    progress=False)
                row["ndpd_camera_tail"] = _scores(peaks, cam_truth)
                row["camera_tail"] = {"fraction": tail.fraction, "length_px": tail.length_px}
            rows.append(row)
            print(json.dumps(row, default=lambda v: round(float(v), 4)), flush=True)
    out = {"benchmark": "held-out cameras", "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
           "weights": a.weights or "shipped",
           "cameras": {k: (repr(v) if v is not None else "counting detector") for k, v in cameras.items()},
           "counted": "peak SNR >= 3 on the counting detector, >= 1 radius from the edge", "rows": rows}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{a.out}.json").write_text(json.dumps(out, indent=1, default=float))
    plot(rows, HERE / "out" / f"{a.out}.png")


def plot(rows: list[dict], path: Path) -> None:
    """Recall and centre RMS per camera, NDPD beside template matching, one panel column per source and dose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys((r["source"], r["dose"]) for r in rows))
    fig, axs = plt.subplots(2, len(groups), figsize=(3.2 * len(groups), 5.5), squeeze=False)
    for j, g in enumerate(groups):
        rs = [r for r in rows if (r["source"], r["dose"]) == g]
        x = np.arange(len(rs))
        for k, (method, colour) in enumerate((("ndpd", "C0"), ("template", "C1"))):
            axs[0, j].bar(x + (k - 0.5) * 0.4, [r[method]["recall"] for r in rs], 0.4, color=colour, label=method)
            axs[1, j].bar(x + (k - 0.5) * 0.4, [r[method]["error_rms"] for r in rs], 0.4, color=colour)
        axs[0, j].set_title(f"{g[0]}\n{g[1]:.0e} e-", fontsize=8)
        axs[0, j].set_ylim(0, 1.05)
        axs[1, j].set_yscale("log")
        for ax in axs[:, j]:
            ax.set_xticks(x, [r["camera"] for r in rs], rotation=45, fontsize=7)
    axs[0, 0].set_ylabel("recall (peak SNR >= 3)")
    axs[1, 0].set_ylabel("centre RMS (px)")
    axs[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
