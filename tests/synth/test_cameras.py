"""The held-out camera models: what each does to known counts."""
import numpy as np
import pytest

from py4dstem_ndpd.exceptions import ConfigError, InputError
from py4dstem_ndpd.synth import Acquisition, simulate_preset
from py4dstem_ndpd.synth.cameras import CAMERAS, Binned, QuadGaps, Scintillator


def _disk(shape, centre, radius, value=100):
    qx, qy = np.indices(shape)
    return np.where(np.hypot(qx - centre[0], qy - centre[1]) <= radius, value, 0).astype(np.uint16)


def test_quad_gaps_zero_a_cross_of_the_given_width():
    frames = np.full((2, 64, 48), 7, np.uint16)
    out = QuadGaps(width_px=3, offset_px=(4, -5)).apply(frames)
    assert out.dtype == frames.dtype and out.shape == frames.shape
    dead_rows = np.flatnonzero((out[0] == 0).all(1))
    dead_cols = np.flatnonzero((out[0] == 0).all(0))
    assert dead_rows.tolist() == [35, 36, 37] and dead_cols.tolist() == [18, 19, 20]
    assert (out[0] == 0).sum() == 3 * 48 + 3 * 64 - 9
    assert (frames == 7).all()  # the input is not modified


def test_scintillator_keeps_the_mean_signal_and_spreads_it():
    counts = _disk((96, 96), (48, 48), 6, value=50)
    cam = Scintillator(read_noise_e=0.0)
    k = cam.psf()
    assert k.shape[0] % 2 == 1 and abs(k.sum() - 1) < 1e-12
    out = cam.apply(counts, np.random.default_rng(0))
    assert out.dtype == np.float32
    # total signal ~ gain x electrons (the kernel reaches 5 tail lengths; little falls off the frame)
    assert out.sum() / (cam.gain * counts.sum()) == pytest.approx(1.0, abs=0.03)
    # the tail puts signal far outside the disk, where a counting detector saw nothing
    ring = np.hypot(*(np.indices(counts.shape) - 48)) > 14
    assert counts[ring].sum() == 0 and out[ring].sum() > 0.1 * out.sum()
    with pytest.raises(ConfigError):
        Scintillator(tail_fraction=1.5)


def test_binned_sums_blocks_and_maps_the_truth():
    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(1, 2), pattern_shape=(66, 66), dose=1e5))
    cam = Binned(2)
    out = cam.apply(scan.data)
    assert out.shape == (1, 2, 33, 33) and out.dtype.kind == "u"
    assert out.sum() == scan.data.sum()
    t = cam.truth(scan.truth)
    assert t.pattern_shape == (33, 33) and t.disk_radius == pytest.approx(scan.truth.disk_radius / 2)
    # a disk's centre of mass on the binned grid is its centre of mass on the counting grid, mapped (to within
    # what the parity of its rows and columns adds)
    counts = _disk((64, 64), (20.3, 41.7), 6, value=1000).astype(float)
    b = cam.apply(counts).astype(float)

    def com(a):
        qx, qy = np.indices(a.shape)
        return np.array([(qx * a).sum(), (qy * a).sum()]) / a.sum()

    assert np.allclose(com(b), (com(counts) + 0.5) / 2 - 0.5, atol=0.01)
    with pytest.raises(InputError):
        Binned(4).apply(np.zeros((3, 3)))


def test_the_benchmark_families_are_named():
    assert set(CAMERAS) == {"counting", "quad_gaps", "quad_gaps_centred", "scintillator", "scintillator_lorentzian",
                            "binned_2x", "integrating_blur"} and CAMERAS["counting"] is None
    assert CAMERAS["integrating_blur"].tail_fraction == 0 and CAMERAS["integrating_blur"].core_sigma_px > 1


def test_the_lorentzian_tail_is_heavier_than_the_exponential_one():
    exp_k = Scintillator(tail_px=4.0, core_sigma_px=0.0).psf()
    lor_k = Scintillator(tail_px=4.0, core_sigma_px=0.0, tail_shape="lorentzian").psf()
    assert abs(lor_k.sum() - 1) < 1e-12 and lor_k.shape[0] > exp_k.shape[0]

    def beyond(k, r):
        h = k.shape[0] // 2
        return k[np.hypot(*(np.indices(k.shape) - h)) > r].sum()

    assert beyond(lor_k, 20) > 3 * beyond(exp_k, 20)
    with pytest.raises(ConfigError, match="tail_shape"):
        Scintillator(tail_shape="gaussian")
