"""The main job, ``ndpd demo``: simulate the paper's two samples, detect, map strain and phases, write figures,
EMD files and an HTML report.

Steps (each timed):

1. simulate a Si/SiGe multilayer (Si [110], 5 x (10 nm SiGe / 13 nm Si) on a substrate) and a multiphase Ti-Nb
   alloy, with exact ground truth (``*_scan.h5``: the DataCube and the truth, EMD);
2. detect the disks with the shipped model (``*_braggvectors.h5``: py4DSTEM BraggVectors, EMD);
3. score the detections against the truth (recall, precision, centre errors);
4. Si/SiGe: strain map with py4DSTEM's StrainMap, reference = the strain-free substrate; precision = std of
   e_xx there; e_xx line profile along the growth direction; compared with the truth;
5. Ti-Nb: k-means phase map from interatomic distances, adjusted Rand index against the truth labels, and strain;
6. figures (PNG + PDF), ``*_maps.h5`` (strain and phase maps as py4DSTEM RealSlices) and ``report.html``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOptions:
    """Size of the demo.

    Attributes
    ----------
    si_scan, tinb_scan : (int, int)
        Scan shapes of the two samples.
    pattern_size : int
        Pattern side, px.
    dose : float
        Electrons per pattern.
    seed : int
    weights : str or None
        Detector weights (default: shipped).
    """

    si_scan: tuple[int, int] = (64, 12)
    tinb_scan: tuple[int, int] = (32, 32)
    pattern_size: int = 256
    dose: float = 1e6
    seed: int = 0
    weights: str | None = None

    @classmethod
    def quick(cls) -> "DemoOptions":
        """A tiny demo for tests (a few seconds of detection)."""
        return cls(si_scan=(24, 3), tinb_scan=(12, 12), pattern_size=256)


def _maps_slice(maps: dict[str, np.ndarray], name: str):
    import py4DSTEM

    keys = list(maps)
    return py4DSTEM.RealSlice(data=np.stack([np.asarray(maps[k], float) for k in keys], -1), name=name, slicelabels=keys)


def run_demo(out_dir: str | Path = "ndpd-demo", options: DemoOptions | None = None, *, overwrite: bool = False) -> dict:
    """Run the demo and return the summary (also written to ``out_dir/summary.json``).

    Raises
    ------
    FileExistsError
        ``out_dir`` holds a previous demo and ``overwrite`` is False.
    """
    from sklearn.metrics import adjusted_rand_score

    from .analysis import (
        PhaseOptions, ReportSection, phase_map, plot_detections, plot_error_histograms,
        plot_phase_strain, plot_strain_maps, plot_virtual_images, strain_map, virtual_annular_dark_field,
        virtual_bright_field, write_report,
    )
    from .api import detect_scan
    from .bridge import to_braggvectors
    from .detect.backend import DetectOptions
    from .engine import EngineOptions
    from .evaluate import evaluate_detections, strain_error
    from .io.writers import OutputExistsError, save_py4dstem
    from .synth import Acquisition, save_scan, simulate_preset

    opts = options or DemoOptions()
    out = Path(out_dir)
    if (out / "summary.json").exists() and not overwrite:
        raise OutputExistsError(f"{out} holds a previous demo; pass --overwrite to replace it.")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    summary: dict = {"options": {k: getattr(opts, k) for k in opts.__dataclass_fields__}}
    sections = []
    S = opts.pattern_size

    def detect(scan, label):
        t0 = time.perf_counter()
        peaks = detect_scan(scan.datacube, options=DetectOptions(), weights=opts.weights,
                            engine=EngineOptions(progress=True))
        dt = time.perf_counter() - t0
        bv = to_braggvectors(peaks, scan.truth.calibration)
        save_py4dstem(out / f"{label}_braggvectors.h5", bv, overwrite=True)
        m = evaluate_detections(peaks, scan.truth, min_snr=3.0)
        return peaks, bv, dt, m

    # ---- Si/SiGe --------------------------------------------------------------------------------------------
    logger.info("simulating si_sige_multilayer %s", opts.si_scan)
    t0 = time.perf_counter()
    si = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=opts.si_scan, pattern_shape=(S, S),
                                                           dose=opts.dose, seed=opts.seed), progress=True)
    t_sim_si = time.perf_counter() - t0
    save_scan(out / "si_sige_scan.h5", si, overwrite=True)
    si_peaks, si_bv, si_dt, si_m = detect(si, "si_sige")
    ref = np.zeros(opts.si_scan, bool)
    ref[: max(3, int(opts.si_scan[0] * 0.15))] = True  # the first 15 % of the scan is substrate (25 nm of 145)
    st = strain_map(si_bv, reference=ref)
    sige = si.truth.phase == 1
    core = sige & (si.truth.strain[..., 0] > 0.9 * si.truth.strain[..., 0].max())
    si_err = strain_error(st.e_xx, si.truth.strain[..., 0], mask=st.valid)
    bf = virtual_bright_field(si.datacube)
    adf = virtual_annular_dark_field(si.datacube)
    save_py4dstem(out / "si_sige_maps.h5", _maps_slice({"e_xx": st.e_xx, "e_yy": st.e_yy, "e_xy": st.e_xy,
                                                         "theta": st.theta, "virtual_bf": bf, "virtual_adf": adf},
                                                        "si_sige_strain"), overwrite=True)
    figs_si = [
        plot_detections(si.data, si_peaks, [(0, 0), (opts.si_scan[0] // 2, opts.si_scan[1] // 2),
                                             (opts.si_scan[0] - 1, opts.si_scan[1] - 1)],
                        out / "si_sige_detections.png", truth=si.truth, title="Si/SiGe: NDPD detections"),
        plot_virtual_images(bf, adf, out / "si_sige_virtual.png", pixel_size=si.truth.calibration.r_pixel_size),
        plot_strain_maps(st.e_xx, st.e_yy, out / "si_sige_strain.png", virtual=adf,
                         pixel_size=si.truth.calibration.r_pixel_size,
                         truth=(si.truth.strain[..., 0], si.truth.strain[..., 1])),
        plot_error_histograms({"Si/SiGe": si_m.errors}, out / "errors.png"),
    ]
    si_sum = {
        "patterns": int(np.prod(opts.si_scan)), "simulate_s": t_sim_si, "detect_s": si_dt,
        "patterns_per_s": np.prod(opts.si_scan) / si_dt, "detection": si_m.to_dict(),
        "precision_e_xx_substrate": float(np.nanstd(st.e_xx[ref])),
        "mean_e_xx_sige_core": float(np.nanmean(st.e_xx[core])) if core.any() else float("nan"),
        "truth_e_xx_sige_core": float(np.mean(si.truth.strain[..., 0][core])) if core.any() else float("nan"),
        "e_xx_error_vs_truth": si_err,
    }
    summary["si_sige_multilayer"] = si_sum
    sections.append(ReportSection(
        "Si/SiGe multilayer: strain",
        "Disks found by NDPD, strain with py4DSTEM's StrainMap relative to the Si substrate (first rows of the "
        "scan). The line profile averages across the layers; the dashed line is the simulator's truth.",
        {"patterns/s (detection)": si_sum["patterns_per_s"], "recall (SNR>=3)": si_m.recall,
         "precision": si_m.precision, "centre RMS error (px)": si_m.error_rms,
         "strain precision: std e_xx in substrate": si_sum["precision_e_xx_substrate"],
         "mean e_xx in SiGe (measured)": si_sum["mean_e_xx_sige_core"],
         "mean e_xx in SiGe (truth)": si_sum["truth_e_xx_sige_core"]},
        [f for f in [out / "si_sige_detections.png", out / "si_sige_virtual.png", out / "si_sige_strain.png"]],
    ))

    # ---- Ti-Nb ----------------------------------------------------------------------------------------------
    logger.info("simulating tinb_multiphase %s", opts.tinb_scan)
    t0 = time.perf_counter()
    tn = simulate_preset("tinb_multiphase", Acquisition(scan_shape=opts.tinb_scan, pattern_shape=(S, S),
                                                        dose=opts.dose, seed=opts.seed + 1), progress=True)
    t_sim_tn = time.perf_counter() - t0
    save_scan(out / "tinb_scan.h5", tn, overwrite=True)
    tn_peaks, tn_bv, tn_dt, tn_m = detect(tn, "tinb")
    ph = phase_map(tn_bv, options=PhaseOptions())
    ari = adjusted_rand_score(tn.truth.phase.ravel(), ph.labels.ravel())
    st_tn = strain_map(tn_bv, reference=tn.truth.phase == 0, options=None)
    adf_tn = virtual_annular_dark_field(tn.datacube)
    save_py4dstem(out / "tinb_maps.h5", _maps_slice({"phase": ph.labels, "e_xx": st_tn.e_xx, "e_yy": st_tn.e_yy,
                                                      "virtual_adf": adf_tn}, "tinb_phase_strain"), overwrite=True)
    reps = [np.asarray(tn.data[p.representative]) for p in ph.phases]
    figs_tn = [
        plot_detections(tn.data, tn_peaks, [p.representative for p in ph.phases][:4], out / "tinb_detections.png",
                        truth=tn.truth, title="Ti-Nb: one pattern per phase found"),
        plot_phase_strain(ph.labels, st_tn.e_xx, st_tn.e_yy, out / "tinb_phase_strain.png", virtual=adf_tn,
                          examples=reps, pixel_size=tn.truth.calibration.r_pixel_size),
    ]
    tn_sum = {
        "patterns": int(np.prod(opts.tinb_scan)), "simulate_s": t_sim_tn, "detect_s": tn_dt,
        "patterns_per_s": np.prod(opts.tinb_scan) / tn_dt, "detection": tn_m.to_dict(),
        "n_phases": ph.n_phases, "adjusted_rand_index": float(ari),
        "phases": [p.__dict__ for p in ph.phases],
    }
    summary["tinb_multiphase"] = tn_sum
    sections.append(ReportSection(
        "Ti-Nb multiphase alloy: phases and strain",
        "k-means on interatomic distances measured from the detected disks; the number of phases is chosen by "
        "the silhouette score. Strain is relative to the matrix.",
        {"patterns/s (detection)": tn_sum["patterns_per_s"], "recall (SNR>=3)": tn_m.recall,
         "precision": tn_m.precision, "centre RMS error (px)": tn_m.error_rms, "phases found": ph.n_phases,
         "adjusted Rand index vs truth": ari},
        [out / "tinb_detections.png", out / "tinb_phase_strain.png", out / "errors.png"],
    ))
    del figs_si, figs_tn
    summary["total_s"] = time.perf_counter() - t_start
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
    write_report(out, sections, title="py4dstem-ndpd demo")
    logger.info("demo written to %s in %.0f s", out, summary["total_s"])
    return summary


def _json_default(v):
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size < 64 else f"array{v.shape}"
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    return str(v)
