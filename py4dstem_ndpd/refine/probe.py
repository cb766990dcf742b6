"""Per-disk sub-pixel positions by cross-correlation with the pattern's own direct beam (the probe).

Every disk of a pattern is an image of the same probe (the condenser aperture) shifted to its diffraction vector,
so the direct beam is the matched filter for all of them. The steps, each vectorised over all disks of all
patterns of a batch:

1. cut a window around every detected centre, subtract a plane fitted to the window's outer ring (the local
   diffuse background and its slope) and multiply by a smooth circular taper;
2. take the direct beam of each pattern as the probe (the brightest disk, unless another bright disk is a far
   better centre of symmetry of the pattern: :func:`choose_probes`) and locate it by an iterated centroid
   within a soft disk of radius ``radius + 2.5`` px centred on the current estimate (it converges to the centre
   of symmetry of a centrosymmetric probe), or by its centre of point symmetry (the maximum of its
   self-convolution) where that has the smaller predicted shot-noise error, as on large sharp disks
   (:func:`_precise_probe_centre`; a flat-disk matched filter was better on some scans and worse on others, and
   depends on the radius estimate, so it is not used); where the probe's rim puts its centre measurably elsewhere
   (intensity sloping across the direct beam, as off a zone axis: :func:`_edge_probes`), the rim position is
   taken instead;
3. cross-correlate every window with its pattern's probe (after a mild Gaussian low-pass, ``lowpass_px``); the
   correlation maximum is the disk's shift from the probe. The maximum is found on the band-limited (Fourier)
   interpolant of the correlation: on a 0.5 px grid, then a parabola, then Newton steps. The same windows are
   also correlated with ``log(1 + P / 0.1)`` of the probe ``P``, the Poisson likelihood of a shifted probe
   (:func:`_poisson_shifts`), which weighs the disk's outer edge more: the ``"poisson"`` variant, 20 % smaller
   per-disk errors than the plain correlation on uniform disks.

Intensity structure inside disks (thickness fringes, the rocking curve across a tilted disk) pulls any
intensity-weighted estimator off the disk's centre: with a linear gradient of +-40 % across each disk the plain
cross-correlation erred by 0.45 px at high dose, worse than the detector. Bright disks are therefore matched by a
regularised *hybrid correlation* (Pekin et al., Ultramicroscopy 176, 2017): the cross-power spectrum ``C`` is
divided by ``(|C|^2 + f^2)^(p/2)``, which weights the disk edge over its interior. ``p`` rises with the disk's
SNR from 0 (plain cross-correlation, best when shot noise dominates) to ``whitening`` (1), and the floor ``f``
(``whitening_floor`` x the median ``|C|`` at noise-only frequencies) keeps frequencies without signal from being
amplified. Measured with ``python -m py4dstem_ndpd.refine.benchmark`` (lattice method, RMS px, 1e5 / 1e6
electrons): disks with +-40 % gradients 0.21 / 0.26 (plain) -> 0.11 / 0.04; symmetric Si disks 0.034 / 0.011
-> 0.036 / 0.018.

Thick crystals go further: many disks are bright crescents along the side facing the direct beam, and the hybrid
correlation too places them 0.3-1.5 px towards the pattern centre (abTEM multislice, 30-80 nm). In patterns whose
bright disks are far from point-symmetric (:func:`asymmetric_patterns`) those disks are also located by their
edge alone (:mod:`~py4dstem_ndpd.refine.edge`), a third variant for the lattice fit to choose.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._windows import (extract_windows, grid_maximum, group_median, newton_maximum, radial_grid, remove_background,
                       taper)
from .edge import edge_positions, probe_radius, remove_interior_slope, window_gradients


@dataclass
class ProbeFit:
    """Per-disk results of :func:`probe_positions` (flat over all disks of the batch).

    Attributes
    ----------
    positions : ndarray, shape (K, 2)
        Refined centres (qx, qy), px.
    snr : ndarray, shape (K,)
        Background-subtracted counts ``I`` of the disk (within its radius + 1 px) over the standard deviation of
        that sum, ``sqrt(A * s^2 + gain * I)`` with ``s`` the pixel noise of the window's outer ring and ``A``
        the disk area (px); <= 0 for disks that are not there.
    shift : ndarray, shape (K,)
        Distance between the refined and the input centre, px.
    alternatives : dict of str to ndarray (K, 2)
        Centres from other estimators: ``"plain"`` (cross-correlation without whitening), ``"poisson"`` (the
        correlation with the probe's likelihood template, :func:`_poisson_shifts`) and, with ``edge=True``,
        ``"edge"`` (the bright disks of patterns with asymmetric disks located by their edge alone,
        :mod:`~py4dstem_ndpd.refine.edge`; the others as in ``positions``). The lattice refinement chooses, per
        pattern, the estimator whose positions its lattice fits best.
    clipped : ndarray of bool, shape (K,)
        The disk (its radius + 2 px) crosses the detector edge.
    probe : ndarray of int, shape (N,)
        Flat index of the disk used as the probe in each pattern (-1 for patterns without disks).
    asymmetric : ndarray of bool, shape (N,) or None
        With ``edge=True``: the patterns whose bright disks failed the point-symmetry test
        (:func:`asymmetric_patterns`); the lattice refinement does not offer them the ``"plain"`` and
        ``"poisson"`` variants.
    """

    positions: np.ndarray
    snr: np.ndarray
    shift: np.ndarray
    clipped: np.ndarray
    probe: np.ndarray
    alternatives: dict = field(default_factory=dict)
    asymmetric: np.ndarray | None = None


def _segment_argmax(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Flat index of the largest value of each group (-1 for empty groups)."""
    out = np.full(n_groups, -1, dtype=np.int64)
    if values.size == 0:
        return out
    order = np.lexsort((-values, group))
    g = group[order]
    first = np.ones(len(g), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    out[g[first]] = order[first]
    return out


def choose_probes(centres: np.ndarray, counts: np.ndarray, group: np.ndarray, n_frames: int, radius_px: float,
                  *, candidates: int = 32, factor: float = 1.5, min_score: float = 0.5,
                  min_brightness: float = 0.1, min_disks: int = 8) -> np.ndarray:
    """The direct beam of each pattern: the disk about which the pattern's intensity is most centrosymmetric.

    The brightest disk is the direct beam in thin crystals, but not always in thick ones: on an abTEM Si [110]
    pattern at 40 nm it was only the 9th brightest, and with a first-order disk as the probe every disk of the
    pattern came out 1.4 px off. A zone-axis pattern is centrosymmetric about the direct beam (Friedel pairs
    ``g, -g`` have equal intensity), so each of the ``candidates`` brightest disks ``p`` (those with at least
    ``min_brightness`` times the brightest one's counts) is scored by the
    fraction of the pattern's counts in disks ``q`` whose mirror ``2 p - q`` is also a detected disk (within half
    a radius, at least 1.5 px), counting ``min(I_q, I_mirror)``. (On that pattern: 0.93 for the direct beam,
    0.19 for the brightest disk, which was 6x brighter; 0.75-0.93 against 0.02-0.19 in the three thick-crystal
    abTEM sets where the direct beam was not the brightest disk.) A candidate replaces the brightest disk when its score is at least ``min_score`` and ``factor``
    times the brightest disk's, in patterns with at least ``min_disks`` disks. The limits come from two failures:
    at 1e3 electrons, with 7 disks, a 14-count disk won over the 252-count direct beam; and in a randomised
    pattern whose disk intensities obey no Friedel symmetry (as in a tilted crystal) a switch on scores near 0
    lost 71 of 249 disks.

    Parameters
    ----------
    centres : ndarray, shape (K, 2)
        Disk centres (qx, qy), px.
    counts : ndarray, shape (K,)
        Background-subtracted counts of each disk.
    group : ndarray of int, shape (K,)
        Pattern of each disk.
    n_frames : int
    radius_px : float

    Returns
    -------
    ndarray of int, shape (n_frames,)
        Flat index of each pattern's direct beam (-1 for patterns without disks).
    """
    from scipy.spatial import cKDTree

    probe = _segment_argmax(counts, group, n_frames)
    tol = max(1.5, 0.5 * float(radius_px))
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_frames + 1))
    for n in range(n_frames):
        idx = order[bounds[n]:bounds[n + 1]]
        if len(idx) < min_disks:
            continue
        c = np.maximum(counts[idx], 0.0)
        if c.sum() <= 0:
            continue
        top = np.argsort(-c, kind="stable")[:candidates]  # local indices; top[0] is the brightest
        top = top[c[top] >= min_brightness * c[top[0]]]
        pts = centres[idx]
        tree = cKDTree(pts)

        def scores(cand):
            d, i = tree.query((2.0 * pts[cand, None, :] - pts[None]).reshape(-1, 2), distance_upper_bound=tol)
            d, i = d.reshape(len(cand), -1), i.reshape(len(cand), -1)
            hit = np.isfinite(d)
            hit[np.arange(len(cand)), cand] = False  # a disk is not its own mirror
            return np.where(hit, np.minimum(c[None], c[np.where(hit, i, 0)]), 0.0).sum(1) / c.sum()

        bar = max(min_score, factor * float(scores(top[:1])[0]))
        if bar > 1.0 or len(top) < 2:
            continue  # the brightest disk is already too good a centre to be beaten (scores are <= 1)
        score = scores(top[1:])
        best = int(np.argmax(score))
        if score[best] >= bar:
            probe[n] = idx[top[1 + best]]
    return probe


def _prepare(frames, group, centres, radius_px, half, gain=1.0, robust=False):
    """Background-subtracted, tapered windows, their anchors, SNR and counts. ``robust``: the background plane
    fitted without the ring pixels far off its median (a neighbour's edge) and the ring's noise from the median
    absolute deviation, never below the shot noise of counts at the ring's median."""
    win, anchor = extract_windows(frames, group, centres, half)
    inner = radius_px + 4.0
    rg = radial_grid(half)
    ring = rg > inner
    level = np.maximum(np.median(win[:, ring], axis=1), 0.0) if robust else None
    win = remove_background(win, half, inner, robust=robust)
    if robust:
        res = win[:, ring]
        mad = 1.4826 * np.median(np.abs(res - np.median(res, axis=1, keepdims=True)), axis=1)
        noise = np.maximum(mad, np.sqrt(gain * level))
    else:
        noise = win[:, ring].std(1)
    win = win * taper(half, radius_px + 2.0, radius_px + 4.0)
    disk = rg <= radius_px + 1.0
    counts = win[:, disk].sum(1)
    var = noise**2 * disk.sum() + gain * np.maximum(counts, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.nan_to_num(counts / np.sqrt(var), nan=0.0, posinf=0.0)
    return win, anchor, snr, counts


#: Background floor of the likelihood template, as a fraction of a disk's own level (:func:`_poisson_shifts`).
POISSON_FLOOR = 0.1


def _poisson_shifts(F: np.ndarray, Fp: np.ndarray, has: np.ndarray, group: np.ndarray, snr: np.ndarray, half: int,
                    radius_px: float, d_plain: np.ndarray, floor: float = POISSON_FLOOR) -> np.ndarray:
    """Correlation shifts of the disks from the Poisson likelihood of a scaled, shifted probe.

    A disk's counts ``I`` modelled as ``s (P(x - d) + f)`` (``P`` the pattern's probe, 1 inside; ``s`` the disk's
    level; ``f`` a background floor) have the log-likelihood ``sum_x I(x) log(P(x - d) + f)`` up to terms that do
    not depend on ``d``: the maximum over ``d`` of the cross-correlation of the window with ``log(1 + P / f)``.
    Compared with the plain cross-correlation (template ``P``), it weighs the disk's outer edge, where few counts
    are expected, more than its interior: a count there tells more about the position. ``f`` is not the measured
    background (the windows have theirs removed, and on these detectors it is near 0, which would make the
    template as noisy as the probe's own faint edge pixels): a fixed :data:`POISSON_FLOOR` of 0.1, chosen on
    validation scans (both presets, 256 and 512 px, 1e4-1e7 electrons, lattice RMS: 0.001, 0.01 and 0.033 better
    than the plain correlation in 13, 15 and 15 of 16 cells, 0.1 in all 16).

    Parameters
    ----------
    F : ndarray of complex, shape (K, w, w)
        Low-passed spectra of the disk windows.
    Fp : ndarray of complex, shape (P, w, w)
        The same of the probes of the patterns with a probe (``has``), in pattern order.
    has : ndarray of bool, shape (N,)
    group : ndarray of int, shape (K,)
    snr : ndarray, shape (K,)
        Disks with ``snr <= 3`` keep ``d_plain``.
    half : int
    radius_px : float
    d_plain : ndarray, shape (K, 2)
        The plain correlation's shifts (local px): the search starts there, within 0.5 px.

    Returns
    -------
    ndarray, shape (K, 2)
    """
    d = np.array(d_plain, dtype=np.float64, copy=True)
    k = np.nonzero(has[group] & (snr > 3.0))[0]
    if k.size == 0:
        return d
    P = np.fft.ifft2(Fp).real
    inner = radial_grid(half) <= max(radius_px - 1.0, 1.0)
    P = P / np.maximum(P[:, inner].mean(1), 1e-12)[:, None, None]
    Ft = np.zeros((len(has),) + F.shape[1:], dtype=F.dtype)
    Ft[has] = np.fft.fft2(np.log1p(np.maximum(P, 0.0) / floor))
    C = F[k] * np.conj(Ft[group[k]])
    d[k] = newton_maximum(C, grid_maximum(C, d_plain[k], 0.5, 5)[0])
    return d


def _lowpass(half: int, sigma: float) -> np.ndarray:
    """Gaussian low-pass transfer function exp(-2 pi^2 sigma^2 k^2) on a (w, w) FFT grid."""
    k = np.fft.fftfreq(2 * half + 1)
    return np.exp(-2.0 * np.pi**2 * sigma**2 * (k[:, None] ** 2 + k[None, :] ** 2))


def _mirror(mask: np.ndarray, c: np.ndarray, half: int) -> np.ndarray:
    """``mask`` of windows point-reflected through the local centres ``c`` (K, 2), to the nearest pixel; pixels
    whose mirror falls outside the window read False."""
    o = np.arange(-half, half + 1)
    mx = np.rint(2 * c[:, 0, None] - o[None, :]).astype(np.int64) + half  # (K, w)
    my = np.rint(2 * c[:, 1, None] - o[None, :]).astype(np.int64) + half
    w = 2 * half + 1
    okx, oky = (mx >= 0) & (mx < w), (my >= 0) & (my < w)
    k = np.arange(len(mask))[:, None, None]
    out = mask[k, np.clip(mx, 0, w - 1)[:, :, None], np.clip(my, 0, w - 1)[:, None, :]]
    return out & okx[:, :, None] & oky[:, None, :]


def _soft_disk(half: int, centres: np.ndarray, radius: float) -> np.ndarray:
    """Weights (K, w, w) of soft disks of ``radius`` (anti-aliased edge, 1 px wide) at local ``centres`` (K, 2)."""
    o = np.arange(-half, half + 1, dtype=np.float64)
    rr = np.hypot(o[None, :, None] - centres[:, 0, None, None], o[None, None, :] - centres[:, 1, None, None])
    return np.clip(radius + 0.5 - rr, 0.0, 1.0)


def _centroid(win: np.ndarray, start: np.ndarray, half: int, radius: float, iterations: int = 20,
              dead: np.ndarray | None = None) -> np.ndarray:
    """Iterated centroid of windows within a soft disk (anti-aliased edge) centred on the current estimate.

    For a centrosymmetric disk on a removed background it converges to the centre of symmetry. With ``dead``
    (K, w, w) bool, pixels that are dead or whose mirror through the current centre is dead are left out, so
    that what remains is still symmetric about the centre (a detector gap across the probe does not pull it).
    """
    o = np.arange(-half, half + 1, dtype=np.float64)
    c = np.array(start, dtype=np.float64, copy=True)
    for _ in range(iterations):
        m = win * _soft_disk(half, c, radius)
        if dead is not None:
            m = m * ~(dead | _mirror(dead, c, half))
        s = m.sum((1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.stack([(m * o[None, :, None]).sum((1, 2)), (m * o[None, None, :]).sum((1, 2))], 1) / s[:, None]
        new = np.where(np.isfinite(new).all(1, keepdims=True) & (s[:, None] > 0), new, c)
        new = np.clip(new, -half + radius, half - radius)
        done = np.max(np.abs(new - c)) < 1e-4
        c = new
        if done:
            break
    return c


#: Probes fainter than this SNR keep their centroid (:func:`_precise_probe_centre`): there the predicted error of
#: the centre of symmetry is too optimistic. On validation scans at 1e3 electrons (probe SNR 14-18) it predicted
#: 0.12-0.16 px against 0.22-0.47 px measured, and was chosen over a centroid that was 0.20-0.37 px; from 1e4
#: electrons (SNR 48-55) the choice was right in every case.
SYMMETRY_MIN_SNR = 30.0


def _precise_probe_centre(win: np.ndarray, var: np.ndarray, centroid: np.ndarray, half: int, radius: float,
                          lowpass_px: float) -> np.ndarray:
    """Per probe, the centroid or the centre of point symmetry, whichever has the smaller predicted error.

    The centre of point symmetry is half the position of the maximum of the window's self-convolution (the
    matched filter of a centrosymmetric probe, with the probe itself as template), after the same low-pass as the
    correlations. Its shot-noise variance is predicted by the least-squares formula ``sum(var g^2) / sum(g^2)^2``
    per axis, ``g`` the low-passed window's gradient, and the centroid's by
    ``sum(m^2 (q - c)^2 var) / sum(m I)^2`` with ``m`` its soft disk; ``var`` (K, w, w) is each pixel's noise
    variance. The centroid weighs every pixel of the disk by its distance from the centre, the symmetric centre
    weighs the edge: the first wins on small or soft-edged disks, the second on large sharp ones. Measured on the
    direct beam of validation scans (6 x 6 positions, seed 5300, 1e4-1e6 electrons; RMS px): 4 px disks
    (256 px patterns) centroid 0.0051-0.098, symmetric centre 0.0061-0.100; 8 px disks (512 px) 0.010-0.122
    against 0.0089-0.104; the prediction picked the better one in all 12 cases, and was within 15 % of the
    measured RMS from 1e5 electrons. Fainter probes than :data:`SYMMETRY_MIN_SNR` are not given to it. Returns
    local centres (K, 2).
    """
    if len(win) == 0:
        return centroid
    F = np.fft.fft2(win) * _lowpass(half, lowpass_px)
    S = F * F
    # the self-convolution of a window symmetric about local c peaks at array index 2 (c + half) mod w = 2c - 1
    x, _ = grid_maximum(S, 2.0 * centroid - 1.0, 0.5, 5)
    sym = np.clip((newton_maximum(S, x) + 1.0) / 2.0, -half + radius, half - radius)
    o = np.arange(-half, half + 1, dtype=np.float64)
    dx = o[None, :, None] - centroid[:, 0, None, None]
    dy = o[None, None, :] - centroid[:, 1, None, None]
    m = _soft_disk(half, centroid, radius)
    with np.errstate(divide="ignore", invalid="ignore"):
        v_centroid = np.sum(m**2 * (dx**2 + dy**2) * var, (1, 2)) / np.sum(m * win, (1, 2)) ** 2
        k = np.fft.fftfreq(2 * half + 1)
        v_sym = np.zeros(len(win))
        for ramp in (k[:, None], k[None, :]):
            g2 = np.fft.ifft2(F * (2j * np.pi * ramp)).real ** 2
            v_sym += np.sum(g2 * var, (1, 2)) / np.sum(g2, (1, 2)) ** 2
    take = np.isfinite(v_sym) & np.isfinite(v_centroid) & (v_sym < v_centroid) & np.all(np.isfinite(sym), 1) & (
        np.max(np.abs(sym - centroid), 1) < 1.0)
    return np.where(take[:, None], sym, centroid)


def probe_positions(
    frames: np.ndarray,
    group: np.ndarray,
    centres: np.ndarray,
    n_frames: int,
    radius_px: float,
    *,
    max_shift_px: float = 1.5,
    passes: int = 1,
    gain: float = 1.0,
    lowpass_px: float = 0.5,
    whitening: float = 1.0,
    whitening_snr: tuple[float, float] = (5.0, 10.0),
    whitening_floor: float = 100.0,
    edge: bool = True,
    dead: np.ndarray | None = None,
) -> ProbeFit:
    """Refine disk centres by cross-correlation with each pattern's direct beam (see module docstring).

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy)
    group : ndarray of int, shape (K,)
        Pattern of each disk.
    centres : ndarray, shape (K, 2)
        Approximate centres (qx, qy), px.
    n_frames : int
        N.
    radius_px : float
        Disk radius, px.
    max_shift_px : float
        Largest correction searched, px; the second pass searches around the first pass's result.
    passes : int
        Cut the windows this many times, each time around the previous result. A second pass did not improve
        the simulated benchmarks (and hurt overlapping disks), hence the default 1.
    gain : float
        Detector counts per electron, for the shot-noise part of the SNR estimate.
    lowpass_px : float
        Gaussian low-pass (standard deviation, px) applied to the correlations: it suppresses shot noise at
        frequencies above the disk's and moves no centre of a symmetric disk.
    whitening : float
        Largest exponent ``p`` of the hybrid correlation ``C / (|C|^2 + f^2)^(p/2)`` (0: cross-correlation),
        reached at the upper end of ``whitening_snr``.
    whitening_snr : (float, float)
        SNR range over which ``p`` rises linearly from 0 to ``whitening``.
    whitening_floor : float
        ``f`` in units of the median ``|C|`` above 0.35 cycles/px (where shot noise dominates), so that
        frequencies without signal are not amplified.
    edge : bool
        Also locate the disks bright enough for the hybrid correlation by their edge alone
        (:mod:`~py4dstem_ndpd.refine.edge`), as the alternative ``"edge"``, and each probe by its rim where its
        centroid is measurably off (:func:`_edge_probes`).
    dead : ndarray of bool, shape (Qx, Qy), optional
        Dead pixels and detector gaps (already filled in by interpolation,
        :func:`~py4dstem_ndpd.detect.dead_pixels.repair_dead_pixels`). Where they cross a probe, its centre is
        its centre of point symmetry over the live pixels (:func:`_symmetric_centre`), and its dead pixels take
        the values of their mirror images (the direct beam is centrosymmetric), so the probe every disk is
        matched against is whole.

    Returns
    -------
    ProbeFit
    """
    centres = np.asarray(centres, dtype=np.float64)
    H, W = frames.shape[-2:]
    half = int(np.ceil(radius_px + 7.0))
    fq = np.fft.fftfreq(2 * half + 1)
    high = np.hypot(fq[:, None], fq[None, :]) > 0.35
    rim = radius_px + 2.0
    pos = centres.copy()
    probe = np.full(n_frames, -1, dtype=np.int64)
    snr = np.zeros(len(centres))
    for p in range(max(int(passes), 1)):
        win, anchor, snr, counts = _prepare(frames, group, pos, radius_px, half, gain)
        if p == 0:
            probe = choose_probes(pos, counts, group, n_frames, radius_px)
        loc = pos - anchor
        F = np.fft.fft2(win) * _lowpass(half, lowpass_px)
        has = probe >= 0
        pidx = probe[has]
        Fp = F[pidx]
        # 1. centre of each probe: iterated centroid in a soft disk of radius + 2.5 px around the estimate
        t = np.zeros((n_frames, 2))
        dwin = None
        if dead is not None and np.any(has):
            dwin = extract_windows(np.asarray(dead, np.float32)[None], np.zeros(len(pidx), np.int64), pos[pidx],
                                   half)[0] > 0.5
            dwin = dwin if dwin.any() else None
        # the centroid on a robust background: where large disks are close together the edges of neighbours
        # reach into the probe's background ring, and a plane leaning towards them moves the centre every disk is
        # measured against (the correlation template keeps the plain background, like the windows it is matched to)
        pwin = win[pidx]
        if pidx.size:
            raw, _ = extract_windows(frames, group[pidx], pos[pidx], half)
            flat = remove_background(raw, half, radius_px + 4.0, robust=True)
            pwin = flat * taper(half, radius_px + 2.0, radius_px + 4.0)
        t[has] = _centroid(pwin, loc[pidx], half, radius_px + 2.5, dead=dwin)
        if dwin is not None:
            crossed = dwin[:, radial_grid(half) <= radius_px + 2.5].any(1)
            wp, lp, tc = win[pidx], loc[pidx], t[has]
            for k in np.flatnonzero(crossed):
                # the masked centroid can be far off when a cross of gaps covers much of the probe: the
                # detector's centre is the second starting point
                tc[k] = _symmetric_centre(wp[k], dwin[k], tc[k], half, radius_px + 2.5, also=lp[k])
            t[has] = tc
            Fp = np.fft.fft2(_mirror_fill(wp, dwin, tc, half)) * _lowpass(half, lowpass_px)
        on_rim = np.zeros(len(pidx), dtype=bool)
        if edge:
            before = t[has]
            t[has] = _edge_probes(Fp, before, snr[pidx], half, radius_px, max_shift_px)
            on_rim = np.any(t[has] != before, 1)
        if pidx.size:
            # the more precise of the centroid and the centre of point symmetry, for bright probes that are
            # neither crossed by dead pixels (they have the masked centre of symmetry) nor placed by their rim: a
            # gradient across the direct beam pulls the centre of symmetry less than the centroid, too little for
            # the rim test against it, and not to the centre (abTEM Si [110] 6-20 mrad off axis: 0.18-0.25 px
            # this way, 0.24-0.32 px when the rim was tested against the symmetric centre instead)
            free = (snr[pidx] >= SYMMETRY_MIN_SNR) & ~on_rim
            if dwin is not None:
                free &= ~dwin.any((1, 2))
            noise2 = flat[free][:, radial_grid(half) > radius_px + 4.0].var(1)
            t_has = t[has]
            var = noise2[:, None, None] + gain * np.maximum(pwin[free], 0.0)  # counts^2 per pixel
            t_has[free] = _precise_probe_centre(pwin[free], var, t_has[free], half, radius_px + 2.5, lowpass_px)
            t[has] = t_has
        # 2. cross-correlation of every window with its probe: maximum at (disk local centre) - t
        Fprobe = np.zeros((n_frames,) + F.shape[1:], dtype=F.dtype)
        Fprobe[has] = Fp
        C = F * np.conj(Fprobe[group])
        start = loc - t[group]
        d, _ = grid_maximum(C, start, max_shift_px, 2 * int(np.ceil(2 * max_shift_px)) + 1)
        d = newton_maximum(C, d)
        d_plain = d.copy()

        def hybrid(snr_range):
            # hybrid correlation C / (|C|^2 + floor^2)^(p/2) of the disks with p > 0 (see the module docstring)
            s0, s1 = snr_range
            pw = whitening * np.clip((snr - s0) / max(s1 - s0, 1e-9), 0.0, 1.0)
            dh = d_plain.copy()
            bright = pw > 0
            if np.any(bright):
                Cb = C[bright]
                mag2 = Cb.real**2 + Cb.imag**2
                floor2 = (whitening_floor**2) * np.median(mag2[:, high], axis=1)
                Cb = Cb / np.maximum(mag2 + floor2[:, None, None], 1e-300) ** (0.5 * pw[bright, None, None])
                dh[bright] = newton_maximum(Cb, grid_maximum(Cb, d_plain[bright], 0.5, 5)[0])
            return dh

        def place(dd):
            out = anchor + t[group] + dd
            out[probe[has]] = anchor[probe[has]] + t[has]
            return out

        pos = place(hybrid(whitening_snr))
        alternatives = {"plain": place(d_plain)}
        if np.any(has):
            alternatives["poisson"] = place(_poisson_shifts(F, Fp, has, group, snr, half, radius_px, d_plain))
        asym = None
        if edge:
            asym = asymmetric_patterns(F, pos - anchor, snr, group, probe)
            bright = (snr >= whitening_snr[0]) & asym[group]
            alternatives["edge"] = _edge_variant(F, Fp, has, group, t, pos - anchor, loc, bright, half, radius_px,
                                                 max_shift_px) + anchor
            alternatives["edge"][probe[has]] = pos[probe[has]]
    shift = np.linalg.norm(pos - centres, axis=1)
    clipped = (pos[:, 0] < rim - 0.5) | (pos[:, 0] > H - 0.5 - rim) | (pos[:, 1] < rim - 0.5) | (
        pos[:, 1] > W - 0.5 - rim)
    return ProbeFit(positions=pos, snr=snr, shift=shift, clipped=clipped, probe=probe, alternatives=alternatives,
                    asymmetric=asym)


def _symmetric_centre(win: np.ndarray, dead: np.ndarray, start: np.ndarray, half: int, radius: float,
                      also: np.ndarray | None = None) -> np.ndarray:
    """Centre of point symmetry of one window with dead pixels.

    The ``c`` that minimises the squared difference between the image and its point image through ``c``
    (bilinear), relative to their power, over live pixels whose image is live, within a soft disk of ``radius``
    around ``start`` (local px); searched on a grid around ``start`` and ``also``, then by quadratic fits
    (:func:`~py4dstem_ndpd.refine._symmetry.symmetry_centre`). A centroid over a mask cut on the pixel grid leans
    towards the mask's own centre; this does not (a 3 px gap along the probe's edge: 0.18 px for the masked
    centroid, 0.01 px for this; ``docs/refinement.md``).
    """
    from ._symmetry import symmetry_centre

    o = np.arange(-half, half + 1, dtype=np.float64)
    ox, oy = np.meshgrid(o, o, indexing="ij")
    base = np.clip(radius + 0.5 - np.hypot(ox - start[0], oy - start[1]), 0.0, 1.0) * ~dead
    sel = base > 0
    starts = [start] if also is None else [start, np.asarray(also, np.float64)]
    c = symmetry_centre(win, (~dead).astype(np.float64), ox[sel], oy[sel], base[sel], starts, offset=half)
    return np.clip(c, -half + radius, half - radius)


def _mirror_fill(win: np.ndarray, dead: np.ndarray, c: np.ndarray, half: int) -> np.ndarray:
    """Windows with each dead pixel replaced by its point image through the local centre ``c`` (bilinear), where
    that is live."""
    from scipy.ndimage import map_coordinates

    o = np.arange(-half, half + 1, dtype=np.float64)
    ox, oy = np.meshgrid(o, o, indexing="ij")
    out = win.copy()
    for k in range(len(win)):
        if not dead[k].any():
            continue
        mx, my = 2 * c[k, 0] - ox[dead[k]] + half, 2 * c[k, 1] - oy[dead[k]] + half
        ok = map_coordinates((~dead[k]).astype(np.float64), [mx, my], order=1, mode="constant") > 0.999
        vals = map_coordinates(win[k], [mx, my], order=1, mode="constant")
        ii, jj = np.nonzero(dead[k])
        out[k, ii[ok], jj[ok]] = vals[ok]
    return out


def asymmetry(spectra: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """How far each window is from point symmetry about its centre: ``|W - W'|^2 / |W + W'|^2``.

    ``W'`` is the window rotated by 180 degrees about ``centres`` (local px), evaluated through the spectra
    (``fft2`` of the windows, e.g. low-passed): 0 for a centrosymmetric disk, 1 for one whose rotation does not
    overlap it at all. Shot noise raises it: disks of this package's presets at 1e4 electrons per pattern give
    0.05-0.25.

    Parameters
    ----------
    spectra : ndarray of complex, shape (K, w, w)
    centres : ndarray, shape (K, 2)

    Returns
    -------
    ndarray, shape (K,)
    """
    w = spectra.shape[-1]
    half = w // 2
    k = np.fft.fftfreq(w)
    # W(2c - x) with x = index - half  <->  index i' = 2 (c + half) - i, so W' has the spectrum conj(F) e^(-i phi)
    # (phi = 2 pi k . s). |W - W'|^2 = 2 (P - X) and |W + W'|^2 = 2 (P + X) with P = sum |F|^2 and
    # X = Re sum F conj(F') = Re sum F^2 e^(i phi); the phase factorises over the two axes.
    s = 2.0 * (np.asarray(centres, dtype=np.float64) + half)
    ex = np.exp(2j * np.pi * s[:, 0, None] * k[None, :])
    ey = np.exp(2j * np.pi * s[:, 1, None] * k[None, :])
    X = np.einsum("ki,kij,kj->k", ex, spectra * spectra, ey).real
    P = np.sum(spectra.real**2 + spectra.imag**2, axis=(1, 2))
    return (P - X) / np.maximum(P + X, 1e-300)


def asymmetric_patterns(spectra: np.ndarray, local: np.ndarray, snr: np.ndarray, group: np.ndarray,
                        probe: np.ndarray, *, min_snr: float = 20.0, min_disks: int = 3) -> np.ndarray:
    """Patterns whose bright disks have asymmetric interiors (dynamical contrast): the median :func:`asymmetry`
    of their disks with ``snr >= min_snr`` (the direct beam excepted) exceeds
    :data:`~py4dstem_ndpd.refine.edge.ASYMMETRY_GATE`.

    Measured (the median per pattern): <= 0.046 on this package's presets at 1e5-1e7 electrons, 256 and 512 px;
    0.06-0.75 on abTEM multislice patterns of 30-80 nm thick Si [110] and 50-70 nm SrTiO3 [001] (Si at 10 nm:
    0.02-0.10). Patterns with fewer than ``min_disks`` such disks (most at 1e4 electrons) are not flagged.

    Returns
    -------
    ndarray of bool, shape (n_frames,)
    """
    from .edge import ASYMMETRY_GATE

    n_frames = len(probe)
    use = snr >= min_snr
    use[probe[probe >= 0]] = False
    k = np.nonzero(use)[0]
    if k.size == 0:
        return np.zeros(n_frames, dtype=bool)
    g = group[k]
    med = group_median(asymmetry(spectra[k], local[k]), g, np.ones(len(k), dtype=bool), n_frames)
    return (np.bincount(g, minlength=n_frames) >= min_disks) & (np.nan_to_num(med) > ASYMMETRY_GATE)


#: A probe moves to its edge position when that is this far (px) from its centroid, at least ...
EDGE_PROBE_MIN_SHIFT_PX = 0.15
#: ... and this many ``radius / snr`` (6x the centroid's shot-noise error per axis, ``(radius / 2) / snr``).
EDGE_PROBE_NOISE = 3.0


def _edge_probes(Fp: np.ndarray, t: np.ndarray, snr: np.ndarray, half: int, radius_px: float, max_shift_px: float,
                 *, min_snr: float = 20.0, iterations: int = 2) -> np.ndarray:
    """Probe centres ``t`` (local px), with the probes whose centroid is measurably off their rim moved to the rim.

    A direct beam with intensity structure inside (a crystal off its zone axis: the rocking curve and deficiency
    lines cross it) has its centroid off its centre: 0.5-0.9 px on abTEM Si [110] patterns 8-16 mrad off axis
    (noiseless), an error every disk of the pattern shares, since all are measured against the probe. Its rim,
    the aperture's image, stays a circle. Each probe with ``snr >= min_snr`` is also located by the edge score
    (:mod:`~py4dstem_ndpd.refine.edge`) on its gradients less the interior's mean slope
    (:func:`~py4dstem_ndpd.refine.edge.remove_interior_slope`), alternating with its radius ``iterations`` times;
    where that is more than ``max(EDGE_PROBE_MIN_SHIFT_PX, EDGE_PROBE_NOISE * radius / snr)`` from the centroid,
    the edge position is taken. Otherwise the centroid stays: on uniform disks it is the more precise of the two
    (direct beam RMS, this package's presets at 1e4-1e7 electrons: centroid 0.003-0.093 px, edge 0.008-0.151 px),
    and the point symmetry test of :func:`asymmetry` does not see a gradient across a disk (0.02 on these tilted
    patterns).
    """
    t = np.array(t, dtype=np.float64, copy=True)
    sel = np.nonzero(snr >= min_snr)[0]
    if sel.size == 0:
        return t
    gx0, gy0 = window_gradients(Fp[sel])
    c = t[sel]
    for _ in range(int(iterations)):
        gx, gy = remove_interior_slope(gx0, gy0, c, float(radius_px), half)
        radius = probe_radius(gx, gy, half, c, float(radius_px))
        c = edge_positions(gx, gy, half, t[sel], radius, max_shift_px)
    off = np.hypot(*(c - t[sel]).T) > np.maximum(EDGE_PROBE_MIN_SHIFT_PX, EDGE_PROBE_NOISE * radius_px / snr[sel])
    t[sel[off]] = c[off]
    return t


def _edge_variant(F, Fp, has, group, t, local, start, bright, half, radius_px, max_shift_px):
    """``local`` with the ``bright`` disks moved to their edge position (:mod:`~py4dstem_ndpd.refine.edge`),
    searched within ``max_shift_px`` of ``start`` (the detector's centres) and of ``local`` (the hybrid
    positions), whichever maximum scores higher, on gradients without each disk's mean interior slope.

    The ring radius of each pattern is its probe's, measured by the same edge score.
    """
    out = local.copy()
    k = np.nonzero(bright & has[group])[0]
    if k.size == 0:
        return out
    radius = np.full(len(has), float(radius_px))
    need = np.zeros(len(has), dtype=bool)
    need[group[k]] = True
    sub = need[has]  # Fp holds the probes of the patterns with disks, in order
    gpx, gpy = window_gradients(Fp[sub])
    radius[np.nonzero(has)[0][sub]] = probe_radius(gpx, gpy, half, t[has][sub], float(radius_px))
    # without each disk's mean interior slope (around its hybrid position), as for the probes: a crescent's light
    # rising towards its rim moves the rim's steepest fall outwards, towards the direct beam (validation, 2026-12-03:
    # thick Si 0.139 / 0.118 -> 0.093 / 0.084 px at 1e5 / 1e6 electrons, SrTiO3 0.377 / 0.629 -> 0.340 / 0.599)
    gx, gy = remove_interior_slope(*window_gradients(F[k]), local[k], radius[group[k]], half)
    # searched from the detector's centres and from the hybrid positions, the better score kept: on thick SrTiO3
    # the detector's centres of far disks were 1.5-3.5 px towards the direct beam, and from there the search found
    # the wrong maximum of 2 of 16 bright disks (-1.5 / -2.0 px off; -0.37 / -0.39 from the hybrid positions),
    # while on thick Si the hybrid start alone was worse (validation 40 / 80 nm: 0.14 -> 0.22 px at 1e5)
    out[k] = edge_positions(gx, gy, half, start[k], radius[group[k]], max_shift_px, also=local[k])
    return out


__all__ = ["ProbeFit", "asymmetric_patterns", "asymmetry", "choose_probes", "probe_positions"]
