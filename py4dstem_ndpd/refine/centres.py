"""Sub-pixel refinement of detected disk centres.

The detector gives centres good to a few tenths of a pixel. Refinement has to beat that on disks whose interiors
are not uniform (thickness fringes, tilt), so it relies on what all disks of a pattern share: they are images of
the same probe, placed on one or two lattices through one origin.

Methods (``refine_centres(..., method=...)``):

``"lattice"`` (default)
    1. every disk is located by correlation with the pattern's own direct beam, hybrid correlation for bright
       disks (:mod:`~py4dstem_ndpd.refine.probe`); the direct beam's centre is the origin;
    2. a lattice basis is found from the detected centres (:func:`~py4dstem_ndpd.refine.lattice.find_basis`;
       the previous pattern's basis is tried first), and the disks within ``index_tol_px`` of its sites are
       indexed; a second lattice is looked for among the disks left over (an overlapping phase), up to
       ``max_lattices``;
    3. ``g1, g2`` of every lattice are fitted by weighted least squares, origin fixed, to the per-disk
       positions (weight ``(snr / 3)**2``, their measured error) and to the detected centres (weight
       ``1 / detector_sigma_px**2``, free common offset), dropping outliers;
    4. where the plain or Poisson correlation won (symmetric disk interiors), the origin moves by the weighted mean
       residual of the well-separated disks in Friedel pairs, the direct beam among them
       (:func:`_origin_offsets`): all positions are measured against the probe, so its own error is shared by
       every disk, and the other disks measure part of it;
    5. disks left out are indexed again against the fitted lattices, and every indexed disk is moved to its
       site ``origin + u g1 + v g2``. A disk on no lattice keeps its per-disk position if its SNR is at least
       ``min_snr`` and its correction at most ``max_shift_px``, else the detector's centre.

    This averages per-disk errors (noise, interior structure) over all disks of a lattice, so it assumes one
    homogeneous crystal per lattice within the probe; disks that do not fit are left to the per-disk result.
``"autocorrelation"``
    As ``"lattice"`` but ``g1, g2`` come from the peaks of the pattern's autocorrelation (paper eq. 4,
    :func:`~py4dstem_ndpd.refine.autocorr.refine_autocorrelation_peaks`) at the lags of the indexed disks;
    peaks that another lattice of the pattern could overlap are left out.
``"probe"``
    Step 1 only (per-disk positions), with the same fallback to the detector's centre.
``"none"``
    The detector's centres, unchanged.

Measured with ``python -m py4dstem_ndpd.refine.benchmark`` (detector-like input: truth + 0.3 px Gaussian +
0.3 px common offset, RMS 0.525 px; 8 x 4 patterns of 256 x 256 px; RMS over all disks at 1e3 / 1e4 / 1e5 / 1e6
electrons per pattern; 2026-12-03): "lattice" Si/SiGe 0.21 / 0.094 / 0.027 / 0.009 px, Ti-Nb with overlapping
lattices 0.24 / 0.10 / 0.036 / 0.014 px, Si disks with +-40 % interior gradients 0.19 / 0.13 / 0.065 / 0.047 px; it
is the most accurate method everywhere.

In step 3 the per-disk positions come in up to four variants: plain cross-correlation, the correlation with the
probe's Poisson-likelihood template (the most precise for symmetric disk interiors; ``_poisson_shifts`` in
:mod:`~py4dstem_ndpd.refine.probe`), for bright disks hybrid correlation (robust to asymmetric interiors) and, in
patterns whose bright disks are far from point-symmetric (thick crystals), the disk edge alone
(:mod:`~py4dstem_ndpd.refine.edge`).
Each is fitted and, per pattern, the variant whose disks lie closest to their own fitted lattice is kept
(:func:`_choose_variant`). The detector's centres enter each fit with the error measured on that pattern's bright
disks when it exceeds ``detector_sigma_px`` (:func:`_detector_sigma`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from ..exceptions import ConfigError, InputError
from ._windows import group_median
from .autocorr import _usable_lag, autocorrelation, refine_autocorrelation_peaks, robust_basis_fit
from .lattice import find_basis, index_points
from .probe import ProbeFit, probe_positions

log = logging.getLogger(__name__)

RefineMethod = Literal["lattice", "autocorrelation", "probe", "none"]
METHODS = ("lattice", "autocorrelation", "probe", "none")


@dataclass(frozen=True)
class RefineOptions:
    """Settings of :func:`refine_centres` (defaults chosen by ``py4dstem_ndpd.refine.benchmark``).

    Attributes
    ----------
    max_shift_px : float
        Largest correction searched per disk, px (the detector's errors are ~0.2-0.5 px).
    min_snr : float
        A disk that is on no lattice keeps its per-disk position only at or above this SNR (see
        :class:`~py4dstem_ndpd.refine.probe.ProbeFit`); fainter ones keep the detector's centre.
    index_tol_px : float
        A detected centre within this distance of a lattice site is indexed to it, px.
    min_lattice_disks : int
        A lattice is accepted when it indexes at least this many disks besides the direct beam.
    max_lattices : int
        Lattices looked for per pattern (2: a matrix and one overlapping phase).
    gain : float or None
        Detector counts per electron (shot-noise part of the SNR estimate). ``None`` (default): read from the
        frames (:func:`~py4dstem_ndpd.refine.gain.estimate_gain`: 1 for integer-valued counts, the quantum of
        counts scaled after counting, 1 for continuous data).
    lowpass_px : float
        Gaussian low-pass of the per-disk correlations (standard deviation, px; 0 for none).
    whitening : float
        Largest exponent of the hybrid correlation used for bright disks (0: plain cross-correlation), see
        :mod:`~py4dstem_ndpd.refine.probe`.
    whitening_snr : (float, float)
        SNR range over which that exponent rises from 0 to ``whitening``, for disks of radius <= 4 px; scaled by
        ``radius / 4 px`` for larger disks (same per-pixel SNR). Low, so that almost every disk also gets a
        hybrid-correlation position; the lattice then picks plain or hybrid per pattern. Measured against the
        former (20, 80): disks with +-40 % interior gradients 0.135 -> 0.069 px at 1e5; abTEM multislice Si [110]
        patterns (dynamical contrast, ``bench_external.py``) 0.39 -> 0.31 px; Si/SiGe and Ti-Nb unchanged
        within 0.002 px.
    whitening_floor : float
        Regularisation of the hybrid correlation, in units of the noise-level spectrum magnitude.
    detector_sigma_px : float or None
        Per-disk error assumed for the detector's centres (px). They then enter the lattice fit beside the
        per-disk positions (whose error is taken as ``3 / snr`` px, measured), with a free common offset, so
        that faint disks still constrain ``g1, g2`` through the detector. None fits the lattice to the
        per-disk positions only.
    edge : bool
        Offer the lattice a third per-disk variant: the bright disks located by their edge alone
        (:mod:`~py4dstem_ndpd.refine.edge`), which dynamical contrast inside thick-crystal disks does not pull;
        and locate the direct beam by its rim where its centroid is measurably off it (a crystal off its zone axis;
        ``docs/refinement.md``). ``False``: neither.
    """

    max_shift_px: float = 1.5
    min_snr: float = 10.0
    index_tol_px: float = 1.5
    min_lattice_disks: int = 4
    max_lattices: int = 2
    gain: float | None = None
    lowpass_px: float = 0.5
    detector_sigma_px: float | None = 0.3
    whitening: float = 1.0
    whitening_snr: tuple[float, float] = (5.0, 10.0)
    whitening_floor: float = 100.0
    edge: bool = True

    def __post_init__(self) -> None:
        if not self.max_shift_px > 0:
            raise ConfigError(f"max_shift_px must be > 0 px, got {self.max_shift_px}")
        if not self.min_snr >= 0:
            raise ConfigError(f"min_snr must be >= 0, got {self.min_snr}")
        if not self.index_tol_px > 0:
            raise ConfigError(f"index_tol_px must be > 0 px, got {self.index_tol_px}")
        if int(self.min_lattice_disks) < 2:
            raise ConfigError(f"min_lattice_disks must be >= 2, got {self.min_lattice_disks}")
        if int(self.max_lattices) < 1:
            raise ConfigError(f"max_lattices must be >= 1, got {self.max_lattices}")
        if not self.lowpass_px >= 0:
            raise ConfigError(f"lowpass_px must be >= 0 px, got {self.lowpass_px}")
        if not 0 <= self.whitening <= 1:
            raise ConfigError(f"whitening must be in [0, 1] (0: cross-correlation, 1: phase correlation), "
                              f"got {self.whitening}")
        if not self.whitening_floor >= 0:
            raise ConfigError(f"whitening_floor must be >= 0, got {self.whitening_floor}")
        if len(self.whitening_snr) != 2 or not 0 <= self.whitening_snr[0] < self.whitening_snr[1]:
            raise ConfigError(f"whitening_snr must be two increasing SNRs >= 0, got {self.whitening_snr}")
        if self.detector_sigma_px is not None and not self.detector_sigma_px > 0:
            raise ConfigError(f"detector_sigma_px must be > 0 px or None, got {self.detector_sigma_px}")
        if self.gain is not None and not self.gain > 0:
            raise ConfigError(f"gain must be > 0 counts per electron or None (read from the data), got {self.gain}")


@dataclass
class Refinement:
    """Result of :func:`refine`.

    Attributes
    ----------
    centres : list of ndarray
        Per pattern, refined centres (K_i, 2) float64, (qx, qy) px, in the input order.
    origin : ndarray, shape (N, 2)
        Centre of the direct beam (the disk used as the probe) of each pattern, the lattices' origin; with
        ``"lattice"``, moved by the other disks' mean residual where the plain or Poisson correlation won
        (:func:`_origin_offsets`). NaN without disks.
    bases : ndarray, shape (N, max_lattices, 2, 2)
        Rows g1, g2 of each lattice found (px); NaN where none.
    lattice : list of ndarray of int
        Per pattern, (K_i,) lattice number of each disk (-1: on none).
    uv : list of ndarray of int
        Per pattern, (K_i, 2) lattice indices (0 where ``lattice == -1``).
    snr : list of ndarray
        Per pattern, (K_i,) SNR estimate of each disk.
    method : str
    gain : float
        Counts per electron the SNR estimates used (given, or read from the frames; 1 where nothing was refined).
    """

    centres: list[np.ndarray]
    origin: np.ndarray
    bases: np.ndarray
    lattice: list[np.ndarray]
    uv: list[np.ndarray]
    snr: list[np.ndarray]
    method: str
    timings: dict = field(default_factory=dict)
    gain: float = 1.0


def _as_centres(centres: Sequence) -> list[np.ndarray]:
    out = []
    for i, c in enumerate(centres):
        a = np.asarray(c)
        if a.dtype.names is not None:
            if not {"qx", "qy"} <= set(a.dtype.names):
                raise InputError(f"peak table {i} has fields {a.dtype.names}; expected qx, qy (PEAK_DTYPE)")
            a = np.stack([a["qx"], a["qy"]], 1)
        a = np.asarray(a, dtype=np.float64).reshape(-1, 2) if a.size else np.zeros((0, 2))
        if not np.all(np.isfinite(a)):
            raise InputError(f"centres of pattern {i} contain NaN or inf; drop those disks before refining")
        out.append(a)
    return out


def refine(
    frames: np.ndarray,
    centres: Sequence,
    *,
    radius_px: float,
    method: RefineMethod = "lattice",
    options: RefineOptions | None = None,
    dead: np.ndarray | None = None,
) -> Refinement:
    """Refine detected disk centres to sub-pixel precision; full result (see :func:`refine_centres`).

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy) or (Qx, Qy)
        Patterns in counts (qx = row).
    centres : sequence of N arrays
        Detected centres of each pattern: (K_i, 2) arrays (qx, qy) px, or peak tables of
        :data:`~py4dstem_ndpd.peaks.PEAK_DTYPE`. For a single 2D frame, one array.
    radius_px : float
        Disk radius, px.
    method : {"lattice", "autocorrelation", "probe", "none"}
        See the module docstring.
    options : RefineOptions, optional
    dead : ndarray of bool, shape (Qx, Qy), optional
        Dead pixels and detector gaps, already filled in
        (:func:`~py4dstem_ndpd.detect.dead_pixels.repair_dead_pixels`); the direct beam is then located without
        them (:func:`~py4dstem_ndpd.refine.probe.probe_positions`).

    Returns
    -------
    Refinement
    """
    opts = options or RefineOptions()
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    if not (np.isfinite(radius_px) and radius_px > 0):
        raise ConfigError(f"radius_px must be a positive disk radius in px, got {radius_px}")
    x = np.asarray(frames)
    if x.ndim == 2:
        x = x[None]
    if len(x) == 1 and isinstance(centres, np.ndarray) and (centres.dtype.names is not None or centres.ndim == 2):
        centres = [centres]  # one pattern, one table
    if x.ndim != 3:
        raise InputError(f"frames must have shape (N, Qx, Qy) or (Qx, Qy), got {np.shape(frames)}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x) or not np.all(np.isfinite(x)):
        raise InputError("frames must be real and finite; replace NaN/inf pixels (e.g. by 0) before refining")
    cents = _as_centres(centres)
    N = x.shape[0]
    if len(cents) != N:
        raise InputError(f"got {len(cents)} centre arrays for {N} patterns; give one (K, 2) array per pattern")
    L = int(opts.max_lattices)
    counts = np.array([len(c) for c in cents], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    group = np.repeat(np.arange(N), counts)
    C = np.concatenate(cents) if len(group) else np.zeros((0, 2))
    K = len(C)
    timings: dict = {}

    def split(a):
        return [a[starts[i]:starts[i + 1]].copy() for i in range(N)]

    lat = np.full(K, -1, dtype=np.int64)
    uv = np.zeros((K, 2), dtype=np.int64)
    bases = np.full((N, L, 2, 2), np.nan)
    origin = np.full((N, 2), np.nan)
    if method == "none" or K == 0:
        return Refinement(centres=split(C), origin=origin, bases=bases, lattice=split(lat), uv=split(uv),
                          snr=split(np.zeros(K)), method=method, timings=timings)

    t0 = time.perf_counter()
    if opts.gain is None:
        from dataclasses import replace

        from .gain import estimate_gain

        opts = replace(opts, gain=estimate_gain(x))
    if dead is not None and np.shape(dead) != x.shape[1:]:
        raise InputError(f"dead must be a ({x.shape[1]}, {x.shape[2]}) pixel map like the frames, got "
                         f"{np.shape(dead)}")
    pf = _probe_in_chunks(x, C, starts, float(radius_px), opts, dead)
    timings["probe"] = time.perf_counter() - t0
    has = pf.probe >= 0
    origin[has] = pf.positions[pf.probe[has]]
    trusted = (pf.snr >= opts.min_snr) & (pf.shift <= opts.max_shift_px) & ~pf.clipped
    out = np.where(trusted[:, None], pf.positions, C)
    out[pf.probe[has]] = pf.positions[pf.probe[has]]
    if method == "probe":
        return Refinement(centres=split(out), origin=origin, bases=bases, lattice=split(lat), uv=split(uv),
                          snr=split(pf.snr), method=method, timings=timings, gain=float(opts.gain))

    # --- index the detected centres on up to L lattices per pattern (small arrays; loop over patterns) ------
    t0 = time.perf_counter()
    min_len = 2.0 * radius_px
    tol2 = max(opts.index_tol_px, REINDEX_RADII * float(radius_px))
    previous: list = [None] * L  # the last basis found for each layer, tried first on the next pattern
    for n in np.nonzero(has)[0]:
        idx = np.arange(starts[n], starts[n + 1])
        p = pf.probe[n]
        rem = idx[idx != p]
        for layer in range(L):
            if len(rem) < opts.min_lattice_disks:
                break
            vec = C[rem] - C[p]
            B = _reuse_basis(vec, previous[layer], opts.index_tol_px)
            if B is None:
                B = find_basis(vec, tol_px=opts.index_tol_px, min_length_px=min_len)
                if B is None:
                    break
            u, dist = index_points(vec, B)
            on = (dist < opts.index_tol_px) & np.any(u != 0, 1)
            if on.sum() >= 2 and np.linalg.matrix_rank(u[on].astype(float)) == 2:
                # refit on what it indexes and index again with a tolerance that grows with the radius: a
                # detector centre pulled off by the disk's interior (dynamical contrast, an overlapping neighbour)
                # then still joins this lattice instead of seeding a spurious next one
                B = np.linalg.lstsq(u[on].astype(float), vec[on], rcond=None)[0]
                u, dist = index_points(vec, B)
                on = (dist < tol2) & np.any(u != 0, 1)
            on &= _first_per_site(u, dist, on)
            if on.sum() < opts.min_lattice_disks:
                break
            lat[rem[on]] = layer
            uv[rem[on]] = u[on]
            bases[n, layer] = B
            previous[layer] = B
            rem = rem[~on]
        if np.isfinite(bases[n, 0, 0, 0]):
            lat[p] = 0
    timings["index"] = time.perf_counter() - t0

    # --- fit g1, g2 of every (pattern, lattice) at once -----------------------------------------------------
    t0 = time.perf_counter()
    gid = np.where(lat >= 0, group * L + np.maximum(lat, 0), -1)
    sel = (lat >= 0) & np.any(uv != 0, 1)
    symmetric = np.zeros(N, dtype=bool)  # patterns whose chosen per-disk positions assume symmetric disks
    origin_positions = pf.alternatives.get("plain")
    # disks within a radius + 2 px of dead pixels (their positions carry the repair's error); None without any
    near_dead = None if dead is None else _near_dead(C, dead, float(radius_px) + 2.0)
    if method == "lattice":
        crowded = _crowded(C, group, 2.0 * float(radius_px) + 4.0)
        fitted = _fit_from_disks(pf, C, uv, gid, sel, origin, N * L, opts)
        choice = _choose_variant(pf, C, uv, gid, sel, origin, L, opts, fitted, crowded, group)
        if choice is not None:
            chosen, fitted, positions, names = choice
            k = (chosen[group] > 0) & trusted
            out[k] = positions[k]
            timings["variant_patterns"] = {name: int(np.sum(chosen == i)) for i, name in enumerate(names)}
            symmetric = np.isin(np.asarray(names)[chosen], SYMMETRIC_VARIANTS)
            origin_positions = positions
        elif opts.whitening <= 0:
            symmetric[:] = True  # every per-disk position is a plain cross-correlation
    else:
        fitted = _fit_from_autocorrelation(x, bases.reshape(N * L, 2, 2), uv, gid, sel, float(radius_px))
    fitted = fitted.reshape(N, L, 2, 2)
    ok = np.all(np.isfinite(fitted), axis=(2, 3))
    bases = np.where(ok[..., None, None], fitted, bases)
    if np.any(symmetric):
        # not the disks next to dead pixels either: their positions carry the repair's error
        exclude = crowded if near_dead is None else crowded | near_dead
        origin = origin + _origin_offsets(pf, lat, uv, group, origin, bases, exclude, symmetric, origin_positions)
    if dead is not None:
        # where dead pixels cross the direct beam, the origin from the pattern's Friedel pairs; the per-disk
        # positions move with it, since they were measured against the probe
        from .friedel import friedel_origins

        origin, moved = friedel_origins(x, dead, pf, lat, uv, group, origin, float(radius_px), float(opts.gain))
        if moved.any():
            shift = np.zeros((N, 2))
            shift[moved] = origin[moved] - pf.positions[pf.probe[moved]]
            measured = trusted.copy()
            measured[pf.probe[has]] = True
            out[measured] += shift[group[measured]]
    timings["fit"] = time.perf_counter() - t0

    # --- second chance for disks left out by the first indexing (noisy detected direct beam, far orders) -------
    tol_k = np.full(K, tol2)
    if near_dead is not None:
        tol_k[near_dead] = max(tol2, REINDEX_RADII_NEAR_DEAD * float(radius_px))
    _reindex(C, group, origin, bases, lat, uv, tol_k)

    # --- move indexed disks to their lattice sites ------------------------------------------------------------
    on = lat >= 0
    site = origin[group[on]] + np.einsum("ku,kuj->kj", uv[on].astype(np.float64),
                                         bases[group[on], np.maximum(lat[on], 0)])
    # a site that the refit moved far from the disk means the disk was mis-indexed: keep the per-disk result
    near = np.linalg.norm(site - C[on], axis=1) < opts.index_tol_px + opts.max_shift_px
    good = np.all(np.isfinite(site), 1) & near
    on_idx = np.nonzero(on)[0]
    out[on_idx[good]] = site[good]
    lat[on_idx[~good]] = -1
    uv[lat < 0] = 0
    log.debug("refine(%s): %d patterns, %d disks, %d on a lattice, %d patterns with two or more lattices",
              method, N, K, int((lat >= 0).sum()), int(np.sum(np.isfinite(bases[:, 1:, 0, 0]).any(1))))
    return Refinement(centres=split(out), origin=origin, bases=bases, lattice=split(lat), uv=split(uv),
                      snr=split(pf.snr), method=method, timings=timings, gain=float(opts.gain))


def refine_centres(
    frames: np.ndarray,
    centres: Sequence,
    *,
    radius_px: float,
    method: RefineMethod = "lattice",
    options: RefineOptions | None = None,
) -> list[np.ndarray]:
    """Refine detected disk centres to sub-pixel precision at native resolution.

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy) or (Qx, Qy)
        Patterns in counts (qx = row, pixel i centred on integer i).
    centres : sequence of N arrays
        Detected centres per pattern: (K_i, 2) arrays of (qx, qy) in px, or peak tables of
        :data:`~py4dstem_ndpd.peaks.PEAK_DTYPE`.
    radius_px : float
        Disk radius, px (the direct beam's radius).
    method : {"lattice", "autocorrelation", "probe", "none"}
        ``"lattice"`` (default): per-disk cross-correlation with the direct beam, then every disk that sits on a
        lattice is moved to the least-squares lattice site. See the module docstring for all methods.
    options : RefineOptions, optional

    Returns
    -------
    list of ndarray
        Per pattern, (K_i, 2) float64 refined centres (qx, qy) px, in the input order.

    Raises
    ------
    ConfigError
        Unknown method, non-positive radius.
    InputError
        Shapes that do not match, NaN centres or pixels.

    Notes
    -----
    The brightest detected disk of each pattern is taken as the direct beam (the probe and the origin). The
    SNR estimates assume counts (``RefineOptions.gain`` counts per electron, read from the data by default).
    Vectorised over all disks of the batch; ~1-2 ms per 256 x 256 pattern with ~30 disks on a shared 2-core CPU
    (``"lattice"``), ~3.5 ms with ``"autocorrelation"`` (its 384 x 384 FFTs).

    Examples
    --------
    >>> from py4dstem_ndpd.synth import Acquisition, simulate_preset
    >>> scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(1, 1), pattern_shape=(128, 128)))
    >>> t = scan.truth.disks_at(0, 0)
    >>> import numpy as np
    >>> rough = np.stack([t["qx"], t["qy"]], 1) + 0.3
    >>> fine = refine_centres(scan.data[0, 0], rough, radius_px=scan.truth.disk_radius)[0]
    >>> bool(np.abs(fine - np.stack([t["qx"], t["qy"]], 1)).mean() < 0.1)
    True
    """
    return refine(frames, centres, radius_px=radius_px, method=method, options=options).centres


#: Tolerance of the second indexing (:func:`_reindex`) in disk radii, when larger than ``index_tol_px``: the
#: detector's centre of a disk overlapped by a disk of another phase is pulled towards it by up to ~0.3 radii
#: (measured on ``tinb_multiphase`` at 512 px: 2.2-2.4 px for 8 px disks 11 px apart).
REINDEX_RADII = 0.35
#: The same for disks next to dead pixels: there the detector's centre is pulled by the filled-in gap too (a bright
#: disk with a 4 px chip gap along its edge, held-out abTEM Si [110]: 1.95 px off for a 5.2 px disk, so it stayed
#: off its lattice and kept a per-disk position 2.7 px off).
REINDEX_RADII_NEAR_DEAD = 0.5

#: Disks per call of :func:`probe_positions` (bounds the memory of the stacked windows and spectra: ~50 MB).
CHUNK_DISKS = 4096


def _probe_in_chunks(frames, C, starts, radius_px, opts, dead=None) -> ProbeFit:
    """:func:`probe_positions` over whole patterns, at most ~:data:`CHUNK_DISKS` disks at a time."""
    N = len(starts) - 1
    bounds = [0]
    for n in range(1, N + 1):
        if starts[n] - starts[bounds[-1]] > CHUNK_DISKS and n - 1 > bounds[-1]:
            bounds.append(n - 1)
    bounds.append(N)
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        counts = np.diff(starts[a:b + 1])
        part = probe_positions(
            frames[a:b], np.repeat(np.arange(b - a), counts), C[starts[a]:starts[b]], b - a, radius_px,
            max_shift_px=opts.max_shift_px, gain=opts.gain, lowpass_px=opts.lowpass_px, whitening=opts.whitening,
            whitening_snr=_scaled_whitening_snr(opts.whitening_snr, radius_px), whitening_floor=opts.whitening_floor,
            edge=opts.edge, dead=dead)
        part.probe = np.where(part.probe >= 0, part.probe + starts[a], -1)
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    cat = lambda name: np.concatenate([getattr(q, name) for q in parts])  # noqa: E731
    alternatives = {k: np.concatenate([q.alternatives[k] for q in parts]) for k in parts[0].alternatives}
    asym = None if parts[0].asymmetric is None else cat("asymmetric")
    return ProbeFit(positions=cat("positions"), snr=cat("snr"), shift=cat("shift"), clipped=cat("clipped"),
                    probe=cat("probe"), alternatives=alternatives, asymmetric=asym)


#: Disk radius (px) at which ``RefineOptions.whitening_snr`` holds; see :func:`_scaled_whitening_snr`.
WHITENING_RADIUS_PX = 4.0


def _scaled_whitening_snr(snr_range: tuple[float, float], radius_px: float) -> tuple[float, float]:
    """The whitening SNR range for disks of ``radius_px``: scaled by ``radius / 4 px`` above 4 px.

    Whitening pays where the disk edge stands out of the noise pixel by pixel; for the same integrated SNR a disk
    of twice the radius spreads its counts over four times the pixels, so its per-pixel SNR is about half. Measured
    at 512 px (8 px disks, both presets, RMS px at 1e5 / 1e6): unscaled 0.044-0.059 / 0.026-0.029, scaled
    0.041-0.053 / 0.019-0.024 (unchanged at 1e7).
    """
    f = max(1.0, float(radius_px) / WHITENING_RADIUS_PX)
    return (snr_range[0] * f, snr_range[1] * f)


def _reindex(C, group, origin, bases, lat, uv, tol) -> None:
    """Index (in place) the disks on no lattice against the fitted lattices and the refined origins.

    The first indexing measures from the detected direct beam with a basis from detected centres; with the
    fitted lattice and the refined origin the sites are known far better, so a disk within ``tol`` (px, a scalar
    or one per disk) of a free site now joins that lattice.
    """
    N, L = bases.shape[:2]
    k = np.nonzero((lat < 0) & np.all(np.isfinite(origin[group]), 1))[0]
    if k.size == 0:
        return
    best_d = np.full(k.size, np.inf)
    best_l = np.full(k.size, -1)
    best_uv = np.zeros((k.size, 2), dtype=np.int64)
    for layer in range(L):
        B = bases[group[k], layer]
        ok = np.all(np.isfinite(B), axis=(1, 2))
        if not np.any(ok):
            continue
        v = C[k] - origin[group[k]]
        with np.errstate(all="ignore"):
            u = np.rint(np.einsum("ki,kij->kj", v, np.linalg.inv(np.where(ok[:, None, None], B, np.eye(2)))))
        d = np.linalg.norm(v - np.einsum("ku,kuj->kj", u, np.nan_to_num(B)), axis=1)
        d = np.where(ok & np.any(u != 0, 1), d, np.inf)
        better = d < best_d
        best_d[better], best_l[better], best_uv[better] = d[better], layer, u[better].astype(np.int64)
    take = best_d < np.broadcast_to(np.asarray(tol, np.float64), lat.shape)[k]
    if not np.any(take):
        return
    # a site already held by a disk stays with it
    held = lat >= 0
    keys = _site_key(group[k], best_l, best_uv, L)
    take &= ~np.isin(keys, _site_key(group[held], lat[held], uv[held], L))
    take &= _first_per_site(np.stack([keys, np.zeros(k.size, np.int64)], 1), best_d, take)
    lat[k[take]] = best_l[take]
    uv[k[take]] = best_uv[take]


def _site_key(g: np.ndarray, lyr: np.ndarray, u: np.ndarray, L: int) -> np.ndarray:
    """One integer per lattice site ``(pattern g, lattice lyr, u (K, 2))`` of a batch with ``L`` lattices per pattern
    (indices within +-2048)."""
    return ((g * L + lyr) * 4096 + (u[:, 0] + 2048)) * 4096 + (u[:, 1] + 2048)


def _reuse_basis(vec: np.ndarray, basis: np.ndarray | None, tol: float, min_fraction: float = 0.9):
    """A basis from a neighbouring pattern, refitted to ``vec``; None unless it indexes most of them.

    Saves :func:`find_basis` on the many patterns of a scan that share a lattice. The basis is refitted by least
    squares (origin fixed) on the vectors within ``2 * tol`` of its sites, so a small strain between the
    patterns does not matter; it is kept when at least ``min_fraction`` of the vectors then lie within ``tol``.
    """
    if basis is None:
        return None
    u, dist = index_points(vec, basis)
    sel = (dist < 2 * tol) & np.any(u != 0, 1)
    if sel.sum() < min_fraction * len(vec) or np.linalg.matrix_rank(u[sel].astype(float)) < 2:
        return None
    B = np.linalg.lstsq(u[sel].astype(float), vec[sel], rcond=None)[0]
    u, dist = index_points(vec, B)
    if ((dist < tol) & np.any(u != 0, 1)).sum() < min_fraction * len(vec):
        return None
    return B


def _first_per_site(uv: np.ndarray, dist: np.ndarray, on: np.ndarray) -> np.ndarray:
    """True for the closest disk of each lattice site (two detections of one site: keep one)."""
    keep = np.zeros(len(uv), dtype=bool)
    idx = np.nonzero(on)[0]
    if idx.size == 0:
        return keep
    order = idx[np.lexsort((dist[idx], uv[idx, 1], uv[idx, 0]))]
    u = uv[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(u[1:] != u[:-1], axis=1)
    keep[order[first]] = True
    return keep


def _position_weight(snr: np.ndarray) -> np.ndarray:
    """Least-squares weight of a per-disk position of SNR ``snr``: ``(snr / 3)**2``, its measured error being ``~3 /
    snr`` px."""
    return (np.asarray(snr, dtype=np.float64) / 3.0) ** 2


def _fit_from_disks(pf, detected, uv, gid, sel, origin, n_groups, opts, rounds: int = 2) -> np.ndarray:
    """Weighted least-squares lattice bases from per-disk positions (and detector centres), all groups at once.

    Model, per group: refined position ``r_k = o + uv_k @ B`` with ``o`` the probe centre (fixed), weight
    ``(snr_k / 3)**2`` (measured error ``~3 / snr`` px; 0 for disks cut by the detector edge or with
    ``snr < 5``); and, if ``opts.detector_sigma_px`` is set, detected centre ``c_k = o' + uv_k @ B`` with a free
    offset ``o'`` and weight ``1 / detector_sigma_px**2`` (0 for disks cut by the detector edge). Rows whose normalised residual exceeds
    ``max(4, 3 x its group median)`` or whose residual exceeds 2 px are dropped and the fit repeated.
    """
    L = n_groups // len(origin)
    org = np.repeat(origin, L, axis=0)
    k = np.nonzero(sel & (gid >= 0))[0]
    g = gid[k]
    u = uv[k].astype(np.float64)
    w_ref = np.where((pf.snr[k] >= 5.0) & ~pf.clipped[k], _position_weight(pf.snr[k]), 0.0)
    X = [np.concatenate([np.zeros((len(k), 1)), u], 1)]
    Y = [pf.positions[k] - org[g]]
    Wt = [w_ref]
    grp = [g]
    if opts.detector_sigma_px is not None:
        X.append(np.concatenate([np.ones((len(k), 1)), u], 1))
        Y.append(detected[k])
        # not for disks cut by the detector edge: their detected centre is extrapolated from the visible part
        # (measured on Ti-Nb at 1e5, 256 px: they bent the lattice enough to move far disks by 0.2-0.3 px)
        sigma = _detector_sigma(pf, detected, k, g, n_groups, float(opts.detector_sigma_px))
        Wt.append(np.where(pf.clipped[k], 0.0, 1.0 / sigma[g] ** 2))
        grp.append(g)
    X, Y, w, grp = np.concatenate(X), np.concatenate(Y), np.concatenate(Wt), np.concatenate(grp)
    # groups without detector rows have no constraint on the free offset: pin it with a tiny prior
    prior = 1e-9
    basis = np.full((n_groups, 2, 2), np.nan)
    for r in range(rounds + 1):
        A = np.zeros((n_groups, 3, 3))
        b = np.zeros((n_groups, 3, 2))
        np.add.at(A, grp, w[:, None, None] * X[:, :, None] * X[:, None, :])
        np.add.at(b, grp, w[:, None, None] * X[:, :, None] * Y[:, None, :])
        A[:, 0, 0] += prior
        sub = A[:, 1:, 1:]
        ok = np.abs(np.linalg.det(sub)) > 1e-9 * np.maximum(np.einsum("nii->n", sub), 1e-300) ** 2
        sol = np.full((n_groups, 3, 2), np.nan)
        if np.any(ok):
            sol[ok] = np.linalg.solve(A[ok], b[ok])
        basis = sol[:, 1:]
        if r == rounds:
            break
        pred = np.einsum("ku,kuj->kj", X, np.nan_to_num(sol[grp]))
        res = np.linalg.norm(Y - pred, axis=1)
        z = res * np.sqrt(w)
        use = w > 0
        med = group_median(z, grp, use, n_groups)
        cut = np.maximum(4.0, 3.0 * np.nan_to_num(med, nan=np.inf))
        bad = use & ((z > cut[grp]) | (res > 2.0))
        if not np.any(bad):
            break
        w = np.where(bad, 0.0, w)
    return basis


def _detector_sigma(pf, detected, k, g, n_groups: int, floor: float, min_snr: float = 10.0,
                    min_disks: int = 3) -> np.ndarray:
    """Per group, the error of the detector's centres measured against the bright disks' own positions, px.

    The detector is good to ~0.1-0.3 px on disks with uniform interiors (``floor``, the option
    ``detector_sigma_px``), but on dynamical disks (thick crystals: bright crescents on the side facing the direct
    beam) its centres are off by ~1 px, all towards the pattern centre, and at weight ``1 / floor**2`` they pull
    the fitted lattice 2-4 % short (measured on abTEM SrTiO3 [001] at 50 nm). So the spread of ``detected -
    per-disk`` over the disks with ``snr >= min_snr`` (after removing its group median: the free offset), per
    axis (``sqrt(median |d|^2 / (2 ln 2))``), sets the weight where it exceeds ``floor``; groups with fewer than
    ``min_disks`` such disks keep ``floor``.
    """
    sigma = np.full(n_groups, floor)
    use = (pf.snr[k] >= min_snr) & ~pf.clipped[k]
    counts = np.bincount(g[use], minlength=n_groups)
    if not np.any(counts >= min_disks):
        return sigma
    d = detected[k] - pf.positions[k]
    off = np.stack([group_median(d[:, a], g, use, n_groups) for a in (0, 1)], 1)
    r2 = np.sum((d - np.nan_to_num(off)[g]) ** 2, axis=1)
    est = np.sqrt(group_median(r2, g, use, n_groups) / (2.0 * np.log(2.0)))
    ok = (counts >= min_disks) & np.isfinite(est)
    sigma[ok] = np.maximum(floor, est[ok])
    return sigma


#: Per-disk variants that assume centrosymmetric disks: where one wins, the disks in Friedel pairs move the origin
#: (:func:`_origin_offsets`).
SYMMETRIC_VARIANTS = ("plain", "poisson")
#: Fewest disks (in Friedel pairs) that may move a pattern's origin (:func:`_origin_offsets`).
ORIGIN_MIN_DISKS = 6


def _near_dead(C: np.ndarray, dead: np.ndarray, distance: float) -> np.ndarray:
    """True for centres (K, 2) within ``distance`` px of a dead pixel of the (Qx, Qy) map ``dead``."""
    dead = np.asarray(dead, dtype=bool)
    if not dead.any() or len(C) == 0:
        return np.zeros(len(C), dtype=bool)
    from scipy.ndimage import distance_transform_edt

    d = distance_transform_edt(~dead)
    ij = np.clip(np.rint(C).astype(np.int64), 0, np.array(dead.shape) - 1)
    return d[ij[:, 0], ij[:, 1]] < distance + 0.5


def _origin_offsets(pf, lat, uv, group, origin, bases, exclude, use, pos, min_snr: float = 5.0,
                    max_residual_px: float = 0.5) -> np.ndarray:
    """Per pattern, the shift of the origin (the direct beam's centre) that its other disks measure, px (N, 2).

    Every per-disk position is the probe's centre plus the disk's correlation shift from the probe, so the
    residuals ``position - (origin + uv @ B)`` of the disks on the fitted lattices are, on average, the
    difference between the probe centre's own error and the error that the probe's noise puts into every
    correlation. Their weighted mean, with the direct beam as one more disk of residual 0, is a better origin
    than the direct beam alone. Only patterns in ``use`` (those whose plain or Poisson correlation positions won
    the lattice's verdict: symmetric disk interiors), only those positions (``pos``, K x 2) of disks not in ``exclude``
    (crowded ones, which a neighbour's counts pull; those next to dead pixels), with ``snr >= min_snr``, not cut by
    the detector edge, and only in Friedel pairs (``uv`` and ``-uv`` on the same lattice), so that a pull of every
    disk towards (or away from) the direct beam cancels. Weights as in the lattice fit (:func:`_position_weight`);
    residuals above ``max_residual_px`` are left out. Patterns with fewer than :data:`ORIGIN_MIN_DISKS` such disks
    keep their origin.
    """
    N, L = bases.shape[:2]
    delta = np.zeros((N, 2))
    if pos is None:
        return delta
    k = np.nonzero(use[group] & (lat >= 0) & np.any(uv != 0, 1) & (pf.snr >= min_snr) & ~pf.clipped & ~exclude)[0]
    if k.size == 0:
        return delta
    # Friedel pairs: the partner (pattern, lattice, -u, -v) is among them too
    k = k[np.isin(_site_key(group[k], lat[k], -uv[k], L), _site_key(group[k], lat[k], uv[k], L))]
    site = origin[group[k]] + np.einsum("ku,kuj->kj", uv[k].astype(np.float64), bases[group[k], lat[k]])
    res = pos[k] - site
    ok = np.all(np.isfinite(res), 1) & (np.linalg.norm(res, axis=1) <= max_residual_px)
    k, res = k[ok], res[ok]
    w = _position_weight(pf.snr[k])
    num = np.zeros((N, 2))
    den = np.zeros(N)
    np.add.at(num, group[k], w[:, None] * res)
    np.add.at(den, group[k], w)
    n = np.bincount(group[k], minlength=N)
    has = (pf.probe >= 0) & use & (n >= ORIGIN_MIN_DISKS)
    w0 = _position_weight(pf.snr[pf.probe[has]])  # the direct beam, residual 0
    delta[has] = num[has] / (den[has] + w0)[:, None]
    return delta


def _crowded(C: np.ndarray, group: np.ndarray, distance: float) -> np.ndarray:
    """True for disks with another disk of the same pattern closer than ``distance`` px (KD-tree per batch)."""
    from scipy.spatial import cKDTree

    if len(C) < 2:
        return np.zeros(len(C), dtype=bool)
    # separate the patterns far apart so one tree serves the whole batch
    pts = np.concatenate([C, group[:, None] * 1e6], axis=1)
    pairs = cKDTree(pts).query_pairs(distance, output_type="ndarray")
    out = np.zeros(len(C), dtype=bool)
    out[pairs.ravel()] = True
    return out


def _choose_variant(pf, detected, uv, gid, sel, origin, L, opts, fitted, crowded, group):
    """Per pattern, the per-disk estimator whose positions its own fitted lattice fits best.

    Candidates: the hybrid correlation (``pf.positions``) and ``pf.alternatives`` (the plain cross-correlation, the
    Poisson-likelihood correlation and, where computed, the disk edge).
    Whitening (hybrid correlation) makes disks immune to asymmetric interiors (tilt,
    dynamical contrast) at the price of more noise; with symmetric interiors the plain correlation is the more
    precise (measured on Si/SiGe at 1e6 electrons, 256 px: strain std 6.4e-5 plain against 1.24e-4 whitened). The
    lattice is the judge: the variant whose disks lie closest (median distance) to their fitted lattice sites is
    kept. Disks that another disk overlaps (``crowded``) keep their hybrid-correlation position in every variant:
    the neighbour's counts in their window pull the plain correlation (measured on Ti-Nb at 1e7, 256 px: 0.22 px
    on matrix disks 11 px from an hcp disk; RMS of the scan 0.030 px, 0.007 px with this rule).

    Patterns whose bright disks failed the point-symmetry test (``pf.asymmetric``) are not offered the plain and
    Poisson variants. Crescent-shaped thick-crystal disks pull it furthest towards the direct beam, every disk in
    proportion to ``|g|``, and a lattice fits such positions as well as the true ones. The judge cannot see a bias
    that is a uniform scale. On abTEM SrTiO3 [001] at 50 nm it chose the plain variant, with a lattice 3.5 % too
    small.

    Returns
    -------
    (chosen (N,) int, bases (N * L, 2, 2), positions (K, 2), names list of str) or None
        ``chosen``: index into ``names`` (0, ``"hybrid"``: the hybrid correlation; then the alternatives that
        differ from it); bases and per-disk positions of the chosen variant of each pattern. None when no
        alternative differs.
    """
    if not pf.alternatives or opts.whitening <= 0:
        return None
    N = len(origin)
    k = np.nonzero(sel & (gid >= 0) & ~pf.clipped)[0]
    if k.size == 0:
        return None
    g = gid[k]
    u = uv[k].astype(np.float64)
    org = np.repeat(origin, L, axis=0)[g]
    pattern = g // L
    from dataclasses import replace

    variants = [(pf.positions, fitted)]
    names = ["hybrid"]
    for name, alt in pf.alternatives.items():
        pos = np.where(crowded[:, None], pf.positions, alt)
        if not np.any(pos != pf.positions):
            continue
        names.append(name)
        variants.append((pos, _fit_from_disks(replace(pf, positions=pos), detected, uv, gid, sel, origin,
                                              len(fitted), opts)))
    if len(variants) == 1:
        return None
    med = np.full((len(variants), N), np.inf)
    for i, (pos, B) in enumerate(variants):
        site = org + np.einsum("ku,kuj->kj", u, B[g])
        res = np.linalg.norm(pos[k] - site, axis=1)
        m = group_median(res, pattern, np.isfinite(res), N)
        ok = np.all(np.isfinite(B.reshape(N, L, 4)) | ~np.isfinite(fitted.reshape(N, L, 4)), axis=(1, 2))
        med[i] = np.where(np.isfinite(m) & ok, m, np.inf)
    if pf.asymmetric is not None:
        for name in SYMMETRIC_VARIANTS:
            if name in names:
                med[names.index(name), pf.asymmetric] = np.inf
    med[0] = np.where(np.isfinite(med[0]), med[0], -np.inf)  # no verdict: keep the hybrid correlation
    chosen = np.argmin(med, axis=0)
    bases = np.stack([B for _, B in variants]).reshape(len(variants), N, L, 2, 2)
    fitted_out = bases[chosen, np.arange(N)].reshape(N * L, 2, 2)
    per_disk = np.stack([pos for pos, _ in variants])  # (V, K, 2)
    return chosen, fitted_out, per_disk[chosen[group], np.arange(len(group))], names


def _overlapping_lags(g: np.ndarray, lags: np.ndarray, L: int, distance: float) -> np.ndarray:
    """True for peaks within ``distance`` of a (+-) peak of another lattice of the same pattern.

    Where two lattices overlap (a precipitate in a matrix) their autocorrelation peaks can merge; such peaks
    would pull each lattice towards the other. Only patterns with more than one lattice are looked at.
    """
    bad = np.zeros(len(g), dtype=bool)
    if L < 2:
        return bad
    pattern = g // L
    for n in np.unique(pattern[np.isin(pattern, np.unique(pattern[g % L > 0]))]):
        i = np.nonzero(pattern == n)[0]
        d = np.minimum(np.linalg.norm(lags[i, None] - lags[None, i], axis=2),
                       np.linalg.norm(lags[i, None] + lags[None, i], axis=2))
        other = g[i, None] != g[None, i]
        bad[i] = np.any(other & (d < distance), axis=1)
    return bad


def _fit_from_autocorrelation(frames, bases0, uv, gid, sel, radius_px) -> np.ndarray:
    """Bases from autocorrelation peaks at the lags of the indexed disks (and their opposites), origin-free."""
    n_groups = len(bases0)
    L = n_groups // len(frames)
    R = autocorrelation(frames, background_px=radius_px)
    # one peak per distinct (group, u, v); the autocorrelation is centrosymmetric so (u, v) and (-u, -v) agree
    key = np.stack([gid[sel], uv[sel, 0], uv[sel, 1]], 1)
    canon = key.copy()
    flip = (canon[:, 1] < 0) | ((canon[:, 1] == 0) & (canon[:, 2] < 0))
    canon[flip, 1:] *= -1
    canon = np.unique(canon, axis=0)
    if canon.size == 0:
        return np.full((n_groups, 2, 2), np.nan)
    g, u = canon[:, 0], canon[:, 1:]
    lags = np.einsum("ku,kuj->kj", u.astype(np.float64), bases0[g])
    peak_r = 2.0 * radius_px
    usable = _usable_lag(lags, R.shape[-2:], frames.shape[-2:], 2 * peak_r + 1, peak_r + 3) & np.all(
        np.isfinite(lags), 1)
    g, u, lags = g[usable], u[usable], lags[usable]
    pos, height = refine_autocorrelation_peaks(R, g // L, lags, peak_r)
    good = np.all(np.isfinite(pos), 1) & (height > 0) & (np.linalg.norm(pos - lags, axis=1) < peak_r)
    good &= ~_overlapping_lags(g, lags, L, 2.0 * peak_r + 1.0)
    # pack into the (groups, peaks) layout of _robust_fit
    P = max(int(np.bincount(g, minlength=n_groups).max()), 1)
    slot = np.zeros(len(g), dtype=np.int64)
    order = np.argsort(g, kind="stable")
    gs = g[order]
    first = np.searchsorted(gs, gs)
    slot[order] = np.arange(len(gs)) - first
    peaks = np.full((n_groups, P, 2), np.nan)
    weights = np.zeros((n_groups, P))
    uvp = np.zeros((n_groups, P, 2))
    peaks[g, slot] = pos
    weights[g, slot] = np.where(good, height**2, 0.0)
    uvp[g, slot] = u
    return robust_basis_fit(uvp, peaks, weights)[0]


__all__ = ["METHODS", "RefineMethod", "RefineOptions", "Refinement", "refine", "refine_centres"]
