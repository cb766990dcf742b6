"""py4DSTEM template matching with derived settings, against the simulator's truth."""
from __future__ import annotations

import numpy as np
import pytest
import py4DSTEM

from py4dstem_ndpd.baseline import TemplateOptions, TemplateResult, edge_radius, symmetry_centre, template_matching
from py4dstem_ndpd.evaluate import evaluate_detections
from py4dstem_ndpd.exceptions import ConfigError, InputError
from py4dstem_ndpd.synth import Acquisition, simulate_preset
from py4dstem_ndpd.synth.render import disk_profile


@pytest.fixture(scope="module")
def scan():
    return simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(4, 4), pattern_shape=(256, 256), dose=1e6))


@pytest.fixture(scope="module")
def accurate(scan):
    return template_matching(scan.datacube)


def test_accurate_preset_reaches_the_bar(scan, accurate):
    res = accurate
    assert isinstance(res, TemplateResult) and isinstance(res.braggvectors, py4DSTEM.BraggVectors)
    m = evaluate_detections(res.peaks, scan.truth)
    # measured: recall 1.0, precision 1.0, RMS 0.054 px, bias < 0.004 px (496 disks, SNR 4.2..150)
    assert m.recall >= 0.98
    assert m.precision >= 0.98
    assert m.error_rms <= 0.1
    assert np.all(np.abs(m.bias) < 0.01)
    s = res.settings
    assert s["subpixel"] == "multicorr" and s["upsample_factor"] == 16 and s["corrPower"] == 1.0
    assert s["threshold_method"] == "gap" and s["threshold_gap"] > 5
    assert s["disk_radius"] == pytest.approx(scan.truth.disk_radius, abs=0.2)
    assert s["minPeakSpacing"] == pytest.approx(2 * s["disk_radius"])
    assert res.seconds_per_pattern > 0 and res.peaks.timings["detect"] == pytest.approx(res.seconds)


def test_result_lives_in_the_datacube_tree_with_its_calibration(scan, accurate):
    bv = accurate.braggvectors
    assert tuple(bv.Rshape) == (4, 4) and tuple(bv.Qshape) == (256, 256)
    assert bv.calibration is scan.datacube.calibration
    assert bv.calibration.get_Q_pixel_size() == pytest.approx(scan.truth.calibration.q_pixel_size)
    assert scan.datacube.tree("braggvectors_template") is bv
    assert accurate.probe.kernel.shape == (256, 256)
    assert accurate.probe.kernel.sum() == pytest.approx(0, abs=1e-6)  # sigmoid kernel: zero sum


def test_fast_preset(scan):
    res = template_matching(scan.datacube, options=TemplateOptions.fast(), name="bv_fast")
    m = evaluate_detections(res.peaks, scan.truth)
    assert res.settings["subpixel"] == "poly"
    assert m.recall >= 0.98 and m.precision >= 0.98 and m.error_rms <= 0.1


def test_vacuum_probe_image_and_given_threshold(scan):
    x = np.arange(256)[:, None]
    y = np.arange(256)[None, :]
    vacuum = 1000 * disk_profile(np.hypot(x - 100.3, y - 140.6), scan.truth.disk_radius, 0.8)
    opts = TemplateOptions(threshold_rel=2e-3, subpixel="poly")
    res = template_matching(scan.datacube, vacuum=vacuum, options=opts, name="bv_vacuum")
    assert res.settings["threshold_method"] == "given" and res.settings["minRelativeIntensity"] == 2e-3
    assert res.settings["probe_source"] == "vacuum image"
    np.testing.assert_allclose(res.settings["probe_origin"], (100.3, 140.6), atol=0.02)
    m = evaluate_detections(res.peaks, scan.truth)
    assert m.recall >= 0.98 and m.error_rms <= 0.1


def test_symmetry_centre_of_a_disk():
    x = np.arange(128)[:, None]
    y = np.arange(128)[None, :]
    for c in [(60.27, 70.81), (63.5, 64.0), (20.9, 100.12)]:
        img = disk_profile(np.hypot(x - c[0], y - c[1]), 4.0, 0.6)
        np.testing.assert_allclose(symmetry_centre(img, np.round(c)), c, atol=0.01)


def test_options_are_validated():
    with pytest.raises(ConfigError, match="subpixel must be"):
        TemplateOptions(subpixel="spline")
    with pytest.raises(ConfigError, match="corr_power must be in"):
        TemplateOptions(corr_power=1.5)
    with pytest.raises(ConfigError, match="kernel_radii must be"):
        TemplateOptions(kernel_radii=(3.0, 1.0))
    with pytest.raises(ConfigError, match="upsample_factor must be > 2"):
        TemplateOptions(upsample_factor=2)
    with pytest.raises(ConfigError, match="threshold_rel must be in"):
        TemplateOptions(threshold_rel=1.0)
    assert TemplateOptions.fast().subpixel == "poly" and TemplateOptions.accurate().subpixel == "multicorr"


def test_bad_inputs(scan):
    with pytest.raises(InputError, match="needs a 4D py4DSTEM.DataCube"):
        template_matching(scan.data)
    with pytest.raises(InputError, match="vacuum must be"):
        template_matching(scan.datacube, vacuum=np.ones((5, 5)))
    with pytest.raises(InputError, match="selects no scan position"):
        template_matching(scan.datacube, vacuum=np.zeros((4, 4), bool))


@pytest.mark.parametrize("radius", [2.0, 4.0, 12.0, 16.0])
def test_disk_radius_from_the_azimuthal_median_profile(radius):
    """``measure_disk`` counted neighbouring Bragg disks of the mean pattern at 12 px (measured 20.9 px)."""
    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(3, 3), pattern_shape=(256, 256), dose=1e6,
                                                             disk_radius_px=radius))
    image = scan.data.astype(float).mean((0, 1))
    o = scan.truth.origin.reshape(-1, 2).mean(0)
    assert edge_radius(image, tuple(o)) == pytest.approx(radius, abs=0.35)


def test_template_matching_measures_large_disks():
    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(3, 3), pattern_shape=(256, 256), dose=1e6,
                                                             disk_radius_px=12.0))
    res = template_matching(scan.datacube, options=TemplateOptions.fast())
    assert res.settings["disk_radius"] == pytest.approx(12.0, abs=0.5)
    assert evaluate_detections(res.peaks, scan.truth, min_snr=3.0).recall >= 0.95
