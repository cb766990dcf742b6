"""duplicate_detections: which of two detections of one disk is kept; and the held-out camera that needed it."""
from pathlib import Path

import numpy as np

from py4dstem_ndpd.refine import Refinement
from py4dstem_ndpd.refine.duplicates import DUPLICATE_RADII, duplicate_detections

DATA = Path(__file__).parents[1] / "data"


def _refinement(centres, lattice, snr):
    return Refinement(centres=[np.asarray(centres, float)], origin=np.array([[50.0, 50.0]]),
                      bases=np.full((1, 2, 2, 2), 20.0), lattice=[np.asarray(lattice)],
                      uv=[np.zeros((len(lattice), 2), int)], snr=[np.asarray(snr, float)], method="lattice")


# three disks of lattice 0, one of lattice 1; a fifth detection 1.5 px from the disk at (70, 50)
CENTRES = [[50.0, 50.0], [70.0, 50.0], [90.0, 50.0], [50.0, 80.0], [71.5, 50.0]]


def test_the_off_lattice_detection_next_to_an_indexed_one_goes_even_if_brighter():
    flags = duplicate_detections(_refinement(CENTRES, [0, 0, 0, 1, -1], [9, 9, 9, 9, 50]), radius_px=4.0)[0]
    assert flags.tolist() == [False, False, False, False, True]


def test_between_two_lattices_the_bigger_one_keeps_its_disk_and_then_the_brighter():
    flags = duplicate_detections(_refinement(CENTRES, [0, 0, 0, 1, 1], [9, 9, 9, 9, 50]), radius_px=4.0)[0]
    assert flags.tolist() == [False, False, False, False, True]
    flags = duplicate_detections(_refinement(CENTRES, [0, -1, 0, 1, -1], [9, 5, 9, 9, 50]), radius_px=4.0)[0]
    assert flags.tolist() == [False, True, False, False, False]


def test_detections_half_a_radius_apart_or_more_are_kept():
    centres = CENTRES[:4] + [[70.0 + DUPLICATE_RADII * 4.0, 50.0]]
    assert not duplicate_detections(_refinement(centres, [0, 0, 0, 1, -1], [9] * 5), radius_px=4.0)[0].any()
    # disks of two phases 1.4 radii apart (the closest overlap in tinb_multiphase)
    centres = CENTRES[:4] + [[75.6, 50.0]]
    assert not duplicate_detections(_refinement(centres, [0, 0, 0, 1, -1], [9] * 5), radius_px=4.0)[0].any()


def test_empty_patterns_and_patterns_without_lattices():
    r = Refinement(centres=[np.zeros((0, 2)), np.array([[10.0, 10.0], [10.5, 10.0]])],
                   origin=np.zeros((2, 2)), bases=np.full((2, 1, 2, 2), np.nan),
                   lattice=[np.zeros(0, int), np.array([-1, -1])], uv=[np.zeros((0, 2), int), np.zeros((2, 2), int)],
                   snr=[np.zeros(0), np.array([3.0, 7.0])], method="probe")
    flags = duplicate_detections(r, radius_px=4.0)
    assert flags[0].shape == (0,)
    assert flags[1].tolist() == [True, False]


def test_a_scintillator_camera_on_held_out_abtem_patterns_gives_one_detection_per_disk():
    """Blurred abTEM Si (the bench_detectors validation camera): the network fired twice on two disks before."""
    from py4dstem_ndpd.api import detect_scan
    from py4dstem_ndpd.evaluate import evaluate_detections
    from py4dstem_ndpd.synth.cameras import Scintillator
    from py4dstem_ndpd.synth.external import load_external

    ext = load_external(DATA / "abtem_si110_40-80nm.npz", dose=1e5, seed=5)[0]
    cam = Scintillator(tail_fraction=0.15, tail_px=12.0, gain=35.0, gain_shape=5.0)
    peaks = detect_scan(cam.apply(ext.frames, np.random.default_rng(5)), progress=False)
    m = evaluate_detections(peaks, ext.truth, min_snr=3.0)
    assert m.recall == 1.0 and m.precision == 1.0, m
    for p in peaks.peaks:
        d = np.hypot(p["qx"][:, None] - p["qx"][None], p["qy"][:, None] - p["qy"][None])
        np.fill_diagonal(d, np.inf)
        assert d.min() >= DUPLICATE_RADII * ext.truth.disk_radius
