"""Peak tables <-> py4DSTEM BraggVectors, checked with py4DSTEM's own calibration, strain and file I/O."""
from __future__ import annotations

import inspect
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import py4DSTEM  # noqa: E402

from py4dstem_ndpd.bridge import (  # noqa: E402
    BRAGG_DTYPE,
    OPTION_NAMES,
    PY4DSTEM_NAMES,
    calibration_of,
    from_braggvectors,
    to_braggvectors,
    to_ndpd_options,
    to_py4dstem_options,
    truth_to_scanpeaks,
)
from py4dstem_ndpd.calibration import Calibration  # noqa: E402
from py4dstem_ndpd.exceptions import InputError  # noqa: E402
from py4dstem_ndpd.peaks import ScanPeaks, make_peaks  # noqa: E402
from py4dstem_ndpd.synth import Acquisition, simulate_preset  # noqa: E402


@pytest.fixture(scope="module")
def scan():
    return simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(8, 4), pattern_shape=(128, 128), dose=1e6))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _truth_bv(scan):
    return to_braggvectors(truth_to_scanpeaks(scan.truth), scan.truth.calibration, sort=False)


def test_shapes_fields_and_calibration(scan):
    tr = scan.truth
    bv = _truth_bv(scan)
    assert isinstance(bv, py4DSTEM.BraggVectors)
    assert tuple(bv.Rshape) == (8, 4) and tuple(bv.Qshape) == (128, 128)
    assert bv.raw[0, 0].data.dtype == BRAGG_DTYPE
    cal = bv.calibration
    assert cal.get_Q_pixel_size() == pytest.approx(tr.calibration.q_pixel_size)
    assert cal.get_R_pixel_size() == pytest.approx(tr.calibration.r_pixel_size)
    assert (cal.get_Q_pixel_units(), cal.get_R_pixel_units()) == ("A^-1", "nm")
    assert calibration_of(bv) == tr.calibration
    for rx, ry in [(0, 0), (5, 3)]:
        d = tr.disks_at(rx, ry)
        v = bv.raw[rx, ry]
        np.testing.assert_allclose(v.qx, d["qx"], atol=2e-5)  # float32 peak tables
        np.testing.assert_allclose(v.qy, d["qy"], atol=2e-5)
        np.testing.assert_allclose(v.data["confidence"], 1.0)
    # as in py4DSTEM no calibration is applied until setcal; then .cal applies the pixel size; the extra field
    # survives
    assert not any(bv.calstate.values())
    bv.setcal()
    assert bv.calstate["pixel"] and not bv.calstate["center"]
    c = bv.cal[2, 1]
    np.testing.assert_allclose(c.qx, bv.raw[2, 1].qx * tr.calibration.q_pixel_size)
    assert "confidence" in c.data.dtype.names


def test_round_trip_keeps_confidence_and_empty_positions():
    rng = np.random.default_rng(0)
    tables = [
        make_peaks(rng.uniform(0, 63, n), rng.uniform(0, 63, n), rng.uniform(1, 9, n), rng.uniform(0, 1, n))
        for n in (3, 0, 7, 1, 0, 2)
    ]
    sp = ScanPeaks(scan_shape=(2, 3), peaks=tables, pattern_shape=(64, 64))
    bv = to_braggvectors(sp, sort=False)
    assert bv.calibration.get_Q_pixel_units() == "pixels"
    assert len(bv.raw[0, 1].data) == 0 and len(bv.raw[1, 0].data) == 1
    back = from_braggvectors(bv)
    assert back.scan_shape == (2, 3) and back.pattern_shape == (64, 64)
    for a, b in zip(sp.peaks, back.peaks):
        np.testing.assert_array_equal(a, b)


def test_vectors_are_sorted_brightest_first_like_py4dstem():
    sp = ScanPeaks((1, 2), [make_peaks([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [5.0, 9.0, 1.0], [0.5, 0.75, 0.25]),
                            make_peaks([], [])], (32, 32))
    v = to_braggvectors(sp).raw[0, 0].data
    assert v["intensity"].tolist() == [9.0, 5.0, 1.0]
    assert v["qx"].tolist() == [2.0, 1.0, 3.0] and v["confidence"].tolist() == [0.75, 0.5, 0.25]
    assert to_braggvectors(sp, sort=False).raw[0, 0].data["intensity"].tolist() == [5.0, 9.0, 1.0]


def test_py4dstem_calibration_is_copied_not_shared(scan):
    bv = to_braggvectors(truth_to_scanpeaks(scan.truth), scan.datacube.calibration)
    assert bv.calibration is not scan.datacube.calibration
    assert calibration_of(bv) == scan.truth.calibration
    cal = py4DSTEM.Calibration()
    scan.truth.calibration.apply_to(cal)
    cal.set_origin((np.full((8, 4), 63.0), np.full((8, 4), 62.0)))
    bv = to_braggvectors(truth_to_scanpeaks(scan.truth), cal)
    bv.setcal()
    assert bv.calstate["center"] and bv.calstate["pixel"]
    assert bv.calibration.get_origin(1, 2) == (63.0, 62.0)
    bv.calibration.set_origin((np.zeros((8, 4)), np.zeros((8, 4))))
    assert cal.get_origin(1, 2) == (63.0, 62.0)


def test_from_py4dstem_own_vectors_gets_confidence_one():
    from emdfile import PointList

    bv = py4DSTEM.BraggVectors((1, 2), (32, 32))  # py4DSTEM's three-field vectors
    data = np.array([(3.5, 4.25, 10.0)], dtype=[("qx", "f8"), ("qy", "f8"), ("intensity", "f8")])
    bv._v_uncal[0, 1] = PointList(data=data)
    sp = from_braggvectors(bv)
    assert len(sp.at(0, 0)) == 0
    assert sp.at(0, 1)[0].tolist() == (3.5, 4.25, 10.0, 1.0)


def test_measure_and_fit_origin_match_truth(scan):
    tr = scan.truth
    bv = _truth_bv(scan)
    qx0, qy0, mask = bv.measure_origin()
    assert np.all(mask)
    np.testing.assert_allclose(qx0, tr.origin[..., 0], atol=0.05)
    np.testing.assert_allclose(qy0, tr.origin[..., 1], atol=0.05)
    fx, fy, _, _ = bv.fit_origin(fitfunction="parabola", plot=False)
    np.testing.assert_allclose(fx, tr.origin[..., 0], atol=0.05)
    np.testing.assert_allclose(fy, tr.origin[..., 1], atol=0.05)
    # after the fit, .cal puts the direct beam (000) at q = 0
    d = tr.disks_at(3, 2)
    c = bv.cal[3, 2]
    i = int(np.flatnonzero((d["h"] == 0) & (d["k"] == 0) & (d["l"] == 0))[0])
    assert abs(c.qx[i]) < 0.05 * tr.calibration.q_pixel_size and abs(c.qy[i]) < 0.05 * tr.calibration.q_pixel_size


def test_strainmap_exx_matches_truth_along_qx(scan):
    tr = scan.truth
    e_true = tr.strain_map("e_xx")
    assert e_true.max() > 0.008  # the SiGe layers are in the scan
    bv = _truth_bv(scan)
    bv.measure_origin()
    bv.fit_origin(fitfunction="parabola", plot=False)
    sm = py4DSTEM.StrainMap(bv)
    sm.choose_basis_vectors(minSpacing=3, edgeBoundary=1, maxNumPeaks=40)
    sm.fit_basis_vectors(max_peak_spacing=2)
    reference = np.all(tr.strain == 0, axis=-1)  # unstrained Si positions
    assert reference.any()
    sm.get_strain(gvects=reference)
    exx, eyy, exy, theta = (sm.get_slice(k).data for k in ("e_xx", "e_yy", "e_xy", "theta"))
    # py4DSTEM's x is our qx (rows); its e_xx = 1 - (F^-T)_xx = e / (1 + e) for F = diag(1 + e, 1)
    np.testing.assert_allclose(exx, e_true, atol=1e-4)
    np.testing.assert_allclose(exx, e_true / (1 + e_true), atol=2e-6)
    for other in (eyy, exy, theta):
        np.testing.assert_allclose(other, 0.0, atol=2e-6)


def test_save_read_round_trip(scan, tmp_path):
    tr = scan.truth
    sp = truth_to_scanpeaks(tr)
    for i, t in enumerate(sp.peaks):
        t["confidence"] = np.linspace(0.1, 0.9, len(t))
    bv = to_braggvectors(sp, tr.calibration, name="ndpd_peaks", sort=False)
    path = tmp_path / "bv.h5"
    py4DSTEM.save(str(path), bv, mode="o")
    bv2 = py4DSTEM.read(str(path))
    assert isinstance(bv2, py4DSTEM.BraggVectors) and bv2.name == "ndpd_peaks"
    assert tuple(bv2.Rshape) == (8, 4) and tuple(bv2.Qshape) == (128, 128)
    for rx in range(8):
        for ry in range(4):
            np.testing.assert_array_equal(bv2.raw[rx, ry].data, bv.raw[rx, ry].data)
    assert calibration_of(bv2) == tr.calibration
    back = from_braggvectors(bv2)
    np.testing.assert_array_equal(back.at(7, 3), sp.at(7, 3))


def test_option_table_names_are_real_py4dstem_parameters():
    params = set(inspect.signature(py4DSTEM.braggvectors.diskdetection.find_Bragg_disks).parameters)
    params |= set(inspect.signature(py4DSTEM.DataCube.find_Bragg_disks).parameters)
    assert set(OPTION_NAMES) <= params
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", v) for v in OPTION_NAMES.values())
    assert OPTION_NAMES["minPeakSpacing"] == "min_distance"
    assert OPTION_NAMES["minRelativeIntensity"] == "threshold_rel"
    assert OPTION_NAMES["edgeBoundary"] == "edge_boundary"
    assert OPTION_NAMES["maxNumPeaks"] == "num_peaks"
    camel = {k: i for i, k in enumerate(PY4DSTEM_NAMES.values())}
    assert to_ndpd_options(to_py4dstem_options({k: 1 for k in PY4DSTEM_NAMES})) == {k: 1 for k in PY4DSTEM_NAMES}
    assert to_py4dstem_options(to_ndpd_options(camel)) == camel
    assert to_ndpd_options({"sigma": 2}) == {"sigma_cc": 2}


def test_errors_say_what_to_do():
    with pytest.raises(InputError, match="unknown py4DSTEM option 'minPeakSpaceing'"):
        to_ndpd_options({"minPeakSpaceing": 3})
    with pytest.raises(InputError, match="no py4DSTEM equivalent"):
        to_py4dstem_options({"confidence_threshold": 0.5})
    with pytest.raises(InputError, match="needs a ScanPeaks"):
        to_braggvectors([make_peaks([1.0], [2.0])])
    sp = ScanPeaks((1, 1), [make_peaks([1.0], [2.0])], (16, 16))
    with pytest.raises(InputError, match="calibration must be"):
        to_braggvectors(sp, {"q_pixel_size": 0.01})
    bad = ScanPeaks((1, 1), [np.zeros(2, dtype=[("x", "f4"), ("y", "f4")])], (16, 16))
    with pytest.raises(InputError, match="needs at least 'qx' and 'qy'"):
        to_braggvectors(bad)
    with pytest.raises(InputError, match="needs a py4DSTEM.BraggVectors"):
        from_braggvectors(sp)
    assert isinstance(Calibration(), Calibration)
