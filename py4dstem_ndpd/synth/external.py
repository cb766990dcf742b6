"""Patterns and truth made by *another* simulator, as scans this package can detect on and score.

The detector is trained only on this package's simulator; its generalisation is judged on patterns it never saw
from elsewhere. ``benchmarks/external/simulate_abtem.py`` writes multislice CBED patterns of Si [110] from abTEM
(dynamical diffraction: thickness fringes and rocking-curve contrast inside the disks, which our kinematic
renderer does not make) into one ``.npz`` file; a small one ships as the test fixture
``tests/data/abtem_si110.npz``. :func:`load_external` turns such a file into scans grouped by convergence angle
(the match radius of :func:`~py4dstem_ndpd.evaluate.evaluate_detections` is one per truth: their mean radius).

File fields (see the script): ``patterns`` (N, Qx, Qy) counts, ``expected`` (N, Qx, Qy) noiseless, summing to 1,
``centres`` (M, 2) every zero-order reflection on the detector (qx, qy px, exact), ``snr`` (M,) the integrated
SNR of its disk at the file's dose, ``counts`` (N,) reflections per pattern, ``radius_px`` (N,), ``origin``
(N, 2), ``q_pixel_size`` (N,), ``dose``, ``simulator``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..calibration import Calibration
from ..exceptions import InputError
from .truth import TRUTH_DTYPE, ScanTruth


@dataclass
class ExternalScan:
    """A group of patterns with one disk radius, from another simulator.

    Attributes
    ----------
    frames : ndarray (1, N, Qx, Qy)
        Counts at ``dose`` (a 1 x N scan).
    truth : ScanTruth
        Every site of the projected cell; ``disks['snr']`` is the peak SNR and ``disks['intensity']`` the
        integrated electrons of each disk at ``dose``, both measured on the noiseless pattern.
    dose : float
        Electrons per pattern.
    index : ndarray of int (N,)
        Pattern numbers in the file.
    meta : dict
        ``thickness_nm``, ``convergence_mrad``, ``tilt_mrad`` (beam tilt off the zone axis, (tx, ty) mrad; None in
        files made without one) per pattern and the ``simulator`` string.
    """

    frames: np.ndarray
    truth: ScanTruth
    dose: float
    index: np.ndarray
    meta: dict


def net_sites(sites: np.ndarray, origin: np.ndarray, shape: tuple[int, int], *, subdivide: int = 2) -> np.ndarray:
    """Every node of the rectangular net of the listed reflections, subdivided, on the detector.

    The file lists the zero-order reflections allowed kinematically (for Si [110] the fcc rule keeps
    ``(h, -h, l)`` with ``h, l`` of one parity: a centred rectangular net). abTEM's multislice also lights other
    places: the remaining nodes of the rectangular net and, in thick crystals, half-order positions (measured on
    the 60 nm pattern of the fixture: integrated SNR up to 22, peak SNR up to 2.4 at 1e6 electrons; slicing the
    a/sqrt(2) repeat into two single-layer slices folds first-Laue-zone intensity into the zero-order plane).
    A detector that finds such a disk is right, so the truth lists every node of the net subdivided
    ``subdivide`` times and :func:`load_external` keeps the ones with a visible disk. The basis is half the
    shortest pure-``qx`` and pure-``qy`` differences between listed sites.

    Parameters
    ----------
    sites : ndarray (M, 2)
        Listed reflections (qx row, qy column), px; the zero beam among them.
    origin : ndarray (2,)
        The zero beam, px.
    shape : tuple of int
        Detector shape; nodes whose centre lies on a pixel of it are returned.
    subdivide : int
        Nodes per basis step.

    Returns
    -------
    ndarray (K, 4)
        ``qx, qy`` (px), 1 for the listed sites and 0 for the other nodes (the listed ones first), and each node's
        distance to the nearest listed site (px; 0 for the listed ones).

    Raises
    ------
    InputError
        The listed sites are not on a rectangular net aligned with the detector axes.
    """
    listed = np.asarray(sites, float)
    rel = listed - np.asarray(origin, float)
    d = (rel[:, None] - rel[None]).reshape(-1, 2)
    tol = 0.05
    steps = []
    for axis in (0, 1):
        pure = (np.abs(d[:, 1 - axis]) < tol) & (np.abs(d[:, axis]) > 1.0)
        if not pure.any():
            raise InputError("external truth: no two listed sites share a row or column; cannot find the net")
        steps.append(float(np.abs(d[pure, axis]).min()) / 2.0 / subdivide)
    lim = [int(np.ceil(max(shape) / s)) + 1 for s in steps]
    m, n = np.meshgrid(np.arange(-lim[0], lim[0] + 1), np.arange(-lim[1], lim[1] + 1), indexing="ij")
    q = np.stack([origin[0] + m.ravel() * steps[0], origin[1] + n.ravel() * steps[1]], 1)
    on = (q >= -0.5).all(1) & (q[:, 0] < shape[0] - 0.5) & (q[:, 1] < shape[1] - 0.5)
    q = q[on]
    dist = np.hypot(*(q[:, None] - listed[None]).transpose(2, 0, 1))
    if dist.min(axis=0).max() > tol:
        raise InputError("external truth: the listed sites are not on one rectangular net; not an abTEM file?")
    nearest = dist.min(axis=1)
    other = nearest > tol
    return np.vstack([np.column_stack([listed, np.ones(len(listed)), np.zeros(len(listed))]),
                      np.column_stack([q[other], np.zeros(int(other.sum())), nearest[other]])])


def disk_snr(expected: np.ndarray, sites: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrated intensity and SNRs of the disk at each site of a noiseless pattern.

    Same definition as ``benchmarks/external/simulate_abtem.py``: ``b`` the median of an annulus from
    ``radius + 2`` to ``radius + 5`` px (background between disks), ``I`` the counts inside the disk minus
    ``A b``, ``A`` its pixel count.

    Parameters
    ----------
    expected : ndarray (Qx, Qy)
        Noiseless counts (electrons per pixel at the dose wanted).
    sites : ndarray (K, 2)
        Disk centres (qx, qy), px.
    radius : float
        Disk radius, px.

    Returns
    -------
    intensity, integrated, peak : ndarray (K,)
        ``I`` (electrons), the integrated SNR ``I / sqrt(I + A b)`` and the peak SNR ``p / sqrt(p + b)`` with
        ``p = I / (pi radius^2)`` (the package simulator's definition, so that
        :func:`~py4dstem_ndpd.evaluate.integrated_snr` recovers the integrated one to within the difference
        between ``A`` and ``pi radius^2``); negative intensities give 0.
    """
    K = len(sites)
    intensity, integ, peak = np.zeros(K), np.zeros(K), np.zeros(K)
    w = int(np.ceil(radius + 6))
    H, W = expected.shape
    for i, (x, y) in enumerate(np.asarray(sites, float)):
        x0, x1 = max(int(x) - w, 0), min(int(x) + w + 1, H)
        y0, y1 = max(int(y) - w, 0), min(int(y) + w + 1, W)
        qx, qy = np.mgrid[x0:x1, y0:y1]
        patch = expected[x0:x1, y0:y1]
        d2 = (qx - x) ** 2 + (qy - y) ** 2
        disk = d2 <= radius**2
        ring = (d2 >= (radius + 2) ** 2) & (d2 <= (radius + 5) ** 2)
        b = float(np.median(patch[ring])) if ring.any() else 0.0
        A = max(int(disk.sum()), 1)
        I = max(float(patch[disk].sum() - b * A), 0.0)
        p = I / (np.pi * radius**2)
        intensity[i] = I
        integ[i] = I / np.sqrt(I + b * A + 1e-12)
        peak[i] = p / np.sqrt(p + b + 1e-12)
    return intensity, integ, peak


def load_external(path: str | Path, dose: float | None = None, seed: int = 0, *,
                  min_visible_snr: float = 1.0) -> list[ExternalScan]:
    """Read a file of external patterns and truth; one :class:`ExternalScan` per convergence angle.

    The truth holds the sites the file lists (allowed kinematically; ``l = 1``) and every other node of their
    net, subdivided (:func:`net_sites`), whose disk overlaps no listed one and is visible in the noiseless pattern
    at ``dose`` (peak SNR ``>= min_visible_snr``; ``l = 0``), each with its disk's ``intensity`` (expected
    electrons) and *peak* ``snr`` measured there (:func:`disk_snr`). So
    :func:`~py4dstem_ndpd.evaluate.evaluate_detections` counts disks by peak SNR (the default) or by integrated
    SNR (``snr="integrated"``) as for the package's own simulator, and a detection of a disk the multislice made
    off the kinematic sites is not a false positive.

    Parameters
    ----------
    path : str or Path
        ``.npz`` written by ``benchmarks/external/simulate_abtem.py``.
    dose : float, optional
        Electrons per pattern. None: the stored counts at the file's dose; otherwise Poisson counts are drawn
        from the noiseless patterns (``seed``).
    seed : int
    min_visible_snr : float
        Unlisted nodes with a disk of at least this peak SNR join the truth.

    Returns
    -------
    list of ExternalScan

    Raises
    ------
    InputError
        The file is missing or lacks a field.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"external pattern file not found: {p}; make one with benchmarks/external/simulate_abtem.py")
    with np.load(p, allow_pickle=False) as z:
        need = ("patterns", "expected", "centres", "snr", "counts", "radius_px", "origin", "q_pixel_size", "dose")
        missing = [k for k in need if k not in z.files]
        if missing:
            raise InputError(f"{p} lacks {missing}; it was not written by simulate_abtem.py")
        d = {k: z[k] for k in z.files}
    file_dose = float(d["dose"])
    if dose is None:
        frames_all, dose = d["patterns"], file_dose
    else:
        if not dose > 0:
            raise InputError(f"dose must be > 0 electrons per pattern, got {dose}")
        rng = np.random.default_rng(seed)
        frames_all = np.clip(rng.poisson(d["expected"].astype(np.float64) * dose), 0, 65535).astype(np.uint16)
    starts = np.concatenate([[0], np.cumsum(d["counts"])])
    shape = tuple(frames_all.shape[-2:])
    # one group per convergence angle (disk radius), since a truth has one match radius
    key = d["convergence_mrad"] if "convergence_mrad" in d else np.round(d["radius_px"].astype(float), 1)
    out = []
    for r in np.unique(key):
        idx = np.flatnonzero(key == r)
        rows = []
        for j, i in enumerate(idx):
            nodes = net_sites(d["centres"][starts[i]:starts[i + 1]], d["origin"][i].astype(float), shape)
            R = float(d["radius_px"][i])
            # an unlisted node can join only when its disk overlaps no listed one: measure just those
            nodes = nodes[(nodes[:, 2] == 1) | (nodes[:, 3] >= 2 * R)]
            intensity, _, peak = disk_snr(d["expected"][i].astype(np.float64) * dose, nodes[:, :2], R)
            keep = (nodes[:, 2] == 1) | (peak >= min_visible_snr)
            a = np.zeros(int(keep.sum()), TRUTH_DTYPE)
            a["rx"], a["ry"] = 0, j
            a["qx"], a["qy"] = nodes[keep, 0], nodes[keep, 1]
            a["intensity"], a["snr"] = intensity[keep], peak[keep]
            a["l"] = nodes[keep, 2]
            rows.append(a)
        n = len(idx)
        truth = ScanTruth(
            scan_shape=(1, n), pattern_shape=shape, disks=np.concatenate(rows),
            offsets=np.concatenate([[0], np.cumsum([len(a) for a in rows])]),
            origin=d["origin"][idx].reshape(1, n, 2).astype(float), lattice=np.full((1, n, 2, 2), np.nan),
            strain=np.zeros((1, n, 4)), phase=np.zeros((1, n), int), phase_names=["Si"], component_names=["Si"],
            disk_radius=float(np.mean(d["radius_px"][idx])),
            calibration=Calibration(q_pixel_size=float(np.mean(d["q_pixel_size"][idx]))),
            meta={"simulator": str(d.get("simulator", "external"))},
        )
        meta = {"simulator": str(d.get("simulator", "external")),
                "thickness_nm": d["thickness_nm"][idx].tolist() if "thickness_nm" in d else None,
                "convergence_mrad": d["convergence_mrad"][idx].tolist() if "convergence_mrad" in d else None,
                "tilt_mrad": d["tilt_mrad"][idx].tolist() if "tilt_mrad" in d else None}
        out.append(ExternalScan(frames=frames_all[idx][None], truth=truth, dose=float(dose), index=idx, meta=meta))
    return out


__all__ = ["ExternalScan", "disk_snr", "load_external", "net_sites"]
