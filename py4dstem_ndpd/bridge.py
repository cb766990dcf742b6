"""Peak tables <-> ``py4DSTEM.BraggVectors``: the only module that touches BraggVectors internals.

Conventions (checked against py4DSTEM 0.14.18 in ``tests/test_bridge.py``)
---------------------------------------------------------------------------
* Coordinates. ``qx`` is the detector **row** (first array axis), ``qy`` the **column**, in pixels, pixel ``i``
  centred on the integer ``i`` -- the same as :mod:`py4dstem_ndpd.peaks` and as py4DSTEM's own
  ``find_Bragg_disks``, so raw vectors are copied without any shift or swap. ``BraggVectors.Rshape`` is the scan
  shape ``(Rx, Ry)`` and ``Qshape`` the pattern shape ``(Qx, Qy)``.
* Storage. The raw (uncalibrated) vectors live in one ``emdfile.PointListArray`` named ``"_v_uncal"`` (the name
  py4DSTEM's reader looks for). We give it one extra field: dtype ``qx, qy, intensity, confidence`` (all float64).
  py4DSTEM reads every field by name, so the extra column is carried through ``bv.raw``, ``bv.cal`` (calibrated
  copies keep it), ``bv.copy()``, ``measure_origin``/``fit_origin``, ``histogram``, ``StrainMap`` and
  ``py4DSTEM.save``/``py4DSTEM.read`` unchanged; no second PointListArray is needed.
* Calibration. Pixel sizes and units are written to ``bv.calibration`` (``Q_pixel_size`` in 1/Å, ``R_pixel_size``
  in nm). A py4DSTEM ``Calibration`` (e.g. ``datacube.calibration``) can be given instead; it is copied, so the
  origin, ellipse and rotation measured on the data come along, and the BraggVectors gets its own tree.
* Origin. ``bv.measure_origin()`` takes, at every position, the most intense vector (the direct beam) and writes
  it to ``calibration.set_origin_meas``; ``bv.fit_origin(fitfunction="parabola")`` fits and sets the origin that
  ``bv.cal`` subtracts. Both are in raw pixels, ``(qx0, qy0)`` = (row, column).
* Strain. ``py4DSTEM.StrainMap`` fits per-position reciprocal basis vectors ``g1, g2`` (rows of ``G``, in pixels of
  the origin-centred frame) and, for a reference ``G0``, solves ``G0 @ X = G``, ``beta = X.T`` and reports
  ``e_xx = 1 - beta[0, 0]``, ``e_yy = 1 - beta[1, 1]``, ``e_xy = -(beta[0, 1] + beta[1, 0]) / 2``,
  ``theta = (beta[0, 1] - beta[1, 0]) / 2``. Its ``x`` is the detector ``qx`` (row) axis and ``y`` the ``qy``
  (column) axis (with ``coordinate_rotation=0`` and no QR-rotation calibration). Because reciprocal vectors
  transform with ``F^-T`` for a real-space deformation gradient ``F``, ``beta = F^-T`` and, for a uniaxial
  stretch ``F = diag(1 + e, 1)``, py4DSTEM gives ``e_xx = e / (1 + e)`` exactly, i.e. ``e - e**2`` to second
  order, while :class:`~py4dstem_ndpd.synth.truth.ScanTruth` stores ``e_xx = F_xx - 1 = e``. The two agree to
  first order (7e-5 apart at e = 0.0085). The reference is the median fit over the positions passed as
  ``get_strain(gvects=<bool mask>)`` (default: the whole scan, not an unstrained region).
* Option names. py4DSTEM's camelCase disk-detection options map to this package's scikit-image-style names in
  :data:`OPTION_NAMES`, the one place where that translation lives.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Mapping

import numpy as np

from .calibration import Calibration
from .exceptions import InputError
from .peaks import ScanPeaks, make_peaks

if TYPE_CHECKING:  # pragma: no cover
    import py4DSTEM

    from .synth.truth import ScanTruth

log = logging.getLogger(__name__)

#: dtype of the raw vectors inside the BraggVectors we build: py4DSTEM's three fields plus ``confidence`` (0..1).
BRAGG_DTYPE = np.dtype([("qx", "f8"), ("qy", "f8"), ("intensity", "f8"), ("confidence", "f8")])

#: py4DSTEM ``find_Bragg_disks`` option name (camelCase) -> name used in this package (scikit-image style).
#: Options whose py4DSTEM name is already snake_case and means the same here (``sigma_dp``, ``sigma_cc``,
#: ``subpixel``, ``upsample_factor``, ``filter_function``, ``name``) are listed as themselves.
OPTION_NAMES: dict[str, str] = {
    "minPeakSpacing": "min_distance",
    "minRelativeIntensity": "threshold_rel",
    "minAbsoluteIntensity": "threshold_abs",
    "relativeToPeak": "relative_to_peak",
    "edgeBoundary": "edge_boundary",
    "maxNumPeaks": "num_peaks",
    "corrPower": "corr_power",
    "radial_bksb": "radial_background",
    "CUDA": "device",
    "ml_batch_size": "batch_size",
    "ml_model_path": "weights",
    "sigma": "sigma_cc",
    "sigma_cc": "sigma_cc",
    "sigma_dp": "sigma_dp",
    "subpixel": "subpixel",
    "upsample_factor": "upsample_factor",
    "filter_function": "filter_function",
    "name": "name",
}

#: The reverse of :data:`OPTION_NAMES` (``sigma`` is an alias; the reverse gives ``sigma_cc``).
PY4DSTEM_NAMES: dict[str, str] = {ours: theirs for theirs, ours in OPTION_NAMES.items() if theirs != "sigma"}


def to_ndpd_options(py4dstem_kwargs: Mapping[str, object]) -> dict[str, object]:
    """Rename py4DSTEM ``find_Bragg_disks`` keyword arguments to this package's names.

    Parameters
    ----------
    py4dstem_kwargs : mapping
        e.g. ``{"minPeakSpacing": 8, "edgeBoundary": 4}``.

    Returns
    -------
    dict
        e.g. ``{"min_distance": 8, "edge_boundary": 4}``. Values are passed through unchanged (``CUDA=True``
        becomes ``device=True``; the caller turns it into a device name).

    Raises
    ------
    InputError
        For a name that is not in :data:`OPTION_NAMES` (a typo, or an option this package does not support).

    Examples
    --------
    >>> to_ndpd_options({"minPeakSpacing": 8, "maxNumPeaks": 50})
    {'min_distance': 8, 'num_peaks': 50}
    """
    out: dict[str, object] = {}
    for key, value in py4dstem_kwargs.items():
        if key not in OPTION_NAMES:
            raise InputError(
                f"unknown py4DSTEM option {key!r}; known options are {sorted(OPTION_NAMES)}. "
                "Check the spelling, or drop the option: it has no equivalent here."
            )
        out[OPTION_NAMES[key]] = value
    return out


def to_py4dstem_options(ndpd_kwargs: Mapping[str, object]) -> dict[str, object]:
    """Rename options from this package's names to py4DSTEM's camelCase (the inverse of :func:`to_ndpd_options`).

    Raises
    ------
    InputError
        For a name without a py4DSTEM equivalent.

    Examples
    --------
    >>> to_py4dstem_options({"min_distance": 8, "threshold_rel": 0.01})
    {'minPeakSpacing': 8, 'minRelativeIntensity': 0.01}
    """
    out: dict[str, object] = {}
    for key, value in ndpd_kwargs.items():
        if key not in PY4DSTEM_NAMES:
            raise InputError(
                f"option {key!r} has no py4DSTEM equivalent; known options are {sorted(PY4DSTEM_NAMES)}."
            )
        out[PY4DSTEM_NAMES[key]] = value
    return out


def _py4dstem_calibration(calibration):
    """Return a fresh ``py4DSTEM.Calibration`` (or None) for a new BraggVectors."""
    import py4DSTEM

    if calibration is None:
        return None
    if isinstance(calibration, Calibration):
        cal = py4DSTEM.Calibration()
        calibration.apply_to(cal)
        return cal
    if isinstance(calibration, py4DSTEM.Calibration):
        cal = calibration.copy(name="calibration")  # a new Calibration in a new root, with no targets
        for key in list(cal.keys):
            if isinstance(cal[key], np.ndarray):  # .copy() shares arrays (origin maps...): do not alias them
                cal[key] = cal[key].copy()
        return cal
    raise InputError(
        f"calibration must be a py4dstem_ndpd Calibration, a py4DSTEM Calibration or None, got "
        f"{type(calibration).__name__}; use Calibration.from_py4dstem(datacube.calibration) or pass "
        "datacube.calibration."
    )


def to_braggvectors(
    scan_peaks: ScanPeaks,
    calibration: "Calibration | py4DSTEM.Calibration | None" = None,
    *,
    name: str = "braggvectors",
    sort: bool = True,
) -> "py4DSTEM.BraggVectors":
    """Build a real ``py4DSTEM.BraggVectors`` from per-position peak tables.

    Parameters
    ----------
    scan_peaks : ScanPeaks
        Peak tables in C order of the scan; ``qx`` (row) and ``qy`` (column) in raw detector pixels.
    calibration : Calibration or py4DSTEM.Calibration, optional
        Pixel sizes and units to attach. A py4DSTEM calibration (e.g. ``datacube.calibration``) is copied with
        everything it holds (origin, ellipse, QR rotation...). ``None`` leaves py4DSTEM's default (1 pixel).
    name : str
        Name of the BraggVectors node (and of its HDF5 group when saved).
    sort : bool
        Order the vectors of every position by decreasing intensity, as py4DSTEM's ``find_Bragg_disks`` does
        (``False`` keeps the order of the tables).

    Returns
    -------
    py4DSTEM.BraggVectors
        ``Rshape == scan_shape``, ``Qshape == pattern_shape``; raw vectors of dtype :data:`BRAGG_DTYPE`
        (``qx, qy, intensity, confidence``, float64), brightest first unless ``sort=False``. The calibration state starts all ``False``, as py4DSTEM leaves it:
        ``bv.setcal()`` (or an origin fit, which calls it) switches on whatever the calibration holds.

    Raises
    ------
    InputError
        If ``scan_peaks`` is not a :class:`ScanPeaks`, a table lacks the ``qx``/``qy`` fields, or the calibration
        has an unsupported type.

    Examples
    --------
    >>> from py4dstem_ndpd.peaks import ScanPeaks, make_peaks
    >>> sp = ScanPeaks((1, 2), [make_peaks([10.0], [12.5]), make_peaks([], [])], (64, 64))
    >>> bv = to_braggvectors(sp)
    >>> bv.Rshape, bv.Qshape, bv.raw[0, 0].qy.tolist()
    ((1, 2), (64, 64), [12.5])
    """
    import py4DSTEM
    from emdfile import PointList, PointListArray

    if not isinstance(scan_peaks, ScanPeaks):
        raise InputError(
            f"to_braggvectors needs a ScanPeaks, got {type(scan_peaks).__name__}; build one with "
            "ScanPeaks(scan_shape, peaks, pattern_shape)."
        )
    Rx, Ry = (int(v) for v in scan_peaks.scan_shape)
    Qshape = tuple(int(v) for v in scan_peaks.pattern_shape)
    cal = _py4dstem_calibration(calibration)
    bv = py4DSTEM.BraggVectors((Rx, Ry), Qshape, name=name, calibration=cal)
    pla = PointListArray(dtype=BRAGG_DTYPE, shape=(Rx, Ry), name="_v_uncal")
    for i, table in enumerate(scan_peaks.peaks):
        names = getattr(getattr(table, "dtype", None), "names", None) or ()
        if "qx" not in names or "qy" not in names:
            raise InputError(
                f"peak table {i} has fields {names}; it needs at least 'qx' and 'qy' (use peaks.make_peaks)."
            )
        data = np.zeros(len(table), dtype=BRAGG_DTYPE)
        data["qx"] = table["qx"]
        data["qy"] = table["qy"]
        data["intensity"] = table["intensity"] if "intensity" in names else 1.0
        data["confidence"] = table["confidence"] if "confidence" in names else 1.0
        if sort:
            data = data[np.argsort(-data["intensity"], kind="stable")]
        rx, ry = divmod(i, Ry)
        pla[rx, ry] = PointList(data=data, name=f"{rx},{ry}")
    bv.set_raw_vectors(pla)
    log.debug("built BraggVectors %r: %s positions, %d vectors", name, (Rx, Ry), scan_peaks.n_peaks)
    return bv


def from_braggvectors(bv: "py4DSTEM.BraggVectors") -> ScanPeaks:
    """Read the raw (uncalibrated, pixel) vectors of a BraggVectors back into a :class:`ScanPeaks`.

    Works on BraggVectors made here and on those made by py4DSTEM's ``find_Bragg_disks`` (which have no
    ``confidence`` field: it becomes 1).

    Parameters
    ----------
    bv : py4DSTEM.BraggVectors

    Returns
    -------
    ScanPeaks
        ``scan_shape == bv.Rshape``, ``pattern_shape == bv.Qshape``; tables of
        :data:`~py4dstem_ndpd.peaks.PEAK_DTYPE` (float32, so positions round to ~1e-5 px at 256 px).

    Raises
    ------
    InputError
        If ``bv`` is not a py4DSTEM BraggVectors.
    """
    import py4DSTEM

    if not isinstance(bv, py4DSTEM.BraggVectors):
        raise InputError(f"from_braggvectors needs a py4DSTEM.BraggVectors, got {type(bv).__name__}.")
    Rx, Ry = (int(v) for v in bv.Rshape)
    tables = []
    for rx in range(Rx):
        for ry in range(Ry):
            d = bv.raw[rx, ry].data
            conf = d["confidence"] if "confidence" in (d.dtype.names or ()) else None
            tables.append(make_peaks(d["qx"], d["qy"], d["intensity"], conf))
    return ScanPeaks(scan_shape=(Rx, Ry), peaks=tables, pattern_shape=tuple(int(v) for v in bv.Qshape))


def calibration_of(bv: "py4DSTEM.BraggVectors") -> Calibration:
    """Pixel sizes and units of a BraggVectors as a :class:`~py4dstem_ndpd.calibration.Calibration`."""
    return Calibration.from_py4dstem(bv.calibration)


def truth_to_scanpeaks(truth: "ScanTruth") -> ScanPeaks:
    """The true disks of a simulated scan as a :class:`ScanPeaks` (intensity = expected electrons, confidence 1).

    Parameters
    ----------
    truth : ScanTruth

    Returns
    -------
    ScanPeaks
        Every true disk whose centre lies on the detector, including the direct beam.
    """
    Rx, Ry = truth.scan_shape
    tables = []
    for rx in range(Rx):
        for ry in range(Ry):
            d = truth.disks_at(rx, ry)
            tables.append(make_peaks(d["qx"], d["qy"], d["intensity"], None))
    return ScanPeaks(scan_shape=(Rx, Ry), peaks=tables, pattern_shape=tuple(truth.pattern_shape))
