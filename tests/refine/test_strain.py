"""Origin-free strain from reciprocal lattice bases, against the simulator's truth strain."""
import numpy as np
import pytest

from py4dstem_ndpd.exceptions import InputError
from py4dstem_ndpd.refine import align_basis, lattice_from_autocorrelation, lattice_strain, reduce_basis, refine
from py4dstem_ndpd.refine.benchmark import detector_like
from py4dstem_ndpd.synth.presets import sige_strain


def test_known_deformations_are_recovered():
    G0 = np.array([[20.0, 3.0], [-2.0, 25.0]])
    eps, rot = np.array([[0.01, 0.004], [0.004, -0.006]]), 0.002
    F = np.eye(2) + eps + np.array([[0.0, -rot], [rot, 0.0]])
    G = G0 @ np.linalg.inv(F)  # reciprocal rows transform with F^-T
    e_xx, e_yy, e_xy, theta = lattice_strain(G[0], G[1], G0[0], G0[1])
    assert (e_xx, e_yy, e_xy, theta) == pytest.approx((0.01, -0.006, 0.004, 0.002), abs=1e-12)
    # maps: (Rx, Ry, 2) in, (Rx, Ry) out; the reference itself gives zero strain
    maps = lattice_strain(np.tile(G0[0], (3, 4, 1)), np.tile(G0[1], (3, 4, 1)), G0[0], G0[1])
    assert all(m.shape == (3, 4) and np.allclose(m, 0) for m in maps)
    with pytest.raises(InputError, match="same shape"):
        lattice_strain(np.zeros((3, 2)), np.zeros((4, 2)), G0[0], G0[1])


def test_autocorrelation_strain_maps_match_the_truth_on_si_sige(case):
    c = case("si_sige_multilayer", 1e5, scan_shape=(16, 2))
    fit = lattice_from_autocorrelation(c.frames, None, radius_px=c.radius)
    B = align_basis(fit.basis, reduce_basis(fit.basis[0]))
    si = np.abs(c.strain[:, 0]) < 1e-4  # the Si layers are the reference
    assert 4 <= si.sum() < len(si) - 4
    ref = B[si].mean(0)
    est = np.stack(lattice_strain(B[:, 0], B[:, 1], ref[0], ref[1]), -1)
    err = np.sqrt(np.mean((est - c.strain) ** 2, 0))
    assert np.all(err < 5e-4)  # measured 2.4e-4, 2.1e-4, 1.8e-4, 2.1e-4 (e_xx, e_yy, e_xy, theta)
    sige = c.strain[:, 0] > 0.9 * sige_strain()
    assert sige.any() and np.allclose(est[sige, 0], c.strain[sige, 0], atol=1e-3)  # e_xx ~ 0.0085 in SiGe
    # the bases of the centre refinement give the same maps (measured error 1.7e-4)
    res = refine(c.frames, detector_like(c.truth), radius_px=c.radius)
    B2 = align_basis(res.bases[:, 0], ref)
    est2 = np.stack(lattice_strain(B2[:, 0], B2[:, 1], *B2[si].mean(0)), -1)
    assert np.all(np.sqrt(np.mean((est2 - c.strain) ** 2, 0)) < 5e-4)
