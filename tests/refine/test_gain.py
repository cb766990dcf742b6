"""estimate_gain: the data's quantum, or 1."""
import numpy as np
import pytest

from py4dstem_ndpd.refine import estimate_gain

COUNTS = np.random.default_rng(0).poisson(1.5, (3, 40, 40))


@pytest.mark.parametrize("scale", [0.25, 1e-3, 2.5])
def test_scaled_counts_give_their_quantum(scale):
    assert estimate_gain((COUNTS * scale).astype(np.float32)) == pytest.approx(scale, rel=1e-5)


def test_integer_continuous_and_empty_data_give_one():
    assert estimate_gain(COUNTS.astype(np.uint16)) == 1.0
    assert estimate_gain(COUNTS.astype(np.float32)) == 1.0
    assert estimate_gain(3.0 * COUNTS) == 1.0  # integer-valued: counts, even if all are multiples of 3
    assert estimate_gain(COUNTS + np.random.default_rng(1).normal(0, 0.1, COUNTS.shape)) == 1.0
    assert estimate_gain(np.zeros((2, 8, 8), np.float32)) == 1.0
    assert estimate_gain(np.zeros((0, 8, 8), np.float32)) == 1.0


def test_the_refinement_reports_the_gain_it_used(case):
    from py4dstem_ndpd.refine import RefineOptions, refine
    from py4dstem_ndpd.refine.benchmark import detector_like

    c = case("si_sige_multilayer", 1e5)
    det = detector_like(c.truth)
    assert refine(c.frames * 0.25, det, radius_px=c.radius).gain == pytest.approx(0.25)  # read from the data
    assert refine(c.frames, det, radius_px=c.radius, options=RefineOptions(gain=7.0)).gain == 7.0  # given
