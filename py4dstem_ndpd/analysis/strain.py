"""Strain maps from Bragg vectors, built on py4DSTEM's :class:`~py4DSTEM.process.strain.StrainMap`.

Works on any ``py4DSTEM.BraggVectors`` (from this package's detector or from py4DSTEM's template matching).

Workflow (:func:`strain_map`)
-----------------------------
1. Work on a copy of the BraggVectors, so the caller's vectors and calibration are left untouched.
2. Origin: keep a calibrated origin if there is one; otherwise take the most intense vector at every position
   (the direct beam, py4DSTEM's ``measure_origin``) and fit a smooth surface to it (``fit_origin``, robust).
3. Basis: the maxima of the Bragg vector map (BVM) are found; ``g1`` is the shortest strong one, ``g2`` the
   shortest strong one at least ``min_angle_deg`` away from collinear (or the maxima nearest to user-given
   vectors). py4DSTEM's ``choose_basis_vectors`` gets these indices, so no GUI step is needed.
4. ``fit_basis_vectors`` indexes the vectors of each position to the lattice (within ``max_peak_spacing``) and
   fits ``g1, g2`` (and a free origin) per position by weighted least squares.
5. ``get_strain`` with the reference region; then the strain is converted to this package's convention.

Conventions
-----------
Coordinates are detector pixels: ``x`` is ``qx`` (detector **row**, first array axis), ``y`` is ``qy``
(**column**). Lattice vectors ``g1, g2`` are rows of ``G`` (2 x 2, px), relative to the origin.

*This package* (the same as :attr:`py4dstem_ndpd.synth.truth.ScanTruth.strain`) reports the real-space
deformation gradient ``F`` relative to the reference (``r' = F r``), decomposed as
``e_xx = F_xx - 1``, ``e_yy = F_yy - 1``, ``e_xy = (F_xy + F_yx) / 2``, ``theta = (F_yx - F_xy) / 2`` (rad,
positive from x towards y). Reciprocal vectors transform with ``F^-T``: if ``G0 X = G`` then ``F = X^-1``.

*py4DSTEM* (0.14.18, ``get_strain_from_reference_g1g2``) stores ``beta = X^T = F^-T`` and reports
``e_xx = 1 - beta_xx``, ``e_yy = 1 - beta_yy``, ``e_xy = -(beta_xy + beta_yx) / 2``,
``theta = (beta_xy - beta_yx) / 2``. To first order in the strain this equals ours except that **theta has the
opposite sign**; to second order py4DSTEM's ``e_xx`` is ``e - e**2`` for a uniaxial stretch ``e`` (7e-5 low at
``e = 0.0085``). :class:`StrainResult` exposes both: ``result.strainmap`` is py4DSTEM's object with its own
numbers, ``result.e_xx`` etc. are ours. Both are relative to the reference region, in the detector frame
(``coordinate_rotation = 0``; no real-space/diffraction rotation is applied).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Union

import numpy as np

from ..exceptions import ConfigError, InputError
from ..strain_convention import STRAIN_COMPONENTS, deformation_from_bases, strain_components
from ._quiet import quiet_py4dstem

if TYPE_CHECKING:  # pragma: no cover
    import py4DSTEM

log = logging.getLogger(__name__)

OriginMode = Literal["auto", "keep", "measure", "fit"]
#: A reference region: a boolean (Rx, Ry) mask, a rectangle ``(rx0, rx1, ry0, ry1)`` (half-open, like slices),
#: or ``None`` for the whole scan.
Reference = Union[np.ndarray, tuple[int, int, int, int], None]


@dataclass(frozen=True)
class StrainOptions:
    """Options of :func:`strain_map`.

    Attributes
    ----------
    origin : {"auto", "keep", "measure", "fit"}
        How the direct-beam origin is set. ``"keep"``: use the origin already in the BraggVectors' calibration
        (error if none). ``"measure"``: the most intense vector at each position. ``"fit"``: that, then a robust
        smooth fit (``origin_fit``) over the scan. ``"auto"``: ``"keep"`` if an origin is calibrated, else
        ``"fit"``. The per-position lattice fit has a free origin, so the origin only has to be good to a
        fraction of ``max_peak_spacing``.
    origin_fit : {"plane", "parabola"}
        Surface fitted to the measured origin (descan) for ``origin="fit"``.
    num_maxima : int
        Number of Bragg-vector-map maxima considered when choosing the basis.
    min_relative_intensity : float
        A BVM maximum can be ``g1`` or ``g2`` only if its intensity is at least this fraction of the strongest
        maximum other than the origin (keeps weak extra reflections, e.g. of a minority phase, out of the basis).
    min_angle_deg : float
        ``g2`` must be at least this many degrees away from the line of ``g1``.
    min_spacing : float
        Minimum distance between BVM maxima, px.
    max_peak_spacing : float or None
        A vector is indexed to a lattice point when closer than this, px. ``None``: 0.08 x the shorter basis
        vector.
    basis : ((g1x, g1y), (g2x, g2y)) or None
        Approximate basis vectors (px, origin-centred, ``x`` = qx row) to use instead of the automatic choice;
        the nearest BVM maxima are taken.
    outlier_px : float or None
        py4DSTEM's per-position fit is plain weighted least squares, so one spurious vector indexed to a lattice
        point pulls it. With ``outlier_px`` set, each position is refitted (same weights, the intensities),
        dropping the worst-fitting vector while its residual exceeds ``outlier_px`` px and at least
        ``min_vectors`` remain; the refit replaces the values in ``strainmap.g1g2_map``. ``None``: py4DSTEM's
        fit as is.
    min_vectors : int
        Fewest indexed vectors (the direct beam included) for a position to get a fit (py4DSTEM uses 5).
    """

    origin: OriginMode = "auto"
    origin_fit: Literal["plane", "parabola"] = "parabola"
    num_maxima: int = 40
    min_relative_intensity: float = 0.1
    min_angle_deg: float = 30.0
    min_spacing: float = 4.0
    max_peak_spacing: float | None = None
    basis: tuple[tuple[float, float], tuple[float, float]] | None = None
    outlier_px: float | None = 1.0
    min_vectors: int = 5

    def __post_init__(self) -> None:
        if self.origin not in ("auto", "keep", "measure", "fit"):
            raise ConfigError(f"StrainOptions.origin must be 'auto', 'keep', 'measure' or 'fit', got {self.origin!r}")
        if self.origin_fit not in ("plane", "parabola"):
            raise ConfigError(f"StrainOptions.origin_fit must be 'plane' or 'parabola', got {self.origin_fit!r}")
        if not (isinstance(self.num_maxima, (int, np.integer)) and self.num_maxima >= 3):
            raise ConfigError(f"StrainOptions.num_maxima must be an int >= 3 (origin, g1, g2), got {self.num_maxima!r}")
        if not 0.0 <= self.min_relative_intensity < 1.0:
            raise ConfigError(
                f"StrainOptions.min_relative_intensity must be in [0, 1), got {self.min_relative_intensity!r}"
            )
        if not 0.0 < self.min_angle_deg <= 90.0:
            raise ConfigError(f"StrainOptions.min_angle_deg must be in (0, 90], got {self.min_angle_deg!r}")
        if not self.min_spacing >= 0:
            raise ConfigError(f"StrainOptions.min_spacing must be >= 0 px, got {self.min_spacing!r}")
        if self.max_peak_spacing is not None and not self.max_peak_spacing > 0:
            raise ConfigError(
                f"StrainOptions.max_peak_spacing must be > 0 px or None (automatic), got {self.max_peak_spacing!r}"
            )
        if self.outlier_px is not None and not self.outlier_px > 0:
            raise ConfigError(f"StrainOptions.outlier_px must be > 0 px or None (no refit), got {self.outlier_px!r}")
        if not (isinstance(self.min_vectors, (int, np.integer)) and self.min_vectors >= 3):
            raise ConfigError(
                f"StrainOptions.min_vectors must be an int >= 3 (origin, g1, g2 are fitted), got {self.min_vectors!r}"
            )
        if self.basis is not None:
            b = np.asarray(self.basis, dtype=float)
            if b.shape != (2, 2) or not np.all(np.isfinite(b)):
                raise ConfigError(
                    f"StrainOptions.basis must be ((g1x, g1y), (g2x, g2y)) in px, got {self.basis!r}"
                )
            if abs(np.linalg.det(b)) < 1e-6 * max(np.sum(b * b), 1e-12):
                raise ConfigError(f"StrainOptions.basis vectors are collinear: {self.basis!r}; give two independent ones.")


@dataclass
class StrainResult:
    """Result of :func:`strain_map`.

    Attributes
    ----------
    strainmap : py4DSTEM.process.strain.StrainMap
        py4DSTEM's object after ``fit_basis_vectors`` and ``get_strain`` (its slices use py4DSTEM's convention,
        see the module docstring); ``strainmap.braggvectors`` is the calibrated copy that was used.
    e_xx, e_yy, e_xy, theta : ndarray, shape (Rx, Ry), float64
        Strain in this package's convention (module docstring): dimensionless, ``theta`` in rad; NaN where the
        lattice fit failed (fewer than 5 indexed vectors).
    valid : ndarray of bool, shape (Rx, Ry)
        Positions with a lattice fit.
    reference : ndarray of bool, shape (Rx, Ry)
        Positions whose median ``g1, g2`` define zero strain (the requested region and ``valid``).
    g1, g2 : ndarray, shape (2,)
        Reference basis vectors, px, ``(qx, qy)``, origin-centred.
    lattice : ndarray, shape (Rx, Ry, 2, 2)
        Fitted ``g1, g2`` (rows) per position, px; NaN where not valid.
    precision : dict
        ``{"e_xx": std, "e_yy": std}`` inside the reference region (the paper's precision measure).
    """

    strainmap: object
    e_xx: np.ndarray
    e_yy: np.ndarray
    e_xy: np.ndarray
    theta: np.ndarray
    valid: np.ndarray
    reference: np.ndarray
    g1: np.ndarray
    g2: np.ndarray
    lattice: np.ndarray
    precision: dict = field(default_factory=dict)

    def as_array(self) -> np.ndarray:
        """``(Rx, Ry, 4)`` array of e_xx, e_yy, e_xy, theta, laid out like ``ScanTruth.strain``."""
        return np.stack([self.e_xx, self.e_yy, self.e_xy, self.theta], axis=-1)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in STRAIN_COMPONENTS:
            raise KeyError(f"{name!r}; strain components are {STRAIN_COMPONENTS}")
        return getattr(self, name)


# ---- conventions --------------------------------------------------------------------------------------------
def strain_from_lattice(lattice: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Strain of reciprocal bases relative to a reference basis, in this package's convention.

    Parameters
    ----------
    lattice : array_like, shape (..., 2, 2)
        ``g1, g2`` as rows, ``(qx, qy)`` px (any consistent unit).
    reference : array_like, shape (2, 2)
        Reference ``g1, g2`` as rows.

    Returns
    -------
    ndarray, shape (..., 4)
        e_xx, e_yy, e_xy, theta with ``F = X^-1`` where ``reference @ X = lattice`` (module docstring); NaN where
        ``lattice`` is NaN or singular.

    Examples
    --------
    A 1 % real-space stretch along x shrinks the x components of reciprocal vectors by 1/1.01:

    >>> G0 = np.array([[30.0, -40.0], [30.0, 40.0]])
    >>> G = G0 @ np.linalg.inv(np.diag([1.01, 1.0]))  # rows g^T F^-1
    >>> np.round(strain_from_lattice(G, G0), 12).tolist()
    [0.01, 0.0, 0.0, 0.0]
    """
    lattice = np.asarray(lattice, dtype=float)
    G0 = np.asarray(reference, dtype=float)
    if G0.shape != (2, 2) or lattice.shape[-2:] != (2, 2):
        raise InputError(f"lattice must be (..., 2, 2) and reference (2, 2), got {lattice.shape} and {G0.shape}")
    if abs(np.linalg.det(G0)) < 1e-12:
        raise InputError(f"reference basis {G0.tolist()} is singular; g1 and g2 must not be collinear.")
    return strain_components(deformation_from_bases(lattice, G0))


# ---- reference region ---------------------------------------------------------------------------------------
def reference_mask(reference: Reference, scan_shape: tuple[int, int]) -> np.ndarray:
    """Turn a reference given as mask, rectangle or None into a boolean ``(Rx, Ry)`` mask.

    Raises
    ------
    InputError
        For a mask of the wrong shape or dtype, a rectangle outside the scan, or an empty region.
    """
    Rx, Ry = (int(v) for v in scan_shape)
    if reference is None:
        return np.ones((Rx, Ry), dtype=bool)
    if isinstance(reference, np.ndarray) and reference.ndim == 2:
        if reference.shape != (Rx, Ry) or reference.dtype != bool:
            raise InputError(
                f"reference mask must be a bool array of the scan shape {(Rx, Ry)}, got {reference.dtype} "
                f"{reference.shape}; or give a rectangle (rx0, rx1, ry0, ry1)."
            )
        mask = reference.copy()
    else:
        try:
            rx0, rx1, ry0, ry1 = (int(v) for v in reference)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise InputError(
                f"reference must be a bool (Rx, Ry) mask, a rectangle (rx0, rx1, ry0, ry1) or None, got {reference!r}"
            ) from None
        if not (0 <= rx0 < rx1 <= Rx and 0 <= ry0 < ry1 <= Ry):
            raise InputError(
                f"reference rectangle {(rx0, rx1, ry0, ry1)} is empty or outside the scan {(Rx, Ry)}; it is "
                "half-open like slices: rows rx0..rx1-1, columns ry0..ry1-1."
            )
        mask = np.zeros((Rx, Ry), dtype=bool)
        mask[rx0:rx1, ry0:ry1] = True
    if not mask.any():
        raise InputError("reference mask selects no scan position; select the strain-free region.")
    return mask


# ---- steps --------------------------------------------------------------------------------------------------
def _set_origin(bv, mode: OriginMode, fit: str) -> str:
    """Calibrate the origin of ``bv`` in place; return what was done."""
    has_origin = bv.calibration.get_origin() is not None
    if mode == "keep" or (mode == "auto" and has_origin):
        if not has_origin:
            raise InputError(
                "StrainOptions(origin='keep') but the BraggVectors have no calibrated origin; use origin='fit' or "
                "calibrate it first (bv.measure_origin(); bv.fit_origin())."
            )
        bv.setcal()
        return "kept"
    n_vectors = sum(len(bv.raw[rx, ry].data) for rx in range(bv.Rshape[0]) for ry in range(bv.Rshape[1]))
    if n_vectors == 0:
        raise InputError("the BraggVectors hold no vectors at all; run the disk detection first.")
    with quiet_py4dstem():
        qx0, qy0, _ = bv.measure_origin()
        if mode == "measure":
            bv.calibration.set_origin((qx0, qy0))
            bv.setcal()
            return "measured (brightest vector per position)"
        bv.fit_origin(fitfunction=fit, robust=True, plot=False, returncalc=False)
    return f"fitted ({fit}) to the brightest vector per position"


def _choose_basis(sm, opts: StrainOptions) -> tuple[int, int, int, dict]:
    """Pick the origin, g1 and g2 among the BVM maxima; return their indices and get_maxima_2D's arguments."""
    from py4DSTEM.preprocess.utils import get_maxima_2D

    kwargs = dict(
        subpixel="multicorr", upsample_factor=16, sigma=1, minAbsoluteIntensity=0, minRelativeIntensity=0,
        relativeToPeak=0, minSpacing=opts.min_spacing, edgeBoundary=1, maxNumPeaks=int(opts.num_maxima),
    )
    g = get_maxima_2D(sm.bvm.data, **kwargs)
    if len(g) < 3:
        raise InputError(
            f"the Bragg vector map has only {len(g)} maxima; strain mapping needs the direct beam and two "
            "independent reflections. Check the disk detection (too few peaks per pattern?)."
        )
    o = np.asarray(sm.origin, dtype=float)
    d = np.stack([g["x"] - o[0], g["y"] - o[1]], axis=1)
    r = np.hypot(d[:, 0], d[:, 1])
    i0 = int(np.argmin(r))
    others = np.arange(len(g)) != i0
    if opts.basis is not None:
        idx = []
        for target in np.asarray(opts.basis, dtype=float):
            dist = np.hypot(*(d - target).T)
            dist[~others] = np.inf
            i = int(np.argmin(dist))
            tol = max(3.0, 0.15 * np.hypot(*target))
            if dist[i] > tol:
                raise InputError(
                    f"no Bragg-vector-map maximum within {tol:.1f} px of the requested basis vector {target.tolist()}"
                    f" (nearest: {d[i].round(1).tolist()}); check the vector (px, x = qx row, origin-centred)."
                )
            idx.append(i)
        return i0, idx[0], idx[1], kwargs
    strong = others & (r > 2.0) & (g["intensity"] >= opts.min_relative_intensity * g["intensity"][others].max())
    cand = np.flatnonzero(strong)
    cand = cand[np.argsort(r[cand], kind="stable")]
    if len(cand) < 2:
        raise InputError(
            "fewer than two strong Bragg-vector-map maxima besides the direct beam; lower "
            "StrainOptions.min_relative_intensity or give StrainOptions(basis=...)."
        )
    i1 = int(cand[0])
    sin = np.abs(np.cross(d[cand], d[i1])) / (r[cand] * r[i1])
    ok = cand[sin >= np.sin(np.radians(opts.min_angle_deg))]
    if len(ok) == 0:
        raise InputError(
            "all strong Bragg-vector-map maxima are collinear with the shortest one; the pattern shows a "
            "systematic row, not a zone axis. Give StrainOptions(basis=...) or lower min_angle_deg."
        )
    return i0, i1, int(ok[0]), kwargs


def _robust_refit(sm, outlier_px: float, min_vectors: int) -> int:
    """Refit g1, g2 per position without outliers (see ``StrainOptions.outlier_px``); return vectors dropped."""
    gm = sm.g1g2_map
    pla = sm.bragg_vectors_indexed
    names = ("x0", "y0", "g1x", "g1y", "g2x", "g2y")
    dropped = 0
    Rx, Ry = sm.braggvectors.Rshape
    for rx in range(Rx):
        for ry in range(Ry):
            d = pla[rx, ry].data
            if len(d) < min_vectors:
                gm.get_slice("mask").data[rx, ry] = 0
                continue
            M = np.stack([np.ones(len(d)), d["g1_ind"], d["g2_ind"]], axis=1).astype(float)
            A = np.stack([d["qx"], d["qy"]], axis=1).astype(float)
            w = d["intensity"].astype(float)
            keep = np.ones(len(d), dtype=bool)
            while True:
                beta = np.linalg.lstsq(M[keep] * w[keep, None], A[keep] * w[keep, None], rcond=None)[0]
                res = np.hypot(*(A - M @ beta).T)
                worst = int(np.argmax(np.where(keep, res, -1.0)))
                if res[worst] <= outlier_px or keep.sum() <= min_vectors:
                    break
                keep[worst] = False
                dropped += 1
            ok = keep.sum() >= min_vectors and res[keep].max() <= outlier_px
            for name, v in zip(names, beta.ravel()):
                gm.get_slice(name).data[rx, ry] = v
            gm.get_slice("error").data[rx, ry] = np.sum(res[keep] * w[keep]) / np.sum(w[keep])
            gm.get_slice("mask").data[rx, ry] = 1 if ok else 0
    sm.mask = gm.get_slice("mask").data.astype(bool)
    return dropped


def strain_map(
    braggvectors: "py4DSTEM.BraggVectors",
    *,
    reference: Reference = None,
    options: StrainOptions | None = None,
) -> StrainResult:
    """Map the strain of a scan from its Bragg vectors.

    Parameters
    ----------
    braggvectors : py4DSTEM.BraggVectors
        Raw vectors of any backend, ``qx`` (row), ``qy`` (column) in px. Not modified: a copy is calibrated.
    reference : bool ndarray (Rx, Ry), tuple (rx0, rx1, ry0, ry1) or None
        Region taken as strain-free (e.g. the substrate): its median ``g1, g2`` define zero strain. A rectangle is
        half-open like slices. ``None``: the whole scan (zero strain = the scan's median lattice).
    options : StrainOptions, optional

    Returns
    -------
    StrainResult
        py4DSTEM's StrainMap plus e_xx, e_yy, e_xy, theta in this package's convention (module docstring:
        real-space strain, ``x`` = ``qx`` rows, the same as ``ScanTruth.strain``) and the precision (std of
        e_xx and e_yy inside the reference).

    Raises
    ------
    InputError
        If ``braggvectors`` is not a BraggVectors, holds no vectors, the reference region is invalid or holds no
        successfully fitted position, or no two independent lattice vectors can be found.

    Examples
    --------
    >>> from py4dstem_ndpd.bridge import to_braggvectors, truth_to_scanpeaks
    >>> from py4dstem_ndpd.synth import Acquisition, simulate_preset
    >>> scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(8, 2), pattern_shape=(128, 128)))
    >>> bv = to_braggvectors(truth_to_scanpeaks(scan.truth), scan.datacube.calibration)
    >>> res = strain_map(bv, reference=(0, 1, 0, 2))  # row rx = 0 is the Si substrate
    >>> res.e_xx.shape, round(float(res.e_xx[1, 0]), 4), round(float(scan.truth.strain[1, 0, 0]), 4)
    ((8, 2), 0.0083, 0.0083)
    """
    import py4DSTEM

    opts = options or StrainOptions()
    if not isinstance(braggvectors, py4DSTEM.BraggVectors):
        raise InputError(
            f"strain_map needs a py4DSTEM.BraggVectors, got {type(braggvectors).__name__}; build one with "
            "py4dstem_ndpd.bridge.to_braggvectors(scan_peaks, calibration)."
        )
    Rshape = tuple(int(v) for v in braggvectors.Rshape)
    ref = reference_mask(reference, Rshape)

    bv = braggvectors.copy(name=f"{braggvectors.name}_strain")
    how = _set_origin(bv, opts.origin, opts.origin_fit)
    log.info("strain_map: origin %s", how)

    with quiet_py4dstem():
        sm = py4DSTEM.StrainMap(bv, name="strainmap")
        i0, i1, i2, kwargs = _choose_basis(sm, opts)
        sm.choose_basis_vectors(index_origin=i0, index_g1=i1, index_g2=i2, **kwargs)
        g1 = np.asarray(sm.g1, dtype=float)
        g2 = np.asarray(sm.g2, dtype=float)
        spacing = opts.max_peak_spacing or max(1.0, 0.08 * min(np.hypot(*g1), np.hypot(*g2)))
        sm.max_peak_spacing = float(spacing)  # set directly: set_max_peak_spacing would draw a figure
        sm.fit_basis_vectors()
    if opts.outlier_px is not None:
        n = _robust_refit(sm, float(opts.outlier_px), int(opts.min_vectors))
        log.info("strain_map: robust refit dropped %d vector(s) with residual > %.2f px", n, opts.outlier_px)
    log.info("strain_map: basis g1=%s g2=%s px, max_peak_spacing %.2f px", g1.round(2), g2.round(2), spacing)

    valid = np.asarray(sm.mask, dtype=bool)
    ref_used = ref & valid
    if not ref_used.any():
        raise InputError(
            f"no position of the reference region has a lattice fit ({int(ref.sum())} selected, "
            f"{int(valid.sum())} of {valid.size} fitted in the scan); choose another region or check the detection."
        )
    with quiet_py4dstem():
        sm.get_strain(gvects=ref_used)

    gm = sm.g1g2_map
    lattice = np.stack(
        [
            np.stack([gm.get_slice("g1x").data, gm.get_slice("g1y").data], axis=-1),
            np.stack([gm.get_slice("g2x").data, gm.get_slice("g2y").data], axis=-1),
        ],
        axis=-2,
    ).astype(float)
    lattice[~valid] = np.nan
    g1_ref = np.median(lattice[ref_used][:, 0, :], axis=0)  # what py4DSTEM's get_reference_g1g2 takes
    g2_ref = np.median(lattice[ref_used][:, 1, :], axis=0)
    strain = strain_from_lattice(lattice, np.stack([g1_ref, g2_ref]))
    precision = {
        name: float(np.nanstd(strain[..., k][ref_used])) for k, name in enumerate(("e_xx", "e_yy"))
    }
    log.info(
        "strain_map: %d/%d positions fitted; precision in the reference: e_xx %.2e, e_yy %.2e",
        int(valid.sum()), valid.size, precision["e_xx"], precision["e_yy"],
    )
    return StrainResult(
        strainmap=sm, e_xx=strain[..., 0], e_yy=strain[..., 1], e_xy=strain[..., 2], theta=strain[..., 3],
        valid=valid, reference=ref_used, g1=g1_ref, g2=g2_ref, lattice=lattice, precision=precision,
    )


# ---- profiles -----------------------------------------------------------------------------------------------
def line_profile(
    image: np.ndarray,
    start: tuple[float, float],
    end: tuple[float, float],
    width: float = 1.0,
    *,
    step: float = 1.0,
    pixel_size: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Profile of a 2D map along a line, averaged across a band.

    Parameters
    ----------
    image : ndarray, shape (Rx, Ry)
        e.g. ``result.e_xx``. NaN values (failed fits) are left out of the averages.
    start, end : (float, float)
        End points ``(rx, ry)`` in scan pixels (pixel ``i`` centred on ``i``).
    width : float
        Width of the band across the line, px; ``round(width)`` parallel lines 1 px apart are sampled
        (bilinear interpolation) and averaged.
    step : float
        Sampling step along the line, px.
    pixel_size : float, optional
        Scan step (e.g. nm); scales ``distance``. Default: pixels.

    Returns
    -------
    distance, mean, std : ndarray, shape (N,)
        Distance from ``start`` (px or ``pixel_size`` units), the mean across the band and its standard deviation
        (0 for ``width`` <= 1); NaN where no valid sample exists.

    Raises
    ------
    InputError
        If ``image`` is not 2D, the line has zero length, or ``width``/``step`` are not positive.

    Examples
    --------
    >>> img = np.tile(np.arange(5.0)[:, None], (1, 4))
    >>> d, m, s = line_profile(img, (0, 1.5), (4, 1.5), width=3)
    >>> d.tolist(), m.tolist(), s.max()
    ([0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 3.0, 4.0], 0.0)
    """
    from scipy import ndimage

    img = np.asarray(image, dtype=float)
    if img.ndim != 2:
        raise InputError(f"line_profile needs a 2D map, got shape {img.shape}")
    if not (width > 0 and step > 0):
        raise InputError(f"width and step must be > 0 px, got width={width!r}, step={step!r}")
    p0 = np.asarray(start, dtype=float)
    p1 = np.asarray(end, dtype=float)
    length = float(np.hypot(*(p1 - p0)))
    if length == 0:
        raise InputError(f"line_profile: start and end are the same point {tuple(p0)}")
    u = (p1 - p0) / length
    n_perp = np.array([-u[1], u[0]])
    t = np.arange(int(np.floor(length / step + 1e-9)) + 1) * step
    m = max(1, int(round(width)))
    offsets = np.arange(m) - (m - 1) / 2.0
    pts = p0[:, None, None] + u[:, None, None] * t[None, :, None] + n_perp[:, None, None] * offsets[None, None, :]
    valid = np.isfinite(img)
    num = ndimage.map_coordinates(np.where(valid, img, 0.0), pts, order=1, mode="nearest")
    den = ndimage.map_coordinates(valid.astype(float), pts, order=1, mode="nearest")
    samples = np.where(den > 0.5, num / np.where(den > 0, den, 1.0), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, as documented
        mean = np.nanmean(samples, axis=1)
        std = np.nanstd(samples, axis=1)
    return t * (pixel_size or 1.0), mean, std

