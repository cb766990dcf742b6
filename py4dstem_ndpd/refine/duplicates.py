"""Which detections of a refined batch are second detections of one disk.

The network's duplicate suppression (:func:`~py4dstem_ndpd.detect.decode.select`) works on its own centres, at 0.6
radii: overlapping disks of two phases can be only ~1.4 radii apart, so it cannot be wider. On cameras it never
saw (a scintillator's blur, 2 x 2 binning) and on disks with strong dynamical contrast it sometimes fires twice on
one disk, at two spots more than 0.6 radii apart; the refinement then moves both towards the disk's centre (one
to its lattice site, the other part of the way, or to the site of a spurious second lattice).
:func:`duplicate_detections` keeps one of them.
"""
from __future__ import annotations

import numpy as np

from .centres import Refinement

#: Two refined detections closer than this many disk radii are one disk. Disks that overlap that much (centres
#: under half a radius apart, > 68 % of their area shared) cannot be told apart by any detector.
DUPLICATE_RADII = 0.5


def duplicate_detections(r: Refinement, radius_px: float) -> list[np.ndarray]:
    """Flag all but one of the refined detections that lie within :data:`DUPLICATE_RADII` radii of each other.

    The one kept is, in this order: on a fitted lattice (the refinement moved it to its site) rather than on none;
    on the lattice that indexes more of the pattern's disks; of higher SNR. Detections farther apart are never
    touched, so disks of another phase stay (the network's own suppression keeps its detections at least ~0.66
    radii apart; only the refinement can bring two of them this close, by moving both onto one disk).

    Parameters
    ----------
    r : Refinement
        Result of :func:`~py4dstem_ndpd.refine.refine`.
    radius_px : float
        Disk radius, px.

    Returns
    -------
    list of ndarray of bool
        Per pattern, (K_i,) True for the detections to drop, in the order of ``r.centres``.

    Examples
    --------
    >>> import numpy as np
    >>> from py4dstem_ndpd.refine.centres import Refinement
    >>> r = Refinement(centres=[np.array([[50.0, 50.0], [52.0, 51.0], [80.0, 50.0]])],
    ...                origin=np.zeros((1, 2)), bases=np.zeros((1, 1, 2, 2)), lattice=[np.array([-1, 0, 0])],
    ...                uv=[np.zeros((3, 2), int)], snr=[np.full(3, 20.0)], method="lattice")
    >>> duplicate_detections(r, radius_px=6.0)[0]
    array([ True, False, False])
    """
    limit = DUPLICATE_RADII * float(radius_px)
    out = []
    for c, lat, snr in zip(r.centres, r.lattice, r.snr):
        c = np.asarray(c, np.float64).reshape(-1, 2)
        flag = np.zeros(len(c), dtype=bool)
        d = np.hypot(c[:, None, 0] - c[None, :, 0], c[:, None, 1] - c[None, :, 1])
        np.fill_diagonal(d, np.inf)
        close = d < limit
        if close.any():
            lat = np.asarray(lat)
            members = np.bincount(lat[lat >= 0], minlength=1) if (lat >= 0).any() else np.zeros(1, int)
            size = np.where(lat >= 0, members[np.maximum(lat, 0)], -1)
            snr = np.nan_to_num(np.asarray(snr, np.float64), nan=-np.inf)
            # best first: on a lattice, on the bigger lattice, brighter
            for i in np.lexsort((-snr, -size, lat < 0)):
                if not flag[i]:
                    flag |= close[i]  # every detection kept so far is farther than the limit from i
        out.append(flag)
    return out
