"""Generalisation: the shipped detector on patterns from another simulator (abTEM multislice: Si [110], and
SrTiO3 [001] with frozen phonons).

The detector never saw these patterns nor anything from abTEM: dynamical contrast inside the disks (thickness
fringes, rocking curves), no kinematic intensities, a detector whose pixels do not divide the lattice. NDPD
(default refinement and raw DFL centres), py4DSTEM template matching (most accurate settings) and, if installed,
the paper authors' released tempo4d weights run on the same patterns. In the files of crystals off their zone axis
(``tilt_mrad``) the direct beam is not the brightest disk, so template matching gets a vacuum probe (a flat disk
of the true radius, :func:`vacuum_probe`), as a user would record one, instead of its probe from the data.

    python benchmarks/bench_external.py                          # the held-out fixtures, doses 1e4 1e5 1e6
    python benchmarks/bench_external.py --validation             # the files the refinement was designed on
    python benchmarks/bench_external.py --files my_abtem.npz     # a larger set made with external/simulate_abtem.py

The truth is every kinematically allowed zero-order site plus every other node of their net (half steps
included) whose disk the multislice made visible without overlapping a listed one (see
:func:`py4dstem_ndpd.synth.external.load_external`). A true disk counts when it lies at least one radius from
the detector edge and its SNR, measured on the noiseless pattern, is >= 3: by *peak* SNR (the issue's rule, as
for our own simulator; ``peak``) and, stricter, by *integrated* SNR (whole disk against its local background;
``integrated``, which counts disks of a fraction of an electron per pixel). Each method also gets the spurious
distortion of the lattice its detections imply (``distortion``: :func:`~py4dstem_ndpd.evaluate.lattice_distortion`
per pattern and its RMS), what a strain map of such patterns would show. Writes
benchmarks/results/external.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _machine import machine_info
from py4dstem_ndpd.compare import CompareOptions, compare
from py4dstem_ndpd.evaluate import evaluate_detections, lattice_distortion
from py4dstem_ndpd.synth.external import load_external

HERE = Path(__file__).parent
DATA = HERE.parent / "tests" / "data"
#: Held out: never used to design or tune anything (the two thick-crystal sets and the two tilted ones were made
#: on 2026-12-01 for that purpose and run once, after the thick-crystal refinement and the probe's edge position
#: were designed on VALIDATION; the last, SrTiO3 with 16 frozen phonons, smoother diffuse scattering, was made on
#: 2026-12-01 to ask how many of the false positives on speckle remain when the speckle is averaged down).
FIXTURES = [DATA / name for name in ("abtem_si110.npz", "abtem_sto001.npz", "abtem_si110_25-100nm.npz",
                                     "abtem_sto001_30-60nm.npz", "abtem_si110_tilt6-20mrad.npz",
                                     "abtem_sto001_tilt10-20mrad.npz", "abtem_sto001_16phonons.npz")]
#: The thick-crystal refinement (probe choice, edge positions, detector weighting) was designed on the first two,
#: the probe's edge position (crystals off the zone axis) on the third, its interior-slope correction on the third
#: and the fourth.
VALIDATION = [DATA / name for name in ("abtem_si110_40-80nm.npz", "abtem_sto001_35-70nm.npz",
                                       "abtem_si110_tilt8-16mrad.npz", "abtem_si110_tilt12-20mrad.npz")]


def vacuum_probe(shape: tuple[int, int], radius: float) -> np.ndarray:
    """A vacuum probe image: a flat disk of ``radius`` px (1 px linear edge) at the detector centre."""
    qx, qy = np.indices(shape, dtype=float)
    r = np.hypot(qx - shape[0] // 2, qy - shape[1] // 2)
    return np.clip(radius + 0.5 - r, 0.0, 1.0) * 1000.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--files", nargs="+", default=None, help="default: the held-out fixtures")
    p.add_argument("--validation", action="store_true",
                   help="the validation files instead (writes external_validation.json)")
    p.add_argument("--weights", default=None, help="detector weights (default: the shipped model)")
    p.add_argument("--doses", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    p.add_argument("--out", default=None, help="results file name in benchmarks/results/ (default: external.json, "
                   "or external_validation.json with --validation)")
    p.add_argument("--tempo4d", action="store_true", help="also the tempo4d weights (pip install --no-deps tempo4d)")
    a = p.parse_args()
    if a.files is None:
        a.files = [str(f) for f in (VALIDATION if a.validation else FIXTURES)]
    out_name = a.out or ("external_validation.json" if a.validation else "external.json")
    import py4DSTEM

    rows = []
    for file, dose in ((f, d) for f in a.files for d in a.doses):
        for ext in load_external(file, dose=dose, seed=int(np.log10(dose))):
            dc = py4DSTEM.DataCube(data=ext.frames)
            t = time.perf_counter()
            # off a zone axis the direct beam is not the brightest disk, and template matching's probe taken from
            # the data would be another disk: give it a vacuum probe, as a user would record one
            tilted = ext.meta["tilt_mrad"] is not None and np.any(ext.meta["tilt_mrad"])
            vacuum = vacuum_probe(ext.frames.shape[-2:], ext.truth.disk_radius) if tilted else None
            res = compare(dc, truth=ext.truth, options=CompareOptions(tempo4d=a.tempo4d, weights=a.weights,
                                                                     vacuum=vacuum))
            row = {"file": Path(file).name, "simulator": ext.meta["simulator"], "dose": dose,
                   "radius_px": ext.truth.disk_radius, "patterns": ext.index.tolist(),
                   "thickness_nm": ext.meta["thickness_nm"], "convergence_mrad": ext.meta["convergence_mrad"],
                   "tilt_mrad": ext.meta["tilt_mrad"],
                   "seconds": time.perf_counter() - t}
            for name, m in res.methods.items():
                row[name] = {}
                for rule in ("peak", "integrated"):
                    md = evaluate_detections(m.peaks, ext.truth, min_snr=3.0, snr=rule).to_dict()
                    row[name][rule] = {k: md[k] for k in ("recall", "precision", "error_rms", "error_median",
                                                          "n_true", "n_detected", "bias_qx", "bias_qy")}
                # the lattice the detections imply, against the truth: (e_xx, e_yy, e_xy) per pattern, what a
                # strain map would show as spurious strain (peak SNR >= 3 disks)
                dist = lattice_distortion(m.peaks, ext.truth, min_snr=3.0)[0]
                row[name]["distortion"] = {"per_pattern": dist.tolist(),
                                           "rms": float(np.sqrt(np.nanmean(dist**2))) if np.isfinite(dist).any()
                                           else float("nan")}
            rows.append(row)
            print(json.dumps(row, default=lambda v: round(float(v), 4)), flush=True)
    out = {"benchmark": "external simulator", "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
           "files": [Path(f).name for f in a.files], "weights": a.weights or "shipped",
           "counted": "SNR >= 3 (peak: the issue's rule; integrated: stricter), >= 1 radius from the edge",
           "rows": rows}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / out_name).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
