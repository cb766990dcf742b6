"""Property test: random small scans of any supported dtype and value range go through ``find_Bragg_disks`` and
either give valid BraggVectors or fail with a documented :class:`InputError` (NaN/Inf, float64 beyond float32)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from py4dstem_ndpd import find_Bragg_disks
from py4dstem_ndpd.detect.backend import DetectOptions
from py4dstem_ndpd.exceptions import InputError, NDPDError

DTYPES = [np.uint8, np.uint16, np.uint32, np.int16, np.int32, np.float32, np.float64]
KINDS = ["zeros", "constant", "poisson", "disks", "huge", "negative", "saturated", "nan"]


def _make(kind: str, dtype, shape, rng) -> np.ndarray:
    dtype = np.dtype(dtype)
    top = float(np.iinfo(dtype).max) if dtype.kind in "ui" else (1e30 if dtype.itemsize == 4 else 1e300)
    if kind == "zeros":
        x = np.zeros(shape)
    elif kind == "constant":
        x = np.full(shape, min(top, 7.0))
    elif kind == "poisson":
        x = rng.poisson(rng.uniform(0.01, 50), shape).astype(float)
    elif kind == "disks":  # a few bright disks on noise
        x = rng.poisson(0.5, shape).astype(float)
        qx, qy = np.mgrid[: shape[2], : shape[3]]
        for _ in range(6):
            cx, cy, r = rng.uniform(0, shape[2]), rng.uniform(0, shape[3]), rng.uniform(2, 6)
            x[:, :, (qx - cx) ** 2 + (qy - cy) ** 2 < r * r] += rng.uniform(10, 1000)
    elif kind == "huge":
        x = rng.uniform(0.5, 1.0, shape) * top
    elif kind == "negative":
        x = rng.normal(0, 5, shape)
        if dtype.kind == "f":
            x[0, 0, 0, 0] = -top
    elif kind == "saturated":
        x = rng.poisson(3, shape).astype(float)
        x.reshape(-1)[rng.integers(0, x.size, max(1, x.size // 50))] = top
    else:  # nan
        x = rng.poisson(3, shape).astype(float)
        if dtype.kind == "f":
            x.reshape(-1)[rng.integers(0, x.size)] = np.nan
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        x = np.clip(np.nan_to_num(x), info.min, info.max)
    return x.astype(dtype)


def _expected_error(kind: str, dtype) -> str | None:
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and kind == "nan":
        return "NaN or Inf"
    if dtype == np.float64 and kind in ("huge", "saturated", "negative"):
        return "float32 range"
    return None


@settings(max_examples=15, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(
    dtype=st.sampled_from(DTYPES),
    kind=st.sampled_from(KINDS),
    scan=st.tuples(st.integers(1, 2), st.integers(1, 3)),
    pattern=st.tuples(st.integers(32, 96), st.integers(32, 96)),
    refine=st.sampled_from(["none", "lattice"]),
    seed=st.integers(0, 2**16),
)
def test_random_inputs_give_valid_braggvectors_or_documented_errors(dtype, kind, scan, pattern, refine, seed):
    x = _make(kind, dtype, scan + pattern, np.random.default_rng(seed))
    expected = _expected_error(kind, dtype)
    try:
        bv = find_Bragg_disks(x, options=DetectOptions(batch_size=4, refine=refine, device="cpu"), progress=False)
    except NDPDError as err:
        assert isinstance(err, InputError) and expected is not None and expected in str(err), (kind, dtype, err)
        return
    assert expected is None, f"{kind} {np.dtype(dtype)}: expected an InputError about {expected!r}"
    assert bv.Rshape == scan and tuple(bv.Qshape) == pattern
    for rx in range(scan[0]):
        for ry in range(scan[1]):
            d = bv.raw[rx, ry].data
            for k in ("qx", "qy", "intensity", "confidence"):
                assert np.isfinite(d[k]).all(), k
            assert ((d["qx"] >= -0.5) & (d["qx"] < pattern[0] - 0.5)).all()
            assert ((d["qy"] >= -0.5) & (d["qy"] < pattern[1] - 0.5)).all()
            assert ((d["confidence"] >= 0.25) & (d["confidence"] <= 1)).all()
            if kind in ("zeros", "constant"):
                assert d.size == 0  # nothing to find in a flat pattern


def test_huge_float32_and_uint32_counts_work():
    """The largest float32 and uint32 values are valid counts (normalisation divides by a percentile first)."""
    x = np.zeros((1, 2, 48, 48), np.float32)
    x[..., 20:28, 20:28] = np.finfo(np.float32).max / 2
    bv = find_Bragg_disks(x, options=DetectOptions(batch_size=4, refine="none"), progress=False)
    assert bv.Rshape == (1, 2)
    for ry in range(2):  # (the summed intensity of such a disk exceeds float32: not checked here)
        d = bv.raw[0, ry].data
        assert d.size >= 1 and np.isfinite(d["qx"]).all() and np.isfinite(d["qy"]).all()
    y = (x > 0).astype(np.uint32) * np.iinfo(np.uint32).max
    bv = find_Bragg_disks(y, options=DetectOptions(batch_size=4, refine="none"), progress=False)
    for ry in range(2):
        assert np.isfinite(bv.raw[0, ry].data["intensity"]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_is_found_in_any_batch(dtype):
    x = np.ones((3, 3, 32, 32), dtype)
    x[2, 1, 0, 0] = np.nan  # position 7: in the second batch of 4
    with pytest.raises(InputError, match="NaN"):
        find_Bragg_disks(x, options=DetectOptions(batch_size=4, refine="none"), progress=False)
