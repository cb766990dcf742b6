"""Rendering of disks and background, and the detector model (blur, Poisson counts, defects, saturation)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from py4dstem_ndpd.exceptions import ConfigError
from py4dstem_ndpd.synth.render import (
    BackgroundBatch, DetectorModel, DiskBatch, blur, detect_counts, gaussian_kernel, render_background,
    render_disks,
)


def disks(qx, qy, weight, *, radius=4.0, edge=0.6, ripple=0.0, period=4.0, shape_matrix=None) -> DiskBatch:
    """A DiskBatch from (B, D) arrays (or scalars for one disk in one pattern)."""
    qx, qy, weight = (np.atleast_2d(np.asarray(v, float)) for v in (qx, qy, weight))
    B, D = qx.shape
    M = np.broadcast_to(np.eye(2) if shape_matrix is None else np.asarray(shape_matrix, float), (B, 2, 2)).copy()
    return DiskBatch(
        qx=qx, qy=qy, weight=weight, radius=np.full(B, radius), edge=np.full(B, edge),
        ripple=np.full((B, D), ripple), ripple_period=np.full((B, D), period), shape_matrix=M,
    )


def centroid(img: np.ndarray) -> np.ndarray:
    x, y = np.indices(img.shape)
    return np.array([(img * x).sum(), (img * y).sum()]) / img.sum()


SUBPIXEL = [(31.0, 40.0), (31.37, 40.81), (30.5, 39.5), (32.93, 41.06)]


@pytest.mark.parametrize("cx, cy", SUBPIXEL)
def test_single_disk_integrates_to_weight(cx, cy):
    img = render_disks(disks(cx, cy, 1234.5), (64, 80))
    assert img.shape == (1, 64, 80) and img.dtype == np.float32
    assert img.sum(dtype=np.float64) == pytest.approx(1234.5, rel=1e-5)
    assert img.min() >= 0


@pytest.mark.parametrize("cx, cy", SUBPIXEL)
@pytest.mark.parametrize(
    "options",
    [{}, {"radius": 1.5, "edge": 0.6}, {"radius": 9.0, "ripple": 0.3, "period": 3.0},
     {"shape_matrix": [[1.03, 0.02], [-0.01, 0.97]]}],
    ids=["default", "small", "large-ripple", "elliptic"],
)
def test_disk_centroid_equals_its_centre(cx, cy, options):
    """Holds for edges of >= ~0.6 px (the presets' value). Sharper edges are point-sampled with aliasing: their
    centroid is off by up to ~0.04 px (0.3 px edge) - the truth centre stays the geometric one."""
    img = render_disks(disks(cx, cy, 1e4, **options), (64, 80))[0].astype(np.float64)
    assert centroid(img) == pytest.approx([cx, cy], abs=0.01)


def test_disk_profile_is_flat_inside_and_zero_outside():
    img = render_disks(disks(32.0, 32.0, 1.0, radius=8.0, edge=0.5), (64, 64))[0]
    inside = img[32, 32]
    assert img[32, 32 + 6] == pytest.approx(inside, rel=1e-3)
    assert img[32, 32 + 11] < 1e-4 * inside
    assert img[32, 32 + 8] == pytest.approx(0.5 * inside, rel=0.02)  # half height at the radius
    # flat top: the disk integrates to weight, so the top is ~ weight / (pi R^2)
    assert inside == pytest.approx(1 / (np.pi * 64), rel=0.03)


def test_disk_cut_by_the_edge_is_the_crop_of_the_full_disk():
    """A disk centred at row 0 keeps the part on the detector, with the same pixel values as the full disk."""
    cut = render_disks(disks([[0.3, 33.2]], [[40.7, 79.6]], [[500.0, 700.0]]), (34, 80))[0]
    full = render_disks(disks([[10.3, 43.2]], [[50.7, 89.6]], [[500.0, 700.0]]), (54, 100))[0][10:44, 10:90]
    assert cut == pytest.approx(full, abs=1e-4)
    # the first disk has its centre 0.8 px inside the detector edge: a bit more than half of it is recorded
    half_disk = render_disks(disks(0.3, 40.7, 500.0), (34, 80))[0].sum()
    assert 0.5 * 500 < half_disk < 0.75 * 500


def test_disk_entirely_off_the_detector_draws_nothing():
    img = render_disks(disks([[-20.0, 10.0]], [[10.0, 200.0]], [[1e3, 1e3]]), (32, 32))
    assert not img.any()


def test_zero_weight_and_nan_centres_draw_nothing():
    img = render_disks(disks([[10.0, np.nan, 20.0]], [[10.0, 5.0, np.nan]], [[0.0, 1e3, 1e3]]), (32, 32))
    assert img.shape == (1, 32, 32) and not img.any()


def test_batch_patterns_are_independent_and_overlapping_disks_add():
    b = disks([[20.0, 22.5], [40.2, np.nan]], [[20.0, 21.0], [30.1, 0.0]], [[100.0, 50.0], [70.0, 0.0]])
    img = render_disks(b, (64, 64))
    one = render_disks(disks(20.0, 20.0, 100.0), (64, 64))[0]
    two = render_disks(disks(22.5, 21.0, 50.0), (64, 64))[0]
    assert img[0] == pytest.approx(one + two, abs=1e-5)  # overlapping patches are summed, not overwritten
    assert img[1] == pytest.approx(render_disks(disks(40.2, 30.1, 70.0), (64, 64))[0], abs=1e-6)


def test_background_integrates_to_weight_and_peaks_at_origin():
    bg = BackgroundBatch(
        origin=np.array([[30.3, 35.6], [20.0, 20.0]]), weight=np.array([1e4, 5e3]), decay=np.array([8.0, 20.0]),
        ring_fraction=np.array([0.0, 0.5]), ring_radius=np.array([10.0, 12.0]), ring_width=np.array([2.0, 2.0]),
    )
    img = render_background(bg, (64, 72))
    assert img.shape == (2, 64, 72) and img.dtype == np.float32
    assert img.sum(axis=(1, 2), dtype=np.float64) == pytest.approx([1e4, 5e3], rel=1e-5)
    assert np.unravel_index(np.argmax(img[0]), img[0].shape) == (30, 36)
    # pattern 1: half in a ring of radius 12 px around (20, 20)
    x, y = np.indices((64, 72))
    r = np.hypot(x - 20, y - 20)
    ring_profile = [img[1][np.abs(r - rr) < 0.5].mean() for rr in (6, 12, 18)]
    assert ring_profile[1] > ring_profile[0] and ring_profile[1] > ring_profile[2]


@pytest.mark.parametrize("sigma", [0.3, 0.6, 1.5, 2.4])
def test_blur_equals_scipy_gaussian_filter_with_zero_boundary(sigma):
    img = np.random.default_rng(0).random((3, 40, 33)).astype(np.float32)
    ref = ndimage.gaussian_filter(img, (0, sigma, sigma), mode="constant")
    assert blur(img, sigma) == pytest.approx(ref, abs=2e-6)
    assert gaussian_kernel(sigma).sum() == pytest.approx(1.0)
    assert blur(img, 0.0) is img


def test_noise_free_mode_returns_the_blurred_expectation():
    expected = render_disks(disks(20.2, 30.7, 1e3), (48, 48))
    out = detect_counts(expected, DetectorModel(blur_sigma=0.6), np.random.default_rng(0), noise=False)
    assert out.dtype == np.float32
    assert out == pytest.approx(ndimage.gaussian_filter(expected, (0, 0.6, 0.6), mode="constant"), rel=1e-5, abs=1e-6)
    assert out.sum() == pytest.approx(1e3, rel=1e-4)  # the disk is far from the edges: the blur keeps the dose


def test_poisson_counts_have_poisson_mean_and_variance():
    lam = np.full((4, 64, 64), 3.0, np.float32)
    counts = detect_counts(lam, DetectorModel(blur_sigma=0.0), np.random.default_rng(1))
    assert counts.dtype == np.uint32
    n = counts.size
    assert counts.mean() == pytest.approx(3.0, abs=5 * np.sqrt(3.0 / n))
    assert counts.var() == pytest.approx(3.0, rel=0.05)


def test_per_pattern_generators_make_noise_independent_of_batching_and_threads():
    lam = np.random.default_rng(2).uniform(0, 50, (6, 32, 32)).astype(np.float32)
    det = DetectorModel(blur_sigma=0.6)
    whole = detect_counts(lam, det, [np.random.default_rng([7, k]) for k in range(6)])
    threaded = detect_counts(lam, det, [np.random.default_rng([7, k]) for k in range(6)], workers=2)
    split = np.concatenate([
        detect_counts(lam[:2], det, [np.random.default_rng([7, k]) for k in range(2)]),
        detect_counts(lam[2:], det, [np.random.default_rng([7, k]) for k in range(2, 6)]),
    ])
    assert np.array_equal(whole, threaded) and np.array_equal(whole, split)
    with pytest.raises(ConfigError, match="one per pattern"):
        detect_counts(lam, det, [np.random.default_rng(0)] * 5)


def test_saturation_and_hot_dead_pixels():
    lam = np.full((2, 100, 100), 10.0, np.float32)
    lam[:, 50, 50] = 1e6
    det = DetectorModel(blur_sigma=0.0, hot_fraction=0.01, dead_fraction=0.02, bits=16, seed=5)
    counts = detect_counts(lam, det, np.random.default_rng(0))
    assert counts.dtype == np.uint16
    assert counts[0, 50, 50] == 65535 and counts[1, 50, 50] == 65535
    hot, dead = det.defect_masks((100, 100))
    assert 50 < hot.sum() < 150 and 120 < dead.sum() < 280 and not (hot & dead).any()
    assert np.all(counts[:, hot] == 65535) and np.all(counts[:, dead] == 0)
    # the same detector has the same defects in every pattern and every call
    again = detect_counts(lam, det, np.random.default_rng(1))
    assert np.array_equal(again[:, hot | dead], counts[:, hot | dead])


def test_detector_model_validates_its_options():
    with pytest.raises(ConfigError, match="blur_sigma"):
        DetectorModel(blur_sigma=-1.0)
    with pytest.raises(ConfigError, match="hot_fraction"):
        DetectorModel(hot_fraction=0.7, dead_fraction=0.5)
    with pytest.raises(ConfigError, match="bits"):
        DetectorModel(bits=24)


def _texture(D=1, *, gradient=(0.0, 0.0), fringe=(0.0, 0.0), line=(0.0, 0.0, 0.0, 0.2)):
    from py4dstem_ndpd.synth.render import DiskTexture

    amp, angle, offset, width = line
    return DiskTexture(
        gradient=np.tile(np.asarray(gradient, float), (1, D, 1)),
        fringe_centre=np.tile(np.asarray(fringe, float), (1, D, 1)),
        line_amplitude=np.full((1, D), amp), line_angle=np.full((1, D), angle), line_offset=np.full((1, D), offset),
        line_width=np.full((1, D), width),
    )


def test_texture_moves_the_intensity_centroid_not_the_disk_edge():
    plain = disks(31.3, 40.6, 5000.0, radius=8.0)
    tilted = disks(31.3, 40.6, 5000.0, radius=8.0)
    tilted.texture = _texture(gradient=(0.8, 0.0))
    a, b = render_disks(plain, (64, 80))[0], render_disks(tilted, (64, 80))[0]
    assert b.sum(dtype=np.float64) == pytest.approx(5000.0, rel=1e-5)  # still integrates to its weight
    assert centroid(b)[0] - 31.3 > 1.0  # brighter towards +qx: the centroid moves by more than a pixel
    assert abs(centroid(b)[1] - 40.6) < 0.02
    # the aperture's image is unchanged: the textured disk is the plain one times the ramp, edge included
    x, _ = np.indices(a.shape)
    ramp = np.clip(1.0 + 0.8 * (x - 31.3) / 8.0, 0, None)
    on = (a > 1e-4 * a.max()) & (ramp > 0.05)
    ratio = b[on] / (a[on] * ramp[on])
    np.testing.assert_allclose(ratio, np.median(ratio), rtol=2e-3)


def test_texture_line_darkens_a_band_and_off_centre_fringes_break_the_symmetry():
    line = disks(32.0, 32.0, 5000.0, radius=10.0)
    line.texture = _texture(line=(0.9, 0.0, 0.0, 0.1))  # dark line through the centre, normal along qx
    img = render_disks(line, (64, 64))[0]
    assert img[32, 32] < 0.2 * img[37, 32]
    ring = disks(32.0, 32.0, 5000.0, radius=10.0, ripple=0.4, period=3.0)
    ring.texture = _texture(fringe=(0.5, 0.0))
    img = render_disks(ring, (65, 65))[0]  # centre on pixel 32 of 0..64: mirror images are about the centre
    assert not np.allclose(img, img[::-1, :], rtol=0.05, atol=1e-3 * img.max())  # no longer symmetric in qx
    np.testing.assert_allclose(img, img[:, ::-1], rtol=1e-4, atol=1e-6 * img.max())  # still symmetric in qy
