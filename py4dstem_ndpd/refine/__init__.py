"""Sub-pixel refinement of disk centres and origin-free lattices from the autocorrelation (paper eq. 4).

Core functions on plain arrays (frames ``(N, Qx, Qy)``, centres ``(K, 2)`` or PEAK_DTYPE tables):

- :func:`refine_centres` / :func:`refine`: refine detected centres (default: per-disk correlation with the
  direct beam, then every disk on a fitted lattice moved to its site);
- :func:`autocorrelation`, :func:`lattice_from_autocorrelation`: ``R = F^-1(|F[I]|^2)`` and the reciprocal
  lattice fitted to its peaks;
- :func:`lattice_strain`: strain and rotation maps from reciprocal bases;
- :func:`noise_detections`: the detections of a refined batch that look like background noise;
- :func:`duplicate_detections`: second detections of a disk that a lattice already explains;
- :func:`complete_lattices`: disks the detector missed, at empty sites of the fitted lattices (lattice completion);
- :func:`estimate_gain`: counts per electron, from the data's quantum.
"""
from .autocorr import LatticeFit, autocorrelation, autocorrelation_shape, lattice_from_autocorrelation
from .centres import METHODS, RefineMethod, RefineOptions, Refinement, refine, refine_centres
from .complete import Completion, CompletionOptions, complete_lattices
from .duplicates import duplicate_detections
from .gain import estimate_gain
from .lattice import align_basis, find_basis, reduce_basis
from .noise import noise_detections
from .strain import deformation_gradient, lattice_strain

__all__ = [
    "Completion", "CompletionOptions", "LatticeFit", "METHODS", "RefineMethod", "RefineOptions", "Refinement",
    "align_basis", "autocorrelation", "autocorrelation_shape", "complete_lattices", "deformation_gradient",
    "duplicate_detections", "estimate_gain", "find_basis", "lattice_from_autocorrelation", "lattice_strain", "noise_detections",
    "reduce_basis", "refine", "refine_centres",
]
