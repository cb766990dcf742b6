"""Phase maps by k-means clustering of interatomic distances measured from Bragg vectors.

Like the paper (section 4.3), phases are told apart by the lattice distances seen in each pattern, not by
diffraction intensities. Works on the vectors of any backend (``py4DSTEM.BraggVectors`` or a
:class:`~py4dstem_ndpd.peaks.ScanPeaks`).

Features per scan position
--------------------------
``"radial"`` (default)
    The spectrum of reciprocal distances: every vector ``g`` (relative to the direct beam, ``|g| >= min_g``) adds
    a Gaussian of width ``radial_sigma`` px at ``|g|`` on a 1-px-step axis, and the sum is clipped at 1, so
    each bin says "there is a reflection at this distance" (an interatomic-distance fingerprint). Clipping keeps
    the features stable when some peaks are missed or a few spurious ones are found.
``"lattice"``
    ``|g1|``, ``|g2|`` (px), the angle between them (deg, 0..90) and ``sqrt(|g1 x g2|)`` (px), where ``g1, g2``
    are the two shortest non-collinear vectors among the pairwise differences of the detected vectors that occur
    at least ``lattice_multiplicity`` times (an autocorrelation / Patterson-like estimate: a missing or spurious
    peak cannot create a repeated difference). Always computed for the per-phase table; used for clustering only
    when asked.

Clustering
----------
The radial block is centred and scaled as a block (one standard deviation for all bins, so empty bins do not
become noise amplifiers) and reduced by PCA to the components that each explain at least
``min_variance_ratio`` of the variance; the lattice block (if used) is standardised with ``StandardScaler``.
k-means runs for ``k`` in ``k_range`` and the ``k`` with the best silhouette score wins, unless ``n_phases``
is given. Phase labels are ordered by size (0 = the largest, e.g. the matrix).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Union

import numpy as np

from ..exceptions import ConfigError, InputError
from ..peaks import ScanPeaks

if TYPE_CHECKING:  # pragma: no cover
    import py4DSTEM

log = logging.getLogger(__name__)

Feature = Literal["radial", "lattice"]
LATTICE_FEATURES = ("g1", "g2", "angle", "sqrt_area")


@dataclass(frozen=True)
class PhaseOptions:
    """Options of :func:`phase_map`.

    Attributes
    ----------
    features : tuple of {"radial", "lattice"}
        Feature blocks used for clustering (module docstring).
    k_range : (int, int)
        Smallest and largest number of phases tried when ``n_phases`` is not given.
    min_g : float or None
        Vectors closer than this to the direct beam are ignored, px. ``None``: 5 % of the smaller pattern side.
    radial_sigma : float
        Width of the Gaussian each vector adds to the radial spectrum, px. Two lattices whose distances differ by
        more than ~1.5 x this are told apart.
    min_variance_ratio : float
        PCA keeps the radial components explaining at least this fraction of the variance (at least one).
    max_components : int
        At most this many PCA components.
    lattice_multiplicity : int
        A pairwise difference counts as a lattice vector when it occurs at least this often in a pattern.
    lattice_tolerance : float
        Differences closer than ``lattice_tolerance + 0.02 |g|`` px are the same vector.
    silhouette_samples : int
        The silhouette is computed on at most this many positions (it costs O(N^2)).
    seed : int
        Seed of k-means and of the silhouette subsample.
    """

    features: tuple[Feature, ...] = ("radial",)
    k_range: tuple[int, int] = (2, 6)
    min_g: float | None = None
    radial_sigma: float = 1.0
    min_variance_ratio: float = 0.03
    max_components: int = 8
    lattice_multiplicity: int = 3
    lattice_tolerance: float = 1.0
    silhouette_samples: int = 3000
    seed: int = 0

    def __post_init__(self) -> None:
        feats = tuple(self.features)
        if not feats or any(f not in ("radial", "lattice") for f in feats) or len(set(feats)) != len(feats):
            raise ConfigError(
                f"PhaseOptions.features must be a non-empty tuple of distinct 'radial'/'lattice', got {self.features!r}"
            )
        k0, k1 = self.k_range
        if not (2 <= k0 <= k1):
            raise ConfigError(f"PhaseOptions.k_range must be (kmin, kmax) with 2 <= kmin <= kmax, got {self.k_range!r}")
        if self.min_g is not None and not self.min_g >= 0:
            raise ConfigError(f"PhaseOptions.min_g must be >= 0 px or None, got {self.min_g!r}")
        for name in ("radial_sigma", "lattice_tolerance"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"PhaseOptions.{name} must be > 0 px, got {getattr(self, name)!r}")
        if not 0 <= self.min_variance_ratio < 1:
            raise ConfigError(f"PhaseOptions.min_variance_ratio must be in [0, 1), got {self.min_variance_ratio!r}")
        if self.max_components < 1 or self.lattice_multiplicity < 2 or self.silhouette_samples < 10:
            raise ConfigError(
                "PhaseOptions: max_components must be >= 1, lattice_multiplicity >= 2 and silhouette_samples >= 10; "
                f"got {self.max_components}, {self.lattice_multiplicity}, {self.silhouette_samples}"
            )


@dataclass
class PhaseSummary:
    """One row of the per-phase table.

    Attributes
    ----------
    label : int
    count : int
        Number of scan positions.
    fraction : float
        ``count`` / number of positions.
    g1, g2 : float
        Median lengths of the two shortest lattice vectors, px (``g1 <= g2``).
    angle : float
        Median angle between them, deg (0..90).
    d1, d2 : float or None
        The corresponding interplanar distances ``1 / (|g| q_pixel_size)`` in Å, when the vectors carry a
        reciprocal pixel size in 1/Å; else None.
    representative : (int, int)
        ``(rx, ry)`` of the position nearest to the cluster centre (a typical pattern to show).
    """

    label: int
    count: int
    fraction: float
    g1: float
    g2: float
    angle: float
    d1: float | None
    d2: float | None
    representative: tuple[int, int]


@dataclass
class PhaseResult:
    """Result of :func:`phase_map`.

    Attributes
    ----------
    labels : ndarray of int, shape (Rx, Ry)
        Phase label per position, 0 = the most frequent phase.
    n_phases : int
    phases : list of PhaseSummary
        One per label, in label order.
    silhouette : dict
        Silhouette score per ``k`` tried (empty when ``n_phases`` was given).
    lattice : ndarray, shape (Rx, Ry, 4)
        ``|g1|``, ``|g2|`` (px), angle (deg), ``sqrt(|g1 x g2|)`` (px) per position; NaN where no two independent
        repeated differences were found.
    radial : ndarray, shape (Rx, Ry, B)
        Clipped radial spectrum per position, on ``radial_axis``.
    radial_axis : ndarray, shape (B,)
        ``|g|`` of the radial bins, px.
    embedding : ndarray, shape (Rx * Ry, D)
        The feature space k-means ran in (C order of the scan).
    """

    labels: np.ndarray
    n_phases: int
    phases: list[PhaseSummary]
    silhouette: dict = field(default_factory=dict)
    lattice: np.ndarray | None = None
    radial: np.ndarray | None = None
    radial_axis: np.ndarray | None = None
    embedding: np.ndarray | None = None

    def table(self) -> str:
        """The per-phase table as aligned text."""
        head = f"{'phase':>5} {'count':>6} {'frac':>6} {'|g1| px':>8} {'|g2| px':>8} {'angle':>6} {'d1 A':>6} {'d2 A':>6}  rep (rx,ry)"
        rows = [head]
        for p in self.phases:
            d1 = f"{p.d1:6.3f}" if p.d1 is not None else f"{'-':>6}"
            d2 = f"{p.d2:6.3f}" if p.d2 is not None else f"{'-':>6}"
            rows.append(
                f"{p.label:>5} {p.count:>6} {p.fraction:>6.3f} {p.g1:>8.2f} {p.g2:>8.2f} {p.angle:>6.1f} {d1} {d2}  "
                f"{p.representative}"
            )
        return "\n".join(rows)


# ---- reading vectors ----------------------------------------------------------------------------------------
def _vectors(source) -> tuple[tuple[int, int], tuple[int, int], list[np.ndarray], np.ndarray | None, float | None]:
    """Return scan shape, pattern shape, per-position (N, 3) arrays of qx, qy, intensity, origin map, q pixel size."""
    import py4DSTEM

    if isinstance(source, ScanPeaks):
        tabs = [np.stack([p["qx"], p["qy"], p["intensity"]], axis=1).astype(float) for p in source.peaks]
        return tuple(source.scan_shape), tuple(source.pattern_shape), tabs, None, None
    if isinstance(source, py4DSTEM.BraggVectors):
        Rx, Ry = (int(v) for v in source.Rshape)
        tabs = []
        for rx in range(Rx):
            for ry in range(Ry):
                d = source.raw[rx, ry].data
                tabs.append(np.stack([d["qx"], d["qy"], d["intensity"]], axis=1).astype(float))
        cal = source.calibration
        origin = None
        if source.calstate.get("center") and cal.get_origin() is not None:
            qx0, qy0 = cal.get_origin()
            origin = np.stack(np.broadcast_arrays(np.asarray(qx0, float), np.asarray(qy0, float)), axis=-1)
            origin = np.broadcast_to(origin, (Rx, Ry, 2)).copy()
        qpix = None
        try:
            units = cal.get_Q_pixel_units()
            if units in ("A^-1", "1/A") and cal.get_Q_pixel_size() not in (None, 1):
                qpix = float(cal.get_Q_pixel_size())
        except Exception:  # noqa: BLE001 - calibration fields are optional in py4DSTEM
            qpix = None
        return (Rx, Ry), tuple(int(v) for v in source.Qshape), tabs, origin, qpix
    raise InputError(
        f"phase_map needs a py4DSTEM.BraggVectors or a ScanPeaks, got {type(source).__name__}."
    )


def _origins(tabs: list[np.ndarray], scan_shape: tuple[int, int], tol: float = 3.0) -> np.ndarray:
    """Direct beam per position = brightest vector; positions that disagree with their 3x3 median are replaced."""
    from scipy import ndimage

    Rx, Ry = scan_shape
    org = np.full((Rx * Ry, 2), np.nan)
    for i, t in enumerate(tabs):
        if len(t):
            org[i] = t[np.argmax(t[:, 2]), :2]
    if np.all(np.isnan(org)):
        raise InputError("no position has any Bragg vector; run the disk detection first.")
    org = org.reshape(Rx, Ry, 2)
    fill = np.where(np.isnan(org), np.nanmedian(org.reshape(-1, 2), axis=0), org)
    med = np.stack([ndimage.median_filter(fill[..., k], size=3, mode="nearest") for k in range(2)], axis=-1)
    bad = np.isnan(org).any(-1) | (np.hypot(*(org - med).transpose(2, 0, 1)) > tol)
    if bad.any():
        log.info("phase_map: origin of %d position(s) taken from their neighbours (brightest vector off)", bad.sum())
    return np.where(bad[..., None], med, org)


# ---- features -----------------------------------------------------------------------------------------------
def _lattice_features(g: np.ndarray, min_g: float, mult: int, tol: float) -> np.ndarray:
    """|g1|, |g2|, angle (deg), sqrt area from repeated pairwise differences of the vectors ``g`` (N, 2)."""
    from scipy.spatial import cKDTree

    nan = np.full(4, np.nan)
    if len(g) < 3:
        return nan
    d = (g[:, None, :] - g[None, :, :]).reshape(-1, 2)
    r = np.hypot(d[:, 0], d[:, 1])
    keep = r >= min_g
    d, r = d[keep], r[keep]
    if len(d) < 2 * mult:
        return nan
    tree = cKDTree(d)
    counts = np.asarray(tree.query_ball_point(d, tol + 0.02 * r, return_length=True))
    ok = counts >= mult
    if ok.sum() < 2:
        return nan
    d, r = d[ok], r[ok]
    order = np.argsort(r, kind="stable")
    d, r = d[order], r[order]
    sin = np.abs(d[:, 0] * d[0, 1] - d[:, 1] * d[0, 0]) / (r * r[0])
    j = np.flatnonzero(sin > np.sin(np.radians(20.0)))
    if len(j) == 0:
        return nan

    def refine(v):
        rv = np.hypot(*v)
        same = np.hypot(*(d - v).T) < tol + 0.02 * rv
        opp = np.hypot(*(d + v).T) < tol + 0.02 * rv
        return np.concatenate([d[same], -d[opp]]).mean(axis=0)

    g1, g2 = refine(d[0]), refine(d[j[0]])
    n1, n2 = sorted((float(np.hypot(*g1)), float(np.hypot(*g2))))
    cos = abs(float(g1 @ g2)) / (n1 * n2)
    area = abs(float(g1[0] * g2[1] - g1[1] * g2[0]))
    return np.array([n1, n2, np.degrees(np.arccos(min(cos, 1.0))), np.sqrt(area)])


def _embed(radial: np.ndarray | None, lattice: np.ndarray | None, opts: PhaseOptions, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    blocks = []
    if radial is not None:
        x = radial - radial.mean(axis=0)
        s = x.std()
        if s > 0:
            x = x / s
            n_max = int(min(opts.max_components, x.shape[0] - 1, x.shape[1]))
            if n_max >= 1:
                pca = PCA(n_components=n_max, random_state=seed).fit(x)
                n = max(1, int(np.sum(pca.explained_variance_ratio_ >= opts.min_variance_ratio)))
                log.info(
                    "phase_map: radial PCA keeps %d component(s), variance ratios %s", n,
                    np.round(pca.explained_variance_ratio_[: n + 2], 3).tolist(),
                )
                blocks.append(pca.transform(x)[:, :n])
    if lattice is not None:
        filled = np.where(np.isnan(lattice), np.nanmedian(lattice, axis=0), lattice)
        filled = np.nan_to_num(filled)
        blocks.append(StandardScaler().fit_transform(filled))
    if not blocks:
        return np.zeros((0 if radial is None else radial.shape[0], 1))
    return np.concatenate(blocks, axis=1)


def phase_map(
    vectors: Union["py4DSTEM.BraggVectors", ScanPeaks],
    *,
    n_phases: int | None = None,
    options: PhaseOptions | None = None,
) -> PhaseResult:
    """Cluster the scan positions into phases from their interatomic distances.

    Parameters
    ----------
    vectors : py4DSTEM.BraggVectors or ScanPeaks
        Raw vectors (``qx`` row, ``qy`` column, px; intensity). The direct beam is taken from the BraggVectors'
        calibrated origin if set, else as the brightest vector of each position (outliers replaced by the 3 x 3
        median of their neighbours).
    n_phases : int, optional
        Number of phases; default: chosen by the silhouette score over ``options.k_range``.
    options : PhaseOptions, optional

    Returns
    -------
    PhaseResult
        Label map (Rx, Ry), per-phase table (count, median |g1|, |g2|, angle, d-spacings, representative
        position), the silhouette score per k, and the features.

    Raises
    ------
    InputError
        For an unsupported input, a scan without vectors, or ``n_phases`` larger than the number of positions.
    ConfigError
        For ``n_phases < 1``.

    Examples
    --------
    >>> from py4dstem_ndpd.peaks import ScanPeaks, make_peaks
    >>> def pattern(a):  # direct beam at (32, 32) and a square lattice of spacing a
    ...     q = [(32 + i * a, 32 + j * a) for i in (-1, 0, 1) for j in (-1, 0, 1)]
    ...     return make_peaks([p[0] for p in q], [p[1] for p in q], [9 if p == (32, 32) else 1 for p in q])
    >>> sp = ScanPeaks((2, 4), [pattern(10.0)] * 4 + [pattern(14.0)] * 4, (64, 64))
    >>> res = phase_map(sp, n_phases=2)
    >>> res.labels.tolist(), [round(p.g1, 1) for p in res.phases]
    ([[0, 0, 0, 0], [1, 1, 1, 1]], [10.0, 14.0])
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    opts = options or PhaseOptions()
    if n_phases is not None and not (isinstance(n_phases, (int, np.integer)) and n_phases >= 1):
        raise ConfigError(f"n_phases must be a positive int or None (automatic), got {n_phases!r}")
    scan_shape, qshape, tabs, origin, qpix = _vectors(vectors)
    Rx, Ry = scan_shape
    n_pos = Rx * Ry
    if n_phases is not None and n_phases > n_pos:
        raise InputError(f"n_phases={n_phases} is larger than the number of scan positions ({n_pos}).")
    if origin is None:
        origin = _origins(tabs, scan_shape)
    min_g = opts.min_g if opts.min_g is not None else 0.05 * min(qshape)

    gs = []
    for i, t in enumerate(tabs):
        g = t[:, :2] - origin.reshape(-1, 2)[i]
        gs.append(g[np.hypot(g[:, 0], g[:, 1]) >= min_g])
    r_all = np.concatenate([np.hypot(g[:, 0], g[:, 1]) for g in gs] or [np.zeros(0)])
    r_max = float(r_all.max()) if r_all.size else min_g + 1.0
    axis = np.arange(np.floor(min_g), np.ceil(r_max + 3 * opts.radial_sigma) + 1.0)
    radial = np.zeros((n_pos, axis.size))
    lattice = np.full((n_pos, 4), np.nan)
    for i, g in enumerate(gs):
        if len(g):
            r = np.hypot(g[:, 0], g[:, 1])
            radial[i] = np.exp(-0.5 * ((axis[:, None] - r[None, :]) / opts.radial_sigma) ** 2).sum(axis=1)
        lattice[i] = _lattice_features(g, min_g, opts.lattice_multiplicity, opts.lattice_tolerance)
    radial = np.clip(radial, 0.0, 1.0)

    X = _embed(
        radial if "radial" in opts.features else None,
        lattice if "lattice" in opts.features else None,
        opts,
        opts.seed,
    )
    scores: dict[int, float] = {}
    spread = float(np.sum(X.var(axis=0))) if X.size else 0.0
    if n_phases is None:
        ks = [k for k in range(opts.k_range[0], opts.k_range[1] + 1) if k < n_pos]
        if spread <= 1e-12 or not ks:
            log.info("phase_map: features do not vary over the scan (or too few positions): one phase")
            n_phases = 1
        else:
            for k in ks:
                km = KMeans(n_clusters=k, n_init=10, random_state=opts.seed).fit(X)
                if len(np.unique(km.labels_)) < 2:
                    scores[k] = -1.0
                    continue
                scores[k] = float(
                    silhouette_score(
                        X, km.labels_, sample_size=min(opts.silhouette_samples, n_pos), random_state=opts.seed
                    )
                )
            n_phases = max(scores, key=lambda k: (scores[k], -k))
            log.info("phase_map: silhouette %s -> %d phases", {k: round(v, 3) for k, v in scores.items()}, n_phases)
    if n_phases == 1:
        raw_labels = np.zeros(n_pos, dtype=int)
        centres = X.mean(axis=0, keepdims=True)
    else:
        km = KMeans(n_clusters=n_phases, n_init=10, random_state=opts.seed).fit(X)
        raw_labels, centres = km.labels_, km.cluster_centers_

    # order labels by size (ties: by first position)
    uniq, counts = np.unique(raw_labels, return_counts=True)
    order = sorted(uniq, key=lambda u: (-counts[uniq == u][0], int(np.argmax(raw_labels == u))))
    remap = {int(u): new for new, u in enumerate(order)}
    labels = np.array([remap[int(v)] for v in raw_labels], dtype=int)

    phases = []
    for old, new in remap.items():
        idx = np.flatnonzero(labels == new)
        dist = np.sum((X[idx] - centres[old]) ** 2, axis=1) if X.size else np.zeros(idx.size)
        rep = int(idx[np.argmin(dist)])
        lat = lattice[idx]
        with np.errstate(all="ignore"):
            med = np.array([np.nanmedian(lat[:, k]) if np.isfinite(lat[:, k]).any() else np.nan for k in range(4)])
        d1 = float(1.0 / (med[0] * qpix)) if qpix and np.isfinite(med[0]) and med[0] > 0 else None
        d2 = float(1.0 / (med[1] * qpix)) if qpix and np.isfinite(med[1]) and med[1] > 0 else None
        phases.append(
            PhaseSummary(
                label=new, count=int(idx.size), fraction=idx.size / n_pos, g1=float(med[0]), g2=float(med[1]),
                angle=float(med[2]), d1=d1, d2=d2, representative=(rep // Ry, rep % Ry),
            )
        )
    phases.sort(key=lambda p: p.label)
    return PhaseResult(
        labels=labels.reshape(Rx, Ry), n_phases=int(n_phases), phases=phases, silhouette=scores,
        lattice=lattice.reshape(Rx, Ry, 4), radial=radial.reshape(Rx, Ry, -1), radial_axis=axis, embedding=X,
    )

