"""The tempo4d backend (the paper authors' released model): option checks always; the rest needs tempo4d installed.

tempo4d's own ``import tempo4d`` needs PyQt5/pyqtgraph/rosettasciio, so "installed" means its files are found
(``importlib.util.find_spec``), which is all the backend needs.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from py4dstem_ndpd.backend import Backend
from py4dstem_ndpd.backends import Tempo4DBackend, Tempo4DOptions, direct_beam_centres
from py4dstem_ndpd.exceptions import ConfigError, InputError, ModelLoadError
from py4dstem_ndpd.peaks import PEAK_DTYPE

HAVE_TEMPO4D = importlib.util.find_spec("tempo4d") is not None
needs_tempo4d = pytest.mark.skipif(not HAVE_TEMPO4D, reason="tempo4d not installed (pip install --no-deps tempo4d==0.1.8)")


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"conf": 0.0}, "conf must be in"),
        ({"imgsz": 500}, "multiple of 32"),
        ({"iou": 0.0}, "iou must be in"),
        ({"normalize": 300}, "normalize must be"),
        ({"max_det": 0}, "max_det must be"),
        ({"input": "cepstrum"}, "input must be"),
        ({"origin": "centre"}, "origin must be"),
        ({"batch_size": 0}, "batch_size must be"),
    ],
)
def test_options_rejected(bad, match):
    with pytest.raises(ConfigError, match=match):
        Tempo4DOptions(**bad)


def test_unknown_option_and_missing_weights_fail_before_loading(tmp_path):
    with pytest.raises(ConfigError, match="unknown Tempo4DBackend option"):
        Tempo4DBackend(confidence=0.1)
    with pytest.raises(ModelLoadError, match="weights not found"):
        Tempo4DBackend(tmp_path / "nope.pt")


@pytest.mark.skipif(HAVE_TEMPO4D, reason="tempo4d is installed")
def test_not_installed_says_how_to_install():
    with pytest.raises(ModelLoadError, match="pip install --no-deps tempo4d"):
        Tempo4DBackend()


def test_direct_beam_centres_finds_the_origin(si_scan):
    frames = np.asarray(si_scan.data[:2, 0])
    got = direct_beam_centres(frames)
    np.testing.assert_allclose(got, si_scan.truth.origin[:2, 0], atol=0.1)
    assert np.allclose(direct_beam_centres(np.zeros((1, 32, 32))), 15.5)


@pytest.fixture(scope="module")
def two_patterns(si_scan):
    return np.asarray(si_scan.data[:2, 0])


@needs_tempo4d
def test_preprocessing_matches_tempo4d_source(two_patterns):
    """Our re-implementation gives the very image tempo4d's own function gives (file loaded without its package)."""
    import cv2

    from py4dstem_ndpd.backends.tempo4d import network_images, tempo4d_weights_path

    src = tempo4d_weights_path().parents[1] / "utils" / "auto_cc_norm_batch_log2.py"
    spec = importlib.util.spec_from_file_location("_tempo4d_autocorr", src)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    images, ac = network_images(two_patterns, Tempo4DOptions(device="cpu"))
    for f, img in zip(two_patterns, images):
        u8 = cv2.normalize(f.astype(np.float64), None, 0, 256, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
        theirs = mod.log_autocorrelation_2D_torch(u8)
        theirs = cv2.normalize(theirs, None, 0, 100, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
        theirs = cv2.bitwise_not(cv2.cvtColor(theirs, cv2.COLOR_GRAY2RGB))
        assert img.shape == (*f.shape, 3) and img.dtype == np.uint8
        np.testing.assert_array_equal(img, theirs)
    assert ac.shape == two_patterns.shape and np.allclose(ac[:, 128, 128], 1.0)


@needs_tempo4d
def test_detect_output_format_offline(two_patterns, no_network):
    backend = Tempo4DBackend(device="cpu")
    assert isinstance(backend, Backend)
    tables = backend.detect(two_patterns)
    assert len(tables) == 2
    H, W = two_patterns.shape[1:]
    for t in tables:
        assert t.dtype == PEAK_DTYPE and len(t) > 0
        assert np.isfinite(t["qx"]).all() and np.isfinite(t["qy"]).all()
        assert ((t["qx"] >= -0.5) & (t["qx"] < H - 0.5) & (t["qy"] >= -0.5) & (t["qy"] < W - 0.5)).all()
        assert (t["confidence"] >= 0.01).all() and (t["confidence"] <= 1).all()
        assert np.all(np.diff(t["confidence"]) <= 0)  # most confident first
        assert len(t) <= 100
    assert backend.detect(two_patterns[:0]) == []
    assert len(backend.detect(two_patterns[0])) == 1  # a single (Qx, Qy) frame
    with pytest.raises(InputError, match="NaN"):
        backend.detect(np.full((1, 64, 64), np.nan, np.float32))

    # the engine runs it like any backend, with the same result
    from py4dstem_ndpd.engine import EngineOptions, run_scan

    scan_peaks = run_scan(two_patterns[None], backend, options=EngineOptions(progress=False))
    assert scan_peaks.scan_shape == (1, 2)
    for a, b in zip(scan_peaks.peaks, tables):
        np.testing.assert_array_equal(a, b)

    # rebuilt from its parameters; origin="none" gives tempo4d's own coordinates, zero lag at (Qx//2, Qy//2)
    raw = Tempo4DBackend(**{**backend.params(), "origin": "none"})
    assert raw.options.device == "cpu" and raw.options.origin == "none"
    lag = raw.detect(two_patterns[:1])[0]
    zero = lag[np.argmax(lag["intensity"])]  # R(0)/R(0) = 1: the largest autocorrelation value
    assert abs(zero["qx"] - H // 2) < 1.0 and abs(zero["qy"] - W // 2) < 1.0
    assert zero["intensity"] == pytest.approx(1.0, abs=0.05)
