"""Electron optics: wavelength and disk size."""
from __future__ import annotations

import numpy as np


def electron_wavelength(kv: float) -> float:
    """Relativistic electron wavelength in Å for an accelerating voltage in kV (200 kV -> 0.02508 Å)."""
    m0c2 = 510.99895e3  # eV
    e_v = kv * 1e3
    hc = 12398.419843  # eV·Å
    return hc / np.sqrt(e_v * (2 * m0c2 + e_v))


def disk_radius_inv_angstrom(kv: float, convergence_mrad: float) -> float:
    """Radius of a diffraction disk in 1/Å: convergence semi-angle divided by the wavelength."""
    return convergence_mrad * 1e-3 / electron_wavelength(kv)
