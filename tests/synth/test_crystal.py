"""Kinematic reflections of the preset crystals: geometry, extinctions, forbidden reflections; electron optics."""
from __future__ import annotations

import numpy as np
import pytest

from py4dstem_ndpd.synth import (
    Acquisition, bcc, disk_radius_inv_angstrom, electron_wavelength, hcp, silicon, zone_reflections,
)
from py4dstem_ndpd.synth.presets import A_GE, A_SI, sige_strain

A = 5.431


def _by_hkl(refl, hkl):
    """Row index of reflection ``hkl`` or None."""
    hit = np.nonzero(np.all(refl.hkl == np.asarray(hkl), axis=1))[0]
    return int(hit[0]) if len(hit) else None


@pytest.fixture(scope="module")
def si110():
    return zone_reflections(silicon(A), (1, 1, 0), (0, 0, 1), 1.0, keep_forbidden=0.05)


@pytest.fixture(scope="module")
def si110_allowed():
    return zone_reflections(silicon(A), (1, 1, 0), (0, 0, 1), 1.0)


def test_reciprocal_basis_is_inverse_transpose_of_real_basis():
    for crystal in (silicon(), bcc(), hcp()):
        assert crystal.real_basis() @ crystal.reciprocal_basis().T == pytest.approx(np.eye(3), abs=1e-12)


def test_si110_zone_contains_only_zolz_reflections(si110):
    assert np.all(si110.hkl @ np.array([1, 1, 0]) == 0)
    assert np.array_equal(si110.hkl[0], [0, 0, 0]) and np.array_equal(si110.g[0], [0.0, 0.0])


def test_si110_111_allowed_at_sqrt3_over_a(si110):
    i = _by_hkl(si110, (1, -1, 1))
    assert i is not None
    assert np.linalg.norm(si110.g[i]) == pytest.approx(np.sqrt(3) / A, rel=1e-12)
    # diamond: |F_111|^2 = |F_220|^2 / 2 (before the Debye-Waller-like damping)
    j = _by_hkl(si110, (2, -2, 0))
    damp = np.exp(-0.5 * np.array([3, 8]) / A**2)
    assert si110.f2[i] / si110.f2[j] == pytest.approx(0.5 * damp[0] / damp[1], rel=1e-9)
    # the four 111-type reflections of the zone, all at the same distance and intensity
    family = [_by_hkl(si110, h) for h in [(1, -1, 1), (1, -1, -1), (-1, 1, 1), (-1, 1, -1)]]
    assert None not in family
    assert np.linalg.norm(si110.g[family], axis=1) == pytest.approx(np.full(4, np.sqrt(3) / A))
    assert si110.f2[family] == pytest.approx(np.full(4, si110.f2[i]))


def test_si110_detector_frame_axes(si110):
    """x_direction [001] maps 002 onto +qx; 2-20 lies along qy; 111 at the angle of the [110] net (54.7 deg)."""
    g002 = si110.g[_by_hkl(si110, (0, 0, 2))]
    assert g002 == pytest.approx([2 / A, 0.0], abs=1e-12)
    g220 = si110.g[_by_hkl(si110, (2, -2, 0))]
    assert g220[0] == pytest.approx(0.0, abs=1e-12) and abs(g220[1]) == pytest.approx(2 * np.sqrt(2) / A)
    g111 = si110.g[_by_hkl(si110, (1, -1, 1))]
    assert np.degrees(np.arctan2(abs(g111[1]), abs(g111[0]))) == pytest.approx(np.degrees(np.arctan(np.sqrt(2))))


def test_si002_is_forbidden_and_kept_only_as_weak_with_keep_forbidden(si110, si110_allowed):
    assert _by_hkl(si110_allowed, (0, 0, 2)) is None
    assert _by_hkl(si110_allowed, (2, -2, 2)) is None  # 222: h+k+l = 4n+2, also forbidden in diamond
    i = _by_hkl(si110, (0, 0, 2))
    assert i is not None
    assert si110.f2[i] == pytest.approx(0.05 * np.exp(-0.5 * (2 / A) ** 2), rel=1e-12)
    assert si110.f2[i] < 0.15 * si110.f2[_by_hkl(si110, (1, -1, 1))]
    # only structure-forbidden reflections are added: the allowed ones are identical
    assert set(map(tuple, si110_allowed.hkl)) <= set(map(tuple, si110.hkl))
    extra = set(map(tuple, si110.hkl)) - set(map(tuple, si110_allowed.hkl))
    assert all(h % 2 == 0 and k % 2 == 0 and l % 2 == 0 and (h + k + l) % 4 == 2 for h, k, l in extra)


def test_fcc_lattice_extinctions_are_always_absent(si110):
    mixed = [(h, k, l) for h, k, l in si110.hkl if len({h % 2, k % 2, l % 2}) > 1]
    assert mixed == []  # mixed parity (e.g. 001, 1-10) never appears, even with keep_forbidden


def test_reflections_sorted_by_length_and_within_g_max(si110):
    gl = np.linalg.norm(si110.g, axis=1)
    assert np.all(np.diff(gl) >= -1e-12)
    assert gl.max() <= 1.0


def test_short_basis_spans_every_reflection(si110):
    """Si [110]: every ZOLZ reflection (002 included) is an integer combination of the two 111-type basis rows."""
    assert np.linalg.norm(si110.basis, axis=1) == pytest.approx([np.sqrt(3) / A] * 2)
    uv = si110.g @ np.linalg.inv(si110.basis)
    assert uv == pytest.approx(np.round(uv), abs=1e-9)


def test_bcc_extinction_h_plus_k_plus_l_odd_absent():
    refl = zone_reflections(bcc(3.30), (0, 0, 1), (1, 0, 0), 1.5)
    s = refl.hkl.sum(axis=1)
    assert np.all(s % 2 == 0)
    assert _by_hkl(refl, (1, 0, 0)) is None and _by_hkl(refl, (1, 1, 0)) is not None
    assert np.linalg.norm(refl.g[_by_hkl(refl, (1, 1, 0))]) == pytest.approx(np.sqrt(2) / 3.30)
    # square net along [001]: 110 at 45 degrees from the 200 along +qx
    assert refl.g[_by_hkl(refl, (2, 0, 0))] == pytest.approx([2 / 3.30, 0.0], abs=1e-12)


def test_hcp_basal_net_is_hexagonal():
    refl = zone_reflections(hcp(2.95, 4.68), (0, 0, 1), (1, 0, 0), 1.2)
    g1, g2 = refl.basis
    assert np.linalg.norm(g1) == pytest.approx(np.linalg.norm(g2))
    assert np.linalg.norm(g1) == pytest.approx(2 / (np.sqrt(3) * 2.95))
    cos = g1 @ g2 / np.linalg.norm(g1) / np.linalg.norm(g2)
    assert abs(cos) == pytest.approx(0.5)


def test_electron_wavelength_200kv():
    assert electron_wavelength(200.0) == pytest.approx(0.02508, abs=5e-6)
    assert electron_wavelength(300.0) == pytest.approx(0.01969, abs=5e-6)
    assert electron_wavelength(80.0) == pytest.approx(0.04176, abs=5e-6)


def test_disk_radius_is_convergence_over_wavelength():
    assert disk_radius_inv_angstrom(200.0, 0.7) == pytest.approx(0.7e-3 / 0.025079, rel=1e-4)
    acq = Acquisition(scan_shape=(1, 1), pattern_shape=(256, 256))
    assert acq.radius_px == 4.0
    assert acq.q_pixel_size * acq.radius_px == pytest.approx(disk_radius_inv_angstrom(200.0, 0.7))
    # Si 111 then lies sqrt(3)/a / q_pixel_size px from the origin: ~45.7 px at 256 px
    assert np.sqrt(3) / A / acq.q_pixel_size == pytest.approx(45.7, abs=0.1)


def test_sige_strain_paper_value():
    assert sige_strain(0.87) == pytest.approx((A_GE / A_SI - 1) * 0.13 * 1.56)
    assert sige_strain(0.87) == pytest.approx(0.0085, abs=1e-4)
    assert sige_strain(1.0) == 0.0
