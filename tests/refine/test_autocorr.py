"""Autocorrelation (paper eq. 4) and origin-free lattice fits on simulated patterns with known lattices."""
import numpy as np
import pytest

from py4dstem_ndpd.exceptions import ConfigError, InputError
from py4dstem_ndpd.refine.autocorr import (
    autocorrelation, autocorrelation_shape, lattice_from_autocorrelation, refine_autocorrelation_peaks,
)
from py4dstem_ndpd.refine.lattice import align_basis


def relative_error(basis, truth):
    return np.linalg.norm(basis - truth, axis=-1) / np.linalg.norm(truth, axis=-1)


def test_two_points_give_peaks_at_plus_and_minus_their_difference():
    img = np.zeros((32, 32))
    img[5, 6] = 2.0
    img[25, 9] = 3.0  # 20 rows apart: beyond half the pattern, so only the padded version keeps it
    R = autocorrelation(img)
    assert R.shape == autocorrelation_shape((32, 32)) == (48, 48)
    z = 24
    assert R[z, z] == pytest.approx(4 + 9, rel=1e-5)
    assert R[z + 20, z + 3] == pytest.approx(6, rel=1e-5) and R[z - 20, z - 3] == pytest.approx(6, rel=1e-5)
    assert np.allclose(R, np.roll(R[::-1, ::-1], 1, axis=(0, 1)), atol=1e-4)  # R(d) == R(-d)
    Rc = autocorrelation(img, pad=False)  # circular: the lag 20 wraps to -12
    assert Rc.shape == (32, 32) and Rc[16 - 12, 16 + 3] == pytest.approx(6, rel=1e-5)


def test_batch_equals_single_frames_and_background_removal_flattens_a_constant():
    rng = np.random.default_rng(0)
    frames = rng.poisson(5.0, (3, 40, 40)).astype(np.uint16)
    R = autocorrelation(frames, background_px=3.0)
    assert R.dtype == np.float32 and R.shape == (3, 60, 60)
    assert np.allclose(R[1], autocorrelation(frames[1], background_px=3.0), rtol=1e-5, atol=1e-2)
    flat = np.full((64, 64), 7.0)
    raw, hp = autocorrelation(flat, pad=False), autocorrelation(flat, background_px=4.0, pad=False)
    assert np.ptp(hp) < 1e-6 * raw.max()  # circular + constant: only the DC term, which the high-pass removes


def test_bad_inputs_raise_errors_that_say_what_to_do():
    with pytest.raises(InputError, match="shape"):
        autocorrelation(np.zeros(10))
    with pytest.raises(ConfigError, match="background_px"):
        autocorrelation(np.zeros((16, 16)), background_px=0)
    with pytest.raises(ConfigError, match="radius_px"):
        lattice_from_autocorrelation(np.zeros((16, 16)), radius_px=-1)
    with pytest.raises(ConfigError, match="kind"):
        lattice_from_autocorrelation(np.zeros((16, 16)), radius_px=2, kind="fft")


def test_peak_refinement_finds_the_centre_of_a_symmetric_peak():
    o = np.arange(64.0)
    true = np.array([[40.3, 21.7], [10.5, 50.2]])
    R = np.exp(-((o[None, :, None] - true[:, 0, None, None]) ** 2 + (o[None, None, :] - true[:, 1, None, None]) ** 2)
               / (2 * 2.5**2)).astype(np.float32)
    lags, height = refine_autocorrelation_peaks(R, np.array([0, 1]), np.rint(true) - 32, 6.0)
    assert np.max(np.abs(lags + 32 - true)) < 0.01 and np.all(height > 0.9)


def test_lattice_from_autocorrelation_measures_the_si_lattice(case):
    c = case("si_sige_multilayer", 1e5)
    approx = c.lattice + np.array([[0.5, -0.4], [-0.3, 0.5]])  # a detector-quality guess
    fit = lattice_from_autocorrelation(c.frames, approx, radius_px=c.radius)
    err = relative_error(fit.basis, c.lattice)
    # measured: RMS 3.5e-4, max 7e-4 (relative), ~30 peaks per pattern, residual 0.06 px
    assert np.sqrt(np.mean(err**2)) < 6e-4 and err.max() < 1.5e-3
    assert np.all(fit.n_peaks >= 20) and np.all(fit.residual < 0.12)
    assert fit.peaks.shape == (len(c.frames), len(fit.uv), 2) and fit.g1.shape == (len(c.frames), 2)
    # without a guess the basis is found from the strongest peaks: the same lattice, the same accuracy
    auto = lattice_from_autocorrelation(c.frames, None, radius_px=c.radius)
    assert np.allclose(align_basis(auto.basis, c.lattice), fit.basis, atol=0.02)
    # precomputed autocorrelations give the same fit; a single frame gives unbatched arrays
    R = autocorrelation(c.frames[:2], background_px=c.radius)
    pre = lattice_from_autocorrelation(R, approx[:2], radius_px=c.radius, kind="autocorrelation",
                                       pattern_shape=c.frames.shape[-2:])
    assert np.allclose(pre.basis, fit.basis[:2], atol=1e-6)
    one = lattice_from_autocorrelation(c.frames[0], approx[0], radius_px=c.radius)
    assert one.basis.shape == (2, 2) and np.allclose(one.basis, fit.basis[0], atol=1e-6)


def test_lattice_precision_improves_with_dose(case):
    errs = []
    for dose in (1e4, 1e6):
        c = case("si_sige_multilayer", dose)
        fit = lattice_from_autocorrelation(c.frames, c.lattice, radius_px=c.radius)
        errs.append(np.sqrt(np.mean(relative_error(fit.basis, c.lattice) ** 2)))
    # measured: 1.2e-3 at 1e4, 1.5e-4 at 1e6
    assert errs[0] < 2.5e-3 and errs[1] < 3e-4 and errs[1] < errs[0] / 3


def test_a_hann_window_would_shrink_the_lattice(case):
    """Why the autocorrelation is not windowed: a Hann window pulls every disk towards the pattern centre."""
    c = case("si_sige_multilayer", 1e6)
    H, W = c.frames.shape[-2:]
    hann = np.hanning(H)[:, None] * np.hanning(W)[None, :]
    plain = lattice_from_autocorrelation(c.frames, c.lattice, radius_px=c.radius)
    windowed = lattice_from_autocorrelation(c.frames * hann, c.lattice, radius_px=c.radius)
    scale = lambda b: np.mean(np.linalg.norm(b, axis=-1) / np.linalg.norm(c.lattice, axis=-1)) - 1  # noqa: E731
    assert abs(scale(plain.basis)) < 2e-4
    assert scale(windowed.basis) < -1e-3  # measured -2.4e-3
