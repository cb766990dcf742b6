"""Cramer-Rao bounds of disk centres on simulated patterns: the best centre accuracy any unbiased estimator can
reach under the simulator's Poisson noise.

For pattern ``i`` with noise-free image ``mu`` (electrons per pixel) the Fisher information of the centre
``c_k`` of disk ``k`` is ``F_k = sum_q grad_c mu_k(q) grad_c mu_k(q)^T / mu(q)``, with ``mu_k`` the disk's own
contribution (rendered by the simulator, blurred by the detector) and its derivative taken by central differences
(0.05 px). Two bounds are reported per disk, each as the RMS of the 2D error (``sqrt(trace(cov))``, px):

``per_disk``
    ``F_k^-1``: the disk measured on its own.
``lattice``
    Every disk of the pattern constrained to ``c = o + h a + k b + l c`` (shared origin ``o``, one 3 x 2 matrix
    per crystal component, ``h, k, l`` its Miller indices): the bound of a joint fit of all disks, which is what
    a lattice refinement can approach when the disk shapes are known and centrosymmetric.

Only disks whose centre lies on the detector (the truth's disks) are used, so the bounds are slightly pessimistic
for patterns with many disks cut by the edge. Interior texture is not modelled (the presets have none).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import InputError
from .render import DiskBatch, blur, render_disks
from .scan import Acquisition
from .truth import ScanTruth

#: Step of the central differences, px.
STEP_PX = 0.05


@dataclass
class CentreBounds:
    """Cramer-Rao bounds of the truth's disks (aligned with ``truth.disks``), RMS of the 2D error, px."""

    per_disk: np.ndarray
    lattice: np.ndarray


def centre_bounds(truth: ScanTruth, acq: Acquisition, expected: np.ndarray) -> CentreBounds:
    """Cramer-Rao bounds of every true disk centre (see the module docstring).

    Parameters
    ----------
    truth : ScanTruth
        The truth of the scan (disk centres, intensities in expected electrons, Miller indices).
    acq : Acquisition
        The acquisition it was simulated with (radius, edge, ripple, distortion, detector blur).
    expected : ndarray, shape (Rx, Ry, Qx, Qy)
        Noise-free patterns of the same scan (``Acquisition(noise=False)``), expected electrons per pixel.

    Returns
    -------
    CentreBounds
    """
    mu_all = np.asarray(expected, dtype=np.float64).reshape(-1, *truth.pattern_shape)
    n_pos = len(truth.offsets) - 1
    if len(mu_all) != n_pos:
        raise InputError(f"expected has {len(mu_all)} patterns but the truth {n_pos}; pass the noise-free patterns "
                         "of the same scan (Acquisition(noise=False))")
    per = np.full(len(truth.disks), np.nan)
    lat = np.full(len(truth.disks), np.nan)
    for i in range(n_pos):
        a, b = truth.offsets[i], truth.offsets[i + 1]
        if b == a:
            continue
        d = truth.disks[a:b]
        F = _disk_information(d, acq, mu_all[i])
        per[a:b] = np.sqrt([np.trace(np.linalg.inv(f)) if np.linalg.det(f) > 0 else np.inf for f in F])
        J = _lattice_design(d)
        cov = np.linalg.pinv(np.einsum("kap,kab,kbq->pq", J, F, J))
        lat[a:b] = np.sqrt(np.maximum(np.einsum("kap,pq,kaq->k", J, cov, J), 0.0))
    return CentreBounds(per_disk=per, lattice=lat)


def _disk_information(d: np.ndarray, acq: Acquisition, mu: np.ndarray) -> np.ndarray:
    """(K, 2, 2) Fisher information of each disk centre of one pattern."""
    R = acq.radius_px
    half = int(np.ceil(R + 3.0 * max(acq.edge_px, 0.5) + 4.0 * acq.detector.blur_sigma + 3.0))
    w = 2 * half + 1
    H, W = mu.shape
    K = len(d)
    # 4 renders per disk (+-STEP along qx and qy), each in a (w, w) window around the disk's pixel
    ix, iy = np.round(d["qx"]).astype(int), np.round(d["qy"]).astype(int)
    lx, ly = d["qx"] - ix + half, d["qy"] - iy + half
    steps = np.array([[STEP_PX, 0], [-STEP_PX, 0], [0, STEP_PX], [0, -STEP_PX]])
    qx = (lx[:, None] + steps[None, :, 0]).reshape(-1, 1)
    qy = (ly[:, None] + steps[None, :, 1]).reshape(-1, 1)
    direct = (d["h"] == 0) & (d["k"] == 0) & (d["l"] == 0)
    B = 4 * K
    disks = DiskBatch(
        qx=qx, qy=qy, weight=np.repeat(d["intensity"].astype(np.float64), 4)[:, None], radius=np.full(B, R),
        edge=np.full(B, acq.edge_px), ripple=np.repeat(np.where(direct, 0.0, acq.ripple), 4)[:, None],
        ripple_period=np.full((B, 1), max(R, 2.0)), shape_matrix=np.broadcast_to(acq.distortion(), (B, 2, 2)),
    )
    img = blur(render_disks(disks, (w, w)), acq.detector.blur_sigma).reshape(K, 4, w, w).astype(np.float64)
    gx = (img[:, 0] - img[:, 1]) / (2 * STEP_PX)
    gy = (img[:, 2] - img[:, 3]) / (2 * STEP_PX)
    F = np.zeros((K, 2, 2))
    o = np.arange(-half, half + 1)
    for k in range(K):
        rows, cols = ix[k] + o, iy[k] + o
        rin, cin = (rows >= 0) & (rows < H), (cols >= 0) & (cols < W)
        m = 1.0 / np.maximum(mu[np.ix_(rows[rin], cols[cin])], 1e-12)
        ax, ay = gx[k][np.ix_(rin, cin)], gy[k][np.ix_(rin, cin)]
        F[k] = [[np.sum(ax * ax * m), np.sum(ax * ay * m)], [np.sum(ax * ay * m), np.sum(ay * ay * m)]]
    return F


def _lattice_design(d: np.ndarray) -> np.ndarray:
    """(K, 2, P) derivative of each centre with respect to (origin, one 3 x 2 matrix per component)."""
    comps = sorted(set(int(c) for c in d["component"]))
    P = 2 + 6 * len(comps)
    J = np.zeros((len(d), 2, P))
    J[:, :, :2] = np.eye(2)
    hkl = np.stack([d["h"], d["k"], d["l"]], 1).astype(np.float64)
    for k in range(len(d)):
        c = comps.index(int(d["component"][k]))
        for a in range(3):
            J[k, :, 2 + 6 * c + 2 * a: 4 + 6 * c + 2 * a] = hkl[k, a] * np.eye(2)
    return J
