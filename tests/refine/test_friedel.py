"""The origin from a pattern's Friedel pairs where a chip cross covers most of the direct beam."""
import numpy as np
import pytest

from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend
from py4dstem_ndpd.evaluate import match_peaks
from py4dstem_ndpd.refine.friedel import _dead_in_disk, friedel_origin
from py4dstem_ndpd.synth import Acquisition, simulate_preset
from py4dstem_ndpd.synth.cameras import QuadGaps


def test_friedel_origin_finds_the_centre_of_a_symmetric_pattern_with_a_dead_centre():
    qx, qy = np.indices((64, 64))
    c = np.array([31.3, 32.6])
    g = np.array([[12.0, 1.0], [-2.0, 11.0], [10.0, 12.0]])
    pos = np.concatenate([c + g, c - g])
    img = sum(np.clip(4.5 - np.hypot(qx - p[0], qy - p[1]), 0, 1) * 100.0 for p in pos)
    dead = np.hypot(qx - c[0], qy - c[1]) <= 5  # the direct beam is gone
    # a noiseless image: no shot noise to take off (gain ~ 0)
    found = friedel_origin(img * ~dead, dead, pos + 0.3, 4.0, c + np.array([0.4, -0.3]), gain=1e-9)
    assert np.linalg.norm(found - c) < 0.03  # measured 0.020 (bilinear point images, no noise); start 0.5 px off


def test_the_shot_noise_of_the_point_image_does_not_pull_the_origin_towards_half_pixels():
    # a centre on the pixel grid: every point image is read on a pixel, where its noise is largest; a plain sum of
    # squares prefers centres a quarter pixel away (measured: 0.169 px RMS over 12 Poisson draws, corrected 0.068)
    qx, qy = np.indices((64, 64))
    c = np.array([31.0, 32.0])
    g = np.array([[12.0, 1.0], [-2.0, 11.0], [10.0, 12.0]])
    pos = np.concatenate([c + g, c - g])
    img = sum(np.clip(4.5 - np.hypot(qx - p[0], qy - p[1]), 0, 1) * 10.0 for p in pos) + 0.2  # counts per px
    dead = np.hypot(qx - c[0], qy - c[1]) <= 5
    rng = np.random.default_rng(1)
    start = c + np.array([0.2, -0.15])
    corrected, plain = [], []
    for _ in range(12):
        x = rng.poisson(img).astype(float)
        corrected.append(friedel_origin(x, dead, pos + 0.3, 4.0, start, gain=1.0) - c)
        plain.append(friedel_origin(x, dead, pos + 0.3, 4.0, start, gain=1e-9) - c)
    rms_corrected = np.sqrt(np.mean(np.sum(np.square(corrected), 1)))
    rms_plain = np.sqrt(np.mean(np.sum(np.square(plain), 1)))
    assert rms_corrected < 0.1
    assert rms_corrected < 0.6 * rms_plain


def test_a_cross_over_the_direct_beam_no_longer_shifts_every_disk():
    # validation setting (seed 9006, cross at (-1, 2) from the centre): with the probe's own symmetry centre
    # the common shift of the disks was 0.14 px RMS, from the Friedel pairs 0.012 px (scratch measurement)
    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(2, 2), pattern_shape=(256, 256), dose=1e6,
                                                             seed=9006))
    frames = QuadGaps(width_px=3, offset_px=(-1, 2)).apply(np.asarray(scan.data)).reshape(4, 256, 256)
    tabs = NDPDBackend(options=DetectOptions()).detect(frames)
    shifts = []
    for i, t in enumerate(tabs):
        d = scan.truth.disks[scan.truth.offsets[i]:scan.truth.offsets[i + 1]]
        tr = np.stack([d["qx"], d["qy"]], 1)[d["snr"] >= 3]
        q = np.stack([t["qx"], t["qy"]], 1)
        di, ti = match_peaks(q, tr, scan.truth.disk_radius)
        shifts.append(np.median(q[di] - tr[ti], 0))
    assert np.sqrt((np.array(shifts) ** 2).sum(1).mean()) < 0.05


def test_the_dead_pixels_of_the_direct_beam_are_counted_as_over_the_full_frame_near_and_beyond_the_edges():
    rng = np.random.default_rng(3)
    dead = rng.random((40, 56)) < 0.3
    qx, qy = np.indices(dead.shape)
    for c, r in [((20.3, 28.7), 5.0), ((0.4, 55.2), 4.0), ((-3.0, 10.0), 4.5), ((70.0, 70.0), 3.0)]:
        inside = np.hypot(qx - c[0], qy - c[1]) <= r
        assert _dead_in_disk(dead, np.array(c), r) == (int(dead[inside].sum()), int(inside.sum()))
