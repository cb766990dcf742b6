"""Generalisation: the shipped detector on multislice patterns from abTEM (another simulator, never trained on).

The fixture ``tests/data/abtem_si110.npz`` (6 patterns of Si [110], 10/30/60 nm, 1.5/2.5 mrad, 1e6 electrons)
was made by ``benchmarks/external/simulate_abtem.py`` (abTEM 1.0.11, its own environment). Its disks carry
dynamical contrast, whose intensity-weighted centres are off by 0.4-2 px even without noise, and the multislice
lights disks off the kinematic sites, which the truth includes where visible. Bounds are margins over what
``benchmarks/bench_external.py`` and these tests measured (quoted per assertion).
"""
from pathlib import Path

import numpy as np
import py4DSTEM
import pytest

from py4dstem_ndpd.api import detect_scan
from py4dstem_ndpd.baseline import TemplateOptions, template_matching
from py4dstem_ndpd.detect.backend import DetectOptions
from py4dstem_ndpd.evaluate import evaluate_detections, integrated_snr
from py4dstem_ndpd.exceptions import InputError
from py4dstem_ndpd.synth.external import load_external

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "abtem_si110.npz"
# SrTiO3 [001], 20/50 nm, 2.0/3.5 mrad, 4 frozen phonons (speckled diffuse scattering), 1e6 electrons
FIXTURE_STO = FIXTURE.with_name("abtem_sto001.npz")
# Si [110], 25/50/100 nm, 1.8 mrad: thick crystals (crescent-shaped dynamical disks; at 25 nm a diffracted disk
# outshines the direct beam), held out from the design of the thick-crystal refinement
FIXTURE_THICK = FIXTURE.with_name("abtem_si110_25-100nm.npz")
# Si [110], 30 nm, 2.0 mrad, 8 and 16 mrad off the zone axis: the rocking curve crosses the direct beam, whose
# centroid is 0.5-0.9 px off its centre (the validation set of the probe's edge position)
FIXTURE_TILT = FIXTURE.with_name("abtem_si110_tilt8-16mrad.npz")


@pytest.fixture(scope="module")
def scans():
    return load_external(FIXTURE)


def test_fixture_truth_is_consistent(scans):
    assert [s.truth.scan_shape for s in scans] == [(1, 3), (1, 3)]
    for s in scans:
        assert s.frames.shape[:2] == (1, 3) and s.frames.dtype == np.uint16
        assert 4.5 < s.truth.disk_radius < 9.5
        # the zero beam is at the origin
        for j in range(3):
            d = s.truth.disks_at(0, j)
            c = np.stack([d["qx"], d["qy"]], 1)
            assert np.min(np.hypot(*(c - s.truth.origin[0, j]).T)) < 1e-6


@pytest.mark.parametrize("path", [FIXTURE, FIXTURE_STO], ids=["si110", "sto001"])
def test_truth_keeps_the_listed_sites_with_the_simulator_snr(path):
    with np.load(path) as z:
        counts, file_snr = z["counts"], z["snr"]
        starts = np.concatenate([[0], np.cumsum(counts)])
    for s in load_external(path):
        R = s.truth.disk_radius
        for j, i in enumerate(s.index):
            d = s.truth.disks_at(0, j)
            listed, extra = d[d["l"] == 1], d[d["l"] == 0]
            assert len(listed) == counts[i]
            # the integrated SNR re-measured on the noiseless pattern is the simulator's own (pi r^2 vs pixel
            # count; away from the edge, where disks are whole)
            Q = s.frames.shape[-1]
            whole = np.minimum.reduce([listed["qx"], listed["qy"], Q - 1 - listed["qx"], Q - 1 - listed["qy"]]) > R + 1
            np.testing.assert_allclose(integrated_snr(listed, R)[whole], file_snr[starts[i]:starts[i + 1]][whole],
                                       rtol=0.05, atol=0.05)
            assert np.all(extra["snr"] >= 1.0)
            gap = np.hypot(extra["qx"][:, None] - listed["qx"][None], extra["qy"][:, None] - listed["qy"][None])
            assert gap.size == 0 or gap.min() >= 2 * float(np.max(s.truth.disk_radius)) - 1.0


def test_truth_adds_the_half_order_disks_of_thick_si(scans):
    # the 60 nm, 1.5 mrad pattern has visible half-order disks (measured: 7 nodes, peak SNR up to 2.4)
    thick = scans[0].truth.disks_at(0, 2)
    assert np.count_nonzero(thick["l"] == 0) >= 3


def test_ndpd_finds_the_disks_of_another_simulator(scans, no_network):
    for s in scans:
        peaks = detect_scan(py4DSTEM.DataCube(data=s.frames), options=DetectOptions(batch_size=8), progress=False)
        m = evaluate_detections(peaks, s.truth, min_snr=3.0)  # peak SNR, the rule
        assert m.recall >= 0.97  # measured 1.000 / 1.000
        assert m.precision >= 0.93  # measured 0.970 / 0.972
        assert m.error_median <= 0.2  # measured 0.074 / 0.142 (RMS 0.078 / 0.174)
        strict = evaluate_detections(peaks, s.truth, min_snr=3.0, snr="integrated")
        assert strict.recall >= 0.85  # measured 0.918 / 0.913


def test_ndpd_finds_the_disks_of_another_material(no_network):
    for s in load_external(FIXTURE_STO):
        peaks = detect_scan(py4DSTEM.DataCube(data=s.frames), options=DetectOptions(batch_size=8), progress=False)
        m = evaluate_detections(peaks, s.truth, min_snr=3.0)
        # the speckled diffuse scattering of 4 phonon configurations gives false positives: ndpd-v1 reached
        # recall 1.000 / 1.000 at precision 0.40 / 0.61; ndpd-v3 (trained with speckle) 1.000 / 0.921 at 0.79 / 1.00
        assert m.recall >= 0.9
        assert m.precision >= 0.7


def test_ndpd_places_the_disks_of_thick_crystals(no_network):
    """Thick crystals: the probe is the direct beam even where a diffracted disk is brighter, and bright
    asymmetric disks are placed by their edge (``refine/edge.py``)."""
    s = load_external(FIXTURE_THICK, dose=1e5, seed=5)[0]
    peaks = detect_scan(s.frames, options=DetectOptions(batch_size=8), progress=False)
    m = evaluate_detections(peaks, s.truth, min_snr=3.0)
    assert m.recall >= 0.97  # measured 1.000
    assert m.error_rms <= 0.35  # measured 0.155 (before the thick-crystal refinement: 1.04)


def test_ndpd_places_the_disks_of_a_crystal_off_its_zone_axis(no_network):
    """The direct beam is located by its rim where its centroid is measurably off (``refine/probe.py``), and
    template matching, given a vacuum probe, finds the disks too."""
    from py4dstem_ndpd.compare import CompareOptions, compare

    s = load_external(FIXTURE_TILT, dose=1e5, seed=5)[0]
    peaks = detect_scan(s.frames, options=DetectOptions(batch_size=8), progress=False)
    m = evaluate_detections(peaks, s.truth, min_snr=3.0)
    assert m.recall >= 0.97  # measured 1.000
    assert m.error_rms <= 0.2  # measured 0.100 (with the centroid alone: 0.345)
    qx, qy = np.indices(s.frames.shape[-2:])
    vacuum = (np.hypot(qx - 128, qy - 128) <= s.truth.disk_radius) * 1000.0
    res = compare(py4DSTEM.DataCube(data=s.frames), truth=s.truth,
                  options=CompareOptions(vacuum=vacuum, stages=False, template=TemplateOptions.fast()))
    assert res.methods["template"].metrics.recall >= 0.9  # with its probe taken from the data: 0.2


def test_template_matching_finds_fewer(scans):
    s = scans[0]
    res = template_matching(py4DSTEM.DataCube(data=s.frames), options=TemplateOptions.fast())
    tm = evaluate_detections(res.peaks, s.truth, min_snr=3.0, snr="integrated")
    peaks = detect_scan(py4DSTEM.DataCube(data=s.frames), options=DetectOptions(batch_size=8), progress=False)
    nd = evaluate_detections(peaks, s.truth, min_snr=3.0, snr="integrated")
    assert nd.recall > tm.recall + 0.2  # measured 0.91 against 0.35


def test_other_doses_and_bad_files(scans, tmp_path):
    low = load_external(FIXTURE, dose=1e4, seed=1)
    assert low[0].dose == 1e4
    assert low[0].frames.sum() < scans[0].frames.sum() / 50
    lo, hi = low[0].truth.disks, scans[0].truth.disks
    assert np.all(lo["snr"][lo["l"] == 1] < hi["snr"][hi["l"] == 1] + 1e-6)
    assert len(lo) <= len(hi)  # fewer off-site disks are visible at a lower dose
    with pytest.raises(InputError, match="not found"):
        load_external(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", patterns=np.zeros((1, 8, 8)))
    with pytest.raises(InputError, match="lacks"):
        load_external(tmp_path / "bad.npz")
