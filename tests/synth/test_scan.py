"""Whole-scan simulation: outputs, calibration, truth (strain, lattice, disk centres), dose, seeds, options."""
from __future__ import annotations

import numpy as np
import py4DSTEM
import pytest

from py4dstem_ndpd.calibration import Calibration
from py4dstem_ndpd.exceptions import ConfigError
from py4dstem_ndpd.synth import (
    Acquisition, DetectorModel, SampleModel, ScanTruth, sige_strain, silicon, simulate, simulate_preset,
    zone_reflections,
)
from py4dstem_ndpd.synth.presets import PRESETS

SIGE = sige_strain(0.87)


@pytest.fixture(scope="module")
def si_layers():
    """Si/SiGe at 1 nm steps: rows 0-24 substrate, rows 25-34 the first SiGe layer (128 px, noise on)."""
    acq = Acquisition(scan_shape=(40, 3), pattern_shape=(128, 128), r_pixel_size=1.0, dose=1e5, seed=11)
    return acq, simulate_preset("si_sige_multilayer", acq)


@pytest.fixture(scope="module")
def tinb32():
    acq = Acquisition(scan_shape=(32, 32), pattern_shape=(64, 64), dose=1e4, seed=5)
    return acq, simulate_preset("tinb_multiphase", acq)


def small_sample(shape=(3, 4), contrast=1.0) -> SampleModel:
    """Si [110] with only the reflections that fall well inside a 128 px detector (|g| <= 0.3 1/A)."""
    refl = zone_reflections(silicon(), (1, 1, 0), (0, 0, 1), 0.33)
    Rx, Ry = shape
    return SampleModel(
        components=[refl], component_names=["Si"], weights=np.ones((Rx, Ry, 1)),
        deformation=np.broadcast_to(np.eye(2), (Rx, Ry, 1, 2, 2)).copy(), strain=np.zeros((Rx, Ry, 4)),
        phase=np.zeros((Rx, Ry), int), phase_names=["Si"], tilt=np.zeros((Rx, Ry, 2)),
        thickness=np.ones((Rx, Ry)), virtual_contrast=np.full((Rx, Ry), contrast), field_of_view_nm=10.0,
    )


def offsets_by_hkl(truth: ScanTruth, rx: int, ry: int) -> dict:
    """{(h, k, l): centre - origin} at one position."""
    d = truth.disks_at(rx, ry)
    o = truth.origin[rx, ry]
    return {(int(r["h"]), int(r["k"]), int(r["l"])): np.array([r["qx"], r["qy"]]) - o for r in d}


# ---- outputs ------------------------------------------------------------------------------------------------


def test_shapes_dtypes_and_calibrated_datacube(si_layers):
    acq, scan = si_layers
    dc = scan.datacube
    assert isinstance(dc, py4DSTEM.DataCube)
    assert dc.data.shape == (40, 3, 128, 128) and dc.data.dtype == np.uint32
    assert scan.data is dc.data
    assert dc.calibration.get_Q_pixel_size() == pytest.approx(acq.q_pixel_size)
    assert dc.calibration.get_Q_pixel_units() == "A^-1"
    assert dc.calibration.get_R_pixel_size() == pytest.approx(1.0)
    assert dc.calibration.get_R_pixel_units() == "nm"
    assert Calibration.from_py4dstem(dc.calibration) == scan.truth.calibration
    t = scan.truth
    assert t.scan_shape == (40, 3) and t.pattern_shape == (128, 128)
    assert t.origin.shape == (40, 3, 2) and t.lattice.shape == (40, 3, 2, 2) and t.strain.shape == (40, 3, 4)
    assert t.phase.shape == (40, 3) and t.disk_radius == 2.0
    assert t.offsets.shape == (121,) and t.offsets[-1] == len(t.disks)


def test_counter_depth_and_noise_free_dtypes():
    small = dict(scan_shape=(2, 2), pattern_shape=(32, 32))
    assert simulate_preset("si_sige_multilayer", Acquisition(**small, detector=DetectorModel(bits=16))).data.dtype \
        == np.uint16
    free = simulate_preset("si_sige_multilayer", Acquisition(**small, noise=False))
    assert free.data.dtype == np.float32 and free.data.min() >= 0


def test_default_r_pixel_size_is_field_of_view_over_rx():
    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(29, 1), pattern_shape=(32, 32)))
    assert scan.datacube.calibration.get_R_pixel_size() == pytest.approx(145.0 / 29)


# ---- truth --------------------------------------------------------------------------------------------------


def test_truth_strain_sige_layer_and_substrate(si_layers):
    _, scan = si_layers
    exx = scan.truth.strain_map("e_xx")
    assert SIGE == pytest.approx(0.0085, abs=1e-4)
    assert exx[29:31] == pytest.approx(np.full((2, 3), SIGE), rel=1e-3)  # layer centre (25-35 nm)
    assert np.abs(exx[:15]).max() < 1e-9  # substrate, > 9 probe sigmas from the interface
    assert exx.max() <= SIGE * (1 + 1e-9)
    for name in ("e_yy", "e_xy", "theta"):
        assert not scan.truth.strain_map(name).any()
    assert np.array_equal(scan.truth.phase[:, 0], (np.arange(40) >= 25) & (np.arange(40) < 35))


def test_truth_lattice_follows_the_strain(si_layers):
    acq, scan = si_layers
    t = scan.truth
    sub, layer = t.lattice[5, 1], t.lattice[30, 1]
    exx = t.strain[30, 1, 0]
    # growth direction = qx: reciprocal vectors shrink along qx by 1 / (1 + e_xx), unchanged along qy
    assert layer[:, 0] == pytest.approx(sub[:, 0] / (1 + exx), rel=1e-12)
    assert layer[:, 1] == pytest.approx(sub[:, 1], rel=1e-12)
    # unstrained Si: |g1| = |111| = sqrt(3)/a in px
    assert np.linalg.norm(sub, axis=1) == pytest.approx([np.sqrt(3) / 5.431 / acq.q_pixel_size] * 2)


def test_truth_disk_centres_are_origin_plus_integer_lattice_combinations(si_layers):
    acq, scan = si_layers
    t = scan.truth
    basis = zone_reflections(silicon(), (1, 1, 0), (0, 0, 1), 1.0).basis
    B_inv = np.linalg.inv(basis)
    A = silicon().reciprocal_basis()
    n_checked = 0
    for rx in (0, 12, 30, 39):
        for ry in range(3):
            d = t.disks_at(rx, ry)
            assert np.all(d["rx"] == rx) and np.all(d["ry"] == ry)
            direct = d[d["component"] == -1]
            assert len(direct) == 1
            assert direct["qx"][0] == t.origin[rx, ry, 0] and direct["qy"][0] == t.origin[rx, ry, 1]
            bragg = d[d["component"] == 0]
            off = np.stack([bragg["qx"], bragg["qy"]], 1) - t.origin[rx, ry]
            uv = off @ np.linalg.inv(t.lattice[rx, ry])
            assert uv == pytest.approx(np.round(uv), abs=1e-8)
            # and the integers are those of the Miller indices: g_hkl = u g1 + v g2 of the unstrained crystal
            hkl = np.stack([bragg["h"], bragg["k"], bragg["l"]], 1)
            g_xyz = hkl @ A
            ez = np.array([0, 0, 1.0])  # x_direction [001] -> qx
            ey = np.cross(np.array([1, 1, 0]) / np.sqrt(2), ez)
            g2d = np.stack([g_xyz @ ez, g_xyz @ ey], 1)
            assert uv == pytest.approx(g2d @ B_inv, abs=1e-8)
            # every truth disk lies on the detector
            assert np.all((bragg["qx"] >= -0.5) & (bragg["qx"] < 127.5) & (bragg["qy"] >= -0.5) & (bragg["qy"] < 127.5))
            n_checked += len(bragg)
    assert n_checked > 100


def test_truth_snr_and_intensity_are_positive_and_rank_by_intensity(si_layers):
    _, scan = si_layers
    d = scan.truth.disks_at(3, 1)
    assert np.all(d["intensity"] > 0) and np.all(np.isfinite(d["snr"])) and np.all(d["snr"] > 0)
    assert d["snr"][0] == d["snr"].max()  # the direct beam


def test_tinb_phases_all_present_with_their_components(tinb32):
    _, scan = tinb32
    t = scan.truth
    assert set(np.unique(t.phase)) == {0, 1, 2, 3}
    assert len(t.phase_names) == 4 and t.component_names == ["beta-bcc", "Ti3O-like", "alpha-hcp"]
    comp_at = {}
    for rx in range(32):
        for ry in range(32):
            comp_at.setdefault(int(t.phase[rx, ry]), set()).update(t.disks_at(rx, ry)["component"].tolist())
    assert comp_at[0] == {-1, 0} and comp_at[1] == {-1, 0}
    assert comp_at[2] == {-1, 0, 1}  # ordered oxide superlattice over the matrix
    assert comp_at[3] == {-1, 0, 2}  # hcp over the matrix
    # coherent precipitates: lattice 2.5 % smaller -> e_xx = e_yy = -0.025 inside
    inside = t.phase == 1
    assert t.strain[inside, 0] == pytest.approx(np.full(inside.sum(), -0.025))
    assert t.strain[inside, 1] == pytest.approx(np.full(inside.sum(), -0.025))


# ---- dose, noise, seeds -------------------------------------------------------------------------------------


@pytest.mark.parametrize("contrast", [1.0, 1.2])
def test_every_pattern_carries_the_dose(contrast):
    """With all disks well inside the detector and no blur, the expected image sums to the dose exactly, also where
    the sample scatters more (the extra Bragg electrons come out of the direct beam); counts follow Poisson."""
    acq = Acquisition(scan_shape=(3, 4), pattern_shape=(128, 128), dose=2e5, drift_px=0.0, seed=2,
                      detector=DetectorModel(blur_sigma=0.0))
    free = simulate(small_sample(contrast=contrast), Acquisition(**{**acq.__dict__, "noise": False}))
    sums = free.data.sum(axis=(2, 3), dtype=np.float64)
    assert sums == pytest.approx(np.full((3, 4), 2e5), rel=1e-5)
    d = free.truth.disks_at(1, 1)
    assert d["intensity"][d["component"] == -1][0] == pytest.approx(2e5 * (0.3 - 0.55 * (contrast - 1)))
    assert d["intensity"].sum() == pytest.approx(0.85 * 2e5, rel=1e-6)
    counts = simulate(small_sample(contrast=contrast), acq).data.sum(axis=(2, 3), dtype=np.float64)
    assert np.abs(counts - 2e5).max() < 5 * np.sqrt(2e5)


def test_preset_counts_match_the_noise_free_expectation(si_layers):
    acq, scan = si_layers
    free = simulate_preset("si_sige_multilayer", Acquisition(**{**acq.__dict__, "noise": False}))
    expected = free.data.sum(axis=(2, 3), dtype=np.float64)
    counts = scan.data.sum(axis=(2, 3), dtype=np.float64)
    assert np.all((expected > 0.6 * acq.dose) & (expected <= acq.dose))  # disks beyond the detector are lost
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected.max())
    assert np.array_equal(free.truth.disks, scan.truth.disks)  # the truth does not depend on the noise


def test_seed_reproducibility_and_independence_of_batching_and_threads():
    acq = Acquisition(scan_shape=(5, 3), pattern_shape=(48, 48), seed=21)
    sample = PRESETS["tinb_multiphase"](acq)
    a = simulate(sample, acq)
    b = simulate(sample, acq, batch_size=4, workers=2)
    assert np.array_equal(a.data, b.data) and np.array_equal(a.truth.disks, b.truth.disks)
    c = simulate(sample, Acquisition(**{**acq.__dict__, "seed": 22}))
    assert not np.array_equal(a.data, c.data)
    again = simulate_preset("tinb_multiphase", acq)
    assert np.array_equal(a.data, again.data)


# ---- microscope options -------------------------------------------------------------------------------------


def _pair(**changes):
    base = dict(scan_shape=(4, 3), pattern_shape=(128, 128), seed=9, noise=False)
    ref = simulate_preset("si_sige_multilayer", Acquisition(**base, drift_px=0.0))
    other = simulate_preset("si_sige_multilayer", Acquisition(**{**base, "drift_px": 0.0, **changes}))
    return ref, other


def test_drift_moves_the_origin_and_every_disk_with_it():
    still, drifting = _pair(drift_px=4.0)
    o0, o = still.truth.origin, drifting.truth.origin
    assert np.all(o0 == o0[0, 0])
    assert not np.allclose(o, o0)
    # linear part: first -> last row is 4 * d_x * (1, 0.7), first -> last column 4 * d_y * (1, 0.7), |d| = 1
    d_rows = (o[-1, 0] - o[0, 0]) / np.array([1.0, 0.7]) / 4.0
    d_cols = (o[0, -1] - o[0, 0]) / np.array([1.0, 0.7]) / 4.0
    assert d_rows[0] == pytest.approx(d_rows[1]) and d_cols[0] == pytest.approx(d_cols[1])
    assert d_rows[0] ** 2 + d_cols[0] ** 2 == pytest.approx(1.0)
    # the disks move with the origin: their offsets from it do not change
    for rx, ry in [(0, 0), (3, 2), (2, 1)]:
        a, b = offsets_by_hkl(still.truth, rx, ry), offsets_by_hkl(drifting.truth, rx, ry)
        common = set(a) & set(b)
        assert len(common) > 10
        assert all(np.allclose(a[h], b[h], atol=1e-9) for h in common)


def test_rotation_rotates_disk_positions_about_the_origin():
    ref, rot = _pair(rotation_deg=10.0)
    t = np.radians(10.0)
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    a, b = offsets_by_hkl(ref.truth, 1, 1), offsets_by_hkl(rot.truth, 1, 1)
    common = set(a) & set(b)
    assert len(common) > 10
    for h in common:
        assert b[h] == pytest.approx(R @ a[h], abs=1e-9)
    # +qx turns towards +qy
    g002 = b[(0, 0, 2)]
    assert g002[1] > 0 and np.degrees(np.arctan2(g002[1], g002[0])) == pytest.approx(10.0)


def test_ellipticity_stretches_qx_and_squeezes_qy_positions_and_disk_shapes():
    ref, ell = _pair(ellipticity=0.04, background_fraction=0.0, detector=DetectorModel(blur_sigma=0.0))
    a, b = offsets_by_hkl(ref.truth, 2, 0), offsets_by_hkl(ell.truth, 2, 0)
    for h in set(a) & set(b):
        assert b[h] == pytest.approx(a[h] * np.array([1.02, 0.98]), abs=1e-9)
    # the direct beam (2 px radius) is elongated along qx: second moments ratio (1.02 / 0.98)^2
    img = ell.data[2, 0].astype(np.float64)
    ox, oy = np.round(ell.truth.origin[2, 0]).astype(int)
    win = img[ox - 5 : ox + 6, oy - 5 : oy + 6]
    x, y = np.indices(win.shape)
    cx, cy = (win * x).sum() / win.sum(), (win * y).sum() / win.sum()
    sxx = (win * (x - cx) ** 2).sum() / win.sum()
    syy = (win * (y - cy) ** 2).sum() / win.sum()
    assert cx + ox - 5 == pytest.approx(ell.truth.origin[2, 0, 0], abs=0.01)
    assert sxx / syy == pytest.approx((1.02 / 0.98) ** 2, rel=0.02)


# ---- validation ---------------------------------------------------------------------------------------------


def test_invalid_options_raise_config_errors():
    with pytest.raises(ConfigError, match="scan_shape"):
        Acquisition(scan_shape=(0, 4))
    with pytest.raises(ConfigError, match="pattern_shape"):
        Acquisition(pattern_shape=(8, 8))
    with pytest.raises(ConfigError, match="dose"):
        Acquisition(dose=0)
    with pytest.raises(ConfigError, match="sum to <= 1"):
        Acquisition(central_beam_fraction=0.7, background_fraction=0.5)
    with pytest.raises(ConfigError, match="unknown preset"):
        simulate_preset("graphene")
    acq = Acquisition(scan_shape=(1, 1), pattern_shape=(32, 32))
    with pytest.raises(ConfigError, match="batch_size"):
        simulate(PRESETS["si_sige_multilayer"](acq), acq, batch_size=0)
