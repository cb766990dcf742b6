"""Figures are written as real PNG and PDF files (no pixel matching)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from py4dstem_ndpd.analysis import figures
from py4dstem_ndpd.analysis.phase import phase_map
from py4dstem_ndpd.analysis.strain import strain_map
from py4dstem_ndpd.analysis.virtual import virtual_annular_dark_field, virtual_bright_field
from py4dstem_ndpd.bridge import truth_to_scanpeaks
from py4dstem_ndpd.exceptions import InputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_written(base, min_bytes=5000):
    for suffix, magic in ((".png", PNG_MAGIC), (".pdf", b"%PDF")):
        p = base.with_suffix(suffix)
        assert p.exists(), p
        assert p.stat().st_size > min_bytes, (p, p.stat().st_size)
        assert p.read_bytes()[: len(magic)] == magic


@pytest.fixture(autouse=True)
def no_pyplot_leak():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before


def test_detections(sige24, sige24_bv, tmp_path):
    fig = figures.plot_detections(
        sige24.datacube, sige24_bv, [(0, 0), (5, 2), (12, 3)], tmp_path / "fig6_detections.png",
        truth=sige24.truth, disk_radius=sige24.truth.disk_radius, title="detections",
    )
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert_written(tmp_path / "fig6_detections")
    sp = truth_to_scanpeaks(sige24.truth)
    figures.plot_detections(sige24.data, sp, [(1, 1)], tmp_path / "one")  # a 4D array and ScanPeaks
    assert_written(tmp_path / "one")
    with pytest.raises(InputError, match="positions is empty"):
        figures.plot_detections(sige24.data, sp, [], tmp_path / "none")


def test_virtual_images(sige24, tmp_path):
    bf = virtual_bright_field(sige24.datacube)
    df = virtual_annular_dark_field(sige24.datacube)
    figures.plot_virtual_images(bf, df, tmp_path / "virtual", pixel_size=6.0)
    assert_written(tmp_path / "virtual")
    with pytest.raises(InputError, match="one shape"):
        figures.plot_virtual_images(bf, df[:3], tmp_path / "bad")


def test_strain_maps_with_profiles(sige24, sige24_bv, tmp_path):
    res = strain_map(sige24_bv, reference=(0, 3, 0, 6))
    df = virtual_annular_dark_field(sige24.datacube)
    tr = sige24.truth
    figures.plot_strain_maps(
        res.e_xx, res.e_yy, tmp_path / "out" / "fig7_strain.pdf", virtual=df, pixel_size=6.0,
        truth=(tr.strain_map("e_xx"), tr.strain_map("e_yy")),
    )
    assert_written(tmp_path / "out" / "fig7_strain")
    e = res.e_xx.copy()
    e[4, :] = np.nan  # failed fits are allowed
    figures.plot_strain_maps(e, res.e_yy, tmp_path / "nan", profile_xx=((0, 0), (23, 5), 2))
    assert_written(tmp_path / "nan")


def test_phase_with_strain(tinb24, tmp_path):
    tr = tinb24.truth
    ph = phase_map(truth_to_scanpeaks(tr), n_phases=4)
    examples = [tinb24.data[p.representative] for p in ph.phases]
    df = virtual_annular_dark_field(tinb24.datacube)
    figures.plot_phase_strain(
        ph.labels, tr.strain_map("e_xx"), tr.strain_map("e_yy"), tmp_path / "fig8_phase", virtual=df,
        phase_names=["matrix", "hcp", "precipitate", "oxide"], examples=examples, pixel_size=10.7,
    )
    assert_written(tmp_path / "fig8_phase")
    figures.plot_phase_strain(ph.labels, tr.strain_map("e_xx"), tr.strain_map("e_yy"), tmp_path / "plain")
    assert_written(tmp_path / "plain")


def test_error_histograms(tmp_path):
    rng = np.random.default_rng(0)
    errs = {"NDPD": rng.normal(0, 0.1, (500, 2)), "template": rng.normal(0, 0.05, (400, 2))}
    fig = figures.plot_error_histograms(errs, tmp_path / "errors")
    assert len(fig.axes) == 3
    assert_written(tmp_path / "errors", min_bytes=3000)
    fig = figures.plot_error_histograms(np.abs(rng.normal(0, 0.1, 300)), tmp_path / "dist")
    assert len(fig.axes) == 1
    assert_written(tmp_path / "dist", min_bytes=3000)
    with pytest.raises(InputError, match="empty"):
        figures.plot_error_histograms({"a": np.zeros((0, 2))}, tmp_path / "e")
