"""Which detections of a refined batch look like background noise rather than disks.

At low dose the detector also fires on clusters of a few background electrons. :func:`noise_detections` flags
those that the refinement's lattice and SNR cannot explain; ``docs/refinement.md`` says how the rule was chosen.
"""
from __future__ import annotations

import numpy as np

from .centres import Refinement
from .complete import site_snr

#: Act only in patterns whose fitted lattices index at least this fraction of the detections: where a lattice
#: explains the pattern, an unexplained faint detection is suspect; where it explains the pattern poorly (distorted
#: lattices, several grains, low dose) most such detections were real disks on validation data.
LATTICE_EXPLAINED = 0.8


def noise_detections(r: Refinement, radius_px: float, min_snr: float = 5.0,
                     frames: np.ndarray | None = None) -> list[np.ndarray]:
    """Flag the detections that look like background noise.

    A detection is flagged when all four hold: (1) the fitted lattices of its pattern index at least
    :data:`LATTICE_EXPLAINED` of the pattern's detections; (2) no lattice indexes it; (3) its SNR (``r.snr``:
    background-subtracted counts in the disk over their noise) is below ``min_snr``; (4) no detection with SNR
    >= ``min_snr`` lies within ``2 * radius_px + 10`` px (next to a bright disk the SNR's background ring, radius +
    4 to ~radius + 10 px around the centre, holds part of that disk and the SNR means little) or, when ``frames``
    are given, its SNR measured again with a background that leaves out such neighbours (:func:`~.complete.site_snr`
    with ``robust=True``) is below ``min_snr`` too. The network's score is not used: its calibration differs from
    model to model.

    Parameters
    ----------
    r : Refinement
        Result of :func:`~py4dstem_ndpd.refine.refine` with ``method="lattice"`` or ``"autocorrelation"`` (other
        methods fit no lattice, and nothing is flagged).
    radius_px : float
        Disk radius, px.
    min_snr : float
        SNR below which an unexplained detection is flagged.
    frames : ndarray, shape (N, Qx, Qy), optional
        The patterns ``r`` was refined on (counts). Without them, detections next to a bright disk are kept.

    Returns
    -------
    list of ndarray of bool
        Per pattern, (K_i,) True for the detections to drop, in the order of ``r.centres``.
    """
    isolation = 2.0 * float(radius_px) + 10.0
    out, crowded = [], []
    for n, c in enumerate(r.centres):
        flag = np.zeros(len(c), dtype=bool)
        lat, snr = r.lattice[n], r.snr[n]
        if len(c) and np.isfinite(r.bases[n, 0, 0, 0]) and np.mean(lat >= 0) >= LATTICE_EXPLAINED:
            for j in np.flatnonzero((lat < 0) & (snr < min_snr)):
                near = np.hypot(*(c - c[j]).T) < isolation
                flag[j] = not np.any(near & (snr >= min_snr))
                if not flag[j]:
                    crowded.append((n, j))
        out.append(flag)
    if frames is not None and crowded:
        g, k = np.asarray(crowded).T
        s = site_snr(frames, g, np.stack([r.centres[n][j] for n, j in crowded]), float(radius_px), r.gain,
                     robust=True)
        for n, j, faint in zip(g, k, s < min_snr):
            out[n][j] = bool(faint)
    return out
