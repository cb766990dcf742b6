"""Detections against simulator truth: one-to-one matching, recall/precision, centre errors, strain errors.

Conventions: positions are ``(qx, qy)`` = (row, column) in detector pixels, pixel ``i`` centred on ``i``, so the
detector spans ``-0.5 .. Q - 0.5`` along each axis. Plain numpy/scipy; no py4DSTEM.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from .exceptions import InputError
from .peaks import ScanPeaks

log = logging.getLogger(__name__)


def _as_positions(a, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(f"{what} must be an (N, 2) array of (qx, qy) positions, got shape {arr.shape}")
    return arr


def match_peaks(detected: np.ndarray, truth: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of detected to true positions within ``radius`` (Hungarian algorithm).

    Among all one-to-one assignments, the one with the most pairs closer than ``radius`` is chosen, and among
    those the one with the smallest summed distance.

    Parameters
    ----------
    detected : array_like, shape (N, 2)
        Detected ``(qx, qy)``, px.
    truth : array_like, shape (M, 2)
        True ``(qx, qy)``, px.
    radius : float
        Largest accepted centre distance, px (inclusive).

    Returns
    -------
    det_idx, truth_idx : ndarray of int, shape (K,)
        Indices of the matched pairs, ``K <= min(N, M)``, sorted by ``det_idx``.

    Raises
    ------
    InputError
        If the arrays are not (N, 2) or ``radius`` is not a positive number.

    Examples
    --------
    >>> match_peaks([[10.0, 10.0], [50.0, 50.0]], [[50.2, 50.0], [10.0, 10.3]], radius=1.0)
    (array([0, 1]), array([1, 0]))
    """
    det = _as_positions(detected, "detected")
    tru = _as_positions(truth, "truth")
    if not (np.isscalar(radius) and radius > 0 and np.isfinite(radius)):
        raise InputError(f"radius must be a positive number of pixels, got {radius!r}")
    empty = np.zeros(0, dtype=np.intp)
    if len(det) == 0 or len(tru) == 0:
        return empty, empty.copy()
    d = np.hypot(det[:, None, 0] - tru[None, :, 0], det[:, None, 1] - tru[None, :, 1])
    close = d <= radius
    rows = np.flatnonzero(close.any(axis=1))
    cols = np.flatnonzero(close.any(axis=0))
    if rows.size == 0:
        return empty, empty.copy()
    sub = d[np.ix_(rows, cols)]
    # out-of-radius pairs cost more than any set of in-radius pairs: the assignment maximises the number of
    # accepted pairs first, then minimises their summed distance
    big = radius * (min(sub.shape) + 1) + 1.0
    cost = np.where(sub <= radius, sub, big)
    r, c = linear_sum_assignment(cost)
    keep = sub[r, c] <= radius
    det_idx, truth_idx = rows[r[keep]], cols[c[keep]]
    order = np.argsort(det_idx, kind="stable")
    return det_idx[order].astype(np.intp), truth_idx[order].astype(np.intp)


def edge_distance(qx: np.ndarray, qy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Distance from ``(qx, qy)`` to the nearest detector edge (the detector spans -0.5 .. Q-0.5), px."""
    H, W = shape
    return np.minimum.reduce([qx + 0.5, H - 0.5 - qx, qy + 0.5, W - 0.5 - qy])


@dataclass
class DetectionMetrics:
    """Detection quality of a whole scan against the truth.

    Attributes
    ----------
    recall : float
        ``n_matched / n_true`` (NaN when there is no counted true disk).
    precision : float
        ``n_matched / n_detected`` (NaN when nothing counted was detected).
    n_true : int
        True disks counted (SNR >= ``min_snr`` and at least ``edge_margin`` from the detector edge).
    n_detected : int
        Detections counted: matched to a counted true disk, or unmatched and at least ``edge_margin`` from the edge.
    n_matched : int
        True positives.
    error_median, error_rms : float
        Median and root-mean-square centre distance of the true positives, px (NaN without any).
    errors : ndarray, shape (n_matched,)
        Centre distance of every true positive, px.
    offsets : ndarray, shape (n_matched, 2)
        Detected minus true ``(qx, qy)`` of every true positive, px (their mean is the localisation bias).
    n_ignored : int
        Detections neither TP nor FP (matched to an uncounted true disk, or unmatched near the edge).
    radius, min_snr, edge_margin : float
        The settings used.
    snr : str
        Which SNR ``min_snr`` applied to ("peak" or "integrated").
    """

    recall: float
    precision: float
    n_true: int
    n_detected: int
    n_matched: int
    error_median: float
    error_rms: float
    errors: np.ndarray = field(repr=False)
    offsets: np.ndarray = field(repr=False)
    n_ignored: int = 0
    radius: float = float("nan")
    min_snr: float = 0.0
    edge_margin: float = 0.0
    snr: str = "peak"

    @property
    def n_false_positive(self) -> int:
        """Counted detections without a true disk."""
        return self.n_detected - self.n_matched

    @property
    def n_missed(self) -> int:
        """Counted true disks without a detection."""
        return self.n_true - self.n_matched

    @property
    def bias(self) -> np.ndarray:
        """Mean ``(dqx, dqy)`` of the true positives, px (NaN without any)."""
        if len(self.offsets) == 0:
            return np.full(2, np.nan)
        return self.offsets.mean(axis=0)

    def to_dict(self) -> dict:
        """Scalars only (JSON-friendly): drops the per-disk arrays, adds ``bias_qx``, ``bias_qy``."""
        d = {k: v for k, v in asdict(self).items() if k not in ("errors", "offsets")}
        d["bias_qx"], d["bias_qy"] = (float(v) for v in self.bias)
        d["n_false_positive"] = self.n_false_positive
        d["n_missed"] = self.n_missed
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in d.items()}


def integrated_snr(disks: np.ndarray, radius: float) -> np.ndarray:
    """SNR of each true disk's integrated counts against the background under it.

    The simulator's truth holds the *peak* SNR ``p / sqrt(p + b)`` of the brightest pixel (``p = I / (pi r^2)``
    electrons from a disk of ``I`` expected electrons and radius ``r``, ``b`` the background per pixel). The
    integrated SNR ``I / sqrt(I + pi r^2 b)`` is the one a matched filter (or a detector) reaches; the training
    labels use it. It is derived here from ``intensity`` and ``snr``: ``b = p^2 / snr^2 - p``.

    Parameters
    ----------
    disks : ndarray of TRUTH_DTYPE
        True disks (``intensity`` in expected electrons, ``snr`` the peak SNR).
    radius : float
        Disk radius, px.

    Returns
    -------
    ndarray (K,)
        0 for disks without electrons.
    """
    intensity = np.asarray(disks["intensity"], dtype=np.float64)
    snr = np.asarray(disks["snr"], dtype=np.float64)
    area = np.pi * float(radius) ** 2
    peak = intensity / area
    with np.errstate(divide="ignore", invalid="ignore"):
        back = np.clip(np.where(snr > 0, peak**2 / snr**2 - peak, 0.0), 0.0, None)
        out = np.where(intensity > 0, intensity / np.sqrt(intensity + area * back), 0.0)
    return np.nan_to_num(out)


def evaluate_detections(
    scan_peaks: ScanPeaks,
    truth,
    *,
    radius: float | None = None,
    min_snr: float = 0.0,
    edge_margin: float | None = None,
    snr: Literal["peak", "integrated"] = "peak",
) -> DetectionMetrics:
    """Match the detections of every scan position to the true disks and summarise.

    At each position detections and true disks are matched one to one (:func:`match_peaks`). Then:

    * a true disk is *counted* if its SNR is ``>= min_snr`` and its centre is at least ``edge_margin`` from the
      detector edge; a counted one is a true positive if matched, else missed;
    * a detection matched to an uncounted true disk is ignored (neither TP nor FP);
    * an unmatched detection is a false positive, unless it lies closer than ``edge_margin`` to the edge
      (then ignored).

    Parameters
    ----------
    scan_peaks : ScanPeaks
        Detections; ``scan_shape`` and ``pattern_shape`` must equal the truth's.
    truth : ScanTruth
    radius : float, optional
        Match radius, px. Default ``truth.disk_radius``.
    min_snr : float
        Count only true disks whose SNR is ``>= min_snr``.
    edge_margin : float, optional
        Ignore true disks and unmatched detections closer than this to the detector edge, px.
        Default ``truth.disk_radius`` (disks cut by the edge). Use 0 to count everything on the detector.
    snr : {"peak", "integrated"}
        Which SNR ``min_snr`` applies to: the truth's peak (brightest pixel) SNR, or the integrated SNR of the
        whole disk (:func:`integrated_snr`; at 1e3 electrons per pattern no disk reaches a peak SNR of 3).

    Returns
    -------
    DetectionMetrics

    Raises
    ------
    InputError
        If the scan or pattern shapes differ, or an option is negative.
    """
    if not isinstance(scan_peaks, ScanPeaks):
        raise InputError(f"scan_peaks must be a ScanPeaks, got {type(scan_peaks).__name__}")
    if tuple(scan_peaks.scan_shape) != tuple(truth.scan_shape):
        raise InputError(
            f"scan shapes differ: detections {tuple(scan_peaks.scan_shape)}, truth {tuple(truth.scan_shape)}; "
            "evaluate the scan the truth belongs to."
        )
    if tuple(scan_peaks.pattern_shape) != tuple(truth.pattern_shape):
        raise InputError(
            f"pattern shapes differ: detections {tuple(scan_peaks.pattern_shape)}, truth "
            f"{tuple(truth.pattern_shape)}; positions must be in the truth's detector pixels."
        )
    radius = float(truth.disk_radius if radius is None else radius)
    edge_margin = float(truth.disk_radius if edge_margin is None else edge_margin)
    if edge_margin < 0 or min_snr < 0:
        raise InputError(f"edge_margin and min_snr must be >= 0, got {edge_margin}, {min_snr}")
    if snr not in ("peak", "integrated"):
        raise InputError(f"snr must be 'peak' or 'integrated', got {snr!r}")
    shape = tuple(truth.pattern_shape)
    Rx, Ry = truth.scan_shape
    n_true = n_det = n_tp = n_ign = 0
    offsets = []
    for rx in range(Rx):
        for ry in range(Ry):
            t = truth.disks_at(rx, ry)
            p = scan_peaks.at(rx, ry)
            tq = np.stack([t["qx"], t["qy"]], -1).astype(float) if len(t) else np.zeros((0, 2))
            pq = np.stack([p["qx"], p["qy"]], -1).astype(float) if len(p) else np.zeros((0, 2))
            t_snr = t["snr"] if snr == "peak" else integrated_snr(t, truth.disk_radius)
            counted_t = (t_snr >= min_snr) & (edge_distance(tq[:, 0], tq[:, 1], shape) >= edge_margin)
            di, ti = match_peaks(pq, tq, radius)
            tp = counted_t[ti]
            matched_det = np.zeros(len(pq), bool)
            matched_det[di] = True
            unmatched = ~matched_det
            far = edge_distance(pq[:, 0], pq[:, 1], shape) >= edge_margin
            fp = int(np.count_nonzero(unmatched & far))
            n_true += int(counted_t.sum())
            n_tp += int(tp.sum())
            n_det += int(tp.sum()) + fp
            n_ign += int((~tp).sum()) + int(np.count_nonzero(unmatched & ~far))
            if tp.any():
                offsets.append(pq[di[tp]] - tq[ti[tp]])
    off = np.concatenate(offsets) if offsets else np.zeros((0, 2))
    err = np.hypot(off[:, 0], off[:, 1])
    return DetectionMetrics(
        recall=n_tp / n_true if n_true else float("nan"),
        precision=n_tp / n_det if n_det else float("nan"),
        n_true=n_true,
        n_detected=n_det,
        n_matched=n_tp,
        error_median=float(np.median(err)) if err.size else float("nan"),
        error_rms=float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
        errors=err,
        offsets=off,
        n_ignored=n_ign,
        radius=radius,
        min_snr=float(min_snr),
        edge_margin=edge_margin,
        snr=snr,
    )


def lattice_distortion(scan_peaks: ScanPeaks, truth, *, min_snr: float = 3.0,
                       snr: Literal["peak", "integrated"] = "peak", min_disks: int = 4) -> np.ndarray:
    """Spurious distortion of the lattice the detections imply, per pattern, against the true disk positions.

    At each position the counted true disks (as in :func:`evaluate_detections`) are matched to the detections, and
    the detected positions ``p`` are fitted to the true ones ``t`` by an affine map, ``p = a + (I + E) t``, by least
    squares. The symmetric part of ``E`` is returned: the strain of the detected *reciprocal* lattice against the
    true one (real-space strain is its negative to first order). A common shift of all disks (an error of the
    pattern origin) does not enter it; an error that grows with ``|g|`` (dynamical contrast pulling every disk
    towards the direct beam) does, and a strain map would show it.

    Parameters
    ----------
    scan_peaks : ScanPeaks
    truth : ScanTruth
    min_snr, snr
        Which true disks count, as in :func:`evaluate_detections`.
    min_disks : int
        Positions with fewer matched disks get NaN.

    Returns
    -------
    ndarray, shape (Rx, Ry, 3)
        ``(e_xx, e_yy, e_xy)`` per position, dimensionless; ``x`` is ``qx`` (the row), ``y`` is ``qy``.
    """
    Rx, Ry = truth.scan_shape
    out = np.full((Rx, Ry, 3), np.nan)
    shape = tuple(truth.pattern_shape)
    for rx in range(Rx):
        for ry in range(Ry):
            t = truth.disks_at(rx, ry)
            p = scan_peaks.at(rx, ry)
            if len(t) == 0 or len(p) == 0:
                continue
            tq = np.stack([t["qx"], t["qy"]], -1).astype(float)
            pq = np.stack([p["qx"], p["qy"]], -1).astype(float)
            t_snr = t["snr"] if snr == "peak" else integrated_snr(t, truth.disk_radius)
            counted = (t_snr >= min_snr) & (edge_distance(tq[:, 0], tq[:, 1], shape) >= truth.disk_radius)
            di, ti = match_peaks(pq, tq, float(truth.disk_radius))
            keep = counted[ti]
            if keep.sum() < max(int(min_disks), 3):
                continue
            T = tq[ti[keep]] - truth.origin[rx, ry]
            A = np.column_stack([T, np.ones(len(T))])
            coef, *_ = np.linalg.lstsq(A, pq[di[keep]], rcond=None)
            E = coef[:2].T - np.eye(2)
            out[rx, ry] = (E[0, 0], E[1, 1], 0.5 * (E[0, 1] + E[1, 0]))
    return out


def strain_error(measured: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Bias, spread and RMS of a measured strain (or any scalar) map against the truth.

    Parameters
    ----------
    measured, truth : array_like, shape (Rx, Ry)
        Maps of the same component in the same convention (e.g. both ``e_xx`` along ``qx``).
    mask : array_like of bool, shape (Rx, Ry), optional
        Positions to include (True). Non-finite measured values are always left out.

    Returns
    -------
    dict
        ``bias`` (mean of measured - truth), ``std`` (its standard deviation), ``rms`` (root mean square),
        ``max_abs`` and ``n`` (positions used). NaN statistics when ``n == 0``.

    Raises
    ------
    InputError
        If the shapes differ.

    Examples
    --------
    >>> strain_error([[0.5, 1.5]], [[0.0, 1.0]])
    {'bias': 0.5, 'std': 0.0, 'rms': 0.5, 'max_abs': 0.5, 'n': 2}
    """
    m = np.asarray(measured, dtype=float)
    t = np.asarray(truth, dtype=float)
    if m.shape != t.shape:
        raise InputError(f"measured map has shape {m.shape} but truth has {t.shape}; compare maps of one scan.")
    use = np.isfinite(m) & np.isfinite(t)
    if mask is not None:
        mk = np.asarray(mask)
        if mk.shape != m.shape or mk.dtype != bool:
            raise InputError(f"mask must be a boolean array of shape {m.shape}, got {mk.dtype} {mk.shape}")
        use &= mk
    diff = (m - t)[use]
    if diff.size == 0:
        nan = float("nan")
        return {"bias": nan, "std": nan, "rms": nan, "max_abs": nan, "n": 0}
    return {
        "bias": float(diff.mean()),
        "std": float(diff.std()),
        "rms": float(np.sqrt(np.mean(diff**2))),
        "max_abs": float(np.abs(diff).max()),
        "n": int(diff.size),
    }
