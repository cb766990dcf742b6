"""Band-limited evaluation and sub-pixel maxima of stacked windows."""
import numpy as np
import pytest

from py4dstem_ndpd.refine._windows import (
    evaluate_spectra, extract_windows, grid_maximum, newton_maximum, remove_background, taper,
)


def gaussian_windows(centres, w=25, sigma=2.0):
    o = np.arange(w, dtype=float)
    return np.exp(-((o[None, :, None] - centres[:, 0, None, None]) ** 2
                    + (o[None, None, :] - centres[:, 1, None, None]) ** 2) / (2 * sigma**2))


def test_evaluate_spectra_reproduces_samples_at_integer_positions():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 9, 9))
    x = np.tile(np.arange(9.0), (3, 1))
    assert np.allclose(evaluate_spectra(np.fft.fft2(a), x, x), a)


def test_maxima_of_shifted_gaussians_are_found_to_a_thousandth_of_a_pixel():
    true = np.array([[12.0, 12.0], [12.3, 11.6], [11.55, 12.45], [12.49, 12.01]])
    S = np.fft.fft2(gaussian_windows(true))
    pos, _ = grid_maximum(S, np.full((4, 2), 12.0), 1.0, 9)
    assert np.max(np.abs(pos - true)) < 0.05  # grid + parabola
    assert np.max(np.abs(newton_maximum(S, pos) - true)) < 1e-3


def test_extract_windows_pads_outside_the_detector_with_zeros():
    frames = np.arange(2 * 10 * 10, dtype=float).reshape(2, 10, 10) + 1
    win, anchor = extract_windows(frames, np.array([1, 0]), np.array([[0.4, 9.2], [5.0, 5.0]]), 2)
    assert win.shape == (2, 5, 5) and anchor.tolist() == [[0, 9], [5, 5]]
    assert np.all(win[0, :2] == 0) and np.all(win[0, :, 3:] == 0)  # rows -2, -1 and columns 10, 11
    assert win[0, 2, 2] == frames[1, 0, 9]
    assert np.array_equal(win[1], frames[0, 3:8, 3:8])


def test_remove_background_removes_a_plane_and_keeps_the_centre_signal():
    o = np.arange(-6, 7, dtype=float)
    plane = 5.0 + 0.3 * o[:, None] - 0.2 * o[None, :]
    spot = np.zeros((13, 13))
    spot[5:8, 5:8] = 10.0
    out = remove_background((plane + spot)[None], 6, inner=3.0)[0]
    assert np.allclose(out, spot, atol=1e-9)
    t = taper(6, 2.0, 4.0)
    assert t[6, 6] == 1.0 and t[0, 0] == 0.0 and np.all((t >= 0) & (t <= 1))


def test_remove_background_ignores_a_neighbouring_disk_in_its_ring():
    """The edge of a bright neighbour reaching into the window must not tilt the plane (binned abTEM patterns)."""
    rng = np.random.default_rng(0)
    half = 11
    o = np.arange(-half, half + 1, dtype=float)
    X, Y = np.meshgrid(o, o, indexing="ij")
    plane = 20.0 + 0.4 * X - 0.3 * Y
    disk = 500.0 * (np.hypot(X, Y) <= 4.0)
    neighbour = 400.0 * (np.hypot(X + 10.7, Y + 7.6) <= 4.0)  # its edge 9 px from the centre, inside the ring
    win = rng.poisson(plane + disk + neighbour).astype(float)
    out = remove_background(win[None], half, inner=8.0, robust=True)[0]
    far = (np.hypot(X, Y) > 8.0) & (np.hypot(X + 10.7, Y + 7.6) > 5.0)
    assert abs((out - (win - plane))[far].mean()) < 1.0  # the plane found is the true one, within the noise
    # the centroid inside the disk is not pulled towards the neighbour
    m = out * (np.hypot(X, Y) <= 6.5)
    assert abs((m * X).sum() / m.sum()) < 0.02 and abs((m * Y).sum() / m.sum()) < 0.02


@pytest.mark.parametrize("w", [24])
def test_even_windows_would_have_a_complex_interpolant(w):
    """Why windows are odd: an even size puts a Nyquist term in the spectrum whose interpolant is not real."""
    a = np.zeros((1, w, w))
    a[0, ::2] = 1.0  # pure Nyquist along rows
    x = np.array([[0.5]])
    from py4dstem_ndpd.refine._windows import dft_matrices

    v = (dft_matrices(w, x) @ np.fft.fft2(a) @ dft_matrices(w, x).transpose(0, 2, 1))[0, 0, 0]
    assert abs(v.imag) > 1e-6 * abs(v)
