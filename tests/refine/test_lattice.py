"""Lattice bases: reduction, alignment, finding from noisy vectors, grouped least squares."""
import numpy as np
import pytest

from py4dstem_ndpd.exceptions import InputError
from py4dstem_ndpd.refine.lattice import (
    _check_basis, align_basis, find_basis, fit_basis, index_points, reduce_basis,
)

B = np.array([[26.4, -37.3], [26.4, 37.3]])  # Si [110] 111-type vectors at 256 px


def lattice_points(basis, n=3, origin=(0.0, 0.0)):
    r = np.arange(-n, n + 1)
    uv = np.stack(np.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)
    return uv, origin + uv @ basis


def test_reduce_basis_returns_a_reduced_basis_of_the_same_lattice():
    for m in ([[1, 0], [0, 1]], [[2, 1], [1, 1]], [[0, -1], [1, 0]], [[-1, 3], [0, -1]], [[5, 2], [2, 1]]):
        g1, g2 = red = reduce_basis(np.array(m, float) @ B)
        assert np.linalg.norm(g1) <= np.linalg.norm(g2) + 1e-9
        assert abs(g1 @ g2) <= 0.5 * g1 @ g1 + 1e-9
        assert g1[0] * g2[1] - g1[1] * g2[0] > 0 and g1[0] >= 0
        u = red @ np.linalg.inv(B)  # same lattice: an integer matrix of determinant +-1
        assert np.allclose(u, np.rint(u), atol=1e-9) and abs(round(np.linalg.det(u))) == 1
    # batch: one call for many bases
    many = np.array([[[2, 1], [1, 1]], [[1, 0], [3, 1]]], float) @ B
    assert reduce_basis(many).shape == (2, 2, 2)
    assert np.allclose(np.abs(np.linalg.det(reduce_basis(many))), abs(np.linalg.det(B)))


def test_align_basis_picks_the_vectors_closest_to_a_reference():
    strained = B * np.array([1.01, 1.0])
    other = np.array([[1, 1], [0, 1]], float) @ strained  # same lattice, another basis
    assert np.allclose(align_basis(other, B), strained)
    # batch, and a basis of a different lattice is returned unchanged
    out = align_basis(np.stack([other, 3 * B]), B)
    assert np.allclose(out[0], strained) and np.allclose(out[1], 3 * B)


def test_find_basis_recovers_the_lattice_from_noisy_vectors_with_outliers():
    rng = np.random.default_rng(1)
    uv, pts = lattice_points(B)
    keep = np.any(uv != 0, 1) & (np.abs(pts).max(1) < 128)
    vec = pts[keep] + rng.normal(0, 0.3, (keep.sum(), 2))
    vec = np.vstack([vec, rng.uniform(-120, 120, (6, 2))])  # spurious detections
    found = find_basis(vec, tol_px=1.5)
    assert np.allclose(align_basis(found, B), B, atol=0.15)


def test_find_basis_prefers_the_primitive_cell_over_a_sublattice():
    uv, pts = lattice_points(B)
    vec = pts[np.any(uv != 0, 1)]
    found = find_basis(vec)
    assert abs(np.linalg.det(found)) == pytest.approx(abs(np.linalg.det(B)), rel=1e-6)


def test_find_basis_returns_none_without_a_lattice():
    assert find_basis(np.zeros((0, 2))) is None
    assert find_basis(np.array([[10.0, 0.0], [20.0, 0.0], [30.0, 0.0]])) is None  # collinear


def test_index_points_and_grouped_fit_recover_two_lattices_at_once():
    rng = np.random.default_rng(2)
    B2 = np.array([[30.0, 5.0], [-4.0, 28.0]])
    rows = []
    for grp, (basis, origin) in enumerate([(B, np.array([128.0, 127.0])), (B2, np.array([100.0, 90.0]))]):
        uv, pts = lattice_points(basis, 2, origin)
        u, dist = index_points(pts - origin, basis)
        assert np.array_equal(u, uv) and np.allclose(dist, 0)
        rows.append((uv, pts + rng.normal(0, 0.05, pts.shape), np.full(len(uv), grp)))
    uv = np.concatenate([r[0] for r in rows])
    pts = np.concatenate([r[1] for r in rows])
    grp = np.concatenate([r[2] for r in rows])
    basis, origin = fit_basis(uv, pts, np.ones(len(uv)), grp, 3)
    assert np.allclose(basis[0], B, atol=0.03) and np.allclose(basis[1], B2, atol=0.03)
    assert np.allclose(origin[:2], [[128, 127], [100, 90]], atol=0.05)
    assert np.all(np.isnan(basis[2]))  # an empty group


def test_degenerate_basis_is_an_input_error():
    with pytest.raises(InputError, match="non-collinear"):
        _check_basis(np.array([[1.0, 0.0], [2.0, 0.0]]))
    with pytest.raises(InputError, match="shape"):
        _check_basis(np.ones(3))


def test_find_basis_with_too_few_indexed_vectors_does_not_crash():
    # regression: no vector within tolerance after the first pass made matrix_rank see an empty array
    from py4dstem_ndpd.refine.lattice import find_basis

    v = np.array([[-26.5545, 13.8739], [26.5546, 20.4267], [48.7627, -4.1965], [25.4490, -38.4608],
                  [18.3458, -44.1598], [35.5175, 37.4371]])
    out = find_basis(v, tol_px=1.5, min_length_px=3.0)
    assert out is None or np.asarray(out).shape == (2, 2)
