"""The package's strain convention, defined once (used by the simulator's truth, refinement and analysis).

Infinitesimal strain of the **real-space** lattice relative to a reference, in the detector frame
(x = qx = rows, y = qy = columns), from the deformation gradient ``F`` (``r' = F r``):

``e_xx = F_xx - 1``, ``e_yy = F_yy - 1``, ``e_xy = (F_xy + F_yx) / 2``, ``theta = (F_yx - F_xy) / 2`` (rad,
positive from x towards y).

Reciprocal basis rows ``G0`` (g1, g2) become ``G = G0 @ inv(F)`` (reciprocal vectors transform with ``F^-T``),
so ``F = inv(G) @ G0``. A lattice 1 % larger in reciprocal space along x is 1 % smaller in real space.
"""
from __future__ import annotations

import numpy as np

#: Order of the components in (..., 4) arrays.
STRAIN_COMPONENTS = ("e_xx", "e_yy", "e_xy", "theta")


def strain_components(F: np.ndarray) -> np.ndarray:
    """(..., 2, 2) deformation gradients -> (..., 4) e_xx, e_yy, e_xy, theta."""
    F = np.asarray(F, dtype=np.float64)
    return np.stack(
        [F[..., 0, 0] - 1.0, F[..., 1, 1] - 1.0, 0.5 * (F[..., 0, 1] + F[..., 1, 0]), 0.5 * (F[..., 1, 0] - F[..., 0, 1])],
        axis=-1,
    )


def deformation_from_bases(basis: np.ndarray, ref_basis: np.ndarray) -> np.ndarray:
    """``F = inv(basis) @ ref_basis`` for reciprocal bases as rows (..., 2, 2); NaN where singular."""
    G = np.asarray(basis, dtype=np.float64)
    G0 = np.broadcast_to(np.asarray(ref_basis, dtype=np.float64), G.shape)
    out = np.full(G.shape, np.nan)
    flat_G, flat_G0, flat_out = G.reshape(-1, 2, 2), G0.reshape(-1, 2, 2), out.reshape(-1, 2, 2)
    det = np.linalg.det(np.nan_to_num(flat_G))
    ok = np.all(np.isfinite(flat_G), axis=(1, 2)) & (np.abs(det) > 1e-12)
    flat_out[ok] = np.linalg.solve(flat_G[ok], flat_G0[ok])
    return flat_out.reshape(G.shape)
