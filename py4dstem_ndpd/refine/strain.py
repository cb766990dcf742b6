"""Strain from reciprocal lattice bases (origin-free, e.g. from autocorrelation lattice fits).

Convention (the same as :attr:`py4dstem_ndpd.synth.ScanTruth.strain`): infinitesimal strain of the **real-space**
lattice relative to a reference, in the detector frame (x = qx = rows, y = qy = columns), and the rotation
``theta`` (rad, positive from x towards y). A real-space deformation gradient ``F`` maps reciprocal basis rows
``G0`` (rows g1, g2) to ``G = G0 @ inv(F)`` (reciprocal vectors transform with ``F^-T``), so
``F = inv(G) @ G0`` and

``e_xx = F_xx - 1``, ``e_yy = F_yy - 1``, ``e_xy = (F_xy + F_yx) / 2``, ``theta = (F_yx - F_xy) / 2``.

A lattice that is 1 % larger in reciprocal space along x is 1 % smaller in real space: ``e_xx ~ -0.01``.
"""
from __future__ import annotations

import numpy as np

from ..exceptions import InputError
from ..strain_convention import deformation_from_bases, strain_components

__all__ = ["deformation_gradient", "lattice_strain"]


def deformation_gradient(basis: np.ndarray, ref_basis: np.ndarray) -> np.ndarray:
    """Real-space deformation gradient ``F = inv(basis) @ ref_basis``, shape (..., 2, 2); NaN where singular.

    Parameters
    ----------
    basis : ndarray, shape (..., 2, 2)
        Measured reciprocal basis, rows g1, g2 (any consistent unit).
    ref_basis : ndarray, shape (2, 2) or (..., 2, 2)
        Reference (unstrained) basis, same rows and units. Both bases must index the same vectors: use
        :func:`~py4dstem_ndpd.refine.lattice.align_basis` first if they were found independently.
    """
    G = np.asarray(basis, dtype=np.float64)
    G0 = np.asarray(ref_basis, dtype=np.float64)
    if G.shape[-2:] != (2, 2) or G0.shape[-2:] != (2, 2):
        raise InputError(f"bases must have shape (..., 2, 2) (rows g1, g2), got {G.shape} and {G0.shape}")
    return deformation_from_bases(G, G0)


def lattice_strain(
    g1: np.ndarray, g2: np.ndarray, ref_g1: np.ndarray, ref_g2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Strain and rotation maps from measured and reference reciprocal lattice vectors.

    Parameters
    ----------
    g1, g2 : ndarray, shape (..., 2)
        Measured reciprocal basis vectors (qx, qy), e.g. ``LatticeFit.g1`` of a whole scan (Rx, Ry, 2).
    ref_g1, ref_g2 : ndarray, shape (2,) or broadcastable to ``g1``
        Reference vectors (the unstrained crystal), same units.

    Returns
    -------
    e_xx, e_yy, e_xy, theta : ndarray, shape (...)
        Infinitesimal real-space strain in the detector frame (x = qx) and rotation (rad); see the module
        docstring. NaN where a basis is NaN or degenerate.

    Examples
    --------
    >>> import numpy as np
    >>> ref1, ref2 = np.array([20.0, 0.0]), np.array([0.0, 20.0])
    >>> e_xx, e_yy, e_xy, theta = lattice_strain(ref1 / 1.01, ref2, ref1, ref2)
    >>> round(float(e_xx), 6), round(float(e_yy), 6)
    (0.01, 0.0)
    """
    g1 = np.asarray(g1, dtype=np.float64)
    g2 = np.asarray(g2, dtype=np.float64)
    if g1.shape[-1:] != (2,) or g2.shape != g1.shape:
        raise InputError(f"g1 and g2 must have the same shape (..., 2), got {g1.shape} and {g2.shape}")
    G = np.stack([g1, g2], -2)
    G0 = np.stack(np.broadcast_arrays(np.asarray(ref_g1, float), np.asarray(ref_g2, float)), -2)
    e = strain_components(deformation_gradient(G, G0))
    return e[..., 0], e[..., 1], e[..., 2], e[..., 3]
