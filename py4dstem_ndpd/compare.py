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
from .peaks import ScanPeaks, make_peaks

logger = logging.getLogger(__name__)

#: Names of the methods, in report order.
METHODS = ("ndpd", "ndpd_dfl", "ndpd_box", "template")
LABELS = {
    "ndpd": "NDPD (DFL + refinement)",
    "ndpd_dfl": "NDPD (DFL centres)",
    "ndpd_box": "NDPD (rounded boxes)",
    "template": "py4DSTEM template matching",
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
    min_snr : float
        With truth: count true disks with peak SNR >= this.
    """

    detect: DetectOptions = field(default_factory=DetectOptions)
    weights: str | None = None
    template: TemplateOptions = field(default_factory=TemplateOptions.accurate)
    stages: bool = True
    min_snr: float = 3.0


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

    def to_dict(self) -> dict:
        return {"n_patterns": self.n_patterns, "methods": {k: v.to_dict() for k, v in self.methods.items()},
                "agreement": self.agreement}

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
    bs = backend.options.batch_size
    for i in range(0, len(frames), bs):
        decoded, scale, _ = backend.decode_batch(frames[i : i + bs])
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
    backend.detect(frames[: min(len(frames), 2)])  # warm-up (first call builds kernels), not timed
    t0 = time.perf_counter()
    ndpd_peaks = run_scan(datacube.data, backend, options=EngineOptions(batch_size=opts.detect.batch_size, progress=False))
    methods = {"ndpd": MethodResult("ndpd", ndpd_peaks, time.perf_counter() - t0)}
    if opts.stages:
        t0 = time.perf_counter()
        stages = _stage_peaks(backend, frames, scan_shape)
        dt = time.perf_counter() - t0
        for k, v in stages.items():
            methods[k] = MethodResult(k, v, dt)
    tm = template_matching(datacube, options=opts.template)
    methods["template"] = MethodResult("template", tm.peaks, tm.seconds)
    radius = float(backend.last_radius or tm.settings.get("disk_radius", 4.0))
    if truth is not None:
        for m in methods.values():
            m.metrics = evaluate_detections(m.peaks, truth, min_snr=opts.min_snr)
    agree = agreement(methods["ndpd"].peaks, methods["template"].peaks, radius)
    return ComparisonResult(methods=methods, agreement=agree, n_patterns=len(frames))
