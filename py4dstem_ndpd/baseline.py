"""py4DSTEM's own template matching, with every setting derived from the data: the baseline to beat.

:func:`template_matching` runs ``datacube.find_Bragg_disks`` (py4DSTEM 0.14) with a probe template built from the
data and returns the BraggVectors together with the settings it chose (:class:`TemplateResult`).

How the settings are derived
----------------------------
1. Probe image. A vacuum probe if one is given (an image, a stack, or a boolean mask of vacuum scan positions);
   otherwise the mean of up to ``probe_patterns`` diffraction patterns aligned on each other
   (``datacube.get_vacuum_probe(ROI, align=True)``), whose central disk is the probe.
2. Disk radius ``r`` and rough centre: ``Probe.measure_disk`` (thresholded-area radius, thresholded centre of
   mass); where the half-height radius of the azimuthal median profile (:func:`edge_radius`) differs by more than
   15 % (neighbouring Bragg disks of the mean pattern counted in the thresholded area, as with 12 px disks),
   that radius is used; then ``Probe.zero_vacuum(alpha_max=1.5)`` zeroes the image beyond ``1.5 r`` so the Bragg disks of the
   mean pattern do not enter the template.
3. Exact probe centre: the centre of point symmetry of the probe image, from the cross-correlation of the image
   with its point reflection, refined with py4DSTEM's DFT-upsampled correlation. An error in the kernel centre
   shifts *every* detected disk by the same amount; ``measure_disk``'s thresholded centre of mass left a
   (-0.013, -0.003) px bias on the 256 px test scan, the symmetry centre (-0.003, -0.001) px.
4. Kernel: ``Probe.get_kernel(mode="sigmoid", radii=(1.2 r, 3 r), bilinear=False)`` (the probe minus an annular
   trench, zero sum), which removes the smooth background. ``"gaussian"`` and ``"flat"`` are available.
   ``bilinear=False`` matters: py4DSTEM's sigmoid and gaussian kernels default to ``bilinear=True``, shifting the
   probe to the corner by bilinear interpolation, which moved every detection by ~0.04 px on the test scan.
5. Detection: ``corrPower=1`` (plain cross-correlation), ``sigma_cc=0``, ``subpixel="multicorr"`` with
   ``upsample_factor=16`` (or ``"poly"`` in :meth:`TemplateOptions.fast`), ``minPeakSpacing = 2 r`` (closer disks
   overlap), ``edgeBoundary = floor(r)``.
6. ``minRelativeIntensity``: on ``calibration_patterns`` patterns spread over the scan, every correlation maximum is
   found with no threshold; the relative intensities (to the brightest maximum, the direct beam) of noise maxima
   and disks form two populations with a gap between them. The threshold is the geometric middle of the widest gap
   (in log intensity) between the median maximum (noise maxima outnumber disks) and ``0.2``, if it is wider than a
   factor 2; otherwise ``fallback_threshold_rel``.

Measured on ``si_sige_multilayer``, ``Acquisition(scan_shape=(4, 4), pattern_shape=(256, 256), dose=1e6)``
(disk radius 4 px, 31 disks per pattern, SNR 4.2..150; see ``tests/test_baseline.py``): recall 1.0, precision
1.0, centre RMS 0.054 px (0.017 px on disks with SNR > 20), bias < 0.004 px, for both the accurate (multicorr,
~20 ms per pattern) and the fast preset (poly, ~2 ms per pattern): with 4 px disks the correlation peak is smooth
enough for the parabola. ``corrPower < 1`` (hybrid/phase correlation) was worse on this simulator (RMS 0.11-0.9 px,
noise maxima brighter than the weakest disks), ``sigma_cc`` made no difference with multicorr, upsampling 64
instead of 16 changed nothing, and the sigmoid, gaussian and flat kernels gave the same accuracy (the flat one
leaves the background in: a 3x narrower noise/disk gap).
"""
from __future__ import annotations

import contextlib
import io
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from .bridge import from_braggvectors
from .exceptions import ConfigError, InputError
from .peaks import ScanPeaks

if TYPE_CHECKING:  # pragma: no cover
    import py4DSTEM

log = logging.getLogger(__name__)

KernelMode = Literal["sigmoid", "gaussian", "flat"]
Subpixel = Literal["pixel", "poly", "multicorr"]


@dataclass(frozen=True)
class TemplateOptions:
    """Settings of :func:`template_matching`; ``None`` means "derive from the data".

    Attributes
    ----------
    kernel : {"sigmoid", "gaussian", "flat"}
        py4DSTEM ``Probe.get_kernel`` mode.
    kernel_radii : (float, float)
        Inner and outer radius of the sigmoid trench, in units of the disk radius (``mode="sigmoid"``).
    kernel_sigma : float
        Width of the subtracted gaussian relative to the probe's (``mode="gaussian"``).
    disk_radius : float or None
        Disk radius, px; None measures it on the probe.
    corr_power : float
        0 = phase correlation, 1 = cross-correlation (py4DSTEM ``corrPower``).
    sigma_cc : float
        Gaussian smoothing of the correlation before maxima are found, px.
    subpixel : {"pixel", "poly", "multicorr"}
    upsample_factor : int
        DFT upsampling for ``subpixel="multicorr"`` (> 2).
    min_distance : float or None
        py4DSTEM ``minPeakSpacing``, px; None gives ``2 * disk_radius``.
    edge_boundary : int or None
        py4DSTEM ``edgeBoundary``, px; None gives ``floor(disk_radius)``.
    threshold_rel : float or None
        py4DSTEM ``minRelativeIntensity``; None derives it from the data (module docstring, step 6).
    threshold_abs : float
        py4DSTEM ``minAbsoluteIntensity`` (correlation units).
    num_peaks : int
        py4DSTEM ``maxNumPeaks``.
    probe_patterns : int
        Patterns averaged for the probe when no vacuum is given.
    calibration_patterns : int
        Patterns used to derive ``threshold_rel``.
    fallback_threshold_rel : float
        ``threshold_rel`` used when no clear noise/disk gap is found.
    """

    kernel: KernelMode = "sigmoid"
    kernel_radii: tuple[float, float] = (1.2, 3.0)
    kernel_sigma: float = 2.0
    disk_radius: float | None = None
    corr_power: float = 1.0
    sigma_cc: float = 0.0
    subpixel: Subpixel = "multicorr"
    upsample_factor: int = 16
    min_distance: float | None = None
    edge_boundary: int | None = None
    threshold_rel: float | None = None
    threshold_abs: float = 0.0
    num_peaks: int = 200
    probe_patterns: int = 64
    calibration_patterns: int = 8
    fallback_threshold_rel: float = 5e-3

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise ConfigError(f"TemplateOptions: {msg}")

        if self.kernel not in ("sigmoid", "gaussian", "flat"):
            bad(f"kernel must be 'sigmoid', 'gaussian' or 'flat', got {self.kernel!r}")
        if self.subpixel not in ("pixel", "poly", "multicorr"):
            bad(f"subpixel must be 'pixel', 'poly' or 'multicorr', got {self.subpixel!r}")
        ri, ro = self.kernel_radii
        if not 0 < ri < ro:
            bad(f"kernel_radii must be (inner, outer) with 0 < inner < outer, got {self.kernel_radii}")
        if not 0 <= self.corr_power <= 1:
            bad(f"corr_power must be in [0, 1], got {self.corr_power}")
        if self.upsample_factor <= 2:
            bad(f"upsample_factor must be > 2 (py4DSTEM multicorr), got {self.upsample_factor}")
        for name in ("disk_radius", "min_distance"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                bad(f"{name} must be > 0 px or None (derive), got {v}")
        if self.edge_boundary is not None and self.edge_boundary < 0:
            bad(f"edge_boundary must be >= 0 px or None, got {self.edge_boundary}")
        if self.threshold_rel is not None and not 0 <= self.threshold_rel < 1:
            bad(f"threshold_rel must be in [0, 1) or None (derive), got {self.threshold_rel}")
        for name in ("sigma_cc", "threshold_abs", "kernel_sigma"):
            if getattr(self, name) < 0:
                bad(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("num_peaks", "probe_patterns", "calibration_patterns"):
            if int(getattr(self, name)) < 1:
                bad(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.fallback_threshold_rel < 1:
            bad(f"fallback_threshold_rel must be in (0, 1), got {self.fallback_threshold_rel}")

    @classmethod
    def accurate(cls, **changes) -> "TemplateOptions":
        """The most accurate setting py4DSTEM offers: multicorr, upsample 16 (the defaults)."""
        return cls(**changes)

    @classmethod
    def fast(cls, **changes) -> "TemplateOptions":
        """Parabolic sub-pixel fit (``subpixel="poly"``), for speed comparisons."""
        return cls(**{"subpixel": "poly", **changes})


@dataclass
class TemplateResult:
    """What :func:`template_matching` returns.

    Attributes
    ----------
    braggvectors : py4DSTEM.BraggVectors
        py4DSTEM's own output (fields qx, qy, intensity = correlation peak height), attached to the datacube's
        tree under ``name`` and sharing its calibration, exactly as ``datacube.find_Bragg_disks`` leaves it
        (``datacube.get_vacuum_probe`` also attaches the mean probe to the tree, as ``"probe"``).
    peaks : ScanPeaks
        The same vectors as peak tables (confidence 1), ``timings`` filled in.
    probe : py4DSTEM.braggvectors.Probe
        The probe, with ``probe.kernel`` the template used.
    settings : dict
        Keyword arguments given to ``find_Bragg_disks`` (py4DSTEM names, ``template`` left out) plus the derived
        quantities: ``disk_radius``, ``probe_origin``, ``probe_source``, ``kernel``, ``kernel_params``,
        ``threshold_method`` ("given", "gap" or "fallback") and ``threshold_gap`` (the noise/disk ratio found).
    seconds : float
        Wall time of the detection itself (without probe and threshold derivation).
    seconds_per_pattern : float
    """

    braggvectors: "py4DSTEM.BraggVectors"
    peaks: ScanPeaks
    probe: object
    settings: dict
    seconds: float
    seconds_per_pattern: float
    options: TemplateOptions = field(default_factory=TemplateOptions)


def symmetry_centre(image: np.ndarray, guess: tuple[float, float], *, upsample_factor: int = 64) -> np.ndarray:
    """Centre of point symmetry of an image (e.g. a probe disk), px.

    The cross-correlation of the image with its point reflection peaks at twice the centre; the peak is refined
    with py4DSTEM's DFT-upsampled correlation (``upsampled_correlation``) and halved.

    Parameters
    ----------
    image : ndarray, shape (Qx, Qy)
    guess : (float, float)
        Rough centre ``(qx, qy)``, px; resolves the half-period ambiguity of the halving.
    upsample_factor : int

    Returns
    -------
    ndarray, shape (2,)
        ``(qx, qy)`` of the centre, px (pixel ``i`` centred on ``i``).
    """
    from py4DSTEM.process.utils.multicorr import upsampled_correlation

    p = np.asarray(image, dtype=float)
    N = np.array(p.shape, dtype=float)
    q = np.roll(p[::-1, ::-1], 1, axis=(0, 1))  # q[i] = p[-i mod N]
    corr = np.fft.fft2(p) * np.conj(np.fft.fft2(q))
    cc = np.real(np.fft.ifft2(corr))
    s0 = np.array(np.unravel_index(np.argmax(cc), cc.shape), dtype=float)
    s0 = np.round(s0 * 2) / 2
    s = np.asarray(upsampled_correlation(corr, upsample_factor, s0.copy()), dtype=float)
    half = s / 2
    options = np.array([[half[0] + a * N[0] / 2, half[1] + b * N[1] / 2] for a in (0, 1) for b in (0, 1)])
    return options[np.argmin(np.linalg.norm(options - np.asarray(guess, float), axis=1))]


def edge_radius(image: np.ndarray, centre: tuple[float, float], *, step: float = 0.25) -> float:
    """Radius of the central disk of a probe image: where its azimuthal *median* profile falls to half.

    ``Probe.measure_disk`` thresholds the whole image, so on a mean pattern whose Bragg disks come close to the
    central one (large disks) their area counts too (measured: 17.7 px for a 12 px disk). The median over each
    ring ignores neighbours that cover less than half of it. The profile's plateau is the median inside a
    third of the first guess of the radius; the background is the median beyond twice the half-height radius.

    Parameters
    ----------
    image : ndarray (Qx, Qy)
    centre : (float, float)
        Rough centre (qx, qy), px.
    step : float
        Ring width, px.

    Returns
    -------
    float
        Radius, px; NaN when the profile never falls to half its plateau.
    """
    img = np.asarray(image, dtype=np.float64)
    qx, qy = np.indices(img.shape)
    rr = np.hypot(qx - centre[0], qy - centre[1]).ravel()
    v = img.ravel()
    r_max = 0.5 * min(img.shape)
    keep = rr < r_max
    b = (rr[keep] / step).astype(np.int64)
    order = np.argsort(b, kind="stable")
    bs, vs = b[order], v[keep][order]
    bounds = np.searchsorted(bs, np.arange(int(r_max / step) + 2))
    prof = np.array([np.median(vs[lo:hi]) if hi > lo else np.nan for lo, hi in zip(bounds[:-1], bounds[1:])])
    radii = (np.arange(len(prof)) + 0.5) * step
    ok = np.isfinite(prof)
    radii, prof = radii[ok], prof[ok]
    if prof.size < 8:
        return float("nan")
    plateau = np.median(prof[: max(2, int(1.0 / step))])  # within ~1 px of the centre
    below = np.nonzero(prof < 0.5 * plateau)[0]
    if below.size == 0 or below[0] == 0:
        return float("nan")
    i = below[0]
    r_half = radii[i - 1] + (radii[i] - radii[i - 1]) * (prof[i - 1] - 0.5 * plateau) / (prof[i - 1] - prof[i])
    background = np.median(prof[radii > 2 * r_half]) if np.any(radii > 2 * r_half) else 0.0
    level = background + 0.5 * (plateau - background)
    below = np.nonzero(prof < level)[0]
    if below.size == 0 or below[0] == 0:
        return float(r_half)
    i = below[0]
    return float(radii[i - 1] + (radii[i] - radii[i - 1]) * (prof[i - 1] - level) / (prof[i - 1] - prof[i]))


def _quiet():
    """py4DSTEM prints tqdm bars to stderr; keep them out of logs and test output."""
    return contextlib.redirect_stderr(io.StringIO())


def _build_probe(datacube, vacuum, opts: TemplateOptions):
    from py4DSTEM.braggvectors import Probe

    Rx, Ry = datacube.Rshape
    if vacuum is None:
        n = min(opts.probe_patterns, Rx * Ry)
        roi = np.zeros(Rx * Ry, bool)
        roi[np.unique(np.linspace(0, Rx * Ry - 1, n).round().astype(int))] = True
        with _quiet():
            probe = datacube.get_vacuum_probe(ROI=roi.reshape(Rx, Ry), align=True, returncalc=True)
        return probe, f"mean of {int(roi.sum())} aligned patterns"
    vac = np.asarray(vacuum)
    if vac.dtype == bool and vac.shape == tuple(datacube.Rshape):
        if not vac.any():
            raise InputError("vacuum mask selects no scan position; mark the vacuum positions with True.")
        with _quiet():
            probe = datacube.get_vacuum_probe(ROI=vac, align=True, returncalc=True)
        return probe, f"vacuum: mean of {int(vac.sum())} aligned patterns"
    if vac.ndim in (2, 3) and vac.shape[-2:] == tuple(datacube.Qshape):
        return Probe.from_vacuum_data(vac.astype(float)), f"vacuum {'image' if vac.ndim == 2 else 'stack'}"
    raise InputError(
        f"vacuum must be a (Qx, Qy) probe image, an (N, Qx, Qy) stack or an (Rx, Ry) boolean mask of vacuum "
        f"positions, got dtype {vac.dtype} shape {vac.shape} for a datacube of R {datacube.Rshape}, Q "
        f"{datacube.Qshape}."
    )


def _derive_threshold(datacube, kernel, kw: dict, opts: TemplateOptions) -> tuple[float, str, float]:
    """Widest log-gap between noise maxima and disks in the relative correlation intensities (step 6)."""
    Rx, Ry = datacube.Rshape
    n = min(opts.calibration_patterns, Rx * Ry)
    idx = np.unique(np.linspace(0, Rx * Ry - 1, n).round().astype(int))
    rx, ry = np.divmod(idx, Ry)
    probe_kw = {**kw, "minRelativeIntensity": 0.0, "minAbsoluteIntensity": 0.0, "maxNumPeaks": 10_000,
                "subpixel": "pixel"}
    with _quiet():
        found = datacube.find_Bragg_disks(kernel, data=(rx, ry), **probe_kw)
    found = found if isinstance(found, list) else [found]
    rel = []
    for qp in found:
        inten = np.asarray(qp.data["intensity"], float)
        if inten.size and inten.max() > 0:
            rel.append(inten / inten.max())
    vals = np.sort(np.concatenate(rel)) if rel else np.zeros(0)
    # noise maxima (one per ~min_distance**2 of background) far outnumber disks: the gap lies above their median;
    # below it, the sparse tail of the faintest noise maxima has wide but meaningless gaps
    floor = np.median(vals) if vals.size else 0.0
    vals = vals[(vals >= floor) & (vals > 1e-7) & (vals < 0.2)]
    if vals.size >= 2:
        logv = np.log10(vals)
        gaps = np.diff(logv)
        i = int(np.argmax(gaps))
        ratio = float(10 ** gaps[i])
        if ratio > 2.0:
            return float(10 ** (0.5 * (logv[i] + logv[i + 1]))), "gap", ratio
    else:
        ratio = float("nan")
    log.warning(
        "template_matching: no clear gap between noise maxima and disks (widest ratio %.3g); using "
        "threshold_rel=%g. Set TemplateOptions(threshold_rel=...) to choose it yourself.",
        ratio, opts.fallback_threshold_rel,
    )
    return opts.fallback_threshold_rel, "fallback", ratio


def template_matching(
    datacube: "py4DSTEM.DataCube",
    *,
    vacuum: np.ndarray | None = None,
    options: TemplateOptions | None = None,
    name: str = "braggvectors_template",
) -> TemplateResult:
    """Find Bragg disks with py4DSTEM's template matching, all settings derived from the data.

    Parameters
    ----------
    datacube : py4DSTEM.DataCube
        4D data ``(Rx, Ry, Qx, Qy)``.
    vacuum : ndarray, optional
        A ``(Qx, Qy)`` vacuum probe image, an ``(N, Qx, Qy)`` stack of vacuum patterns, or an ``(Rx, Ry)``
        boolean mask of scan positions over vacuum. Default: the mean aligned central disk of the data.
    options : TemplateOptions, optional
        Default :meth:`TemplateOptions.accurate`; :meth:`TemplateOptions.fast` for the ``"poly"`` sub-pixel fit.
    name : str
        Name of the BraggVectors in the datacube's tree.

    Returns
    -------
    TemplateResult
        ``braggvectors`` (py4DSTEM's, qx = row, qy = column, raw pixels), ``peaks`` (the same as a
        :class:`ScanPeaks`), ``probe``, ``settings`` (everything chosen), timings.

    Raises
    ------
    InputError
        If ``datacube`` is not a 4D py4DSTEM DataCube or ``vacuum`` has the wrong shape.

    Examples
    --------
    >>> from py4dstem_ndpd.synth import Acquisition, simulate_preset
    >>> scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(2, 2), pattern_shape=(128, 128)))
    >>> res = template_matching(scan.datacube, options=TemplateOptions.fast())
    >>> res.braggvectors.Rshape, res.settings["threshold_method"]
    ((2, 2), 'gap')
    """
    import py4DSTEM

    opts = options or TemplateOptions.accurate()
    if not isinstance(datacube, py4DSTEM.DataCube) or datacube.data.ndim != 4:
        raise InputError(
            f"template_matching needs a 4D py4DSTEM.DataCube, got {type(datacube).__name__}; wrap an array with "
            "py4DSTEM.DataCube(data=array)."
        )
    t_setup = time.perf_counter()
    probe, source = _build_probe(datacube, vacuum, opts)
    with _quiet():
        r_meas, x0, y0 = probe.measure_disk(plot=False, zero_vacuum=False, returncalc=True)
    r_edge = edge_radius(probe.probe, (x0, y0))
    if opts.disk_radius is None and np.isfinite(r_edge) and abs(r_edge - r_meas) > 0.15 * r_edge:
        # measure_disk's thresholded area took in Bragg disks of the mean pattern next to the central one
        log.info("template_matching: disk radius %.2f px from the half-height of the azimuthal median profile "
                 "(measure_disk gave %.2f px)", r_edge, r_meas)
        r_meas = r_edge
    r = float(opts.disk_radius or r_meas)
    probe.alpha, probe.origin = r, (x0, y0)
    probe.zero_vacuum(alpha_max=1.5)
    centre = symmetry_centre(probe.probe, (x0, y0))
    if np.hypot(*(centre - (x0, y0))) > 0.5 * r:  # symmetry search failed (e.g. a strongly asymmetric probe)
        log.warning("template_matching: probe symmetry centre %s far from its centre of mass %s; using the latter",
                    centre, (x0, y0))
        centre = np.array([x0, y0])
    origin = (float(centre[0]), float(centre[1]))
    if opts.kernel == "sigmoid":
        kparams = {"radii": (opts.kernel_radii[0] * r, opts.kernel_radii[1] * r), "bilinear": False}
    elif opts.kernel == "gaussian":
        kparams = {"sigma": opts.kernel_sigma, "bilinear": False}
    else:
        kparams = {}
    kernel = probe.get_kernel(mode=opts.kernel, origin=origin, **kparams)

    kw = {
        "corrPower": float(opts.corr_power),
        "sigma_cc": float(opts.sigma_cc),
        "subpixel": opts.subpixel,
        "upsample_factor": int(opts.upsample_factor),
        "minAbsoluteIntensity": float(opts.threshold_abs),
        "minPeakSpacing": float(opts.min_distance or 2.0 * r),
        "edgeBoundary": int(opts.edge_boundary if opts.edge_boundary is not None else max(1, int(np.floor(r)))),
        "maxNumPeaks": int(opts.num_peaks),
    }
    if opts.threshold_rel is None:
        thr, method, gap = _derive_threshold(datacube, kernel, kw, opts)
    else:
        thr, method, gap = float(opts.threshold_rel), "given", float("nan")
    kw["minRelativeIntensity"] = thr
    t_setup = time.perf_counter() - t_setup

    t0 = time.perf_counter()
    with _quiet():
        bv = datacube.find_Bragg_disks(kernel, name=name, **kw)
    seconds = time.perf_counter() - t0
    n_patterns = int(np.prod(datacube.Rshape))
    peaks = from_braggvectors(bv)
    peaks.timings = {"setup": t_setup, "detect": seconds}
    settings = {
        **kw,
        "disk_radius": r,
        "probe_origin": origin,
        "probe_source": source,
        "kernel": opts.kernel,
        "kernel_params": kparams,
        "threshold_method": method,
        "threshold_gap": gap,
    }
    log.info("template_matching: %d patterns in %.2f s (%.1f ms/pattern), settings %s", n_patterns, seconds,
             1e3 * seconds / n_patterns, settings)
    return TemplateResult(
        braggvectors=bv, peaks=peaks, probe=probe, settings=settings, seconds=seconds,
        seconds_per_pattern=seconds / n_patterns, options=opts,
    )


def settings_summary(result: TemplateResult) -> dict:
    """Settings and options of a :class:`TemplateResult` as one JSON-friendly dict."""
    return {"settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in result.settings.items()},
            "options": asdict(result.options), "seconds_per_pattern": result.seconds_per_pattern}
