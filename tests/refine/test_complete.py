"""Lattice completion: which sites are tested, and what it finds on a simulated low-dose scan with exact truth."""
import numpy as np
import pytest

from py4dstem_ndpd.detect.backend import DetectOptions
from py4dstem_ndpd.exceptions import ConfigError
from py4dstem_ndpd.refine import Refinement
from py4dstem_ndpd.refine.complete import CompletionOptions, complete_lattices, empty_sites

B = np.array([[30.0, 0.0], [0.0, 30.0]])
ORIGIN = np.array([100.0, 100.0])


def _refinement(uv_found):
    uv = np.asarray(uv_found, int)
    centres = ORIGIN + uv @ B
    return Refinement(centres=[centres], origin=ORIGIN[None], bases=np.concatenate(
        [B[None, None], np.full((1, 1, 2, 2), np.nan)], 1), lattice=[np.zeros(len(uv), int)], uv=[uv],
        snr=[np.full(len(uv), 20.0)], method="lattice")


# a 3 x 3 block of sites found (direct beam in the middle) except (1, 1)
FOUND = [(0, 0), (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0)]


def test_empty_sites_are_the_free_sites_within_one_shell():
    sites = empty_sites(_refinement(FOUND), (200, 200), radius_px=4.0)
    uv = {tuple(x) for x in sites.uv}
    assert (1, 1) in uv  # the hole
    assert not uv & set(FOUND)  # never where a disk was found
    # one shell beyond the farthest found disk (|(1, 1)| = 42 px, + 30 px), and the whole disk on the detector
    assert all(np.hypot(*(c - ORIGIN)) <= np.hypot(30, 30) + 30 + 1e-9 for c in sites.centres)
    assert all(4.0 + 2.0 <= c.min() and c.max() <= 199 - 6.0 for c in sites.centres)
    assert (2, 0) in uv and (3, 0) not in uv
    # too few indexed disks: the lattice is not trusted
    assert empty_sites(_refinement(FOUND[:5]), (200, 200), 4.0).group.size == 0


def test_a_disk_at_a_hole_is_found_and_empty_sites_stay_empty():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:200, :200]
    frame = np.full((200, 200), 2.0)
    for u, v in FOUND + [(1, 1)]:  # every found disk and a faint one at the hole
        q = ORIGIN + np.array([u, v]) @ B
        frame += (np.hypot(yy - q[0], xx - q[1]) <= 4.0) * (40.0 if (u, v) != (1, 1) else 4.0)
    frames = rng.poisson(frame)[None].astype(np.float32)
    found = complete_lattices(frames, _refinement(FOUND), 4.0, CompletionOptions(min_snr=4.0))
    assert [tuple(x) for x in found.uv] == [(1, 1)]  # ~200 electrons over ~2 per px: SNR ~10; nothing else
    np.testing.assert_allclose(found.centres[0], ORIGIN + [30.0, 30.0])
    assert found.tested > 1


def test_completion_finds_missed_disks_at_low_dose_without_false_positives():
    from py4dstem_ndpd.api import detect_scan
    from py4dstem_ndpd.evaluate import evaluate_detections
    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(4, 4), pattern_shape=(256, 256), dose=1e3,
                                                             seed=5801))
    off = detect_scan(scan.datacube, options=DetectOptions(batch_size=16), progress=False)
    on = detect_scan(scan.datacube, options=DetectOptions(batch_size=16, min_snr_empty_sites=3.0), progress=False)
    m_off = evaluate_detections(off, scan.truth, min_snr=3.0, snr="integrated")
    m_on = evaluate_detections(on, scan.truth, min_snr=3.0, snr="integrated")
    assert m_on.recall > m_off.recall + 0.05  # validation scans: 0.72 -> 0.87
    assert m_on.n_false_positive == 0
    for rx, ry in np.ndindex(4, 4):  # the network's disks are kept unchanged; the new ones have confidence 0
        a, b = off.at(rx, ry), on.at(rx, ry)
        np.testing.assert_array_equal(b[: len(a)], a)
        assert np.all(b["confidence"][len(a):] == 0)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="min_snr_empty_sites"):
        DetectOptions(min_snr_empty_sites=0)
    with pytest.raises(ConfigError, match="min_indexed"):
        CompletionOptions(min_indexed=1)
