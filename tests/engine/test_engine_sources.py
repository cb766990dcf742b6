"""Sources read flat position ranges exactly like the C-order reshape of the scan, lazily for files."""
from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from py4dstem_ndpd.engine import ArraySource, DaskSource, H5Source, as_source
from py4dstem_ndpd.exceptions import InputError


@pytest.fixture
def small():
    return np.random.default_rng(0).integers(0, 1000, size=(3, 4, 16, 16)).astype(np.uint16)


def _all_ranges(n):
    return [(a, b) for a in range(n) for b in range(a + 1, n + 1)]


def test_array_source_reads_any_flat_range(small):
    src = as_source(small)
    assert isinstance(src, ArraySource)
    assert (src.scan_shape, src.pattern_shape, src.n_positions) == ((3, 4), (16, 16), 12)
    flat = small.reshape(12, 16, 16)
    for a, b in _all_ranges(12):
        np.testing.assert_array_equal(src.read(a, b), flat[a:b])
    with pytest.raises(InputError, match="outside the scan"):
        src.read(5, 13)


def test_dask_source_matches_array(small):
    da = pytest.importorskip("dask.array")
    src = as_source(da.from_array(small, chunks=(2, 3, 16, 16)))
    assert isinstance(src, DaskSource)
    flat = small.reshape(12, 16, 16)
    for a, b in [(0, 12), (3, 9), (7, 8), (2, 11)]:
        np.testing.assert_array_equal(src.read(a, b), flat[a:b])


def test_h5_source_finds_the_datacube_of_an_emd_file_and_pickles(sim):
    src = as_source(str(sim.path))
    assert isinstance(src, H5Source) and src.dataset.endswith("/data")
    assert src.scan_shape == sim.data.shape[:2]
    flat = sim.data.reshape((-1,) + sim.data.shape[2:])
    np.testing.assert_array_equal(src.read(5, 21), flat[5:21])
    clone = pickle.loads(pickle.dumps(src))  # what a Dask worker receives: path + dataset, no open handle
    assert clone._file is None
    np.testing.assert_array_equal(clone.read(60, 64), flat[60:64])
    src.close()
    clone.close()


def test_datacube_h5py_dataset_and_input_data_sources(sim):
    from py4dstem_ndpd.io.readers import load_input

    np.testing.assert_array_equal(as_source(sim.datacube).read(0, 64), sim.data.reshape(64, 64, 64))
    with h5py.File(sim.path, "r") as f:
        ds_name = H5Source(sim.path).dataset
        src = as_source(f[ds_name])
    assert isinstance(src, H5Source) and src.dataset == ds_name
    inp = load_input(str(sim.path))
    src2 = as_source(inp)
    assert isinstance(src2, H5Source) and src2.dataset == ds_name


def test_h5_source_generic_files(tmp_path, small):
    p = tmp_path / "two.h5"
    with h5py.File(p, "w") as f:
        f["scan/big"] = small
        f["scan/small4d"] = small[:1, :1]
        f["other"] = np.zeros((4, 4))
    assert H5Source(p).dataset == "/scan/big"  # the largest 4D dataset
    np.testing.assert_array_equal(H5Source(p, "/scan/small4d").read(0, 1), small[0, :1])
    with pytest.raises(InputError, match="has no dataset '/nope'"):
        H5Source(p, "/nope")
    q = tmp_path / "none.h5"
    with h5py.File(q, "w") as f:
        f["x"] = np.zeros((4, 4, 4))
    with pytest.raises(InputError, match="holds no 4D dataset"):
        H5Source(q)
    with pytest.raises(InputError, match="expected a 4D scan"):
        H5Source(q, "x")
    bad = tmp_path / "not.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match="cannot read .* as HDF5"):
        H5Source(bad)
    with pytest.raises(InputError, match="does not exist"):
        H5Source(tmp_path / "missing.h5")


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros((4, 16, 16)), "expected a 4D scan"),
        (np.zeros((0, 2, 16, 16)), "empty scan"),
        (np.zeros((2, 2, 16, 16), dtype=complex), "real numbers"),
        ([[1, 2]], "cannot read patterns from a builtins.list"),
    ],
)
def test_as_source_errors(data, match):
    with pytest.raises(InputError, match=match):
        as_source(data)


def test_fingerprint_is_content_based(sim, small):
    a = as_source(sim.data).fingerprint()
    b = H5Source(sim.path).fingerprint()
    assert a == b
    changed = sim.data.copy()
    changed[4, 0, 10, 10] += 1  # the middle pattern (flat index 32) is hashed
    assert as_source(changed).fingerprint() != a
    assert as_source(small).fingerprint() != a
