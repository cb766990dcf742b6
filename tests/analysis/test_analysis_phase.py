"""k-means phase maps from interatomic distances, against the simulator's phase labels."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from py4dstem_ndpd.analysis.phase import PhaseOptions, PhaseResult, phase_map
from py4dstem_ndpd.bridge import to_braggvectors, truth_to_scanpeaks
from py4dstem_ndpd.exceptions import ConfigError, InputError
from py4dstem_ndpd.peaks import ScanPeaks, make_peaks


@pytest.fixture(scope="module")
def tinb_truth_result(tinb24):
    bv = to_braggvectors(truth_to_scanpeaks(tinb24.truth), tinb24.datacube.calibration)
    return phase_map(bv)


def test_tinb_truth_peaks_recover_the_phases(tinb24, tinb_truth_result):
    res = tinb_truth_result
    assert isinstance(res, PhaseResult) and res.labels.shape == (24, 24)
    ari = adjusted_rand_score(tinb24.truth.phase.ravel(), res.labels.ravel())
    assert ari >= 0.9  # measured: ARI 1.000, 4 phases chosen by silhouette (0.988 at k=4, next 0.900 at k=5)
    assert res.n_phases == 4
    assert max(res.silhouette, key=res.silhouette.get) == 4 and set(res.silhouette) == {2, 3, 4, 5, 6}


def test_phase_table(tinb24, tinb_truth_result):
    res = tinb_truth_result
    truth = tinb24.truth.phase
    counts = [p.count for p in res.phases]
    assert counts == sorted(counts, reverse=True) and sum(counts) == truth.size
    assert [p.label for p in res.phases] == list(range(res.n_phases))
    for p in res.phases:  # the representative pattern belongs to its phase, and the phase is pure
        rx, ry = p.representative
        assert res.labels[rx, ry] == p.label
        members = truth[res.labels == p.label]
        assert np.all(members == truth[rx, ry])
        assert p.fraction == pytest.approx(p.count / truth.size)
    matrix = res.phases[0]
    assert truth[matrix.representative] == 0
    # bcc a = 3.30 A along [001]: g(110) gives d = a / sqrt(2) = 2.333 A, square lattice
    assert matrix.d1 == pytest.approx(3.30 / np.sqrt(2), rel=0.01)
    assert matrix.angle == pytest.approx(90, abs=1)
    by_truth = {int(truth[p.representative]): p for p in res.phases}
    assert by_truth[1].g1 == pytest.approx(matrix.g1 / (1 - 0.025), rel=0.005)  # precipitate: 2.5 % smaller a
    assert by_truth[2].g1 == pytest.approx(matrix.g1 / 2 / np.sqrt(2), rel=0.01)  # oxide superlattice (1/2 0 0)
    assert by_truth[3].angle == pytest.approx(60, abs=1)  # hcp basal plane
    assert "phase" in res.table() and len(res.table().splitlines()) == res.n_phases + 1


def test_detector_like_peaks(tinb24, perturb):
    """20 % of the disks lost, up to 3 spurious peaks per pattern, 0.3 px centre noise."""
    sp = perturb(truth_to_scanpeaks(tinb24.truth), drop=0.2, spurious=3, noise_px=0.3, seed=0)
    res = phase_map(sp)
    ari = adjusted_rand_score(tinb24.truth.phase.ravel(), res.labels.ravel())
    assert ari >= 0.9  # measured: ARI 1.000, k = 4
    assert res.n_phases == 4
    assert res.phases[0].d1 is None  # ScanPeaks carry no calibration


def test_template_matching_backend(tinb16_template):
    """BraggVectors of py4DSTEM's find_Bragg_disks (recall 0.95, 0.13 px RMS here) give the same phases."""
    scan, bv = tinb16_template
    res = phase_map(bv)
    ari = adjusted_rand_score(scan.truth.phase.ravel(), res.labels.ravel())
    assert ari >= 0.9  # measured: ARI 1.000, k = 4
    assert res.phases[0].d1 == pytest.approx(3.30 / np.sqrt(2), rel=0.01)  # calibration read from the vectors


def test_lattice_features_can_join_the_clustering(tinb24, perturb):
    sp = perturb(truth_to_scanpeaks(tinb24.truth), drop=0.2, spurious=3, noise_px=0.3, seed=1)
    res = phase_map(sp, options=PhaseOptions(features=("radial", "lattice")))
    assert adjusted_rand_score(tinb24.truth.phase.ravel(), res.labels.ravel()) >= 0.9
    assert res.embedding.shape[1] == 3 + 4  # 3 radial PCA components + 4 lattice features


def test_n_phases_override(tinb24, tinb_truth_result):
    res = phase_map(truth_to_scanpeaks(tinb24.truth), n_phases=2)
    assert res.n_phases == 2 and set(np.unique(res.labels)) == {0, 1} and res.silhouette == {}
    # two phases: the oxide (extra superlattice distances) splits off first
    assert np.all(res.labels[tinb24.truth.phase == 2] == 1)


def _pattern(a: float, centre=(32.0, 32.0), extra=()):
    pts = [(centre[0] + i * a, centre[1] + j * a) for i in (-1, 0, 1) for j in (-1, 0, 1)] + list(extra)
    inten = [9.0 if (p[0], p[1]) == centre else 1.0 for p in pts]
    return make_peaks([p[0] for p in pts], [p[1] for p in pts], inten)


def test_uniform_scan_is_one_phase():
    sp = ScanPeaks((3, 3), [_pattern(10.0) for _ in range(9)], (64, 64))
    res = phase_map(sp)
    assert res.n_phases == 1 and np.all(res.labels == 0)
    assert res.phases[0].g1 == pytest.approx(10.0) and res.phases[0].angle == pytest.approx(90.0)


def test_origin_outlier_is_repaired():
    """A pattern whose brightest peak is not the direct beam still gets the right phase."""
    tabs = [_pattern(10.0) for _ in range(8)] + [_pattern(14.0) for _ in range(8)]
    bad = tabs[3].copy()
    bad["intensity"][0] = 50.0  # a Bragg disk brighter than the direct beam
    tabs[3] = bad
    res = phase_map(ScanPeaks((4, 4), tabs, (64, 64)), n_phases=2)
    assert res.labels.ravel().tolist() == [0] * 8 + [1] * 8


def test_errors():
    sp = ScanPeaks((1, 2), [_pattern(10.0), _pattern(12.0)], (64, 64))
    with pytest.raises(ConfigError, match="n_phases"):
        phase_map(sp, n_phases=0)
    with pytest.raises(InputError, match="larger than the number of scan positions"):
        phase_map(sp, n_phases=3)
    with pytest.raises(InputError, match="BraggVectors or a ScanPeaks"):
        phase_map(np.zeros((2, 2)))
    empty = ScanPeaks((1, 2), [make_peaks([], []), make_peaks([], [])], (64, 64))
    with pytest.raises(InputError, match="no position has any Bragg vector"):
        phase_map(empty)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"features": ()}, "features"),
        ({"features": ("radial", "radial")}, "features"),
        ({"features": ("cepstrum",)}, "features"),
        ({"k_range": (1, 4)}, "k_range"),
        ({"k_range": (5, 3)}, "k_range"),
        ({"min_g": -1}, "min_g"),
        ({"radial_sigma": 0}, "radial_sigma"),
        ({"lattice_tolerance": 0}, "lattice_tolerance"),
        ({"min_variance_ratio": 1.0}, "min_variance_ratio"),
        ({"lattice_multiplicity": 1}, "lattice_multiplicity"),
    ],
)
def test_options_are_validated(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PhaseOptions(**kwargs)
