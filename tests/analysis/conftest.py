"""Scans with exact truth for the analysis tests (session-scoped: simulated once)."""
from __future__ import annotations

import numpy as np
import pytest

from py4dstem_ndpd.bridge import to_braggvectors, truth_to_scanpeaks
from py4dstem_ndpd.peaks import ScanPeaks, make_peaks
from py4dstem_ndpd.synth import Acquisition, simulate_preset


@pytest.fixture(scope="session")
def sige24():
    """Si/SiGe multilayer, 24 x 6 positions (rx 0..2 = Si substrate), 256 px, 1e6 electrons per pattern."""
    return simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(24, 6), pattern_shape=(256, 256), dose=1e6))


@pytest.fixture(scope="session")
def sige24_bv(sige24):
    """BraggVectors of the true disk centres of ``sige24`` (with the DataCube's calibration)."""
    return to_braggvectors(truth_to_scanpeaks(sige24.truth), sige24.datacube.calibration)


@pytest.fixture(scope="session")
def tinb24():
    """Ti-Nb multiphase alloy, 24 x 24 positions, 256 px, 1e6 electrons per pattern (4 phases)."""
    return simulate_preset("tinb_multiphase", Acquisition(scan_shape=(24, 24), pattern_shape=(256, 256), dose=1e6))


@pytest.fixture(scope="session")
def tinb16_template():
    """A 16 x 16 Ti-Nb scan and the BraggVectors of py4DSTEM template matching on it (the tuned baseline)."""
    from py4dstem_ndpd.baseline import TemplateOptions, template_matching

    scan = simulate_preset("tinb_multiphase", Acquisition(scan_shape=(16, 16), pattern_shape=(256, 256), dose=1e6, seed=4))
    return scan, template_matching(scan.datacube, options=TemplateOptions.fast()).braggvectors


@pytest.fixture(scope="session")
def perturb():
    """The function :func:`_perturb`."""
    return _perturb


def _perturb(scan_peaks: ScanPeaks, *, drop: float, spurious: int, noise_px: float, seed: int = 0) -> ScanPeaks:
    """Imitate a detector: lose a fraction of the disks (never the brightest), add ``0..spurious`` random
    peaks per pattern (intensity 2000) and Gaussian centre noise."""
    rng = np.random.default_rng(seed)
    Qx, Qy = scan_peaks.pattern_shape
    tables = []
    for p in scan_peaks.peaks:
        keep = rng.random(len(p)) >= drop
        keep[np.argmax(p["intensity"])] = True
        p = p[keep]
        n = int(rng.integers(0, spurious + 1))
        qx = np.r_[p["qx"] + rng.normal(0, noise_px, len(p)), rng.uniform(0, Qx - 1, n)]
        qy = np.r_[p["qy"] + rng.normal(0, noise_px, len(p)), rng.uniform(0, Qy - 1, n)]
        tables.append(make_peaks(qx, qy, np.r_[p["intensity"], np.full(n, 2000.0)]))
    return ScanPeaks(scan_peaks.scan_shape, tables, scan_peaks.pattern_shape)
