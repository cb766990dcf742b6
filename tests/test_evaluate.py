"""Matching and metrics on hand-built cases, and truth peaks of a real simulated scan."""
from __future__ import annotations

import json

import numpy as np
import pytest

from py4dstem_ndpd.bridge import truth_to_scanpeaks
from py4dstem_ndpd.evaluate import DetectionMetrics, evaluate_detections, integrated_snr, match_peaks, strain_error
from py4dstem_ndpd.exceptions import InputError
from py4dstem_ndpd.peaks import ScanPeaks, make_peaks
from py4dstem_ndpd.synth import TRUTH_DTYPE, Acquisition, ScanTruth, simulate_preset

SHAPE = (64, 64)
R = 3.0


def make_truth(positions: list[list[tuple[float, float, float]]], scan_shape=(1, 1)) -> ScanTruth:
    """ScanTruth from per-position lists of (qx, qy, snr)."""
    rows = []
    for i, disks in enumerate(positions):
        a = np.zeros(len(disks), TRUTH_DTYPE)
        a["rx"], a["ry"] = divmod(i, scan_shape[1])
        if disks:
            a["qx"], a["qy"], a["snr"] = np.array(disks, float).T
        rows.append(a)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    Rx, Ry = scan_shape
    return ScanTruth(
        scan_shape=scan_shape, pattern_shape=SHAPE, disks=np.concatenate(rows), offsets=offsets,
        origin=np.zeros((Rx, Ry, 2)), lattice=np.zeros((Rx, Ry, 2, 2)), strain=np.zeros((Rx, Ry, 4)),
        phase=np.zeros((Rx, Ry), int), phase_names=["x"], component_names=["x"], disk_radius=R,
    )


GRID = [(float(x), float(y), 50.0) for x in (12, 24, 36, 48) for y in (16, 32, 48)]


def detections(points, scan_shape=(1, 1)) -> ScanPeaks:
    tables = [make_peaks([p[0] for p in pts], [p[1] for p in pts]) for pts in points]
    return ScanPeaks(scan_shape=scan_shape, peaks=tables, pattern_shape=SHAPE)


# ---- match_peaks ------------------------------------------------------------------------------------------------
def test_match_permuted_and_out_of_radius():
    det = [[10.0, 10.0], [50.0, 50.0], [30.0, 2.0]]
    tru = [[50.2, 50.0], [10.0, 10.3], [30.0, 9.0]]
    di, ti = match_peaks(det, tru, radius=1.0)
    assert di.tolist() == [0, 1] and ti.tolist() == [1, 0]


def test_match_maximises_pairs_where_greedy_would_not():
    # greedy nearest-first pairs det 0 with truth 1 (0.4 px) and leaves det 1 1.7 px from truth 0
    di, ti = match_peaks([[0.6, 0.0], [1.7, 0.0]], [[0.0, 0.0], [1.0, 0.0]], radius=1.0)
    assert di.tolist() == [0, 1] and ti.tolist() == [0, 1]


def test_match_one_to_one_and_empty():
    di, ti = match_peaks([[5.0, 5.0], [5.1, 5.0]], [[5.05, 5.0]], radius=1.0)
    assert len(di) == 1 and ti.tolist() == [0]
    for det, tru in [(np.zeros((0, 2)), [[1.0, 1.0]]), ([[1.0, 1.0]], []), ([], [])]:
        di, ti = match_peaks(det, tru, radius=2.0)
        assert di.size == 0 and ti.size == 0 and di.dtype == np.intp


def test_match_errors():
    with pytest.raises(InputError, match="radius must be a positive"):
        match_peaks([[0.0, 0.0]], [[0.0, 0.0]], radius=0)
    with pytest.raises(InputError, match=r"detected must be an \(N, 2\)"):
        match_peaks([[0.0, 0.0, 1.0]], [[0.0, 0.0]], radius=1)


# ---- evaluate_detections -----------------------------------------------------------------------------------------
def test_perfect_match():
    m = evaluate_detections(detections([GRID]), make_truth([GRID]))
    assert isinstance(m, DetectionMetrics)
    assert (m.recall, m.precision, m.n_true, m.n_detected, m.n_matched) == (1.0, 1.0, 12, 12, 12)
    assert m.error_rms == pytest.approx(0, abs=1e-5) and m.error_median == pytest.approx(0, abs=1e-5)


def test_shift_of_0p3_px_gives_rms_0p3():
    shift = np.array([0.18, -0.24])  # |shift| = 0.3
    moved = [(x + shift[0], y + shift[1], s) for x, y, s in GRID]
    m = evaluate_detections(detections([moved]), make_truth([GRID]))
    assert m.error_rms == pytest.approx(0.3, abs=1e-5) and m.error_median == pytest.approx(0.3, abs=1e-5)
    np.testing.assert_allclose(m.bias, shift, atol=1e-5)
    assert m.errors.shape == (12,) and m.offsets.shape == (12, 2)


def test_false_positive_lowers_precision_only():
    m = evaluate_detections(detections([GRID + [(30.0, 5.0, 0)]]), make_truth([GRID]))
    assert m.recall == 1.0 and m.precision == pytest.approx(12 / 13)
    assert (m.n_false_positive, m.n_missed) == (1, 0)


def test_missing_disk_lowers_recall_only():
    m = evaluate_detections(detections([GRID[1:]]), make_truth([GRID]))
    assert m.recall == pytest.approx(11 / 12) and m.precision == 1.0
    assert (m.n_false_positive, m.n_missed) == (0, 1)


def test_empty_detections_and_empty_truth():
    m = evaluate_detections(detections([[]]), make_truth([GRID]))
    assert m.recall == 0.0 and np.isnan(m.precision) and np.isnan(m.error_rms) and m.errors.size == 0
    m = evaluate_detections(detections([GRID]), make_truth([[]]))
    assert np.isnan(m.recall) and m.precision == 0.0 and m.n_false_positive == 12
    m = evaluate_detections(detections([[]]), make_truth([[]]))
    assert m.n_true == m.n_detected == 0


def test_edge_margin_ignores_disks_cut_by_the_edge():
    truth = make_truth([GRID + [(1.0, 32.0, 50.0)]])  # 1.5 px from the top edge
    found = evaluate_detections(detections([GRID + [(1.0, 32.0, 0)]]), truth)
    missed = evaluate_detections(detections([GRID]), truth)
    spurious = evaluate_detections(detections([GRID + [(62.5, 10.0, 0)]]), make_truth([GRID]))
    for m in (found, missed, spurious):
        assert (m.recall, m.precision, m.n_true) == (1.0, 1.0, 12)
    assert found.n_ignored == 1 and spurious.n_ignored == 1
    strict = evaluate_detections(detections([GRID]), truth, edge_margin=0)
    assert strict.n_true == 13 and strict.recall == pytest.approx(12 / 13)


def test_min_snr_ignores_faint_disks_both_ways():
    truth = make_truth([GRID + [(30.0, 5.0, 2.0)]])
    hit = evaluate_detections(detections([GRID + [(30.0, 5.0, 0)]]), truth, min_snr=3)
    miss = evaluate_detections(detections([GRID]), truth, min_snr=3)
    assert (hit.recall, hit.precision, hit.n_ignored) == (1.0, 1.0, 1)
    assert (miss.recall, miss.precision) == (1.0, 1.0)
    assert evaluate_detections(detections([GRID]), truth).recall == pytest.approx(12 / 13)


def test_integrated_snr_from_peak_snr_and_intensity():
    # a disk of 60 electrons over pi r^2 px on 0.5 electrons/px of background
    area = np.pi * R**2
    intensity, back = 60.0, 0.5
    peak = intensity / area
    d = np.zeros(2, TRUTH_DTYPE)
    d["intensity"] = [intensity, 0.0]
    d["snr"] = [peak / np.sqrt(peak + back), 0.0]
    np.testing.assert_allclose(integrated_snr(d, R), [intensity / np.sqrt(intensity + area * back), 0.0])


def test_integrated_snr_counts_faint_disks_of_a_low_dose_scan():
    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(1, 2), pattern_shape=(128, 128), dose=1e3))
    peaks = truth_to_scanpeaks(scan.truth)
    by_peak = evaluate_detections(peaks, scan.truth, min_snr=3.0)
    by_sum = evaluate_detections(peaks, scan.truth, min_snr=3.0, snr="integrated")
    assert by_sum.n_true > by_peak.n_true + 10  # at 128 px only the direct beams reach a peak SNR of 3
    assert by_sum.recall == 1.0 and by_sum.snr == "integrated"
    with pytest.raises(InputError, match="snr must be"):
        evaluate_detections(peaks, scan.truth, snr="mean")


def test_several_positions_and_radius():
    truth = make_truth([GRID, GRID[:6]], scan_shape=(1, 2))
    far = [(x + 2.0, y, s) for x, y, s in GRID[:6]]  # 2 px off: inside R = 3, outside radius 1
    det = detections([GRID, far], scan_shape=(1, 2))
    m = evaluate_detections(det, truth)
    assert (m.n_true, m.n_matched) == (18, 18) and m.error_rms == pytest.approx(np.sqrt(6 * 4 / 18), abs=1e-5)
    m1 = evaluate_detections(det, truth, radius=1.0)
    assert (m1.n_matched, m1.n_false_positive, m1.n_missed) == (12, 6, 6)
    d = m1.to_dict()
    json.dumps(d)
    assert d["recall"] == pytest.approx(12 / 18) and "errors" not in d and d["radius"] == 1.0


def test_shape_mismatch_raises():
    with pytest.raises(InputError, match="scan shapes differ"):
        evaluate_detections(detections([GRID]), make_truth([GRID, GRID], scan_shape=(2, 1)))
    other = ScanPeaks(scan_shape=(1, 1), peaks=[make_peaks([1.0], [1.0])], pattern_shape=(128, 128))
    with pytest.raises(InputError, match="pattern shapes differ"):
        evaluate_detections(other, make_truth([GRID]))


def test_truth_peaks_of_a_simulated_scan_score_perfectly():
    scan = simulate_preset("tinb_multiphase", Acquisition(scan_shape=(3, 3), pattern_shape=(128, 128), dose=1e5))
    m = evaluate_detections(truth_to_scanpeaks(scan.truth), scan.truth)
    assert m.recall == 1.0 and m.precision == 1.0 and m.error_rms < 1e-4
    assert m.n_true < len(scan.truth.disks)  # disks cut by the edge were left out


# ---- strain_error ------------------------------------------------------------------------------------------------
def test_strain_error_bias_std_rms_mask_nan():
    truth = np.zeros((2, 3))
    measured = np.array([[1e-3, 3e-3, np.nan], [1e-3, 3e-3, 5.0]])
    mask = np.array([[True, True, True], [True, True, False]])
    e = strain_error(measured, truth, mask)
    assert e["n"] == 4
    assert e["bias"] == pytest.approx(2e-3) and e["std"] == pytest.approx(1e-3)
    assert e["rms"] == pytest.approx(np.sqrt(5e-6)) and e["max_abs"] == pytest.approx(3e-3)
    none = strain_error(measured, truth, np.zeros((2, 3), bool))
    assert none["n"] == 0 and np.isnan(none["rms"])
    with pytest.raises(InputError, match="measured map has shape"):
        strain_error(np.zeros((2, 2)), truth)
    with pytest.raises(InputError, match="mask must be a boolean array"):
        strain_error(truth, truth, np.ones((2, 3)))


def test_lattice_distortion_sees_a_scaled_lattice_and_not_a_shift():
    from py4dstem_ndpd.evaluate import lattice_distortion

    truth = make_truth([GRID, GRID, GRID], scan_shape=(1, 3))
    t = np.array([(x, y) for x, y, _ in GRID])
    scaled = 0.99 * t + [0.2, -0.1]  # every disk 1 % towards the origin (0, 0), plus a shift
    sheared = t @ np.array([[1.0, 0.002], [0.002, 1.0]]) + 0.5
    d = lattice_distortion(detections([[tuple(p) for p in t + 0.7], [tuple(p) for p in scaled],
                                       [tuple(p) for p in sheared]], (1, 3)), truth)
    assert d.shape == (1, 3, 3)
    np.testing.assert_allclose(d[0, 0], 0.0, atol=1e-6)  # a shift of every disk: no distortion (float32 peaks)
    np.testing.assert_allclose(d[0, 1], [-0.01, -0.01, 0.0], atol=1e-6)
    np.testing.assert_allclose(d[0, 2], [0.0, 0.0, 0.002], atol=1e-6)
    # too few matched disks: NaN
    few = lattice_distortion(detections([[tuple(p) for p in t[:2]]]), make_truth([GRID]))
    assert np.isnan(few).all()
