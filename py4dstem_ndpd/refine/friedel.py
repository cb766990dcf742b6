"""The origin of a pattern from the point symmetry of its Friedel pairs, where dead pixels cross the direct beam.

Every per-disk position is measured against the direct beam (the probe), so an error of the probe's centre moves
every disk of the pattern by the same vector, and the lattice cannot see it. Where a chip gap crosses the direct
beam, the probe's own centre of point symmetry rests on what the gap leaves of it: with a 3 px cross through a
4 px beam it was 0.1-0.36 px off, while the disks' positions relative to each other were good to 0.02-0.07 px
(held-out Si/SiGe 256 px scan of ``bench_detectors.py``, scratch breakdown; ``docs/refinement.md``). Kinematic
patterns are point-symmetric about the direct beam's centre as a whole (Friedel's law): disks ``g`` and ``-g`` are
images of each other through it. :func:`friedel_origin` finds that centre over the pixels of a pattern's Friedel
pairs, the direct beam left out, with the same cost as the probe's (:mod:`~py4dstem_ndpd.refine._symmetry`).
"""
from __future__ import annotations

import numpy as np

from ._symmetry import symmetry_centre

#: Disks in Friedel pairs (with peak SNR >= :data:`FRIEDEL_MIN_SNR`) a pattern needs for its origin to come from
#: them.
FRIEDEL_MIN_DISKS = 6
#: Peak SNR of the disks used.
FRIEDEL_MIN_SNR = 5.0
#: Fraction of the direct beam's disk that must be dead for its origin to come from the Friedel pairs: a gap
#: along its edge (6-22 % dead) counts. Validation scans (2026-12-03, seeds 9005 / 9006, gaps along the edge at
#: three places), common shift of the disks at 1e5 / 1e6 electrons: the probe's symmetry fit 0.017-0.063 /
#: 0.008-0.041 px, the Friedel pairs 0.025-0.029 / 0.009-0.010 (until then 0.4: only a cross over the beam; before
#: the shot-noise correction the pairs were worse there).
FRIEDEL_MIN_DEAD_FRACTION = 0.05
#: And the fewest dead pixels in it: a dead pixel or two leave the probe's own centre as good as it was.
FRIEDEL_MIN_DEAD_PIXELS = 3
#: An origin further than this from the current one (the probe's centre, moved by the origin step) is not taken, px.
FRIEDEL_MAX_SHIFT_PX = 1.5
#: The disks' masks reach this far beyond their radius, px: far enough that a common error of the positions that
#: place them (the probe's, 0.1-0.4 px) does not cut into one side of every edge (validation scans: 0.5 px gave
#: 0.033 / 0.010 px common shift at 1e5 / 1e6 electrons, 1.5 px 0.029 / 0.0096, 3 px 0.029 / 0.010).
FRIEDEL_MASK_PAD_PX = 1.5
#: Width of the Gaussian that smooths the shot-noise variance map (``gain * counts``) before it is read off, px:
#: the counts of one pixel are a noisy estimate of their own variance.
FRIEDEL_VARIANCE_SMOOTHING_PX = 1.0


def friedel_origin(frame: np.ndarray, dead: np.ndarray, positions: np.ndarray, radius_px: float,
                   start: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """The centre of point symmetry of one pattern over soft disks at ``positions``.

    The cost compares each pixel with the point image through the centre, read bilinearly; the shot noise of
    that reading is smallest half-way between pixels, which pulls a plain sum of squares towards half-pixel
    positions, so its expected value (``sum b_j^2 gain I_j``, :func:`~py4dstem_ndpd.refine._symmetry.symmetry_centre`)
    is taken off. Read noise is not modelled.

    Parameters
    ----------
    frame : ndarray, shape (Qx, Qy)
        The pattern (counts; values at dead pixels are not used).
    dead : ndarray of bool, shape (Qx, Qy)
    positions : ndarray, shape (K, 2)
        Centres (qx, qy) of the disks to compare, px: both members of each Friedel pair. They only place the masks;
        a common error of all of them (the probe's) does not move the result.
    radius_px : float
        Disk radius, px (the masks are soft disks of ``radius +`` :data:`FRIEDEL_MASK_PAD_PX`).
    start : ndarray, shape (2,)
        Where the search starts (the probe's centre), px.
    gain : float
        Counts per electron (the shot-noise variance of a pixel is ``gain * counts``).

    Returns
    -------
    ndarray, shape (2,)
        The centre (qx, qy), px.
    """
    frame = np.asarray(frame, dtype=np.float64)
    H, W = frame.shape
    r = int(np.ceil(radius_px + FRIEDEL_MASK_PAD_PX + 0.5))
    o = np.arange(-r, r + 1)
    ox, oy = (a.ravel() for a in np.meshgrid(o, o, indexing="ij"))
    base = np.rint(np.asarray(positions, np.float64)).astype(np.int64)
    px = (base[:, :1] + ox[None]).ravel()
    py = (base[:, 1:] + oy[None]).ravel()
    w0 = np.clip(radius_px + FRIEDEL_MASK_PAD_PX - np.hypot(px - np.repeat(positions[:, 0], ox.size),
                                                            py - np.repeat(positions[:, 1], oy.size)), 0.0, 1.0)
    inside = (px >= 0) & (px < H) & (py >= 0) & (py < W)
    px, py, w0 = px[inside], py[inside], w0[inside]
    w0 = w0 * ~dead[px, py]
    keep = w0 > 0
    live = (~np.asarray(dead, bool)).astype(np.float64)
    from scipy.ndimage import gaussian_filter

    variance = gaussian_filter(float(gain) * np.maximum(frame, 0.0), FRIEDEL_VARIANCE_SMOOTHING_PX)
    return symmetry_centre(frame, live, px[keep].astype(np.float64), py[keep].astype(np.float64), w0[keep],
                           [np.asarray(start, np.float64)], variance=variance)


def _dead_in_disk(dead: np.ndarray, centre: np.ndarray, radius_px: float) -> tuple[int, int]:
    """How many of the pixels within ``radius_px`` of ``centre`` (qx, qy, px) are dead, and how many lie on the
    detector; only the window around the disk is looked at."""
    H, W = dead.shape
    r = int(np.ceil(radius_px)) + 1
    x0, y0 = (int(np.floor(c)) - r for c in centre)
    qx = np.arange(max(x0, 0), min(x0 + 2 * r + 2, H))[:, None]
    qy = np.arange(max(y0, 0), min(y0 + 2 * r + 2, W))[None, :]
    inside = np.hypot(qx - centre[0], qy - centre[1]) <= radius_px
    return int(dead[qx, qy][inside].sum()), int(inside.sum())


def friedel_origins(frames: np.ndarray, dead: np.ndarray, pf, lat: np.ndarray, uv: np.ndarray, group: np.ndarray,
                    origin: np.ndarray, radius_px: float, gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per pattern whose direct beam is at least :data:`FRIEDEL_MIN_DEAD_FRACTION` dead (and has at least
    :data:`FRIEDEL_MIN_DEAD_PIXELS` dead pixels), its origin from its Friedel pairs.

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy)
    dead : ndarray of bool, shape (Qx, Qy)
    pf : ProbeFit
        Per-disk positions, SNRs, ``clipped`` and the probe of each pattern.
    lat, uv, group : ndarray, shape (K,), (K, 2), (K,)
        Lattice (-1: none), indices on it and pattern of every disk.
    origin : ndarray, shape (N, 2)
        The current origins, px.
    radius_px : float
    gain : float
        Counts per electron (``RefineOptions.gain``).

    Returns
    -------
    origin : ndarray, shape (N, 2)
        The new origins (unchanged for the other patterns).
    moved : ndarray of bool, shape (N,)
        The patterns whose origin came from their Friedel pairs.
    """
    N = len(origin)
    origin = origin.copy()
    moved = np.zeros(N, dtype=bool)
    has = pf.probe >= 0
    if not np.any(has) or not np.asarray(dead).any():
        return origin, moved
    from .centres import _site_key as site_key  # one integer per lattice site (here: each disk's Friedel partner)

    dead = np.asarray(dead, bool)
    crossed = np.zeros(N, dtype=bool)
    for n in np.flatnonzero(has):
        n_dead, n_all = _dead_in_disk(dead, origin[n], radius_px)
        crossed[n] = n_dead >= FRIEDEL_MIN_DEAD_PIXELS and n_dead >= FRIEDEL_MIN_DEAD_FRACTION * n_all
    if not crossed.any():
        return origin, moved
    L = int(lat.max()) + 1 if lat.size else 0
    k = np.nonzero(crossed[group] & (lat >= 0) & np.any(uv != 0, 1) & (pf.snr >= FRIEDEL_MIN_SNR) & ~pf.clipped)[0]
    k = k[np.isin(site_key(group[k], lat[k], -uv[k], L), site_key(group[k], lat[k], uv[k], L))]
    for n in np.flatnonzero(crossed):
        kn = k[group[k] == n]
        if kn.size < FRIEDEL_MIN_DISKS:
            continue
        c = friedel_origin(frames[n], dead, pf.positions[kn], radius_px, origin[n], gain)
        if np.all(np.isfinite(c)) and np.linalg.norm(c - origin[n]) <= FRIEDEL_MAX_SHIFT_PX:
            origin[n] = c
            moved[n] = True
    return origin, moved


__all__ = ["FRIEDEL_MASK_PAD_PX", "FRIEDEL_MIN_DEAD_FRACTION", "FRIEDEL_MIN_DEAD_PIXELS", "FRIEDEL_MIN_DISKS",
           "FRIEDEL_VARIANCE_SMOOTHING_PX", "friedel_origin", "friedel_origins"]
