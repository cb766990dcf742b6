"""Lattice completion: the disks the detector missed, found at the empty sites of a fitted lattice.

At low dose the detector misses faint disks whose integrated signal is still above the noise. Once the refinement
has fitted a pattern's lattice from the disks it did find, every site of that lattice is a place where a disk may
be, known to a fraction of a pixel. :func:`complete_lattices` measures the signal at each empty site
(background-subtracted counts within the disk over their noise: the refinement's own SNR estimate) and keeps the
sites where it reaches ``min_snr``.

Only sites within one lattice shell of the disks that were found are tested (far extrapolation multiplies the
error of the fitted basis), only in lattices that index enough disks to be trusted, only where the whole disk is
on the detector, and never where a detected disk already is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import ConfigError
from .centres import Refinement
from .probe import _prepare


@dataclass(frozen=True)
class CompletionOptions:
    """Settings of :func:`complete_lattices`.

    Attributes
    ----------
    min_snr : float
        A site is kept when its integrated SNR (background-subtracted counts within radius + 1 px over their
        shot and background noise) is at least this.
    min_indexed : int
        Only lattices that index at least this many detected disks (besides the direct beam) are completed.
    shell : float
        Sites are tested up to the distance of the farthest indexed disk from the origin plus ``shell`` times the
        longest basis vector.
    min_free_radii : float
        A site counts as empty when no detection lies within this many disk radii. A site whose SNR window
        (radius + 7 px around it, background from its outer ring) would hold part of a detected disk is not tested
        either: the SNR means little there.
    edge_px : float
        A site is tested only when the disk (its radius + this many px) lies on the detector.
    """

    min_snr: float = 4.0
    min_indexed: int = 6
    shell: float = 1.0
    min_free_radii: float = 1.0
    edge_px: float = 2.0

    def __post_init__(self) -> None:
        if not self.min_snr > 0:
            raise ConfigError(f"min_snr must be > 0, got {self.min_snr}")
        if int(self.min_indexed) < 2:
            raise ConfigError(f"min_indexed must be >= 2, got {self.min_indexed}")
        if not self.shell >= 0:
            raise ConfigError(f"shell must be >= 0 basis vectors, got {self.shell}")
        if not self.min_free_radii > 0:
            raise ConfigError(f"min_free_radii must be > 0 radii, got {self.min_free_radii}")
        if not self.edge_px >= 0:
            raise ConfigError(f"edge_px must be >= 0 px, got {self.edge_px}")


@dataclass
class Completion:
    """Lattice sites tested or kept by :func:`complete_lattices` (flat over the batch).

    Attributes
    ----------
    group : ndarray of int, shape (M,)
        Pattern of each site.
    centres : ndarray, shape (M, 2)
        Lattice site (qx, qy), px.
    snr : ndarray, shape (M,)
        Integrated SNR measured at the site (0 where not measured yet).
    lattice : ndarray of int, shape (M,)
    uv : ndarray of int, shape (M, 2)
    tested : int
        Empty sites tested (for the kept ones: how many were tested to keep them).
    """

    group: np.ndarray
    centres: np.ndarray
    snr: np.ndarray
    lattice: np.ndarray
    uv: np.ndarray
    tested: int = 0

    def select(self, keep: np.ndarray) -> "Completion":
        """The sites where ``keep`` is True (``tested`` is kept)."""
        return Completion(self.group[keep], self.centres[keep], self.snr[keep], self.lattice[keep], self.uv[keep],
                          tested=self.tested)


def empty_sites(r: Refinement, shape: tuple[int, int], radius_px: float,
                options: CompletionOptions | None = None) -> Completion:
    """Sites of the fitted lattices of ``r`` where no detection is (SNR not measured yet).

    Parameters
    ----------
    r : Refinement
        With its detections in ``r.centres`` (all of them: a site next to any detection is not empty).
    shape : (int, int)
        Pattern shape (Qx, Qy).
    radius_px : float
        Disk radius, px.
    options : CompletionOptions, optional
    """
    o = options or CompletionOptions()
    H, W = shape
    R = float(radius_px)
    lo = R + o.edge_px
    out_g, out_c, out_l, out_uv = [], [], [], []
    for n, c in enumerate(r.centres):
        origin = r.origin[n]
        if not np.all(np.isfinite(origin)) or len(c) == 0:
            continue
        sites_n, uv_n, lat_n = [], [], []
        for layer in range(r.bases.shape[1]):
            B = r.bases[n, layer]
            on = (r.lattice[n] == layer) & np.any(r.uv[n] != 0, 1)
            if not np.all(np.isfinite(B)) or on.sum() < o.min_indexed or abs(np.linalg.det(B)) < 1e-9:
                continue
            g_max = float(np.max(np.linalg.norm(B, axis=1)))
            reach = float(np.max(np.linalg.norm(c[on] - origin, axis=1))) + o.shell * g_max
            m = int(np.ceil(reach * np.max(np.linalg.norm(np.linalg.inv(B), axis=0)))) + 1
            u, v = np.meshgrid(np.arange(-m, m + 1), np.arange(-m, m + 1), indexing="ij")
            uv = np.stack([u.ravel(), v.ravel()], 1)
            uv = uv[np.any(uv != 0, 1)]
            sites = origin + uv @ B
            keep = np.linalg.norm(sites - origin, axis=1) <= reach
            keep &= (sites[:, 0] >= lo) & (sites[:, 0] <= H - 1 - lo) & (sites[:, 1] >= lo) & (sites[:, 1] <= W - 1 - lo)
            sites, uv = sites[keep], uv[keep]
            if len(sites):
                nearest = np.min(np.linalg.norm(sites[:, None] - c[None], axis=2), axis=1)
                free = nearest > max(o.min_free_radii * R, np.ceil(R + 7.0) * np.sqrt(2.0) + R + 1.0)
                sites_n.append(sites[free])
                uv_n.append(uv[free])
                lat_n.append(np.full(int(free.sum()), layer))
        if not sites_n:
            continue
        sites, uv, lat = np.concatenate(sites_n), np.concatenate(uv_n), np.concatenate(lat_n)
        # a site of one lattice may coincide with a site of another: test it once
        d = np.linalg.norm(sites[:, None] - sites[None], axis=2)
        dup = np.any(np.triu(d <= o.min_free_radii * R, 1), axis=0)
        out_g.append(np.full(int((~dup).sum()), n))
        out_c.append(sites[~dup])
        out_uv.append(uv[~dup])
        out_l.append(lat[~dup])
    if not out_g:
        z = np.zeros(0, dtype=np.int64)
        return Completion(z, np.zeros((0, 2)), np.zeros(0), z.copy(), np.zeros((0, 2), np.int64))
    g = np.concatenate(out_g)
    return Completion(g, np.concatenate(out_c), np.zeros(len(g)), np.concatenate(out_l),
                      np.concatenate(out_uv).astype(np.int64), tested=len(g))


def site_snr(frames: np.ndarray, group: np.ndarray, centres: np.ndarray, radius_px: float,
             gain: float = 1.0, robust: bool = False) -> np.ndarray:
    """Integrated SNR of a disk of ``radius_px`` at each centre (the estimate of :class:`~.probe.ProbeFit`).

    ``robust=True``: with a background that ignores the edges of neighbouring disks (the ring's plane fitted
    without the pixels far off its median, :func:`~._windows.remove_background`; the ring's noise from the scaled
    median absolute deviation, at least the shot noise of counts at the ring's median). Next to a bright disk the
    plain estimate is meaningless (often negative); the robust one is not.
    """
    if len(centres) == 0:
        return np.zeros(0)
    half = int(np.ceil(radius_px + 7.0))
    x = frames if np.asarray(frames).dtype.kind == "f" else np.asarray(frames, np.float32)
    return _prepare(x, np.asarray(group), np.asarray(centres, np.float64), float(radius_px), half, gain,
                    robust=robust)[2]


def complete_lattices(frames: np.ndarray, r: Refinement, radius_px: float,
                      options: CompletionOptions | None = None, gain: float | None = None) -> Completion:
    """Disks at empty sites of the fitted lattices (see module docstring).

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy)
        The patterns ``r`` was refined on, counts.
    r : Refinement
        Result of :func:`~py4dstem_ndpd.refine.refine` (``"lattice"`` or ``"autocorrelation"``; other methods fit
        no lattice and nothing is added).
    radius_px : float
        Disk radius, px.
    options : CompletionOptions, optional
    gain : float, optional
        Detector counts per electron; default: the one the refinement used (``r.gain``).

    Returns
    -------
    Completion
        The sites kept, with their SNR.
    """
    o = options or CompletionOptions()
    frames = np.asarray(frames)
    cand = empty_sites(r, frames.shape[1:], radius_px, o)
    cand.snr = site_snr(frames, cand.group, cand.centres, radius_px, r.gain if gain is None else gain)
    return cand.select(cand.snr >= o.min_snr)
