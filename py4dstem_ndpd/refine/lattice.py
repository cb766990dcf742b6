"""Two-dimensional lattices of diffraction vectors: finding, reducing, indexing and fitting a basis.

A basis is a (2, 2) array whose **rows** are the reciprocal lattice vectors ``g1`` and ``g2`` in detector pixels,
(qx, qy) order. A lattice point is ``origin + u * g1 + v * g2`` with integer ``(u, v)``; written with arrays,
``points = origin + uv @ basis``.
"""
from __future__ import annotations

import numpy as np

from ..exceptions import InputError


def reduce_basis(basis: np.ndarray) -> np.ndarray:
    """Lagrange-Gauss reduction: a shortest basis of the same lattice.

    The result has ``|g1| <= |g2|``, ``|g1 . g2| <= |g1|^2 / 2`` and a positive determinant (``g2`` is
    counter-clockwise from ``g1`` in the (qx, qy) frame), with ``g1[0] >= 0`` (ties: ``g1[1] >= 0``). When
    several lattice vectors have the same length (square, centred-rectangular, hexagonal nets) more than one
    basis qualifies; compare bases of different patterns after :func:`align_basis`.

    Parameters
    ----------
    basis : ndarray, shape (..., 2, 2)
        Rows g1, g2.

    Returns
    -------
    ndarray, shape (..., 2, 2)
    """
    b = np.array(basis, dtype=np.float64, copy=True)
    g1, g2 = b[..., 0, :], b[..., 1, :]
    for _ in range(64):
        n1 = np.einsum("...i,...i", g1, g1)
        n2 = np.einsum("...i,...i", g2, g2)
        swap = n2 < n1
        g1, g2 = np.where(swap[..., None], g2, g1), np.where(swap[..., None], g1, g2)
        n1 = np.minimum(n1, n2)
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.rint(np.einsum("...i,...i", g1, g2) / n1)
        m = np.nan_to_num(m)
        if not np.any(m):
            break
        g2 = g2 - m[..., None] * g1
    flip = (g1[..., 0] < 0) | ((g1[..., 0] == 0) & (g1[..., 1] < 0))
    g1 = np.where(flip[..., None], -g1, g1)
    det = g1[..., 0] * g2[..., 1] - g1[..., 1] * g2[..., 0]
    g2 = np.where((det < 0)[..., None], -g2, g2)
    return np.stack([g1, g2], -2)


def align_basis(basis: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Re-express a lattice basis with the lattice vectors closest to a reference basis.

    Use it before comparing bases of different patterns (strain maps): two patterns of the same crystal may
    otherwise be described by different but equivalent bases.

    Parameters
    ----------
    basis : ndarray, shape (..., 2, 2)
        Rows g1, g2 of any basis of the lattice.
    reference : ndarray, shape (2, 2) or (..., 2, 2)
        Rows of the reference basis (e.g. the unstrained crystal), same units.

    Returns
    -------
    ndarray, shape (..., 2, 2)
        Rows ``u1 @ basis`` and ``u2 @ basis`` with the integer ``u`` nearest to ``reference @ inv(basis)``.
        Where that integer matrix is not unimodular (the lattices differ too much), the input is returned.
    """
    basis = np.asarray(basis, dtype=np.float64)
    reference = np.broadcast_to(np.asarray(reference, dtype=np.float64), basis.shape)
    with np.errstate(all="ignore"):
        u = np.rint(reference @ np.linalg.inv(basis))
    det = u[..., 0, 0] * u[..., 1, 1] - u[..., 0, 1] * u[..., 1, 0]
    ok = np.abs(det) == 1
    return np.where(ok[..., None, None], u @ basis, basis)


def index_points(vectors: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest lattice indices of vectors and their distance to the lattice point.

    Parameters
    ----------
    vectors : ndarray, shape (K, 2)
        Positions relative to the lattice origin, px.
    basis : ndarray, shape (2, 2)

    Returns
    -------
    uv : ndarray of int, shape (K, 2)
    distance : ndarray, shape (K,)
        ``|vectors - uv @ basis|``, px.
    """
    uv = np.rint(vectors @ np.linalg.inv(basis))
    return uv.astype(np.int64), np.linalg.norm(vectors - uv @ basis, axis=1)


def find_basis(
    vectors: np.ndarray, *, tol_px: float = 1.5, frac_tol: float = 0.12, min_length_px: float = 0.0,
    n_candidates: int = 12,
) -> np.ndarray | None:
    """Find the 2D lattice that indexes the most of a set of vectors, from the vectors themselves.

    Every pair of non-collinear vectors among the ``n_candidates`` shortest is tried as a basis. A vector counts
    for a trial basis when its fractional lattice coordinates are within ``frac_tol`` of integers (a tolerance
    that grows with the cell, so that the errors of a basis taken from raw vectors do not matter); the trial
    indexing the most vectors wins (ties: the smaller cell). It is then refined by least squares on the vectors
    within ``tol_px`` of its lattice points and reduced with :func:`reduce_basis`.

    Parameters
    ----------
    vectors : ndarray, shape (K, 2)
        Disk positions relative to the pattern origin, or autocorrelation peak positions (lags), px.
    tol_px : float
        Distance to a lattice point below which a vector is used in the least-squares refinement, px.
    frac_tol : float
        Tolerance on fractional coordinates when scoring trial bases.
    min_length_px : float
        Vectors shorter than this are ignored (the direct beam, the central autocorrelation peak).
    n_candidates : int
        How many of the shortest vectors are tried as basis vectors.

    Returns
    -------
    ndarray, shape (2, 2), or None
        Reduced basis; None when fewer than two non-collinear vectors are given or no pair indexes at least
        three vectors.

    Examples
    --------
    >>> import numpy as np
    >>> B = np.array([[10.0, 0.0], [3.0, 12.0]])
    >>> uv = np.array([[1, 0], [0, 1], [1, 1], [-1, 2], [2, -1], [-1, -1]])
    >>> find_basis(uv @ B).round(6).tolist()
    [[10.0, 0.0], [3.0, 12.0]]
    """
    v = np.asarray(vectors, dtype=np.float64).reshape(-1, 2)
    v = v[np.all(np.isfinite(v), 1) & (np.linalg.norm(v, axis=1) >= max(min_length_px, 1e-9))]
    if len(v) < 2:
        return None
    cand = v[np.argsort(np.linalg.norm(v, axis=1), kind="stable")[:n_candidates]]
    i, j = np.triu_indices(len(cand), 1)
    B = np.stack([cand[i], cand[j]], 1)  # (P, 2, 2)
    det = B[:, 0, 0] * B[:, 1, 1] - B[:, 0, 1] * B[:, 1, 0]
    good = np.abs(det) > 0.05 * np.linalg.norm(B[:, 0], axis=1) * np.linalg.norm(B[:, 1], axis=1)
    if not np.any(good):
        return None
    B, det = B[good], det[good]
    frac = np.einsum("ki,pij->pkj", v, np.linalg.inv(B))  # (P, K, 2)
    hits = np.all(np.abs(frac - np.rint(frac)) < frac_tol, axis=2).sum(1)
    best = int(np.lexsort((np.abs(det), -hits))[0])
    if hits[best] < 3:
        return None
    basis = reduce_basis(B[best])
    # least-squares refinement on the indexed vectors (origin fixed at 0), growing the tolerance outwards
    for tol in (max(tol_px, frac_tol * np.linalg.norm(basis, axis=1).min()), tol_px):
        uv, dist = index_points(v, basis)
        sel = dist < tol
        if sel.sum() < 2 or np.linalg.matrix_rank(uv[sel].astype(float)) < 2:
            break
        basis = np.linalg.lstsq(uv[sel].astype(float), v[sel], rcond=None)[0]
    return reduce_basis(basis)


def fit_basis(
    uv: np.ndarray, positions: np.ndarray, weights: np.ndarray, group: np.ndarray, n_groups: int,
    origin: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares lattice bases of many groups at once (no loop over groups).

    Solves, for every group ``n``, ``min sum_k w_k |p_k - o_n - uv_k @ B_n|^2`` over ``B_n`` (and ``o_n`` when
    ``origin`` is None).

    Parameters
    ----------
    uv : ndarray, shape (K, 2)
        Integer indices of each point.
    positions : ndarray, shape (K, 2)
        Measured positions, px.
    weights : ndarray, shape (K,)
        Non-negative weights (0 drops a point).
    group : ndarray of int, shape (K,)
        Group (pattern or lattice) of each point, ``0 <= group < n_groups``.
    n_groups : int
    origin : ndarray, shape (n_groups, 2), optional
        Known origins; when given only the bases are fitted.

    Returns
    -------
    basis : ndarray, shape (n_groups, 2, 2)
        NaN where a group has too few points.
    origin : ndarray, shape (n_groups, 2)
    """
    uv = np.asarray(uv, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if origin is None:
        X = np.concatenate([np.ones((len(uv), 1)), uv], 1)  # design [1, u, v]
        y = positions
    else:
        X = uv
        y = positions - origin[group]
    p = X.shape[1]
    A = np.zeros((n_groups, p, p))
    b = np.zeros((n_groups, p, 2))
    np.add.at(A, group, w[:, None, None] * X[:, :, None] * X[:, None, :])
    np.add.at(b, group, w[:, None, None] * X[:, :, None] * y[:, None, :])
    det = np.linalg.det(A)
    scale = np.maximum(np.einsum("nii->n", A), 1e-300) ** p
    ok = np.abs(det) > 1e-9 * scale
    sol = np.full((n_groups, p, 2), np.nan)
    if np.any(ok):
        sol[ok] = np.linalg.solve(A[ok], b[ok])
    if origin is None:
        return sol[:, 1:], sol[:, 0]
    return sol, np.asarray(origin, dtype=np.float64).copy()


def _check_basis(basis: np.ndarray, name: str = "approx_basis") -> np.ndarray:
    b = np.asarray(basis, dtype=np.float64)
    if b.shape[-2:] != (2, 2):
        raise InputError(f"{name} must have shape (2, 2) (rows g1, g2 in px), got {b.shape}")
    det = b[..., 0, 0] * b[..., 1, 1] - b[..., 0, 1] * b[..., 1, 0]
    if not np.all(np.isfinite(b)) or np.any(np.abs(det) < 1e-6):
        raise InputError(f"{name} must hold two finite, non-collinear vectors; got {b.tolist()}")
    return b
