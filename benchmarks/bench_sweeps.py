"""Where each detector wins and loses: centre error and recall versus dose, disk radius and disk overlap.

Methods, all on the same simulated patterns (``si_sige_multilayer``, Si [110], small scans) with exact truth:

* ``ndpd``: this package, default options (DFL centres + lattice refinement), shipped weights;
* ``template``: py4DSTEM template matching, :meth:`TemplateOptions.accurate` (multicorr, upsampling 16; every
  setting derived from the data, see ``py4dstem_ndpd/baseline.py``);
* ``tempo4d``: the paper authors' released model and preprocessing (:class:`Tempo4DBackend`, log autocorrelation,
  imgsz 512, conf 0.01), when tempo4d is installed. Its spots are lattice vectors (autocorrelation peaks); they are
  placed on the simulator's **true** origin, so this scores its lattice vectors without any origin error (in
  tempo4d's favour). ``tempo4d_measured`` places the same spots on the direct beam measured in each pattern
  (:func:`direct_beam_centres`), as :class:`Tempo4DBackend` does by default;
* ``tempo4d_pattern``: the released weights on the inverted pattern itself (``input="pattern"``; not how tempo4d
  uses them).

Sweeps (256 px patterns, 4 x 4 positions per point by default):

* dose: 1e2 .. 1e7 electrons per pattern, disk radius 4 px;
* radius: disk radius 2, 4, 8, 12, 16 px at the default optics (the camera length changes, so the lattice scales
  with the radius and the spacing/diameter ratio stays ~5.7);
* overlap: spacing of the nearest disks ({111}) over the disk diameter from 0.9 (overlapping) to 3, at a fixed
  lattice ({111} spacing ``--lattice-px`` px): the convergence angle, and with it the disk radius, changes.

Recall and centre errors come from :func:`py4dstem_ndpd.evaluate.evaluate_detections` (one-to-one matching within
the disk radius; true disks at least a radius from the detector edge are counted): once for disks with the
simulator's per-pixel peak SNR >= 3 (``--min-snr``, as in ``ndpd compare``) and once for every disk
(``all_disks``). The SNR is per pixel (``peak / sqrt(peak + background)``), so below ~1e4 electrons per pattern no
disk reaches 3 and only the ``all_disks`` numbers exist.

    python benchmarks/bench_sweeps.py            # full sweep (~10 min on an idle 2-core machine)
    python benchmarks/bench_sweeps.py --quick    # smoke test: 2 x 2 positions, 2 points per sweep

Writes ``benchmarks/results/sweeps.json`` and ``benchmarks/out/sweeps.png`` (``sweeps_quick.*`` with ``--quick``).
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np

from py4dstem_ndpd.baseline import TemplateOptions, template_matching
from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend
from py4dstem_ndpd.evaluate import evaluate_detections
from py4dstem_ndpd.peaks import ScanPeaks
from py4dstem_ndpd.synth import Acquisition, simulate_preset
from py4dstem_ndpd.synth.optics import disk_radius_inv_angstrom, electron_wavelength
from py4dstem_ndpd.synth.presets import A_SI

HERE = Path(__file__).parent
log = logging.getLogger("bench_sweeps")

LABELS = {
    "ndpd": "NDPD (default)",
    "template": "py4DSTEM template matching (accurate)",
    "tempo4d": "tempo4d (true origin)",
    "tempo4d_measured": "tempo4d (measured origin)",
    "tempo4d_pattern": "tempo4d weights on raw patterns",
}
FULL = {
    "dose": [1e2, 1e3, 1e4, 1e5, 1e6, 1e7],
    "radius": [2.0, 4.0, 8.0, 12.0, 16.0],
    "overlap": [0.9, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0],
}
QUICK = {"dose": [1e3, 1e6], "radius": [4.0, 12.0], "overlap": [1.0, 3.0]}
#: Reciprocal length of Si {111}, 1/Å: the shortest spacing of the Si [110] pattern.
G111 = float(np.sqrt(3.0) / A_SI)


def acquisition(sweep: str, value: float, a: argparse.Namespace) -> Acquisition:
    """The Acquisition of one sweep point."""
    base = dict(scan_shape=tuple(a.scan), pattern_shape=(a.size, a.size), dose=a.dose, seed=a.seed)
    if sweep == "dose":
        return Acquisition(**{**base, "dose": float(value)})
    if sweep == "radius":
        return Acquisition(**base, disk_radius_px=float(value))
    if sweep == "overlap":
        # fixed lattice: q pixel size = G111 / lattice_px; disk radius = lattice_px / (2 * ratio)
        radius_px = a.lattice_px / (2.0 * float(value))
        r_inv_a = radius_px * G111 / a.lattice_px
        conv = r_inv_a * electron_wavelength(200.0) * 1e3
        acq = Acquisition(**base, kv=200.0, convergence_mrad=conv, disk_radius_px=radius_px)
        assert abs(disk_radius_inv_angstrom(200.0, conv) - r_inv_a) < 1e-9
        return acq
    raise ValueError(sweep)


def shifted(tables: list[np.ndarray], origins: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    """tempo4d's autocorrelation spots (zero lag at (Qx//2, Qy//2)) placed on the given origins; off-detector dropped."""
    H, W = shape
    out = []
    for t, o in zip(tables, origins):
        t = t.copy()
        t["qx"] += o[0] - H // 2
        t["qy"] += o[1] - W // 2
        on = (t["qx"] >= -0.5) & (t["qx"] < H - 0.5) & (t["qy"] >= -0.5) & (t["qy"] < W - 0.5)
        out.append(t[on])
    return out


def score(name: str, tables: list[np.ndarray], seconds: float, scan, min_snr: float) -> dict:
    truth = scan.truth
    sp = ScanPeaks(tuple(truth.scan_shape), list(tables), tuple(truth.pattern_shape))
    m = evaluate_detections(sp, truth, min_snr=min_snr).to_dict()
    every = evaluate_detections(sp, truth, min_snr=0.0).to_dict()
    n = int(np.prod(truth.scan_shape))
    keep = ("recall", "precision", "error_rms", "error_median", "n_true", "n_detected", "n_matched")
    return {**m, "all_disks": {k: every[k] for k in keep}, "seconds": seconds, "ms_per_pattern": 1e3 * seconds / n,
            "n_peaks": int(sp.n_peaks)}


def run_point(sweep: str, value: float, a: argparse.Namespace, backends: dict) -> dict:
    acq = acquisition(sweep, value, a)
    scan = simulate_preset("si_sige_multilayer", acq)
    truth = scan.truth
    frames = np.asarray(scan.data).reshape(-1, a.size, a.size)
    row = {
        "sweep": sweep, "value": float(value), "dose": acq.dose, "disk_radius_px": acq.radius_px,
        "convergence_mrad": acq.convergence_mrad,
        "spacing_over_diameter": G111 / acq.q_pixel_size / (2 * acq.radius_px),
        "lattice_111_px": G111 / acq.q_pixel_size, "n_patterns": len(frames),
        "true_disks_per_pattern": float(np.mean([len(truth.disks_at(i, j)) for i in range(acq.scan_shape[0])
                                                 for j in range(acq.scan_shape[1])])),
        "methods": {}, "errors": {},
    }
    if "ndpd" in backends:
        t = time.perf_counter()
        tabs = backends["ndpd"].detect(frames)
        row["methods"]["ndpd"] = score("ndpd", tabs, time.perf_counter() - t, scan, a.min_snr)
    if "template" in backends:
        try:
            tm = template_matching(scan.datacube, options=TemplateOptions.accurate())
            row["methods"]["template"] = score("template", tm.peaks.peaks, tm.seconds, scan, a.min_snr)
            row["template_settings"] = {k: v for k, v in tm.settings.items() if isinstance(v, (int, float, str))}
        except Exception as err:  # noqa: BLE001 - a failing baseline is a result, not a crash
            row["errors"]["template"] = f"{type(err).__name__}: {err}"
            log.warning("template matching failed at %s=%s: %s", sweep, value, err)
    if "tempo4d" in backends:
        from py4dstem_ndpd.backends import direct_beam_centres

        t = time.perf_counter()
        lags = backends["tempo4d"].detect(frames)
        dt = time.perf_counter() - t
        true_origin = truth.origin.reshape(-1, 2)
        row["methods"]["tempo4d"] = score("tempo4d", shifted(lags, true_origin, frames.shape[1:]), dt, scan, a.min_snr)
        t = time.perf_counter()
        measured = direct_beam_centres(frames)
        dt2 = time.perf_counter() - t
        row["methods"]["tempo4d_measured"] = score("tempo4d_measured", shifted(lags, measured, frames.shape[1:]),
                                                   dt + dt2, scan, a.min_snr)
        row["direct_beam_error_px"] = float(np.sqrt(np.mean(np.sum((measured - true_origin) ** 2, 1))))
    if "tempo4d_pattern" in backends:
        t = time.perf_counter()
        tabs = backends["tempo4d_pattern"].detect(frames)
        row["methods"]["tempo4d_pattern"] = score("tempo4d_pattern", tabs, time.perf_counter() - t, scan, a.min_snr)
    return row


def make_backends(a: argparse.Namespace, warm: np.ndarray) -> tuple[dict, dict]:
    """Load each method once (and warm it up on ``warm``); tempo4d is skipped, with a note, when not installed."""
    backends, notes = {}, {}
    if "ndpd" in a.methods:
        backends["ndpd"] = NDPDBackend(a.weights, DetectOptions(device="cpu" if a.cpu else "auto", conf=a.conf))
    if "template" in a.methods:
        backends["template"] = None
    want = [m for m in ("tempo4d", "tempo4d_pattern") if m in a.methods]
    if want:
        from py4dstem_ndpd.backends import Tempo4DBackend
        from py4dstem_ndpd.exceptions import ModelLoadError

        dev = "cpu" if a.cpu else "auto"
        try:
            if "tempo4d" in want:
                backends["tempo4d"] = Tempo4DBackend(origin="none", device=dev)
            if "tempo4d_pattern" in want:
                backends["tempo4d_pattern"] = Tempo4DBackend(input="pattern", device=dev)
        except ModelLoadError as err:
            notes["tempo4d"] = str(err)
            log.warning("tempo4d left out: %s", err)
            backends.pop("tempo4d", None)
            backends.pop("tempo4d_pattern", None)
    for name, b in backends.items():
        if b is not None:
            b.detect(warm)  # first call builds kernels / the ultralytics predictor: not timed
    return backends, notes


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweeps = [s for s in ("dose", "radius", "overlap") if result["sweeps"].get(s)]
    fig, axes = plt.subplots(len(sweeps), 3, figsize=(15, 3.6 * len(sweeps)), squeeze=False)
    xlabels = {"dose": "electrons per pattern", "radius": "disk radius (px)",
               "overlap": "{111} spacing / disk diameter"}
    for i, s in enumerate(sweeps):
        rows = result["sweeps"][s]
        x = [r["value"] for r in rows]
        names = [n for n in LABELS if any(n in r["methods"] for r in rows)]
        for k, n in enumerate(names):
            c = f"C{k}"
            # with no counted true disk (low dose) recall is NaN; blank precision too instead of plotting 0
            get = lambda key: [r["methods"].get(n, {}).get(key, np.nan) if r["methods"].get(n, {}).get("n_true", 0)  # noqa: E731
                               else np.nan for r in rows]
            get_all = lambda key: [r["methods"].get(n, {}).get("all_disks", {}).get(key, np.nan) for r in rows]  # noqa: E731
            for j, key in enumerate(("recall", "error_rms", "precision")):
                axes[i, j].plot(x, get(key), "o-", color=c, label=LABELS[n])
                axes[i, j].plot(x, get_all(key), "x--", color=c, alpha=0.6)
        snr = result["settings"]["min_snr"]
        for j, yl in enumerate((f"recall (solid: SNR >= {snr:g}; dashed: all disks)", "centre RMS error (px)",
                                "precision")):
            ax = axes[i, j]
            ax.set_xlabel(xlabels[s])
            ax.set_ylabel(yl)
            if s == "dose":
                ax.set_xscale("log")
            if j == 1:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        axes[i, 0].set_ylim(-0.02, 1.02)
        axes[i, 2].set_ylim(-0.02, 1.02)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"si_sige_multilayer, {result['settings']['size']} px patterns, "
                 f"{result['settings']['scan'][0]}x{result['settings']['scan'][1]} positions per point")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 2 x 2 positions, 2 points per sweep")
    p.add_argument("--scan", type=int, nargs=2, default=None, help="positions per point (default 4 4; quick 2 2)")
    p.add_argument("--size", type=int, default=256, help="pattern size, px")
    p.add_argument("--dose", type=float, default=1e6, help="dose of the radius and overlap sweeps")
    p.add_argument("--lattice-px", type=float, default=32.0, help="{111} spacing of the overlap sweep, px")
    p.add_argument("--sweeps", nargs="+", default=["dose", "radius", "overlap"], choices=["dose", "radius", "overlap"])
    p.add_argument("--methods", nargs="+", default=["ndpd", "template", "tempo4d", "tempo4d_pattern"],
                   choices=["ndpd", "template", "tempo4d", "tempo4d_pattern"])
    p.add_argument("--weights", default=None, help="NDPD weights (default: shipped)")
    p.add_argument("--conf", type=float, default=None, help="NDPD confidence threshold (default: the weights' own)")
    p.add_argument("--min-snr", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--cpu", action="store_true", help="run the networks on the CPU even if CUDA is available")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/sweeps[_quick].json)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(a.threads)
    a.scan = a.scan or ([2, 2] if a.quick else [4, 4])
    grid = QUICK if a.quick else FULL
    stem = "sweeps_quick" if a.quick else "sweeps"
    out_json = a.out or HERE / "results" / f"{stem}.json"
    out_png = HERE / "out" / f"{out_json.stem}.png"

    t_start = time.perf_counter()
    warm = np.asarray(simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(1, 2), pattern_shape=(a.size, a.size),
                                                                        seed=a.seed + 1)).data).reshape(-1, a.size, a.size)
    backends, notes = make_backends(a, warm)
    result = {
        "settings": {"size": a.size, "scan": a.scan, "dose": a.dose, "lattice_111_px": a.lattice_px,
                     "min_snr": a.min_snr, "seed": a.seed, "quick": a.quick, "grid": {s: grid[s] for s in a.sweeps},
                     "methods": sorted(LABELS[m] for m in LABELS if m in backends or (m == "tempo4d_measured" and "tempo4d" in backends)),
                     "template": "TemplateOptions.accurate()",
                     "ndpd": "DetectOptions() defaults" if a.conf is None else f"DetectOptions(conf={a.conf})",
                     "tempo4d": "Tempo4DOptions() defaults (imgsz 512, conf 0.01, iou 0.1, max_det 100)"},
        "notes": notes,
        "environment": {"python": platform.python_version(), "torch_threads": a.threads,
                        "device": "cpu" if a.cpu or not torch.cuda.is_available() else torch.cuda.get_device_name(0),
                        "machine": platform.machine()},
        "sweeps": {},
    }
    for s in a.sweeps:
        result["sweeps"][s] = []
        for v in grid[s]:
            t = time.perf_counter()
            row = run_point(s, v, a, backends)
            row["wall_s"] = time.perf_counter() - t
            result["sweeps"][s].append(row)
            log.info("%s=%g (r=%.1f px, %.1f disks): %s  [%.1f s]", s, v, row["disk_radius_px"],
                     row["true_disks_per_pattern"],
                     "; ".join(f"{k} recall {m['recall']:.3f} (all {m['all_disks']['recall']:.3f}) rms {m['error_rms']:.3f}"
                               for k, m in row["methods"].items()),
                     row["wall_s"])
    result["total_s"] = time.perf_counter() - t_start
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1, default=float))
    plot(result, out_png)
    log.info("wrote %s and %s in %.0f s", out_json, out_png, result["total_s"])
    return result


if __name__ == "__main__":
    main()
