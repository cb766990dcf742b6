"""Science workflows on Bragg vectors (paper section 4): strain maps, phase maps, virtual images, figures, report.

Everything here takes ``py4DSTEM.BraggVectors`` from any backend (this package's detector or py4DSTEM's template
matching) or plain arrays.
"""
from .figures import (
    plot_detections, plot_error_histograms, plot_phase_strain, plot_strain_maps, plot_virtual_images, save_figure,
)
from .phase import PhaseOptions, PhaseResult, PhaseSummary, phase_map
from .report import ReportSection, write_report
from .strain import StrainOptions, StrainResult, line_profile, reference_mask, strain_from_lattice, strain_map
from .virtual import (
    annulus_mask, central_beam, virtual_annular_dark_field, virtual_bright_field, virtual_image,
)

__all__ = [
    "PhaseOptions", "PhaseResult", "PhaseSummary", "ReportSection", "StrainOptions", "StrainResult", "annulus_mask",
    "central_beam", "line_profile", "phase_map", "plot_detections", "plot_error_histograms", "plot_phase_strain",
    "plot_strain_maps", "plot_virtual_images", "reference_mask", "save_figure", "strain_from_lattice", "strain_map",
    "virtual_annular_dark_field", "virtual_bright_field", "virtual_image", "write_report",
]
