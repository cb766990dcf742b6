import numpy as np

from py4dstem_ndpd.detect.backend import _resize_batch
from py4dstem_ndpd.detect.preprocess import LOG_RANGE, SCALE_PERCENTILE, kth_smallest, normalize, to_uint8


def test_normalisation_is_scale_invariant_and_bounded():
    rng = np.random.default_rng(0)
    x = rng.poisson(5.0, (2, 64, 64)).astype(np.uint16)
    v1 = normalize(x)
    v2 = normalize(x.astype(np.float64) * 1000.0)
    assert v1.dtype == np.float32 and v1.shape == x.shape
    assert 0.0 <= v1.min() and v1.max() <= 1.0
    np.testing.assert_allclose(v1, v2, atol=1e-5)


def test_all_zero_and_negative_patterns():
    z = normalize(np.zeros((32, 32)))
    assert np.all(z == 0)
    neg = normalize(-np.ones((32, 32)))
    assert np.all(neg == 0)


def test_direct_beam_saturates_instead_of_compressing():
    x = np.ones((128, 128)) * 2.0
    x[60:68, 60:68] = 1e6  # a bright direct beam (64 px = 0.4 %)
    x[10:14, 10:14] = 50.0  # a faint disk
    v = normalize(x)
    assert v[64, 64] == 1.0
    assert v[12, 12] > 0.5  # the faint disk stays well visible
    assert to_uint8(v).dtype == np.uint8


def test_resize_pads_non_square_and_reports_scale():
    v = np.random.default_rng(1).random((3, 300, 200)).astype(np.float32)
    out, scale, hw = _resize_batch(v, 256)
    assert out.shape == (3, 256, 256)
    assert hw == (256, 171)
    assert scale == (300 / 256, 200 / 171)
    assert np.all(out[:, :, 171:] == 0)


def _normalize_reference(frames):
    """The documented formula, written out with a full partition (the implementation takes a faster path)."""
    x = np.maximum(np.asarray(frames, np.float32), 0.0)
    flat = x.reshape(len(x), -1)
    k = min(max(int(round(flat.shape[1] * SCALE_PERCENTILE / 100.0)), 0), flat.shape[1] - 1)
    s = np.partition(flat, k, axis=1)[:, k]
    s = np.where(s > 0, s, flat.max(axis=1))
    s = np.where(s > 0, s, 1.0).astype(np.float32)
    v = np.log1p(x * (LOG_RANGE / s)[:, None, None]) / np.float32(np.log1p(LOG_RANGE))
    return np.clip(v, 0.0, 1.0)


def test_kth_smallest_equals_a_full_partition():
    rng = np.random.default_rng(3)
    cases = [rng.poisson(0.01, (4, 4096)), rng.poisson(5.0, (4, 4096)), rng.random((4, 4096)),
             np.zeros((2, 4096)), rng.integers(0, 3, (4, 4096)), rng.random((3, 7))]
    # a row whose sampled pixels are all bright: the threshold comes out too high and the full partition is used
    tricky = np.zeros((1, 4096))
    tricky[0, ::16] = 10.0
    cases.append(tricky)
    for a in cases:
        a = a.astype(np.float32)
        for k in (0, a.shape[1] // 2, int(round(a.shape[1] * 0.995)) - 1, a.shape[1] - 1):
            np.testing.assert_array_equal(kth_smallest(a, k), np.partition(a, k, axis=1)[:, k])


def test_normalize_is_exactly_the_documented_formula():
    rng = np.random.default_rng(4)
    x = rng.poisson(2.0, (3, 96, 80)).astype(np.float32)
    x[:, 40:48, 36:44] = 5e4
    for arr in (x, x.astype(np.uint16), x.astype(np.float64) * 0.01, -x):
        np.testing.assert_array_equal(normalize(arr), _normalize_reference(arr))
    np.testing.assert_array_equal(normalize(x[0]), _normalize_reference(x[:1])[0])
