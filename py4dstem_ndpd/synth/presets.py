"""Sample models that mirror the paper's two specimens.

``si_sige_multilayer``: Si viewed along [110] with a MAG*I*CAL-like stack (substrate, then 5 x (10 nm SiGe /
13 nm Si)); growth direction [001] along the scan ``rx`` axis and the detector ``qx`` axis.

``tinb_multiphase``: a bcc beta-Ti-Nb matrix viewed along [001] with coherent bcc precipitates (~50 nm), an
ordered Ti3O-like oxide and hcp precipitates overlapping the matrix.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..exceptions import ConfigError
from ..strain_convention import strain_components
from .crystal import ZoneReflections, bcc, hcp, ordered_oxide, silicon, zone_reflections
from .scan import Acquisition, SampleModel, SimulatedScan, simulate, smooth_field

A_SI = 5.431  # Å
A_GE = 5.658  # Å
POISSON_SI = 0.28


def sige_strain(x_si: float = 0.87, a_si: float = A_SI, a_ge: float = A_GE, nu: float = POISSON_SI) -> float:
    """Out-of-plane strain of pseudomorphic SiGe on Si (paper eq. 5): (a_Ge/a_Si - 1)(1 - x_Si)(1 + 2 nu)."""
    return (a_ge / a_si - 1.0) * (1.0 - x_si) * (1.0 + 2.0 * nu)


def _g_max(acq: Acquisition) -> float:
    return 0.75 * np.hypot(*acq.pattern_shape) * acq.q_pixel_size


def _fill(shape, n_comp):
    Rx, Ry = shape
    F = np.broadcast_to(np.eye(2), (Rx, Ry, n_comp, 2, 2)).copy()
    return F


def si_sige_sample(
    acq: Acquisition,
    *,
    x_si: float = 0.87,
    substrate_nm: float = 25.0,
    sige_nm: float = 10.0,
    si_nm: float = 13.0,
    n_periods: int = 5,
    probe_fwhm_nm: float = 2.6,
    field_of_view_nm: float = 145.0,
) -> SampleModel:
    """Sample model of the Si/SiGe multilayer (see module docstring).

    The truth strain is e_xx = :func:`sige_strain` in the SiGe layers and 0 in Si, blurred by a Gaussian probe of
    ``probe_fwhm_nm``; e_yy = e_xy = theta = 0 (pseudomorphic growth).
    """
    Rx, Ry = acq.scan_shape
    rng = np.random.default_rng(acq.seed + 1)
    step = acq.r_pixel_size or field_of_view_nm / Rx
    x = (np.arange(Rx) + 0.5) * step
    # fine grid for the blur
    xf = np.arange(0, Rx * step, 0.1)
    frac = np.zeros_like(xf)
    start = substrate_nm
    for _ in range(n_periods):
        frac[(xf >= start) & (xf < start + sige_nm)] = 1.0
        start += sige_nm + si_nm
    sigma = probe_fwhm_nm / 2.3548 / 0.1
    frac = ndimage.gaussian_filter1d(frac, sigma, mode="nearest")
    frac_x = np.interp(x, xf, frac)
    exx = sige_strain(x_si) * frac_x
    Fmap = _fill((Rx, Ry), 1)
    Fmap[:, :, 0, 0, 0] = 1.0 + exx[:, None]
    strain = np.zeros((Rx, Ry, 4))
    strain[..., 0] = exx[:, None]
    refl = zone_reflections(silicon(), (1, 1, 0), (0, 0, 1), _g_max(acq), keep_forbidden=0.05)
    phase = (frac_x[:, None] > 0.5).astype(int) * np.ones((1, Ry), int)
    tilt = np.stack([smooth_field((Rx, Ry), rng, 1.0, 0.01), smooth_field((Rx, Ry), rng, 1.0, 0.01)], -1)
    thickness = 1.0 + smooth_field((Rx, Ry), rng, 0.7, 0.15)
    contrast = 1.0 + 0.15 * frac_x[:, None] * np.ones((1, Ry))
    return SampleModel(
        components=[refl], component_names=["Si"], weights=np.ones((Rx, Ry, 1)), deformation=Fmap, strain=strain,
        phase=phase, phase_names=["Si", "SiGe"], tilt=tilt, thickness=thickness, virtual_contrast=contrast,
        field_of_view_nm=field_of_view_nm, name="si_sige_multilayer",
    )


def tinb_sample(
    acq: Acquisition,
    *,
    a_matrix: float = 3.30,
    precipitate_misfit: float = -0.025,
    precipitate_diameter_nm: float = 50.0,
    field_of_view_nm: float = 256.0,
) -> SampleModel:
    """Sample model of the multiphase Ti-Nb alloy (see module docstring).

    Phases: 0 beta matrix, 1 coherent bcc precipitate (lattice ``1 + precipitate_misfit`` of the matrix, with a
    2D Eshelby-like coherency field ``u_r = delta R^2 / r`` outside it), 2 Ti3O-like ordered oxide overlapping the
    matrix, 3 hcp precipitate overlapping the matrix. Truth strain is that of the matrix lattice (or the
    precipitate's inside it), relative to the unstrained matrix.
    """
    Rx, Ry = acq.scan_shape
    rng = np.random.default_rng(acq.seed + 2)
    step = acq.r_pixel_size or field_of_view_nm / Rx
    X, Y = np.meshgrid((np.arange(Rx) + 0.5) * step, (np.arange(Ry) + 0.5) * step, indexing="ij")
    fov_x, fov_y = Rx * step, Ry * step
    g_max = _g_max(acq)
    matrix = zone_reflections(bcc(a_matrix, "beta-bcc"), (0, 0, 1), (1, 0, 0), g_max)
    ox_full = zone_reflections(ordered_oxide(a_matrix), (0, 0, 1), (1, 0, 0), g_max)
    sup = (ox_full.hkl[:, 0] % 2 != 0) | (ox_full.hkl[:, 1] % 2 != 0)
    sup[0] = True
    oxide = ZoneReflections(g=ox_full.g[sup], hkl=ox_full.hkl[sup], f2=ox_full.f2[sup] * 6.0, basis=ox_full.basis)
    hx = zone_reflections(hcp(), (0, 0, 1), (1, 0, 0), g_max)
    t = np.radians(15.0)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    hcp_r = ZoneReflections(g=hx.g @ rot.T, hkl=hx.hkl, f2=hx.f2, basis=hx.basis @ rot.T)
    comps = [matrix, oxide, hcp_r]
    names = ["beta-bcc", "Ti3O-like", "alpha-hcp"]
    phase = np.zeros((Rx, Ry), int)
    # hcp lamella: a diagonal band in the right half
    d = (X - 0.55 * fov_x) * np.sin(0.6) - (Y - 0.75 * fov_y) * np.cos(0.6)
    lam = (np.abs(d) < 0.07 * max(fov_x, fov_y)) & (Y > 0.5 * fov_y)
    phase[lam] = 3
    # oxide: an ellipse at the bottom left
    ell = ((X - 0.78 * fov_x) / (0.15 * fov_x)) ** 2 + ((Y - 0.22 * fov_y) / (0.18 * fov_y)) ** 2 < 1
    phase[ell & (phase == 0)] = 2
    # coherent precipitates: a few disks in the top half, not touching the others
    rad = 0.5 * precipitate_diameter_nm
    centres = []
    for _ in range(200):
        if len(centres) >= 4:
            break
        c = np.array([rng.uniform(0.1, 0.5) * fov_x, rng.uniform(0.1, 0.9) * fov_y])
        if all(np.linalg.norm(c - o) > 2.6 * rad for o in centres):
            near = (X - c[0]) ** 2 + (Y - c[1]) ** 2 < (1.3 * rad) ** 2
            if not np.any(phase[near] != 0):
                centres.append(c)
    Fm = _fill((Rx, Ry), 3)
    grad = np.zeros((Rx, Ry, 2, 2))
    for c in centres:
        dx, dy = X - c[0], Y - c[1]
        r2 = dx * dx + dy * dy
        inside = r2 < rad * rad
        phase[inside] = 1
        # outside: u = delta R^2 r_vec / r^2 -> grad u = delta R^2 (I r^2 - 2 r r^T) / r^4
        r2s = np.maximum(r2, rad * rad)
        k = -precipitate_misfit * 0.5 * rad * rad / r2s**2
        gxx = k * (r2s - 2 * dx * dx)
        gyy = k * (r2s - 2 * dy * dy)
        gxy = k * (-2 * dx * dy)
        out = ~inside
        grad[..., 0, 0] += np.where(out, gxx, 0)
        grad[..., 1, 1] += np.where(out, gyy, 0)
        grad[..., 0, 1] += np.where(out, gxy, 0)
        grad[..., 1, 0] += np.where(out, gxy, 0)
    Fm[:, :, 0] = np.eye(2) + grad
    Fm[phase == 1, 0] = np.eye(2) * (1 + precipitate_misfit)
    Fm[:, :, 1] = Fm[:, :, 0]
    weights = np.zeros((Rx, Ry, 3))
    weights[..., 0] = 1.0
    weights[phase == 2, 0], weights[phase == 2, 1] = 0.6, 0.4
    weights[phase == 3, 0], weights[phase == 3, 2] = 0.55, 0.45
    strain = strain_components(Fm[:, :, 0])
    tilt = np.stack([smooth_field((Rx, Ry), rng, 1.5, 0.01), smooth_field((Rx, Ry), rng, 1.5, 0.01)], -1)
    thickness = 1.0 + smooth_field((Rx, Ry), rng, 1.0, 0.2)
    contrast = np.where(phase == 0, 1.0, 1.1)
    return SampleModel(
        components=comps, component_names=names, weights=weights, deformation=Fm, strain=strain, phase=phase,
        phase_names=["beta matrix", "coherent bcc precipitate", "Ti3O-like oxide + matrix", "hcp + matrix"],
        tilt=tilt, thickness=thickness, virtual_contrast=contrast, field_of_view_nm=field_of_view_nm,
        name="tinb_multiphase",
    )


PRESETS = {"si_sige_multilayer": si_sige_sample, "tinb_multiphase": tinb_sample}
DEFAULT_SCANS = {"si_sige_multilayer": (97, 40), "tinb_multiphase": (128, 128)}


def simulate_preset(
    name: str, acq: Acquisition | None = None, *, workers: int = 1, progress: bool = False, **sample_options
) -> SimulatedScan:
    """Simulate one of :data:`PRESETS` (``"si_sige_multilayer"`` or ``"tinb_multiphase"``).

    Parameters
    ----------
    name : str
    acq : Acquisition, optional
        Defaults to ``Acquisition(scan_shape=DEFAULT_SCANS[name])``.
    workers : int
        Threads used to count the patterns (see :func:`~py4dstem_ndpd.synth.scan.simulate`).
    progress : bool
    **sample_options
        Passed to the sample model (e.g. ``x_si=0.8``).

    Examples
    --------
    >>> from py4dstem_ndpd.synth import Acquisition, simulate_preset
    >>> scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(4, 2), pattern_shape=(64, 64)))
    >>> scan.data.shape
    (4, 2, 64, 64)
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    acq = acq or Acquisition(scan_shape=DEFAULT_SCANS[name])
    sample = PRESETS[name](acq, **sample_options)
    return simulate(sample, acq, workers=workers, progress=progress)
