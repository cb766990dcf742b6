"""Strain maps on real py4DSTEM BraggVectors against the simulator's exact strain."""
from __future__ import annotations

import numpy as np
import pytest
import py4DSTEM

from py4dstem_ndpd.analysis.strain import (
    StrainOptions, StrainResult, line_profile, reference_mask, strain_from_lattice, strain_map,
)
from py4dstem_ndpd.bridge import to_braggvectors, truth_to_scanpeaks
from py4dstem_ndpd.exceptions import ConfigError, InputError
from py4dstem_ndpd.peaks import ScanPeaks, empty_peaks
from py4dstem_ndpd.synth import sige_strain

SUBSTRATE = (0, 3, 0, 6)  # rx 0..2 of the 24 x 6 Si/SiGe scan lie in the Si substrate


def rms(a, b):
    return float(np.sqrt(np.nanmean((np.asarray(a) - np.asarray(b)) ** 2)))


# ---- convention ---------------------------------------------------------------------------------------------
def test_strain_from_truth_lattice_is_truth_strain(sige24):
    tr = sige24.truth
    got = strain_from_lattice(tr.lattice, tr.lattice[0, 0])  # (0, 0) is unstrained substrate
    np.testing.assert_allclose(got, tr.strain, atol=1e-12)


def test_convention_against_py4dstem_uniaxial_and_rotation():
    """py4DSTEM: e_xx = e/(1+e) for a stretch e, theta of opposite sign; ours: e and theta exactly."""
    from py4DSTEM.data import RealSlice
    from py4DSTEM.process.strain.latticevectors import get_strain_from_reference_g1g2

    G0 = np.array([[30.0, -40.0], [30.0, 40.0]])
    e, t = 0.02, 0.01
    for F, ours in (
        (np.diag([1 + e, 1.0]), [e, 0, 0, 0]),
        (np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]), [np.cos(t) - 1, np.cos(t) - 1, 0, np.sin(t)]),
    ):
        G = G0 @ np.linalg.inv(F)  # rows: g^T F^-1, i.e. g -> F^-T g
        np.testing.assert_allclose(strain_from_lattice(G, G0), ours, atol=1e-12)
        data = np.zeros((8, 1, 1))
        data[2:6, 0, 0] = G.ravel()
        data[7] = 1
        gm = RealSlice(data=data, slicelabels=("x0", "y0", "g1x", "g1y", "g2x", "g2y", "error", "mask"))
        sm = get_strain_from_reference_g1g2(gm, tuple(G0[0]), tuple(G0[1]))
        theirs = [float(sm.get_slice(k).data[0, 0]) for k in ("e_xx", "e_yy", "e_xy", "theta")]
        if ours[0] == e:
            assert theirs[0] == pytest.approx(e / (1 + e), abs=1e-12)
        else:
            assert theirs[3] == pytest.approx(-ours[3], rel=1e-3)  # opposite sign


# ---- Si/SiGe on true disk centres -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sige_result(sige24_bv):
    return strain_map(sige24_bv, reference=SUBSTRATE)


def test_sige_truth_peaks_recover_truth(sige24, sige_result):
    tr = sige24.truth
    res = sige_result
    assert isinstance(res, StrainResult)
    assert isinstance(res.strainmap, py4DSTEM.StrainMap)
    assert res.valid.all()
    # measured: RMS 2.0e-8 (e_xx), 1.3e-8 (e_yy); the centres are float32, so ~1e-7 is the floor
    for k, name in enumerate(("e_xx", "e_yy", "e_xy", "theta")):
        assert rms(res[name], tr.strain[..., k]) < 1e-6, name
    np.testing.assert_allclose(res.as_array(), tr.strain, atol=5e-6)
    plateau = tr.strain[..., 0] > 0.008
    assert res.e_xx[plateau].mean() == pytest.approx(tr.strain[..., 0][plateau].mean(), abs=1e-6)  # ~0.0084
    assert res.e_xx.max() == pytest.approx(sige_strain(0.87), abs=5e-5)  # 0.00848, probe-blurred layers
    assert res.precision["e_xx"] < 1e-6 and res.precision["e_yy"] < 1e-6
    assert np.std(res.e_xx[:3]) < 1e-6
    assert res.reference[:3].all() and not res.reference[3:].any()


def test_py4dstem_numbers_are_kept_in_their_convention(sige24, sige_result):
    sm = sige_result.strainmap
    theirs = sm.get_slice("e_xx").data
    ours = sige_result.e_xx
    np.testing.assert_allclose(theirs, ours / (1 + ours), atol=1e-7)  # uniaxial stretch along x


def test_input_braggvectors_are_not_modified(sige24):
    bv = to_braggvectors(truth_to_scanpeaks(sige24.truth), sige24.datacube.calibration)
    before = dict(bv.calstate)
    raw = bv.raw[5, 2].data.copy()
    strain_map(bv, reference=SUBSTRATE)
    assert bv.calstate == before and bv.calibration.get_origin() is None
    np.testing.assert_array_equal(bv.raw[5, 2].data, raw)


def test_reference_forms_agree(sige24_bv, sige_result):
    mask = np.zeros((24, 6), bool)
    mask[:3] = True
    res = strain_map(sige24_bv, reference=mask)
    np.testing.assert_allclose(res.e_xx, sige_result.e_xx, atol=1e-12)
    whole = strain_map(sige24_bv)  # median of the whole scan: mostly Si, so close to the substrate
    assert whole.reference.all()
    assert rms(whole.e_xx, sige_result.e_xx) < 1e-3


def test_keep_and_measure_origin(sige24, sige24_bv, sige_result):
    bv = sige24_bv.copy()
    with pytest.raises(InputError, match="no calibrated origin"):
        strain_map(bv, reference=SUBSTRATE, options=StrainOptions(origin="keep"))
    bv.calibration.set_origin((sige24.truth.origin[..., 0], sige24.truth.origin[..., 1]))
    bv.setcal()
    kept = strain_map(bv, reference=SUBSTRATE, options=StrainOptions(origin="keep"))
    measured = strain_map(sige24_bv, reference=SUBSTRATE, options=StrainOptions(origin="measure"))
    for res in (kept, measured):
        np.testing.assert_allclose(res.e_xx, sige_result.e_xx, atol=1e-6)


def test_given_basis(sige24_bv, sige_result):
    g1, g2 = sige_result.g1, sige_result.g2
    res = strain_map(sige24_bv, reference=SUBSTRATE, options=StrainOptions(basis=(tuple(g1 + 1), tuple(g1 + g2))))
    np.testing.assert_allclose(res.g1, g1, atol=1e-3)
    np.testing.assert_allclose(res.g2, g1 + g2, atol=1e-3)
    np.testing.assert_allclose(res.e_xx, sige_result.e_xx, atol=1e-6)  # same lattice, other basis
    with pytest.raises(InputError, match="no Bragg-vector-map maximum"):
        strain_map(sige24_bv, options=StrainOptions(basis=((3.0, 90.0), (90.0, 3.0))))


# ---- robustness: detector-like vectors --------------------------------------------------------------------
def test_spurious_and_missing_vectors_are_handled(sige24, perturb):
    sp = perturb(truth_to_scanpeaks(sige24.truth), drop=0.1, spurious=3, noise_px=0.0, seed=1)
    bv = to_braggvectors(sp, sige24.datacube.calibration)
    robust = strain_map(bv, reference=SUBSTRATE)
    plain = strain_map(bv, reference=SUBSTRATE, options=StrainOptions(outlier_px=None))
    # measured: robust 3e-6, py4DSTEM's plain least squares ~3e-4 (spurious vectors inside max_peak_spacing)
    assert rms(robust.e_xx, sige24.truth.strain[..., 0]) < 2e-5
    assert rms(plain.e_xx, sige24.truth.strain[..., 0]) > 3 * rms(robust.e_xx, sige24.truth.strain[..., 0])


def test_centre_noise_sets_the_precision(sige24, perturb):
    sp = perturb(truth_to_scanpeaks(sige24.truth), drop=0.0, spurious=0, noise_px=0.05, seed=2)
    res = strain_map(to_braggvectors(sp, sige24.datacube.calibration), reference=SUBSTRATE)
    err = rms(res.e_xx, sige24.truth.strain[..., 0])
    # measured: 2.0e-4 for 0.05 px noise on ~30 disks of |g| 45..130 px
    assert 5e-5 < err < 5e-4
    assert 3e-5 < res.precision["e_xx"] < 5e-4


def test_template_matching_backend(perturb):
    """BraggVectors from py4DSTEM's own find_Bragg_disks (via the tuned baseline) work as they are."""
    from py4dstem_ndpd.baseline import TemplateOptions, template_matching
    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(24, 3), pattern_shape=(256, 256), dose=1e6))
    bv = template_matching(scan.datacube, options=TemplateOptions.fast()).braggvectors
    res = strain_map(bv, reference=(0, 3, 0, 3))
    # measured: RMS 6e-5 (e_xx), 7e-5 (e_yy)
    assert rms(res.e_xx, scan.truth.strain[..., 0]) < 2e-4
    assert rms(res.e_yy, scan.truth.strain[..., 1]) < 2e-4
    assert scan.datacube.calibration.get_origin() is None  # the DataCube's calibration is untouched


# ---- Ti-Nb: coherency strain around precipitates ---------------------------------------------------------------
def test_tinb_coherency_strain_sign(tinb24):
    tr = tinb24.truth
    bv = to_braggvectors(truth_to_scanpeaks(tr), tinb24.datacube.calibration)
    res = strain_map(bv, reference=tr.phase == 0)
    matrix = tr.phase == 0
    for k, name in enumerate(("e_xx", "e_yy", "e_xy")):
        t = tr.strain[..., k]
        strong = matrix & (np.abs(t) > 2e-3)
        assert strong.sum() > 50
        assert np.all(np.sign(res[name][strong]) == np.sign(t[strong])), name
        assert np.corrcoef(res[name][tr.phase <= 1], t[tr.phase <= 1])[0, 1] > 0.999
    prec = tr.phase == 1
    assert res.e_xx[prec].mean() == pytest.approx(-0.025, abs=1e-3)  # compressive misfit inside precipitates
    assert res.e_yy[prec].mean() == pytest.approx(-0.025, abs=1e-3)


def test_tinb_coherency_strain_sign_from_template_matching(tinb16_template):
    scan, bv = tinb16_template
    tr = scan.truth
    res = strain_map(bv, reference=tr.phase == 0)
    assert res.valid.all()
    for k, name in enumerate(("e_xx", "e_yy", "e_xy")):
        t = tr.strain[..., k]
        strong = (tr.phase == 0) & (np.abs(t) > 2e-3)
        assert strong.sum() > 40
        assert np.all(np.sign(res[name][strong]) == np.sign(t[strong])), name  # measured: all agree


# ---- errors and options -------------------------------------------------------------------------------------
def test_reference_mask_forms_and_errors():
    m = reference_mask((1, 3, 0, 2), (4, 5))
    assert m.sum() == 4 and m[1:3, 0:2].all()
    assert reference_mask(None, (2, 2)).all()
    with pytest.raises(InputError, match="outside the scan"):
        reference_mask((0, 9, 0, 1), (4, 5))
    with pytest.raises(InputError, match="empty"):
        reference_mask((2, 2, 0, 1), (4, 5))
    with pytest.raises(InputError, match="bool array of the scan shape"):
        reference_mask(np.ones((3, 3), bool), (4, 5))
    with pytest.raises(InputError, match="selects no scan position"):
        reference_mask(np.zeros((4, 5), bool), (4, 5))
    with pytest.raises(InputError, match="rectangle"):
        reference_mask("substrate", (4, 5))


def test_strain_map_input_errors(sige24_bv):
    with pytest.raises(InputError, match="needs a py4DSTEM.BraggVectors"):
        strain_map(np.zeros((2, 2)))
    empty = to_braggvectors(ScanPeaks((2, 2), [empty_peaks() for _ in range(4)], (64, 64)))
    with pytest.raises(InputError, match="no vectors"):
        strain_map(empty)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"origin": "centre"}, "origin"),
        ({"origin_fit": "cubic"}, "origin_fit"),
        ({"num_maxima": 2}, "num_maxima"),
        ({"min_relative_intensity": 1.0}, "min_relative_intensity"),
        ({"min_angle_deg": 0}, "min_angle_deg"),
        ({"min_spacing": -1}, "min_spacing"),
        ({"max_peak_spacing": 0}, "max_peak_spacing"),
        ({"basis": ((1, 2), (2, 4))}, "collinear"),
        ({"basis": ((1, 2),)}, "basis"),
        ({"outlier_px": -1}, "outlier_px"),
        ({"min_vectors": 2}, "min_vectors"),
    ],
)
def test_options_are_validated(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        StrainOptions(**kwargs)


# ---- line profiles ------------------------------------------------------------------------------------------
def test_line_profile_averages_across_the_band():
    rng = np.random.default_rng(0)
    img = np.tile(np.linspace(0, 1, 20)[:, None], (1, 9)) + rng.normal(0, 0.01, (20, 9))
    d, m, s = line_profile(img, (0, 4), (19, 4), width=9)
    assert d.shape == (20,) and d[-1] == 19
    np.testing.assert_allclose(m, img.mean(axis=1), atol=1e-12)  # integer grid: exact samples
    np.testing.assert_allclose(s, img.std(axis=1), atol=1e-12)
    d2, m2, s2 = line_profile(img, (0, 4), (19, 4), pixel_size=2.5)
    np.testing.assert_allclose(d2, 2.5 * d)
    assert np.all(s2 == 0)


def test_line_profile_diagonal_and_nan():
    x, y = np.meshgrid(np.arange(10.0), np.arange(10.0), indexing="ij")
    img = 2 * x + y
    d, m, _ = line_profile(img, (1, 1), (7, 7), width=1, step=0.5)
    np.testing.assert_allclose(m, 3 * (1 + d / np.sqrt(2)), atol=1e-9)  # bilinear is exact on a plane
    img[:, 3:6] = np.nan
    _, m, _ = line_profile(img, (2, 0), (2, 9))
    assert np.isnan(m[4]) and np.isfinite(m[0]) and np.isfinite(m[-1])


def test_line_profile_on_sige_strain(sige_result, sige24):
    d, m, s = line_profile(sige_result.e_xx, (0, 2.5), (23, 2.5), width=6)
    np.testing.assert_allclose(m, sige24.truth.strain[:, 0, 0], atol=1e-6)
    assert np.all(s < 1e-6)


def test_line_profile_errors():
    with pytest.raises(InputError, match="2D map"):
        line_profile(np.zeros(5), (0, 0), (1, 1))
    with pytest.raises(InputError, match="same point"):
        line_profile(np.zeros((5, 5)), (1, 1), (1, 1))
    with pytest.raises(InputError, match="width and step"):
        line_profile(np.zeros((5, 5)), (0, 0), (4, 4), width=0)
