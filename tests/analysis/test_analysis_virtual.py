"""Virtual bright-field / annular dark-field images on DataCubes and arrays."""
from __future__ import annotations

import numpy as np
import pytest

from py4dstem_ndpd.analysis.virtual import (
    annulus_mask, central_beam, virtual_annular_dark_field, virtual_bright_field, virtual_image,
)
from py4dstem_ndpd.exceptions import InputError
from py4dstem_ndpd.synth import Acquisition, simulate_preset


@pytest.fixture(scope="module")
def scan():
    return simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(24, 4), pattern_shape=(128, 128), dose=1e5))


def test_central_beam_matches_truth(scan):
    qx0, qy0, r = central_beam(scan.datacube)
    np.testing.assert_allclose((qx0, qy0), scan.truth.origin.reshape(-1, 2).mean(axis=0), atol=0.3)
    assert r == pytest.approx(scan.truth.disk_radius, abs=0.5)


def test_datacube_and_array_agree_and_sum_to_the_counts(scan):
    bf = virtual_bright_field(scan.datacube)
    np.testing.assert_array_equal(bf, virtual_bright_field(scan.data))
    full = virtual_image(scan.data, np.ones((128, 128)))
    np.testing.assert_allclose(full, scan.data.sum(axis=(2, 3)))
    o = central_beam(scan.data)[:2]
    inner = virtual_bright_field(scan.data, origin=o, radius=6.0)
    outer = virtual_annular_dark_field(scan.data, origin=o, inner=6.0, outer=500.0)
    np.testing.assert_allclose(inner + outer, full)  # disk + annulus cover the detector exactly once


def test_dark_field_shows_the_sige_layers(scan):
    """SiGe scatters more (virtual_contrast 1.15): brighter in ADF, darker in BF."""
    phase = scan.truth.phase
    for origin in (None, scan.truth.origin):  # fixed origin, and one following the descan
        adf = virtual_annular_dark_field(scan.datacube, origin=origin)
        assert adf[phase == 1].mean() > 1.03 * adf[phase == 0].mean()
    bf = virtual_bright_field(scan.datacube)
    assert bf[phase == 1].mean() < bf[phase == 0].mean()


def test_hand_made_patterns():
    data = np.zeros((2, 2, 20, 20))
    data[0, 0, 10, 10] = 3.0  # direct beam only
    data[1, 1, 10, 17] = 5.0  # one reflection at |q| = 7
    bf = virtual_bright_field(data, origin=(10, 10), radius=2)
    adf = virtual_annular_dark_field(data, origin=(10, 10), inner=3, outer=9)
    assert bf.tolist() == [[3.0, 0.0], [0.0, 0.0]]
    assert adf.tolist() == [[0.0, 0.0], [0.0, 5.0]]
    m = annulus_mask((20, 20), (10, 10), 3, 9)
    assert m[10, 17] and not m[10, 10] and not m[10, 19]


def test_errors():
    with pytest.raises(InputError, match="4D array"):
        virtual_bright_field(np.zeros((4, 4)))
    with pytest.raises(InputError, match="all zero"):
        central_beam(np.zeros((2, 2, 8, 8)))
    data = np.ones((2, 2, 8, 8))
    with pytest.raises(InputError, match="inner < outer"):
        virtual_annular_dark_field(data, origin=(4, 4), inner=5, outer=3)
    with pytest.raises(InputError, match="radius"):
        virtual_bright_field(data, origin=(4, 4), radius=0)
    with pytest.raises(InputError, match="pattern shape"):
        virtual_image(data, np.ones((4, 4)))
    with pytest.raises(InputError, match="origin must be"):
        virtual_bright_field(data, origin=np.zeros((3, 3, 2)), radius=2)
