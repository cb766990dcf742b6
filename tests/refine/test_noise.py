"""noise_detections: each of its four conditions, on a Refinement built by hand."""
import numpy as np

from py4dstem_ndpd.refine import Refinement
from py4dstem_ndpd.refine.noise import noise_detections


def _refinement(centres, lattice, snr, has_lattice=True):
    bases = np.full((1, 2, 2, 2), np.nan)
    if has_lattice:
        bases[0, 0] = [[20.0, 0.0], [0.0, 20.0]]
    return Refinement(centres=[np.asarray(centres, float)], origin=np.array([[50.0, 50.0]]), bases=bases,
                      lattice=[np.asarray(lattice)], uv=[np.zeros((len(lattice), 2), int)],
                      snr=[np.asarray(snr, float)], method="lattice")


# ten disks on the lattice (one bright, next to the second candidate), two faint off-lattice detections
ON = [[50 + 20 * i, 50 + 20 * j] for i in range(5) for j in range(2)]
CENTRES = ON + [[0.0, 200.0], [52.0, 62.0]]
LATTICE = [0] * 10 + [-1, -1]
SNR = [40.0] + [8.0] * 9 + [3.0, 3.0]


def test_an_isolated_faint_detection_off_the_lattice_is_flagged():
    flags = noise_detections(_refinement(CENTRES, LATTICE, SNR), radius_px=4.0)[0]
    # the first candidate is far from every disk; the second is 12 px from the bright direct beam (< 2 * 4 + 10)
    assert flags.tolist() == [False] * 10 + [True, False]


def test_nothing_is_flagged_when_the_lattice_explains_too_little_or_is_missing():
    # 10 of 14 detections indexed (71 % < 80 %)
    many_off = noise_detections(_refinement(CENTRES + [[0, 0], [200, 0]], LATTICE + [-1, -1], SNR + [3, 3]), 4.0)[0]
    assert not many_off.any()
    assert not noise_detections(_refinement(CENTRES, LATTICE, SNR, has_lattice=False), 4.0)[0].any()


def test_bright_or_indexed_detections_are_kept():
    snr = SNR[:10] + [6.0, 3.0]  # the first candidate is now above min_snr = 5
    assert not noise_detections(_refinement(CENTRES, LATTICE, snr), 4.0)[0].any()
    assert not noise_detections(_refinement(CENTRES, [0] * 12, SNR), 4.0)[0].any()
    assert noise_detections(_refinement(CENTRES, LATTICE, SNR), 4.0, min_snr=2.0)[0].sum() == 0


def _frames(candidate_counts: float, seed: int = 0) -> np.ndarray:
    """One 220 x 220 pattern: background 2 e-/px, the bright disk at (50, 50) and a disk of ``candidate_counts``
    e-/px at the second candidate (52, 62), radius 4, Poisson counts."""
    q = np.mgrid[0:220, 0:220].astype(float)
    lam = np.full((220, 220), 2.0)
    lam[np.hypot(q[0] - 50, q[1] - 50) <= 4] += 400.0
    lam[np.hypot(q[0] - 52, q[1] - 62) <= 4] += candidate_counts
    return np.random.default_rng(seed).poisson(lam)[None].astype(np.float32)


def test_next_to_a_bright_disk_the_snr_is_measured_again_without_it():
    r = _refinement(CENTRES, LATTICE, SNR)
    # nothing at the second candidate: its SNR without the bright neighbour in its background says so
    empty = noise_detections(r, 4.0, frames=_frames(0.0))[0]
    assert empty.tolist() == [False] * 10 + [True, True]
    # a real disk there (20 e-/px over 2; robust SNR about 28, the refinement's -1.2): kept, as without the frames
    real = noise_detections(r, 4.0, frames=_frames(20.0))[0]
    assert real.tolist() == [False] * 10 + [True, False]
