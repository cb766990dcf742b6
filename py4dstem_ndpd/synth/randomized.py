"""Domain-randomised diffraction patterns for training the detector.

Each pattern draws, independently: a 2D lattice (random metric, orientation, spacing from touching disks to
sparse) or none (vacuum: direct beam only), sometimes a second overlapping lattice, disk radius 1.5-20 px at the
network's resolution (patterns drawn at 512 px are binned 2x2, so 3-25 px native), 5-400 disks, per-reflection
intensities spanning several decades (faint forbidden-like reflections included), dose 1e2-1e7 electrons,
16/32-bit counters, diffuse halo and amorphous ring backgrounds, blur, hot/dead pixels, elliptic distortion,
internal disk structure, and an origin anywhere in the central 60 % (so disks are cut by the edges).

Beyond the kinematic picture (so that the detector learns disk *edges*, not intensity centroids, and does not
depend on a counting camera): in a fraction of patterns the disks carry dynamical contrast
(:class:`~py4dstem_ndpd.synth.render.DiskTexture`: off-centre fringes, intensity ramps, bright or dark lines
across the disk), Kikuchi bands cross the diffuse background, and the camera integrates instead of counting
(gain per electron with its own spread, Gaussian read noise, a dark offset removed so values go negative,
saturation at 16 bits, float output).
Speckled diffuse scattering (amorphous films, thermal diffuse scattering under a convergent probe: soft grains about
a disk wide) teaches it that a blob without a sharp edge is not a disk.

Labels follow ultralytics' convention (pixel ``i`` spans ``[i, i+1)``; boxes normalised, ``class x y w h`` with
``x`` the column): every disk whose true centre lies on the image and whose integrated SNR is >= ``min_snr``,
box = its true extent clipped to the image. The SNR used for labelling is the integrated one,
``N_disk / sqrt(N_disk + N_background_under_disk)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .render import (BackgroundBatch, DetectorModel, DiskBatch, DiskTexture, detect_counts, render_background,
                     render_disks)


@dataclass(frozen=True)
class RandomizationRanges:
    """Ranges of the domain randomisation (see module docstring). Radii in px at the output resolution."""

    size: int = 256
    radius: tuple[float, float] = (1.5, 20.0)
    native_512_fraction: float = 0.25
    dose: tuple[float, float] = (1e2, 1e7)
    max_disks: int = 400
    vacuum_fraction: float = 0.03
    second_lattice_fraction: float = 0.2
    min_snr: float = 3.0
    dynamical_fraction: float = 0.0
    kikuchi_fraction: float = 0.0
    integrating_fraction: float = 0.0
    speckle_fraction: float = 0.0
    camera_psf_fraction: float = 0.0


#: Named randomisations: ``"v1"`` made the first shipped model (kinematic disks, counting cameras); ``"v2"`` adds
#: dynamical disk contrast (half the patterns), Kikuchi bands (30 %) and integrating cameras (25 %); ``"v3"``
#: mixes the two (30 % dynamical, 20 % Kikuchi, 20 % integrating, so about half the patterns stay kinematic),
#: adds speckled diffuse scattering (30 %) and draws a second, overlapping lattice twice as often (40 %); ``"v4"`` is
#: ``"v3"`` with more integrating cameras (35 %), three quarters of them scintillators whose point-spread function
#: blurs the shot noise and often has a long tail (:func:`_camera_psf`).
RANDOMIZATIONS = {
    "v1": RandomizationRanges(),
    "v2": RandomizationRanges(dynamical_fraction=0.5, kikuchi_fraction=0.3, integrating_fraction=0.25),
    "v3": RandomizationRanges(dynamical_fraction=0.3, kikuchi_fraction=0.2, integrating_fraction=0.2,
                              speckle_fraction=0.3, second_lattice_fraction=0.4),
    "v4": RandomizationRanges(dynamical_fraction=0.3, kikuchi_fraction=0.2, integrating_fraction=0.35,
                              speckle_fraction=0.3, second_lattice_fraction=0.4, camera_psf_fraction=0.75),
}


@dataclass
class RandomPattern:
    """One randomised pattern: counts, its normalised network image and labels.

    Attributes
    ----------
    counts : ndarray (S, S)
        Detector counts (uint16/uint32) at the output resolution.
    centres : ndarray (K, 2)
        True centres (qx row, qy column) of labelled disks, px (py4DSTEM convention).
    radius : float
        Disk radius, px.
    boxes : ndarray (K, 4)
        YOLO labels ``x_center, y_center, width, height`` normalised to 0..1.
    snr : ndarray (K,)
    """

    counts: np.ndarray
    centres: np.ndarray
    radius: float
    boxes: np.ndarray
    snr: np.ndarray
    params: dict


def _lattice_points(rng, S, R, origin, max_disks):
    # metric
    L1 = R * rng.uniform(2.05, 7.0) if rng.random() < 0.8 else R * rng.uniform(7.0, 14.0)
    L2 = max(L1 * rng.uniform(0.6, 1.7), 2.05 * R)
    ang = np.radians(rng.uniform(50, 130))
    if rng.random() < 0.3:  # square / hexagonal nets are common
        L2 = L1
        ang = np.radians(90.0 if rng.random() < 0.5 else 60.0)
    rot = rng.uniform(0, 2 * np.pi)
    g1 = L1 * np.array([np.cos(rot), np.sin(rot)])
    g2 = L2 * np.array([np.cos(rot + ang), np.sin(rot + ang)])
    area = abs(g1[0] * g2[1] - g1[1] * g2[0])
    n_est = (S * S) / area
    if n_est > max_disks:
        f = np.sqrt(n_est / max_disks)
        g1, g2 = g1 * f, g2 * f
    Lmin = min(np.linalg.norm(g1), np.linalg.norm(g2)) * abs(np.sin(ang))
    n = int(np.ceil(1.5 * S / max(Lmin, 1e-3))) + 1
    u, v = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    uv = np.stack([u.ravel(), v.ravel()], 1)
    pts = origin + uv @ np.stack([g1, g2])
    keep = np.all((pts > -3 * R) & (pts < S + 3 * R), axis=1)
    return pts[keep], uv[keep]


def random_pattern(rng: np.random.Generator, ranges: RandomizationRanges = RandomizationRanges()) -> RandomPattern:
    """Draw one randomised pattern with labels (see module docstring)."""
    S_out = ranges.size
    native = 2 if rng.random() < ranges.native_512_fraction else 1
    S = S_out * native
    R_out = float(np.exp(rng.uniform(np.log(ranges.radius[0]), np.log(ranges.radius[1]))))
    if native == 2:
        R_out = max(R_out, 1.5)
    R = R_out * native
    origin = S * (0.5 + rng.uniform(-0.3, 0.3, 2))
    vacuum = rng.random() < ranges.vacuum_fraction
    centres = [origin[None]]
    weights = [np.array([1.0])]
    if not vacuum:
        n_lat = 2 if rng.random() < ranges.second_lattice_fraction else 1
        for k in range(n_lat):
            pts, uv = _lattice_points(rng, S, R, origin, ranges.max_disks // n_lat)
            g = pts - origin
            nz = np.any(uv != 0, axis=1)
            pts, g = pts[nz], g[nz]
            env = rng.uniform(0.15, 0.8) * S
            w = np.exp(-0.5 * (np.linalg.norm(g, axis=1) / env) ** 2) * rng.lognormal(0.0, 1.0, len(pts))
            faint = rng.random(len(pts)) < 0.15
            w[faint] *= rng.uniform(0.02, 0.2, faint.sum())
            missing = rng.random(len(pts)) < rng.uniform(0, 0.15)
            w[missing] = 0
            if k == 1:
                w *= rng.uniform(0.2, 1.0)
            centres.append(pts)
            weights.append(w)
    C = np.concatenate(centres)
    Wt = np.concatenate(weights)
    dose = float(np.exp(rng.uniform(np.log(ranges.dose[0]), np.log(ranges.dose[1]))))
    f_cb = rng.uniform(0.05, 0.8) if not vacuum else rng.uniform(0.6, 0.98)
    f_bg = rng.uniform(0.0, 0.6) * (1 - f_cb)
    f_disk = 1 - f_cb - f_bg
    if len(Wt) > 1 and Wt[1:].sum() > 0:
        Wt[1:] = Wt[1:] / Wt[1:].sum() * f_disk * dose
    else:
        f_bg = 1 - f_cb
    Wt[0] = f_cb * dose
    ell = rng.uniform(0, 0.05)
    t = rng.uniform(0, np.pi)
    rotm = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    shape = rotm @ np.diag([1 + ell / 2, 1 - ell / 2]) @ rotm.T
    D = len(Wt)
    disks = DiskBatch(
        qx=C[None, :, 0], qy=C[None, :, 1], weight=Wt[None], radius=np.array([R]),
        edge=np.array([rng.uniform(0.3, 1.5) * native]), ripple=np.full((1, D), rng.uniform(0, 0.3)),
        ripple_period=np.full((1, D), max(R * rng.uniform(0.5, 1.5), 2.0)), shape_matrix=shape[None],
    )
    disks.ripple[0, 0] = 0.0
    if _chance(rng, ranges.dynamical_fraction):
        disks.texture = _random_texture(rng, D)
        disks.ripple[0] = rng.uniform(0, 0.5, D)
        disks.ripple[0, 0] *= 0.3  # the direct beam is the most uniform disk
    bg = BackgroundBatch(
        origin=origin[None], weight=np.array([f_bg * dose]), decay=np.array([rng.uniform(0.05, 0.5) * S]),
        ring_fraction=np.array([rng.uniform(0, 0.5)]), ring_radius=np.array([rng.uniform(0.1, 0.5) * S]),
        ring_width=np.array([rng.uniform(0.02, 0.1) * S]),
    )
    bg_img = render_background(bg, (S, S))
    if _chance(rng, ranges.kikuchi_fraction):
        bg_img = bg_img * _kikuchi_bands(rng, S)[None]
    if _chance(rng, ranges.speckle_fraction):
        bg_img = bg_img * _speckle(rng, S, R)[None]
    expected = render_disks(disks, (S, S)) + bg_img
    det = DetectorModel(
        blur_sigma=rng.uniform(0, 1.2) * native, hot_fraction=rng.choice([0, 1e-5, 1e-4]),
        dead_fraction=rng.choice([0, 1e-4, 1e-3]), bits=16 if rng.random() < 0.5 else 32,
        seed=int(rng.integers(1 << 31)),
    )
    counts = detect_counts(expected, det, rng)[0].astype(np.float64)
    integrating = _chance(rng, ranges.integrating_fraction)
    noise_factor, read_e, tail = 1.0, 0.0, 0.0
    if integrating:
        counts, noise_factor, read_e, tail = _integrating_camera(rng, counts, ranges.camera_psf_fraction)
    if native == 2:
        counts = counts.reshape(S_out, 2, S_out, 2).sum(axis=(1, 3))
        bg_img = bg_img.reshape(1, S_out, 2, S_out, 2).mean(axis=(2, 4))
        # binned pixel (i) covers native (2i, 2i+1): centre maps to (c - 0.5) / 2
        C = (C - 0.5) / 2.0
    if integrating:
        counts = counts.astype(np.float32)
    else:
        top = 65535 if det.bits == 16 else 2**32 - 1
        counts = np.clip(counts, 0, top).astype(np.uint16 if det.bits == 16 else np.uint32)
    # labels
    area = np.pi * R_out * R_out
    on = (C[:, 0] >= -0.5) & (C[:, 0] < S_out - 0.5) & (C[:, 1] >= -0.5) & (C[:, 1] < S_out - 0.5) & (Wt > 0)
    ix = np.clip(np.round(C[:, 0]).astype(int), 0, S_out - 1)
    iy = np.clip(np.round(C[:, 1]).astype(int), 0, S_out - 1)
    back = bg_img[0, ix, iy] * (native * native if native == 2 else 1)
    # integrated SNR of the disk against the background under it (what makes a disk visible)
    # (an integrating camera adds its per-electron spread and read noise, in electrons)
    # (a long camera tail spreads that share of the disk's signal far from it)
    snr = Wt * (1 - tail) / np.sqrt(noise_factor * (Wt + back * area) + area * (read_e * native) ** 2 + 1e-12)
    keep = on & (snr >= ranges.min_snr)
    Ck = C[keep]
    ext = R_out * np.sqrt(np.diag(shape @ shape.T)) + 0.5  # half extents along qx, qy
    x1 = np.clip(Ck[:, 1] + 0.5 - ext[1], 0, S_out)
    x2 = np.clip(Ck[:, 1] + 0.5 + ext[1], 0, S_out)
    y1 = np.clip(Ck[:, 0] + 0.5 - ext[0], 0, S_out)
    y2 = np.clip(Ck[:, 0] + 0.5 + ext[0], 0, S_out)
    boxes = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1) / S_out
    return RandomPattern(
        counts=counts, centres=Ck, radius=R_out, boxes=boxes, snr=snr[keep],
        params={"dose": dose, "radius": R_out, "native": S, "n_disks": int(keep.sum()), "vacuum": vacuum,
                "dynamical": disks.texture is not None, "integrating": integrating},
    )


def _chance(rng: np.random.Generator, p: float) -> bool:
    """True with probability ``p``; draws nothing when ``p == 0`` (so the "v1" sequence of patterns is unchanged)."""
    return p > 0 and rng.random() < p


def _random_texture(rng: np.random.Generator, D: int) -> DiskTexture:
    """Dynamical contrast for ``D`` disks of one pattern (see :class:`DiskTexture`)."""
    g_dir = rng.uniform(0, 2 * np.pi, D)
    g_mag = rng.uniform(0, 0.8, D)
    fc_dir = rng.uniform(0, 2 * np.pi, D)
    fc_mag = rng.uniform(0, 0.8, D)
    line_on = rng.random(D) < 0.5
    tex = DiskTexture(
        gradient=np.stack([g_mag * np.cos(g_dir), g_mag * np.sin(g_dir)], -1)[None],
        fringe_centre=np.stack([fc_mag * np.cos(fc_dir), fc_mag * np.sin(fc_dir)], -1)[None],
        line_amplitude=(np.where(line_on, rng.uniform(-1.0, 0.9, D), 0.0))[None],
        line_angle=rng.uniform(0, np.pi, D)[None],
        line_offset=rng.uniform(-0.9, 0.9, D)[None],
        line_width=rng.uniform(0.05, 0.4, D)[None],
    )
    tex.gradient[0, 0] *= 0.3
    return tex


def _kikuchi_bands(rng: np.random.Generator, S: int) -> np.ndarray:
    """Multiplicative (S, S) map of 1-4 Kikuchi bands: a bright band with a dark line along one edge."""
    q = np.arange(S, dtype=np.float32)
    X, Y = np.meshgrid(q, q, indexing="ij")
    out = np.ones((S, S), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        a = rng.uniform(0, np.pi)
        c = rng.uniform(0.1, 0.9) * S
        half = rng.uniform(0.02, 0.12) * S
        t = np.cos(a) * X + np.sin(a) * Y - c
        band = 0.5 * (1.0 + np.tanh((half - np.abs(t)) / max(0.02 * S, 1.0)))
        out += rng.uniform(0.1, 0.8) * band
        out -= rng.uniform(0.0, 0.5) * np.exp(-np.square((t + half) / max(0.008 * S, 0.5)))
    return np.clip(out, 0.05, None)


def _speckle(rng: np.random.Generator, S: int, R: float) -> np.ndarray:
    """Multiplicative (S, S) speckle map of mean 1 for the diffuse background.

    Thin amorphous films and thermal diffuse scattering seen with a convergent probe give speckle: the pattern is
    ``|A * F[object]|^2``, a random field convolved with the probe aperture, so the grains are about a disk wide
    and soft-edged (a Bragg disk has the aperture's sharp edge). Grain radius 0.5-1.5 disk radii, contrast
    0.3-1 (1: fully developed speckle, exponential statistics).
    """
    grain = R * rng.uniform(0.5, 1.5)
    field = rng.normal(size=(S, S)) + 1j * rng.normal(size=(S, S))
    f = np.fft.fftfreq(S)
    k2 = f[:, None] ** 2 + f[None, :] ** 2
    # the aperture's transform, as a filter: a disk of radius `grain` px has an Airy transform; a Gaussian of the
    # same width is close enough for the grain statistics and has no ringing
    filt = np.exp(-2.0 * (np.pi * grain) ** 2 * k2 / 4.0)
    amp = np.fft.ifft2(np.fft.fft2(field) * filt)
    speck = np.abs(amp) ** 2
    speck /= speck.mean()
    m = rng.uniform(0.3, 1.0)
    return ((1.0 - m) + m * speck).astype(np.float32)


def _integrating_camera(rng: np.random.Generator, electrons: np.ndarray,
                        psf_fraction: float = 0.0) -> tuple[np.ndarray, float, float, float]:
    """Counts of an integrating camera from electron counts: gamma-distributed signal per electron (mean gain
    1-40 ADU), with probability ``psf_fraction`` spread by the camera's point-spread function (:func:`_camera_psf`:
    the shot noise is blurred too, as in a scintillator), Gaussian read noise (0.02-0.5 electrons), dark offset
    subtracted, saturation of the 16-bit converter. Returns the values, the factor on the shot-noise variance, the
    read noise in electrons and the fraction of each electron's signal spread out of its disk by a long tail."""
    gain = float(np.exp(rng.uniform(0.0, np.log(40.0))))
    shape_k = rng.uniform(1.5, 10.0)  # per-electron signal spread (Landau-like, crudely)
    n = np.maximum(electrons, 0)
    signal = np.where(n > 0, rng.gamma(np.maximum(n, 1e-9) * shape_k, gain / shape_k), 0.0)
    tail = 0.0
    if _chance(rng, psf_fraction):
        from scipy.signal import fftconvolve

        k, tail = _camera_psf(rng)
        signal = fftconvolve(signal, k, mode="same")
    read_e = rng.uniform(0.02, 0.5)
    offset = rng.uniform(50, 500)
    raw = np.clip(signal + offset + rng.normal(0, read_e * gain, n.shape), 0, 65535)
    return raw - offset, 1.0 + 1.0 / shape_k, read_e, tail


def _camera_psf(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A scintillator camera's point-spread function: a Gaussian core (sigma 0.3-1.2 px) and, in half the draws, a
    long tail (5-35 % of the signal, exponential or power-law ``(1 + (r/l)^2)^-1.5``, length 2-16 px). Returns the
    normalised kernel and the tail's fraction."""
    sigma = rng.uniform(0.3, 1.2)
    tail = rng.uniform(0.05, 0.35) if rng.random() < 0.5 else 0.0
    length = rng.uniform(2.0, 16.0)
    power = rng.random() < 0.5
    h = int(np.ceil(max(4 * sigma, (8 if power else 5) * length if tail else 0, 1)))
    r = np.hypot(*np.mgrid[-h:h + 1, -h:h + 1].astype(float))
    core = np.exp(-0.5 * (r / sigma) ** 2)
    k = (1 - tail) * core / core.sum()
    if tail:
        t = (1 + (r / length) ** 2) ** -1.5 if power else np.exp(-r / length)
        k = k + tail * t / t.sum()
    return k / k.sum(), tail

