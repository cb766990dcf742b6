"""Domain randomisation for training: labels follow the truth, the named randomisations, the camera models."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from py4dstem_ndpd.exceptions import ConfigError
from py4dstem_ndpd.synth.randomized import RANDOMIZATIONS, random_pattern
from py4dstem_ndpd.training.dataset import DatasetSpec


def patterns(name: str, n: int, seed: int = 0, **changes):
    rng = np.random.default_rng(seed)
    ranges = replace(RANDOMIZATIONS[name], **changes)
    return [random_pattern(rng, ranges) for _ in range(n)]


def test_labels_are_normalised_boxes_around_the_true_centres():
    for p in patterns("v2", 12):
        S = p.counts.shape[0]
        assert p.counts.shape == (S, S) and len(p.boxes) == len(p.centres) == len(p.snr)
        assert np.all((p.boxes[:, :2] >= 0) & (p.boxes[:, :2] <= 1)) and np.all(p.boxes[:, 2:] > 0)
        assert np.all(p.snr >= 3.0)
        # an uncut box is centred on the true centre (ultralytics: pixel i spans [i, i+1))
        b = p.boxes
        inner = ((b[:, 0] - b[:, 2] / 2 > 0) & (b[:, 0] + b[:, 2] / 2 < 1)
                 & (b[:, 1] - b[:, 3] / 2 > 0) & (b[:, 1] + b[:, 3] / 2 < 1))
        assert inner.any() or len(b) == 0
        np.testing.assert_allclose(p.boxes[inner, 0] * S - 0.5, p.centres[inner, 1], atol=1e-6)
        np.testing.assert_allclose(p.boxes[inner, 1] * S - 0.5, p.centres[inner, 0], atol=1e-6)


def test_v2_adds_dynamical_disks_and_integrating_cameras():
    ps = patterns("v2", 60, seed=1)
    dyn = [p.params["dynamical"] for p in ps]
    integ = [p for p in ps if p.params["integrating"]]
    assert 0.3 < np.mean(dyn) < 0.7  # half of the patterns
    assert integ and all(p.counts.dtype == np.float32 for p in integ)  # float, dark offset removed
    assert any((p.counts < 0).any() for p in integ)  # read noise around a subtracted offset goes negative
    assert all(p.counts.dtype in (np.uint16, np.uint32) for p in ps if not p.params["integrating"])
    assert not any(p.params["dynamical"] or p.params["integrating"] for p in patterns("v1", 30))


def test_integrating_camera_read_noise_lowers_the_label_snr():
    counting = patterns("v1", 8, seed=3)
    integrating = patterns("v1", 8, seed=3, integrating_fraction=1.0)
    n_c = sum(len(p.centres) for p in counting)
    n_i = sum(len(p.centres) for p in integrating)
    assert 0 < n_i <= n_c  # same disks drawn first; fewer pass SNR >= 3 with the extra noise


def test_dataset_spec_rejects_an_unknown_randomization():
    assert DatasetSpec().randomization == "v3"
    with pytest.raises(ConfigError, match="randomization"):
        DatasetSpec(randomization="v9")


def test_speckle_is_a_mean_one_map_with_grains_about_a_disk_wide():
    from py4dstem_ndpd.synth.randomized import _speckle

    def grain(R):
        m = _speckle(np.random.default_rng(4), 256, R)
        assert m.min() >= 0 and abs(m.mean() - 1) < 0.05
        f = m - m.mean()
        ac = np.fft.ifft2(np.abs(np.fft.fft2(f)) ** 2).real
        prof = ac[0, :64] / ac[0, 0]
        return int(np.argmax(prof < 0.5))  # half-width of the grain autocorrelation, px

    small, large = grain(3.0), grain(12.0)
    assert 1 <= small < large
    assert large > 2.5 * small


def test_v3_adds_speckle_and_more_overlapping_lattices():
    v3 = RANDOMIZATIONS["v3"]
    assert v3.speckle_fraction > 0 and v3.second_lattice_fraction > RANDOMIZATIONS["v2"].second_lattice_fraction
    assert RANDOMIZATIONS["v1"].speckle_fraction == 0 == RANDOMIZATIONS["v2"].speckle_fraction
    ps = patterns("v3", 10, seed=2)
    assert all(p.boxes.shape[1] == 4 for p in ps)


def test_v4_scintillators_blur_the_noise_and_spread_a_tail():
    from py4dstem_ndpd.synth.randomized import _camera_psf

    rng = np.random.default_rng(4)
    draws = [_camera_psf(rng) for _ in range(40)]
    assert all(abs(k.sum() - 1) < 1e-9 and k.shape[0] % 2 == 1 for k, _ in draws)
    tails = np.array([t for _, t in draws])
    assert 0.2 < np.mean(tails > 0) < 0.8 and np.all((tails == 0) | ((tails >= 0.05) & (tails <= 0.35)))
    assert all(p.counts.dtype == np.float32 for p in patterns("v4", 3, camera_psf_fraction=1.0,
                                                               integrating_fraction=1.0))
    from py4dstem_ndpd.synth.randomized import _integrating_camera

    # a uniform field through a scintillator: the noise is correlated between neighbouring pixels, unlike that of
    # a camera without the point-spread function
    n = np.random.default_rng(0).poisson(50.0, (128, 128)).astype(float)
    corr = []
    for psf in (0.0, 1.0):
        x = _integrating_camera(np.random.default_rng(2), n, psf)[0]
        x = x - x.mean()
        corr.append((x[:, 1:] * x[:, :-1]).mean() / (x * x).mean())
    assert abs(corr[0]) < 0.05 and corr[1] > 0.3
