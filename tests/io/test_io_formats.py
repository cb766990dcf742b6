"""Every input format opens lazily, gives back exactly the array written, with the file's calibration.

The files are tiny and written here (tests/io/io_files.py): Merlin .mib (+ .hdr), Gatan .dm4, EMPAD .xml/.raw,
Dectris/Arina HDF5 (bitshuffle/LZ4), py4DSTEM EMD, generic HDF5 and .npy.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from io_files import write_dectris, write_dm4, write_empad, write_mib

from py4dstem_ndpd.exceptions import InputError
from py4dstem_ndpd.io.formats import FORMATS, StackSource, sniff_format
from py4dstem_ndpd.io.readers import InputData, load_input, to_numpy

pytest.importorskip("rsciio", reason="the detector formats need rosettasciio (extra 'formats')")
DTYPES = [np.uint8, np.uint16, np.uint32, np.int16, np.int32, np.float32, np.float64]


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (rng.random(shape) * 1e4 - 10).astype(dtype)
    hi = min(np.iinfo(dtype).max, 2**31 - 1)
    x = rng.integers(max(np.iinfo(dtype).min, -1000), hi, size=shape, endpoint=True).astype(dtype)
    x.reshape(-1)[:7] = np.iinfo(dtype).max  # saturated pixels
    return x


def _is_lazy(inp: InputData) -> bool:
    a = inp.array
    return hasattr(a, "dask") or isinstance(a, (np.memmap, h5py.Dataset, StackSource))


# -- Merlin ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32])
@pytest.mark.parametrize("hdr", [True, False])
def test_merlin_mib_round_trip(tmp_path, dtype, hdr):
    x = _data((3, 4, 32, 48), dtype)
    inp = load_input(write_mib(tmp_path / "scan.mib", x, hdr=hdr))  # without .hdr: shape from the timestamps
    assert inp.format == "mib" and _is_lazy(inp) and inp.shape == x.shape
    np.testing.assert_array_equal(to_numpy(inp), x)  # same orientation as the file (and py4DSTEM)
    assert inp.calibration.q_pixel_units == "pixels"


def test_merlin_scan_shape_argument(tmp_path):
    x = _data((2, 6, 32, 32), np.uint16)
    p = write_mib(tmp_path / "s.mib", x, hdr=False, line_gap_s=0.0)  # nothing tells the scan shape
    inp = load_input(p, scan_shape=(3, 4))
    np.testing.assert_array_equal(to_numpy(inp), x.reshape(3, 4, 32, 32))


def test_merlin_bad_header(tmp_path):
    p = tmp_path / "bad.mib"
    p.write_bytes(b"MQ1,000001,00384,01,xx" + b"\0" * 500)
    with pytest.raises(InputError, match="cannot read it as a Merlin .mib file"):
        load_input(p)


# -- Gatan DM4 ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.int16, np.float32])
def test_dm4_round_trip_with_calibration(tmp_path, dtype):
    x = _data((3, 2, 24, 40), dtype)
    p = write_dm4(tmp_path / "scan.dm4", x, scales=(2.0, 2.0, 0.05, 0.05), units=("nm", "nm", "1/nm", "1/nm"))
    inp = load_input(p)
    assert inp.format == "dm" and _is_lazy(inp)
    np.testing.assert_array_equal(to_numpy(inp), x)
    cal = inp.calibration
    assert cal.q_pixel_units == "A^-1" and cal.q_pixel_size == pytest.approx(0.005)  # 0.05 1/nm = 0.005 1/A
    assert cal.r_pixel_units == "nm" and cal.r_pixel_size == pytest.approx(2.0)


def test_dm4_angstrom_and_mrad_units(tmp_path):
    x = _data((2, 2, 16, 16), np.uint16)
    p = write_dm4(tmp_path / "a.dm4", x, scales=(5.0, 5.0, 0.2, 0.2), units=("Å", "Å", "mrad", "mrad"))
    cal = load_input(p).calibration
    assert (cal.q_pixel_size, cal.q_pixel_units) == (pytest.approx(0.2), "mrad")
    assert (cal.r_pixel_size, cal.r_pixel_units) == (pytest.approx(0.5), "nm")


def test_dm4_stack_needs_scan_shape(tmp_path):
    x = _data((6, 16, 20), np.uint16)
    p = write_dm4(tmp_path / "stack.dm4", x, scales=(1, 1, 1), units=("", "", ""))
    with pytest.raises(InputError, match=r"no 4D scan.*scan_shape"):
        load_input(p)
    np.testing.assert_array_equal(to_numpy(load_input(p, scan_shape=(2, 3))), x.reshape(2, 3, 16, 20))


def test_dm4_bad_calibration_is_refused(tmp_path):
    x = _data((2, 2, 16, 16), np.uint16)
    p = write_dm4(tmp_path / "neg.dm4", x, scales=(1.0, 1.0, -0.1, -0.1), units=("nm", "nm", "1/nm", "1/nm"))
    with pytest.raises(InputError, match="detector .Q. pixel size is -0.1.*finite positive"):
        load_input(p)


def test_dm4_truncated(tmp_path):
    x = _data((4, 4, 32, 32), np.uint16)
    p = write_dm4(tmp_path / "t.dm4", x)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated"):
        load_input(p)


# -- EMPAD ----------------------------------------------------------------------------------------------------------
def test_empad_xml_and_raw(tmp_path):
    x = (np.random.default_rng(1).random((3, 4, 128, 128), dtype=np.float32) * 50 - 1).astype(np.float32)
    xml = write_empad(tmp_path, x)
    for p in (xml, tmp_path / "scan_x4_y3.raw"):  # the .raw finds its .xml
        inp = load_input(p)
        assert inp.format == "empad" and _is_lazy(inp) and inp.shape == (3, 4, 128, 128)
        np.testing.assert_array_equal(to_numpy(inp), x)
    cal = load_input(xml).calibration
    assert cal.q_pixel_units == "A^-1" and cal.q_pixel_size == pytest.approx(0.002)  # 0.02 1/nm
    assert cal.r_pixel_units == "nm" and cal.r_pixel_size == pytest.approx(1.0)  # 4 nm field of view / 4


def test_empad_single_row_scan_keeps_4d(tmp_path):
    x = np.ones((1, 5, 128, 128), np.float32)
    assert load_input(write_empad(tmp_path, x, q_per_m=None, fov_m=None)).shape == (1, 5, 128, 128)


def test_empad_truncated_raw(tmp_path):
    xml = write_empad(tmp_path, np.ones((2, 2, 128, 128), np.float32))
    raw = tmp_path / "scan_x2_y2.raw"
    raw.write_bytes(raw.read_bytes()[:-1000])
    with pytest.raises(InputError, match="missing or truncated"):
        load_input(xml)


# -- Dectris / Arina ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
def test_dectris_bitshuffle_lz4_multi_file(tmp_path, dtype):
    x = _data((4, 4, 24, 20), dtype)
    mask = np.zeros((24, 20), bool)
    mask[3, 4] = mask[10, :] = True  # a dead pixel and a gap row (stored saturated in real files)
    x[..., mask] = np.iinfo(dtype).max
    master = write_dectris(tmp_path, x, per_file=5, pixel_mask=mask)
    with h5py.File(tmp_path / "scan_data_000001.h5", "r") as f:
        assert "32008" in f["entry/data/data"]._filters  # really bitshuffle-compressed
    assert sniff_format(master) == "hdf5"
    inp = load_input(master)  # 16 frames in 4 files -> a square 4 x 4 scan
    assert inp.format == "dectris" and isinstance(inp.array, StackSource) and inp.dtype == dtype
    expected = x.copy()
    expected[..., mask] = 0  # flagged pixels read as 0
    np.testing.assert_array_equal(to_numpy(inp), expected)
    np.testing.assert_array_equal(inp.array[1, 1:3], expected[1, 1:3])  # the array-like view
    np.testing.assert_array_equal(inp.array[2], expected[2])
    clone = pickle.loads(pickle.dumps(inp.array))  # what a Dask worker gets: paths only
    np.testing.assert_array_equal(clone.read(3, 14), expected.reshape(16, 24, 20)[3:14])
    clone.close()
    cal = inp.calibration
    assert cal.q_pixel_units == "A^-1" and cal.q_pixel_size == pytest.approx(75e-6 / (0.1 * 0.0251))
    assert (cal.r_pixel_size, cal.r_pixel_units) == (0.5, "nm")


def test_dectris_scan_shape(tmp_path):
    x = _data((3, 4, 16, 16), np.uint16)
    master = write_dectris(tmp_path, x, q_geometry=False, stem_pixel_nm=None, compression=False)
    with pytest.raises(InputError, match=r"12 frames do not form a square scan.*scan_shape"):
        load_input(master)
    inp = load_input(master, scan_shape=(3, 4))
    np.testing.assert_array_equal(to_numpy(inp), x)
    assert inp.calibration.q_pixel_units == "pixels" and inp.calibration.r_pixel_units == "pixels"
    with pytest.raises(InputError, match=r"holds 12 patterns|do not fill"):
        load_input(master, scan_shape=(5, 5))


def test_dectris_missing_data_file(tmp_path):
    master = write_dectris(tmp_path, _data((2, 2, 16, 16), np.uint16), per_file=2)
    (tmp_path / "scan_data_000002.h5").unlink()
    with pytest.raises(InputError, match="linked as entry/data/data_000002 cannot be opened"):
        load_input(master)


# -- HDF5 / EMD / npy -----------------------------------------------------------------------------------------------
def test_emd_calibration_read_without_loading(tmp_path):
    import py4DSTEM

    x = _data((3, 2, 32, 24), np.uint16)
    dc = py4DSTEM.DataCube(data=x)
    dc.calibration.set_Q_pixel_size(0.013)
    dc.calibration.set_Q_pixel_units("A^-1")
    dc.calibration.set_R_pixel_size(2.5)
    dc.calibration.set_R_pixel_units("nm")
    py4DSTEM.save(str(tmp_path / "dc.h5"), dc, mode="o")
    inp = load_input(tmp_path / "dc.h5")
    assert inp.format == "emd" and isinstance(inp.array, h5py.Dataset) and inp.dataset_path.endswith("/data")
    assert (inp.calibration.q_pixel_size, inp.calibration.r_pixel_size) == (0.013, 2.5)
    np.testing.assert_array_equal(to_numpy(inp), x)


@pytest.mark.parametrize("bad", [np.nan, 0.0, -0.02])
def test_emd_with_invalid_calibration(tmp_path, bad):
    import py4DSTEM

    dc = py4DSTEM.DataCube(data=_data((2, 2, 16, 16), np.uint16))
    py4DSTEM.save(str(tmp_path / "dc.h5"), dc, mode="o")
    with h5py.File(tmp_path / "dc.h5", "r+") as f:
        g = f[f"{next(iter(f))}/metadatabundle/calibration"]
        del g["Q_pixel_size"]
        g["Q_pixel_size"] = bad
    with pytest.raises(InputError, match="Q_pixel_size = .*finite positive number"):
        load_input(tmp_path / "dc.h5")


def test_generic_hdf5_dataset_paths(tmp_path):
    x = _data((2, 3, 16, 20), np.float32)
    p = tmp_path / "g.h5"
    with h5py.File(p, "w") as f:
        f["a/scan"] = x
        f["a/stack"] = x.reshape(6, 16, 20)
        f["meta/info"] = np.arange(3)
    inp = load_input(p)
    assert inp.format == "hdf5" and inp.dataset_path == "/a/scan"
    with pytest.raises(InputError, match=r"'/nope' is not in the file.*Datasets in the file: /a/scan"):
        load_input(p, dataset_path="/nope")
    with pytest.raises(InputError, match="'/a' is a group, not a dataset"):
        load_input(p, dataset_path="/a")
    with pytest.raises(InputError, match="expected 4D data"):
        load_input(p, dataset_path="/meta/info")
    with pytest.raises(InputError, match="scan_shape=.3, 2. does not match"):
        load_input(p, dataset_path="/a/scan", scan_shape=(3, 2))
    with pytest.raises(InputError, match=r"3D stack of 6 patterns.*scan_shape=\(Rx, Ry\)"):
        load_input(p, dataset_path="/a/stack")  # never guessed as a 1 x 6 scan
    stack = load_input(p, dataset_path="/a/stack", scan_shape=(2, 3))  # a 3D stack with its scan shape
    assert isinstance(stack.array, StackSource)
    np.testing.assert_array_equal(to_numpy(stack), x)
    q = tmp_path / "s.h5"
    with h5py.File(q, "w") as f:
        f["frames"] = x.reshape(6, 16, 20)
    with pytest.raises(InputError, match=r"no 4D dataset.*scan_shape"):
        load_input(q)
    np.testing.assert_array_equal(to_numpy(load_input(q, scan_shape=(3, 2))), x.reshape(3, 2, 16, 20))


@pytest.mark.parametrize("dtype", DTYPES)
def test_npy_memmap_any_dtype(tmp_path, dtype):
    x = _data((2, 2, 16, 24), dtype)
    np.save(tmp_path / "x.npy", x)
    inp = load_input(tmp_path / "x.npy")
    assert isinstance(inp.array, np.memmap) and inp.dtype == dtype
    np.testing.assert_array_equal(to_numpy(inp), x)


def test_npy_stack_and_truncated(tmp_path):
    x = _data((6, 16, 16), np.uint16)
    np.save(tmp_path / "s.npy", x)
    inp = load_input(tmp_path / "s.npy", scan_shape=(2, 3))
    assert isinstance(inp.array, np.memmap) and inp.shape == (2, 3, 16, 16)  # still a memory map
    with pytest.raises(InputError, match=r"holds 6 patterns .* scan_shape \(4, 4\)"):
        load_input(tmp_path / "s.npy", scan_shape=(4, 4))
    p = tmp_path / "t.npy"
    p.write_bytes((tmp_path / "s.npy").read_bytes()[:500])
    with pytest.raises(InputError, match=r"unreadable .npy file.*truncated"):
        load_input(p)


# -- recognising files ----------------------------------------------------------------------------------------------
def test_unrecognised_files(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("rx, ry, counts\n1, 2, 3\n")
    with pytest.raises(InputError, match=r"not a file format ndpd reads\. Supported: .*Merlin"):
        load_input(txt)
    empty = tmp_path / "empty.mib"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="is empty"):
        load_input(empty)
    with pytest.raises(InputError, match="is a directory"):
        load_input(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        load_input(tmp_path / "missing.h5")
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 16, 16)))
    with pytest.raises(InputError, match="not an HDF5 file, so dataset_path"):
        load_input(tmp_path / "x.npy", dataset_path="/data")
    assert sniff_format(tmp_path / "x.npy") == "npy"
    # a .npy renamed .h5 is still read by its content
    (tmp_path / "x.npy").rename(tmp_path / "renamed.h5")
    assert load_input(tmp_path / "renamed.h5").format == "npy"
    assert set(FORMATS) == {"emd", "hdf5", "dectris", "npy", "mib", "empad", "dm"}


# -- end to end -----------------------------------------------------------------------------------------------------
def test_detector_files_give_the_same_peaks_as_the_array(tmp_path):
    """The same patterns through .mib, .dm4, Dectris HDF5 and .npy give exactly the peaks of the in-memory array."""
    from py4dstem_ndpd import find_Bragg_disks
    from py4dstem_ndpd.api import detect_scan
    from py4dstem_ndpd.detect.backend import DetectOptions
    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(2, 3), pattern_shape=(96, 96),
                                                             dose=1e6, seed=2))
    x = np.minimum(np.asarray(scan.data), 65535).astype(np.uint16)
    opts = DetectOptions(batch_size=8, refine="none")
    ref = detect_scan(x, options=opts, progress=False)
    assert ref.n_peaks > 20
    np.save(tmp_path / "x.npy", x)
    files = [write_mib(tmp_path / "x.mib", x), write_dm4(tmp_path / "x.dm4", x), write_dectris(tmp_path, x, per_file=4),
             tmp_path / "x.npy"]
    for p in files:
        inp = load_input(p, scan_shape=(2, 3))
        got = detect_scan(inp, options=opts, progress=False)
        for i in range(6):
            np.testing.assert_array_equal(got.peaks[i], ref.peaks[i], err_msg=str(p))
    bv = find_Bragg_disks(load_input(files[2], scan_shape=(2, 3)), options=opts, progress=False)
    assert bv.Rshape == (2, 3) and bv.calibration.get_Q_pixel_units() == "A^-1"


def test_missing_optional_reader_says_what_to_install(tmp_path, monkeypatch):
    p = write_mib(tmp_path / "x.mib", _data((1, 2, 16, 16), np.uint16))
    monkeypatch.setitem(sys.modules, "rsciio.quantumdetector", None)  # as if rosettasciio were not installed
    with pytest.raises(InputError, match=r"needs rosettasciio: pip install 'py4dstem-ndpd\[formats\]'"):
        load_input(p)


def test_missing_hdf5_filter_says_what_to_install(tmp_path):
    """In a process where hdf5plugin cannot be imported, a bitshuffle/LZ4 file is refused with the fix."""
    master = write_dectris(tmp_path, _data((2, 2, 16, 16), np.uint16))
    code = ("import sys; sys.modules['hdf5plugin'] = None\n"
            "from py4dstem_ndpd.io.readers import load_input\n"
            "from py4dstem_ndpd.exceptions import InputError\n"
            f"try:\n    load_input({str(master)!r})\nexcept InputError as e:\n    print(e)\n")
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=repo)
    assert "filter 32008" in r.stdout and "pip install hdf5plugin" in r.stdout, r.stdout + r.stderr


def test_docs_list_every_format():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "input-formats.md").read_text()
    for f in FORMATS.values():
        assert f.name in doc, f.name
