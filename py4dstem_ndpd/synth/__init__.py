"""4D-STEM simulator with exact ground truth (numpy/scipy only; no torch, no dask)."""
from .crystal import Crystal, ZoneReflections, bcc, hcp, ordered_oxide, silicon, zone_reflections
from .io import load_scan, save_scan
from .optics import disk_radius_inv_angstrom, electron_wavelength
from .presets import PRESETS, sige_strain, simulate_preset
from .render import DetectorModel
from .scan import Acquisition, SampleModel, SimulatedScan, simulate
from .truth import TRUTH_DTYPE, ScanTruth

__all__ = [
    "Acquisition", "Crystal", "DetectorModel", "PRESETS", "SampleModel", "ScanTruth", "SimulatedScan", "TRUTH_DTYPE",
    "ZoneReflections", "bcc", "disk_radius_inv_angstrom", "electron_wavelength", "hcp", "load_scan",
    "ordered_oxide", "save_scan", "sige_strain", "silicon", "simulate", "simulate_preset", "zone_reflections",
]
