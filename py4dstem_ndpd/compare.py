"""NDPD against py4DSTEM template matching on the same data, side by side.

With ground truth (simulated data) each method gets recall, precision and centre errors; without, the two are
compared with each other (matched-peak distances, peaks found by only one). Patterns/s are measured in the same
run. NDPD variants can be split into its stages: rounded box centres (what a plain ``model.predict`` user gets),
DFL soft-argmax centres (paper eqs. 1-3) and refined centres (the default).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .baseline import TemplateOptions, template_matching
from .detect.backend import DetectOptions, NDPDBackend
from .detect.decode import Decoded, to_native
from .evaluate import DetectionMetrics, evaluate_detections, match_peaks
from .exceptions import ConfigError
from .peaks import ScanPeaks, make_peaks

logger = logging.getLogger(__name__)

#: Names of the methods, in report order.
METHODS = ("ndpd", "ndpd_dfl", "ndpd_box", "template", "tempo4d")
LABELS = {
    "ndpd": "NDPD (DFL + refinement)",
    "ndpd_dfl": "NDPD (DFL centres)",
    "ndpd_box": "NDPD (rounded boxes)",
    "template": "py4DSTEM template matching",
    "tempo4d": "tempo4d (authors' released model)",
}


@dataclass(frozen=True)
class CompareOptions:
    """What to compare.

    Attributes
    ----------
    detect : DetectOptions
        NDPD options (the ``ndpd`` method uses them as given).
    weights : str or None
    template : TemplateOptions
        Template-matching settings; default: the most accurate (multicorr, upsampling 16).
    stages : bool
        Also report NDPD's stages (rounded boxes, DFL centres).
    tempo4d : bool
        Also run the paper authors' released model (needs ``pip install --no-deps tempo4d``; see
        :mod:`py4dstem_ndpd.backends.tempo4d`).
    min_snr : float
        With truth: count true disks with peak SNR >= this.
    vacuum : ndarray or None
        A vacuum probe for template matching (any form :func:`~py4dstem_ndpd.baseline.template_matching` takes);
        ``None``: derived from the data (the mean aligned central disk). Give one where the direct beam is not
        the brightest disk (crystals off a zone axis), as a py4DSTEM user would.
    repeats : int
        Time NDPD and template matching this many times, taking turns, and keep each one's fastest run (default 1).
        On a shared machine the rate moves by a third between runs minutes apart; turns and best-of make the
        ratio steadier. The detections are those of the last run (they do not change between runs).
    """

    detect: DetectOptions = field(default_factory=DetectOptions)
    weights: str | None = None
    template: TemplateOptions = field(default_factory=TemplateOptions.accurate)
    stages: bool = True
    tempo4d: bool = False
    min_snr: float = 3.0
    vacuum: np.ndarray | None = None
    repeats: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.repeats, int) or isinstance(self.repeats, bool) or self.repeats < 1:
            raise ConfigError(f"CompareOptions.repeats must be an integer >= 1, got {self.repeats!r}")


@dataclass
class MethodResult:
    """One method's output on the data."""

    name: str
    peaks: ScanPeaks
    seconds: float
    metrics: DetectionMetrics | None = None

    @property
    def patterns_per_second(self) -> float:
        n = int(np.prod(self.peaks.scan_shape))
        return n / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        d = {"name": self.name, "label": LABELS.get(self.name, self.name), "seconds": self.seconds,
             "patterns_per_second": self.patterns_per_second, "n_peaks": self.peaks.n_peaks}
        if self.metrics is not None:
            d["metrics"] = self.metrics.to_dict()
        return d


@dataclass
class ComparisonResult:
    """All methods on one dataset, plus their mutual agreement."""

    methods: dict[str, MethodResult]
    agreement: dict
    n_patterns: int
    template_settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"n_patterns": self.n_patterns, "methods": {k: v.to_dict() for k, v in self.methods.items()},
                "agreement": self.agreement, "template_settings": self.template_settings}

    @property
    def speedup(self) -> float:
        """NDPD patterns/s over template matching patterns/s."""
        return self.methods["ndpd"].patterns_per_second / self.methods["template"].patterns_per_second


def _frames(datacube) -> np.ndarray:
    d = np.asarray(datacube.data)
    return d.reshape(-1, *d.shape[2:])


def _stage_peaks(backend: NDPDBackend, frames: np.ndarray, scan_shape) -> dict[str, ScanPeaks]:
    """NDPD's rounded-box and DFL centres, from one pass of the network."""
    box, dfl = [], []
    bs = backend.preferred_batch_size()
    for i in range(0, len(frames), bs):
        batch = frames[i : i + bs]
        prepared, _ = backend.prepare(batch)
        decoded, scale, _ = backend.decode_batch(batch if prepared is None else prepared)
        for d in decoded:
            qx, qy = to_native(d, scale)
            dfl.append(make_peaks(qx, qy, confidence=d.score))
            x1, x2 = np.round(d.cx - d.w / 2), np.round(d.cx + d.w / 2)
            y1, y2 = np.round(d.cy - d.h / 2), np.round(d.cy + d.h / 2)
            r = Decoded(cx=(x1 + x2) / 2, cy=(y1 + y2) / 2, w=d.w, h=d.h, score=d.score)
            bx, by = to_native(r, scale)
            box.append(make_peaks(bx, by, confidence=d.score))
    shape = frames.shape[1:]
    return {"ndpd_box": ScanPeaks(scan_shape, box, shape), "ndpd_dfl": ScanPeaks(scan_shape, dfl, shape)}


def agreement(a: ScanPeaks, b: ScanPeaks, radius: float) -> dict:
    """How two detections of the same scan agree: matched distances and peaks found by only one of them."""
    dists, only_a, only_b, both = [], 0, 0, 0
    for pa, pb in zip(a.peaks, b.peaks):
        qa = np.stack([pa["qx"], pa["qy"]], 1).astype(float)
        qb = np.stack([pb["qx"], pb["qy"]], 1).astype(float)
        ia, ib = match_peaks(qa, qb, radius)
        both += len(ia)
        only_a += len(qa) - len(ia)
        only_b += len(qb) - len(ib)
        if len(ia):
            dists.append(np.linalg.norm(qa[ia] - qb[ib], axis=1))
    d = np.concatenate(dists) if dists else np.zeros(0)
    return {
        "matched": both, "only_first": only_a, "only_second": only_b,
        "distance_median": float(np.median(d)) if d.size else float("nan"),
        "distance_rms": float(np.sqrt(np.mean(d**2))) if d.size else float("nan"),
        "distance_p95": float(np.percentile(d, 95)) if d.size else float("nan"),
        "distances": d,
    }


def compare(datacube, *, truth=None, options: CompareOptions | None = None) -> ComparisonResult:
    """Run NDPD and py4DSTEM template matching on the same DataCube and compare them.

    Parameters
    ----------
    datacube : py4DSTEM.DataCube
    truth : ScanTruth, optional
        Ground truth (simulated data): adds recall, precision and centre errors for each method.
    options : CompareOptions, optional

    Returns
    -------
    ComparisonResult
    """
    from .engine import EngineOptions, run_scan

    opts = options or CompareOptions()
    frames = _frames(datacube)
    scan_shape = tuple(datacube.data.shape[:2])
    backend = NDPDBackend(opts.weights, opts.detect)
    # warm-up, not timed: the first call at a batch size builds the network's kernels for it
    backend.detect(frames[: min(len(frames), backend.preferred_batch_size())])
    engine = EngineOptions(batch_size=opts.detect.batch_size, progress=False)
    ndpd_s, tm_s = [], []
    for _ in range(opts.repeats):  # taking turns, so that a slow spell of the machine hits both alike
        t0 = time.perf_counter()
        ndpd_peaks = run_scan(datacube.data, backend, options=engine)
        ndpd_s.append(time.perf_counter() - t0)
        tm = template_matching(datacube, vacuum=opts.vacuum, options=opts.template)
        tm_s.append(tm.seconds)
    methods = {"ndpd": MethodResult("ndpd", ndpd_peaks, min(ndpd_s))}
    if opts.stages:
        t0 = time.perf_counter()
        stages = _stage_peaks(backend, frames, scan_shape)
        dt = time.perf_counter() - t0
        for k, v in stages.items():
            methods[k] = MethodResult(k, v, dt)
    methods["template"] = MethodResult("template", tm.peaks, min(tm_s))
    settings = {k: v for k, v in tm.settings.items() if isinstance(v, (int, float, str, bool))}
    if opts.tempo4d:
        from .backends import Tempo4DBackend

        tb = Tempo4DBackend(device=opts.detect.device)
        tb.detect(frames[:2])  # warm-up
        t0 = time.perf_counter()
        tabs = tb.detect(frames)
        methods["tempo4d"] = MethodResult("tempo4d", ScanPeaks(scan_shape, tabs, frames.shape[1:]),
                                          time.perf_counter() - t0)
    radius = float(backend.last_radius or tm.settings.get("disk_radius", 4.0))
    if truth is not None:
        for m in methods.values():
            m.metrics = evaluate_detections(m.peaks, truth, min_snr=opts.min_snr)
    agree = agreement(methods["ndpd"].peaks, methods["template"].peaks, radius)
    return ComparisonResult(methods=methods, agreement=agree, n_patterns=len(frames), template_settings=settings)


def strain_side_by_side(result: ComparisonResult, datacube, *, reference=None, methods=("ndpd", "template")) -> dict:
    """Strain maps of each method (py4DSTEM StrainMap via :func:`~py4dstem_ndpd.analysis.strain_map`).

    Returns ``{method: StrainResult}``; methods whose lattice fit fails are left out (logged).
    """
    from .analysis import strain_map
    from .bridge import to_braggvectors
    from .calibration import Calibration

    cal = Calibration.from_py4dstem(datacube.calibration)
    out = {}
    for name in methods:
        try:
            out[name] = strain_map(to_braggvectors(result.methods[name].peaks, cal), reference=reference)
        except Exception as err:  # noqa: BLE001 - one method failing must not lose the others
            logger.warning("strain map of %s failed: %s", name, err)
    return out


def write_comparison_report(result: ComparisonResult, datacube, out_dir, *, truth=None, reference=None) -> dict:
    """Figures (PNG + PDF), ``comparison.json`` and ``report.html`` of a comparison in ``out_dir``.

    Returns the JSON summary (methods, agreement, speed-up, strain precision per method).
    """
    import json
    from pathlib import Path

    from .analysis import ReportSection, plot_detections, plot_error_histograms, plot_strain_maps, write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = result.to_dict()
    summary["agreement"] = {k: v for k, v in result.agreement.items() if k != "distances"}
    summary["speedup_ndpd_over_template"] = result.speedup
    Rx, Ry = result.methods["ndpd"].peaks.scan_shape
    examples = [(0, 0), (Rx // 2, Ry // 2), (Rx - 1, Ry - 1)]
    figs = []
    for name in ("ndpd", "template"):
        plot_detections(datacube.data, result.methods[name].peaks, examples, out / f"detections_{name}.png",
                        truth=truth, title=LABELS[name])
        figs.append(out / f"detections_{name}.png")
    if truth is not None:
        plot_error_histograms({LABELS[k]: m.metrics.offsets for k, m in result.methods.items() if m.metrics is not None},
                              out / "centre_errors.png")
    else:
        plot_error_histograms({"NDPD vs template matching": result.agreement["distances"]}, out / "centre_errors.png")
    figs.append(out / "centre_errors.png")
    strains = strain_side_by_side(result, datacube, reference=reference)
    summary["strain"] = {}
    for name, st in strains.items():
        plot_strain_maps(st.e_xx, st.e_yy, out / f"strain_{name}.png",
                         truth=(truth.strain[..., 0], truth.strain[..., 1]) if truth is not None else None)
        figs.append(out / f"strain_{name}.png")
        summary["strain"][name] = {"precision": st.precision}
        if truth is not None:
            from .evaluate import strain_error

            summary["strain"][name]["e_xx_vs_truth"] = strain_error(st.e_xx, truth.strain[..., 0], mask=st.valid)
    (out / "comparison.json").write_text(json.dumps(summary, indent=1, default=float))
    numbers = {f"{LABELS[k]}: patterns/s": m.patterns_per_second for k, m in result.methods.items() if k in ("ndpd", "template")}
    numbers["speed-up NDPD / template matching"] = result.speedup
    for k, m in result.methods.items():
        if m.metrics is not None:
            numbers[f"{LABELS[k]}: recall"] = m.metrics.recall
            numbers[f"{LABELS[k]}: precision"] = m.metrics.precision
            numbers[f"{LABELS[k]}: centre RMS (px)"] = m.metrics.error_rms
    for k, st in strains.items():
        numbers[f"{LABELS[k]}: std e_xx in reference"] = st.precision.get("e_xx", float("nan"))
    a = result.agreement
    numbers["peaks found by both"] = a["matched"]
    numbers["found by NDPD only"] = a["only_first"]
    numbers["found by template matching only"] = a["only_second"]
    numbers["median distance between the two (px)"] = a["distance_median"]
    text = ("Both methods ran on the same patterns in the same process; patterns/s are end-to-end for each "
            "(template matching: py4DSTEM find_Bragg_disks with the settings in comparison.json).")
    write_report(out, [ReportSection("NDPD vs py4DSTEM template matching", text, numbers, figs)],
                 title="py4dstem-ndpd comparison")
    return summary
