"""The HTML report: self-contained page, relative figure links, numbers shown."""
from __future__ import annotations

import re

import numpy as np
import pytest

from py4dstem_ndpd.analysis.figures import plot_error_histograms
from py4dstem_ndpd.analysis.report import ReportSection, write_report
from py4dstem_ndpd.exceptions import InputError


def test_report_with_figures_and_numbers(tmp_path):
    figs = tmp_path / "figs"
    plot_error_histograms(np.random.default_rng(0).normal(0, 0.1, (200, 2)), figs / "errors")
    out = tmp_path / "report"
    path = write_report(
        out,
        [
            ReportSection(
                "Throughput", text="CPU, batch 8 <fast>", numbers={"patterns/s": 112.345678, "patterns": 3880}
            ),
            ReportSection(
                "Detection", numbers={"precision": 0.991, "recall": 0.987, "RMS error (px)": float("nan")},
                figures=[figs / "errors.pdf"],
            ),
        ],
        title="Si/SiGe",
    )
    assert path == out / "report.html" and path.exists()
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<title>Si/SiGe</title>" in html
    assert "112.3" in html and "3,880" in html and "0.991" in html and "n/a" in html
    assert "&lt;fast&gt;" in html  # text is escaped
    srcs = re.findall(r'<img src="([^"]+)"', html)
    hrefs = re.findall(r'<a href="([^"]+)"', html)
    assert srcs == ["../figs/errors.png"] and hrefs == ["../figs/errors.pdf"]
    assert all((out / s).exists() for s in srcs + hrefs)
    assert "http" not in html and "<script" not in html  # self-contained


def test_report_errors(tmp_path):
    with pytest.raises(InputError, match="at least one"):
        write_report(tmp_path, [])
    with pytest.raises(InputError, match="ReportSection objects"):
        write_report(tmp_path, [{"title": "x"}])
    with pytest.raises(InputError, match="does not exist"):
        write_report(tmp_path, [ReportSection("x", figures=[tmp_path / "missing.png"])])
    with pytest.raises(InputError, match="title"):
        ReportSection("  ")
