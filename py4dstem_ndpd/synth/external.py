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
        ``disks['snr']`` holds the *integrated* SNR of each disk at ``dose`` (there is no peak SNR here).
    dose : float
        Electrons per pattern.
    index : ndarray of int (N,)
        Pattern numbers in the file.
    meta : dict
        ``thickness_nm``, ``convergence_mrad`` per pattern and the ``simulator`` string.
    """

    frames: np.ndarray
    truth: ScanTruth
    dose: float
    index: np.ndarray
    meta: dict


def load_external(path: str | Path, dose: float | None = None, seed: int = 0) -> list[ExternalScan]:
    """Read a file of external patterns and truth; one :class:`ExternalScan` per convergence angle.

    Parameters
    ----------
    path : str or Path
        ``.npz`` written by ``benchmarks/external/simulate_abtem.py``.
    dose : float, optional
        Electrons per pattern. None: the stored counts at the file's dose; otherwise Poisson counts are drawn
        from the noiseless patterns (``seed``) and the SNR of every disk is rescaled (it grows as the square root
        of the dose).
    seed : int

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
        frames_all, snr_all, dose = d["patterns"], d["snr"].astype(float), file_dose
    else:
        if not dose > 0:
            raise InputError(f"dose must be > 0 electrons per pattern, got {dose}")
        rng = np.random.default_rng(seed)
        frames_all = np.clip(rng.poisson(d["expected"].astype(np.float64) * dose), 0, 65535).astype(np.uint16)
        snr_all = d["snr"].astype(float) * np.sqrt(dose / file_dose)
    starts = np.concatenate([[0], np.cumsum(d["counts"])])
    # one group per convergence angle (disk radius), since a truth has one match radius
    key = d["convergence_mrad"] if "convergence_mrad" in d else np.round(d["radius_px"].astype(float), 1)
    out = []
    for r in np.unique(key):
        idx = np.flatnonzero(key == r)
        rows = []
        for j, i in enumerate(idx):
            c = d["centres"][starts[i]:starts[i + 1]]
            a = np.zeros(len(c), TRUTH_DTYPE)
            a["rx"], a["ry"] = 0, j
            a["qx"], a["qy"] = c[:, 0], c[:, 1]
            a["snr"] = snr_all[starts[i]:starts[i + 1]]
            rows.append(a)
        n = len(idx)
        shape = tuple(frames_all.shape[-2:])
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
                "convergence_mrad": d["convergence_mrad"][idx].tolist() if "convergence_mrad" in d else None}
        out.append(ExternalScan(frames=frames_all[idx][None], truth=truth, dose=float(dose), index=idx, meta=meta))
    return out


__all__ = ["ExternalScan", "load_external"]
