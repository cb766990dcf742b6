import numpy as np

from py4dstem_ndpd.detect.backend import _resize_batch
from py4dstem_ndpd.detect.preprocess import normalize, to_uint8


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
