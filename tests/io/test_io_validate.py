"""Bad inputs and options fail early with our errors, whose messages say what is wrong and what to do; odd but valid
inputs (negative values, all-zero or non-square patterns, saturated pixels) work."""
from __future__ import annotations

import logging
import shutil

import h5py
import numpy as np
import py4DSTEM
import pytest

from py4dstem_ndpd import find_Bragg_disks
from py4dstem_ndpd.api import detect_pattern, detect_scan
from py4dstem_ndpd.detect.backend import DetectOptions
from py4dstem_ndpd.engine import EngineOptions
from py4dstem_ndpd.exceptions import ConfigError, DeviceError, InputError, ModelLoadError
from py4dstem_ndpd.io import validate
from py4dstem_ndpd.io.readers import InputData, available_memory, load_input, to_datacube, to_numpy

FAST = DetectOptions(batch_size=4, refine="none")


@pytest.mark.parametrize(
    "shape, dtype, match",
    [
        ((64, 64), np.uint16, r"expected 4D data .* got 2D.*detect_pattern"),
        ((4, 64, 64), np.uint16, r"got 3D.*scan_shape=\(Rx, Ry\)"),
        ((1, 2, 2, 32, 32), np.float32, "got 5D"),
        ((0, 2, 64, 64), np.uint16, "the scan is empty"),
        ((3, 0, 64, 64), np.uint16, "the scan is empty"),
        ((2, 2, 8, 8), np.uint16, r"8x8 px are too small .*>= 16 px"),
        ((1, 1, 15, 64), np.float32, "15x64 px are too small"),
        ((1, 1, 32, 32), np.complex64, r"unsupported dtype complex64.*real numbers"),
        ((1, 1, 32, 32), np.bool_, "unsupported dtype bool"),
        ((1, 1, 32, 32), object, "unsupported dtype object"),
    ],
)
def test_shape_and_dtype_errors(shape, dtype, match):
    x = np.zeros(shape, dtype=dtype)
    with pytest.raises(InputError, match=match):
        load_input(x)
    with pytest.raises(InputError, match=match):
        find_Bragg_disks(x, options=FAST, progress=False)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_are_refused(bad, dtype):
    x = np.ones((2, 3, 32, 32), dtype)
    x[1, 1, 5, 7] = bad
    with pytest.raises(InputError, match=r"pattern 4 \(flat scan index\) contains NaN or Inf.*nan_to_num"):
        find_Bragg_disks(x, options=FAST, progress=False)
    with pytest.raises(InputError, match=r"pattern 4 \(flat scan index\) contains NaN"):
        validate.check_frames(x.reshape(6, 32, 32), first_index=0)


def test_float64_beyond_float32_range():
    x = np.ones((1, 2, 32, 32))
    x[0, 1, 3, 3] = 1e300
    with pytest.raises(InputError, match=r"beyond the float32 range.*rescale"):
        find_Bragg_disks(x, options=FAST, progress=False)
    validate.check_frames(np.full((1, 32, 32), 3e38))  # within float32: fine


def test_negative_values_are_clipped_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(validate, "_warned_negative", False)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (1, 2, 48, 48)).astype(np.float32)  # dark-subtracted noise around 0
    with caplog.at_level(logging.WARNING, logger="py4dstem_ndpd.io.validate"):
        a = detect_scan(x, options=FAST, progress=False)
        detect_scan(x, options=FAST, progress=False)
    warnings = [r for r in caplog.records if "negative values" in r.getMessage()]
    assert len(warnings) == 1 and "detection treats them as 0 counts" in warnings[0].getMessage()
    b = detect_scan(np.maximum(x, 0), options=FAST, progress=False)  # detection: the same as clipping by hand
    assert a.n_peaks > 0
    for p, q in zip(a.peaks, b.peaks):
        for k in ("qx", "qy", "confidence"):
            np.testing.assert_array_equal(p[k], q[k])
        assert np.all(p["intensity"] <= q["intensity"])  # intensities sum the stored values, negatives included
    assert np.any(a.peaks[0]["intensity"] < b.peaks[0]["intensity"])


def test_signed_integers_hint(monkeypatch, caplog):
    monkeypatch.setattr(validate, "_warned_negative", False)
    with caplog.at_level(logging.WARNING, logger="py4dstem_ndpd.io.validate"):
        validate.check_frames(np.full((1, 32, 32), -30000, np.int16))
    assert "data.view(np.uint16)" in caplog.text


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int16, np.float32, np.float64])
def test_all_zero_patterns_give_no_peaks_not_an_error(dtype):
    bv = find_Bragg_disks(np.zeros((2, 1, 40, 40), dtype), options=FAST, progress=False)
    assert bv.Rshape == (2, 1)
    assert all(bv.raw[i, 0].data.size == 0 for i in range(2))


def test_non_square_scan_and_patterns(si_scan):
    x = np.asarray(si_scan.data[:3, :2, 16:240, :])  # 3 x 2 scan of 224 x 256 patterns
    bv = find_Bragg_disks(x, options=FAST, progress=False)
    assert bv.Rshape == (3, 2) and tuple(bv.Qshape) == (224, 256)
    assert all(bv.raw[i, j].data.size > 10 for i in range(3) for j in range(2))


def test_saturated_pixels_do_not_hide_the_disks(si_scan):
    """Hot pixels at the dtype's maximum (Dectris flags, dead/hot pixels) and a clipped direct beam still give the
    disks of the clean pattern."""
    from py4dstem_ndpd.evaluate import match_peaks

    clean = np.asarray(si_scan.data[0, 0]).astype(np.uint32)
    ref = detect_pattern(clean, options=FAST)
    rng = np.random.default_rng(1)
    for dtype in (np.uint16, np.uint32):
        p = np.minimum(clean, np.iinfo(dtype).max).astype(dtype)
        hot = rng.integers(0, 256, size=(40, 2))
        p[hot[:, 0], hot[:, 1]] = np.iinfo(dtype).max
        got = detect_pattern(p, options=FAST)
        i, _ = match_peaks(ref[:, :2], got[:, :2], 1.0)
        assert len(i) >= 0.95 * len(ref)
    beam = np.minimum(clean, np.percentile(clean, 99.9)).astype(np.uint16)  # the detector saturates on the beam
    got = detect_pattern(beam, options=FAST)
    i, _ = match_peaks(ref[:, :2], got[:, :2], 1.0)
    assert len(i) >= 0.9 * len(ref)


# -- calibration ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", [np.nan, 0.0, -0.01, np.inf])
def test_datacube_with_invalid_calibration(q):
    dc = py4DSTEM.DataCube(data=np.zeros((1, 1, 32, 32), np.uint16))
    dc.calibration.set_Q_pixel_size(q)
    with pytest.raises(InputError, match=r"q_pixel_size must be a finite positive number.*set_Q_pixel_size"):
        find_Bragg_disks(dc, options=FAST, progress=False)


def test_datacube_calibration_is_kept():
    dc = py4DSTEM.DataCube(data=np.zeros((2, 2, 32, 32), np.uint16))
    dc.calibration.set_Q_pixel_size(0.02)
    dc.calibration.set_R_pixel_size(3.0)
    inp = load_input(dc)
    assert inp.format == "datacube" and inp.calibration.q_pixel_size == 0.02 and inp.calibration.r_pixel_size == 3.0


# -- scan shapes ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scan_shape, match", [((0, 3), "two positive integers"), (("a", 2), "two integers"),
                                               ((5,), "two integers"), ((4, 4), r"holds 6 patterns")])
def test_bad_scan_shapes(scan_shape, match):
    with pytest.raises(InputError, match=match):
        load_input(np.zeros((6, 32, 32)), scan_shape=scan_shape)


def test_stack_with_scan_shape_and_input_data_passthrough():
    x = np.arange(6 * 32 * 32, dtype=np.float32).reshape(6, 32, 32)
    inp = load_input(x, scan_shape=(2, 3))
    assert inp.shape == (2, 3, 32, 32) and np.shares_memory(inp.array, x)  # a view, not a copy
    assert load_input(inp) is inp
    with pytest.raises(InputError, match="already has scan shape"):
        load_input(inp, scan_shape=(3, 2))
    with pytest.raises(InputError, match="cannot read data of type builtins.dict"):
        load_input({"data": x})


# -- memory ---------------------------------------------------------------------------------------------------------
def test_materialising_refuses_what_does_not_fit(tmp_path):
    p = tmp_path / "huge.h5"
    with h5py.File(p, "w") as f:  # 1 TiB declared, nothing written (chunks are allocated lazily)
        f.create_dataset("scan", shape=(1024, 1024, 512, 512), dtype=np.float32, chunks=(1, 1, 512, 512))
    assert p.stat().st_size < 1e6
    inp = load_input(p)
    assert inp.nbytes == 2**40 > available_memory()
    with pytest.raises(InputError, match=r"needs 1\.0 TB in memory but only .* available.*`ndpd detect"):
        to_numpy(inp)
    with pytest.raises(InputError, match="ndpd detect"):
        to_datacube(inp)


def test_materialising_small_data(tmp_path):
    x = np.random.default_rng(0).integers(0, 100, (2, 3, 16, 16)).astype(np.uint16)
    assert to_numpy(load_input(x)) is x  # in memory already: no copy
    np.save(tmp_path / "x.npy", x)
    inp = load_input(tmp_path / "x.npy")
    with pytest.raises(InputError, match=r"needs 3\.0 KB in memory but only 1\.0 KB"):
        to_numpy(inp, max_bytes=1024)
    import dask.array as da

    np.testing.assert_array_equal(to_numpy(load_input(da.from_array(x, chunks=(1, 3, 16, 16)))), x)
    dc = to_datacube(InputData(inp.array, load_input(py4DSTEM.DataCube(data=x)).calibration))
    assert isinstance(dc, py4DSTEM.DataCube) and type(dc.data) is np.ndarray
    np.testing.assert_array_equal(dc.data, x)


# -- weights, options, devices --------------------------------------------------------------------------------------
def test_missing_and_corrupt_weights(tmp_path):
    from py4dstem_ndpd.detect.model import shipped_weights_path

    x = np.zeros((1, 1, 32, 32), np.uint16)
    with pytest.raises(ModelLoadError, match="weights not found.*check the path"):
        find_Bragg_disks(x, weights=str(tmp_path / "missing.pt"), options=FAST, progress=False)
    cut = tmp_path / "cut.pt"
    data = shipped_weights_path().read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # an interrupted download/copy
    with pytest.raises(ModelLoadError, match="corrupt or not a PyTorch checkpoint"):
        find_Bragg_disks(x, weights=str(cut), options=FAST, progress=False)
    shutil.copy(__file__, tmp_path / "code.pt")
    with pytest.raises(ModelLoadError, match="corrupt or not a PyTorch checkpoint"):
        find_Bragg_disks(x, weights=str(tmp_path / "code.pt"), options=FAST, progress=False)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: DetectOptions(batch_size=0), ConfigError, "batch_size must be > 0"),
        (lambda: DetectOptions(batch_size=-4), ConfigError, "batch_size must be > 0"),
        (lambda: DetectOptions(conf=0.0), ConfigError, r"conf must be in \(0, 1\)"),
        (lambda: DetectOptions(conf=1.0), ConfigError, r"conf must be in \(0, 1\)"),
        (lambda: DetectOptions(conf=float("nan")), ConfigError, r"conf must be in \(0, 1\)"),
        (lambda: DetectOptions(refine="fast"), ConfigError, "refine must be"),
        (lambda: EngineOptions(batch_size=0), ConfigError, "batch_size must be an integer >= 1"),
        (lambda: EngineOptions(chunk_size=0), ConfigError, "chunk_size must be an integer >= 1"),
    ],
)
def test_invalid_options(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_unknown_and_unavailable_devices():
    import torch

    x = np.zeros((1, 1, 32, 32), np.uint16)
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        find_Bragg_disks(x, options=DetectOptions(device="gpu"), progress=False)
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="no CUDA device is available.*device='cpu'"):
        find_Bragg_disks(x, options=DetectOptions(device="cuda"), progress=False)
