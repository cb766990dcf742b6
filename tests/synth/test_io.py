"""Saving and loading a simulated scan: a plain py4DSTEM EMD file with the truth beside the DataCube."""
from __future__ import annotations

import h5py
import numpy as np
import py4DSTEM
import pytest

from py4dstem_ndpd.exceptions import InputError
from py4dstem_ndpd.synth import Acquisition, DetectorModel, load_scan, save_scan, simulate_preset
from py4dstem_ndpd.synth.io import TRUTH_GROUP


@pytest.fixture(scope="module")
def scan():
    acq = Acquisition(scan_shape=(5, 4), pattern_shape=(64, 48), dose=1e4, seed=8, detector=DetectorModel(bits=16))
    return simulate_preset("tinb_multiphase", acq)


def test_round_trip_keeps_data_calibration_and_truth(tmp_path, scan):
    path = save_scan(tmp_path / "tinb.h5", scan)
    assert path == tmp_path / "tinb.h5" and path.exists()
    assert not (tmp_path / "tinb.h5.tmp").exists()
    back = load_scan(path)
    assert back.data.dtype == np.uint16 and np.array_equal(back.data, scan.data)
    cal, cal0 = back.datacube.calibration, scan.datacube.calibration
    assert cal.get_Q_pixel_size() == pytest.approx(cal0.get_Q_pixel_size())
    assert cal.get_R_pixel_size() == pytest.approx(cal0.get_R_pixel_size())
    assert cal.get_Q_pixel_units() == "A^-1" and cal.get_R_pixel_units() == "nm"
    t, t0 = back.truth, scan.truth
    assert t.disks.dtype == t0.disks.dtype and np.array_equal(t.disks, t0.disks)
    for name in ("offsets", "origin", "lattice", "strain", "phase"):
        assert np.array_equal(getattr(t, name), getattr(t0, name)), name
    assert t.scan_shape == (5, 4) and t.pattern_shape == (64, 48)
    assert t.phase_names == t0.phase_names and t.component_names == t0.component_names
    assert t.disk_radius == t0.disk_radius and t.calibration == t0.calibration
    assert t.meta["sample"] == "tinb_multiphase" and t.meta["acquisition"]["seed"] == 8
    assert np.array_equal(t.disks_at(4, 3), t0.disks_at(4, 3))


def test_py4dstem_read_returns_the_datacube(tmp_path, scan):
    path = save_scan(tmp_path / "scan.h5", scan)
    dc = py4DSTEM.read(str(path))
    assert isinstance(dc, py4DSTEM.DataCube)
    assert dc.data.shape == (5, 4, 64, 48) and np.array_equal(dc.data, scan.data)
    assert dc.calibration.get_Q_pixel_size() == pytest.approx(scan.truth.calibration.q_pixel_size)
    with h5py.File(path, "r") as f:
        assert TRUTH_GROUP in f and "disks" in f[TRUTH_GROUP]


def test_refuses_to_overwrite_without_overwrite_true(tmp_path, scan):
    path = tmp_path / "scan.h5"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_scan(path, scan)
    assert path.read_bytes() == b"precious"
    save_scan(path, scan, overwrite=True)
    assert np.array_equal(load_scan(path).data, scan.data)


def test_load_refuses_a_file_without_truth(tmp_path, scan):
    path = tmp_path / "plain.h5"
    py4DSTEM.save(str(path), scan.datacube, mode="o")
    with pytest.raises(InputError, match="no ground truth"):
        load_scan(path)
