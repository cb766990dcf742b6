"""Simulate a whole 4D-STEM scan from a sample model, with exact ground truth.

A :class:`SampleModel` says, for every scan position, which crystal components are hit, with which weight and
which deformation; :class:`Acquisition` says how the microscope and the camera record them. :func:`simulate`
renders the scan in vectorised batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..calibration import Calibration
from ..exceptions import ConfigError
from .crystal import ZoneReflections
from .optics import disk_radius_inv_angstrom
from .render import (
    BackgroundBatch, DetectorModel, DiskBatch, _inverse_2x2, detect_counts, render_background, render_disks,
)
from .truth import TRUTH_DTYPE, ScanTruth


@dataclass(frozen=True)
class Acquisition:
    """Microscope, scan and camera settings.

    Attributes
    ----------
    scan_shape : (int, int)
        ``(Rx, Ry)`` scan positions.
    pattern_shape : (int, int)
        ``(Qx, Qy)`` detector pixels.
    kv, convergence_mrad : float
        Accelerating voltage (kV) and probe convergence semi-angle (mrad); they set the disk radius in 1/Å.
    disk_radius_px : float or None
        Disk radius on the detector, px; sets the camera length. Default ``min(pattern_shape) / 64``.
    r_pixel_size : float or None
        Scan step, nm. ``None`` lets the sample model choose (its field of view divided by the scan size).
    dose : float
        Expected electrons per pattern.
    central_beam_fraction, background_fraction : float
        Fractions of the dose in the direct beam and in the diffuse background; the rest goes to the Bragg disks
        (on and off the detector). Where the sample scatters more (``SampleModel.virtual_contrast > 1``) the
        Bragg disks get proportionally more and the direct beam less, so every pattern carries exactly ``dose``
        expected electrons.
    drift_px : float
        Descan, px: the origin moves linearly over the scan, by ``drift_px * d_x * (1, 0.7)`` from the first to
        the last row (``rx``) and ``drift_px * d_y * (1, 0.7)`` from the first to the last column (``ry``), for
        a random unit direction ``d`` drawn from ``seed``, plus a saddle-shaped bow ``0.3 * drift_px *
        (fx**2 - fy**2)`` (``fx, fy`` in -0.5..0.5) that vanishes at the corners. ``0`` keeps the origin fixed.
    rotation_deg, ellipticity : float
        Distortion of the whole diffraction plane (disk positions and disk shapes) about the origin: first
        ``qx`` is scaled by ``1 + ellipticity/2`` and ``qy`` by ``1 - ellipticity/2`` (axis ratio ~ ``1 +
        ellipticity``), then the pattern is rotated by ``rotation_deg`` counter-clockwise in the ``(qx, qy)``
        frame (``+qx`` turns towards ``+qy``). See :meth:`distortion`.
    edge_px : float
        Softness of the disk edges, px.
    ripple : float
        Amplitude of the centrosymmetric structure inside disks (thickness fringes).
    detector : DetectorModel
    noise : bool
        False gives the noise-free expected patterns (float32).
    seed : int
    """

    scan_shape: tuple[int, int] = (97, 40)
    pattern_shape: tuple[int, int] = (256, 256)
    kv: float = 200.0
    convergence_mrad: float = 0.7
    disk_radius_px: float | None = None
    r_pixel_size: float | None = None
    dose: float = 1e6
    central_beam_fraction: float = 0.3
    background_fraction: float = 0.15
    drift_px: float = 1.5
    rotation_deg: float = 0.0
    ellipticity: float = 0.0
    edge_px: float = 0.6
    ripple: float = 0.1
    detector: DetectorModel = field(default_factory=DetectorModel)
    noise: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if len(self.scan_shape) != 2 or min(self.scan_shape) < 1:
            raise ConfigError(f"scan_shape must be two positive ints (Rx, Ry), got {self.scan_shape}")
        if len(self.pattern_shape) != 2 or min(self.pattern_shape) < 16:
            raise ConfigError(f"pattern_shape must be two ints >= 16 (Qx, Qy), got {self.pattern_shape}")
        if not self.dose > 0:
            raise ConfigError(f"dose must be > 0 electrons per pattern, got {self.dose}")
        if self.central_beam_fraction < 0 or self.background_fraction < 0 or (
            self.central_beam_fraction + self.background_fraction > 1
        ):
            raise ConfigError(
                "central_beam_fraction and background_fraction must be >= 0 and sum to <= 1 (the rest goes to "
                f"the Bragg disks), got {self.central_beam_fraction} and {self.background_fraction}"
            )

    @property
    def radius_px(self) -> float:
        """Disk radius in px."""
        return float(self.disk_radius_px or min(self.pattern_shape) / 64)

    @property
    def q_pixel_size(self) -> float:
        """Detector pixel size in 1/Å implied by the optics and the disk radius."""
        return disk_radius_inv_angstrom(self.kv, self.convergence_mrad) / self.radius_px

    def distortion(self) -> np.ndarray:
        """2x2 map from ideal to recorded detector coordinates (rotation and ellipticity), (qx, qy) frame."""
        t = np.radians(self.rotation_deg)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        ell = np.diag([1 + self.ellipticity / 2, 1 - self.ellipticity / 2])
        return rot @ ell


@dataclass
class SampleModel:
    """What the probe sees at each scan position.

    Attributes
    ----------
    components : list of ZoneReflections
        Crystal components (reflections in 1/Å of the unstrained crystal, detector frame).
    component_names : list of str
    weights : ndarray, shape (Rx, Ry, C)
        Share of the diffracted signal given to each component (0 = absent).
    deformation : ndarray, shape (Rx, Ry, C, 2, 2)
        Real-space deformation gradient of each component relative to its unstrained crystal, (qx, qy) frame.
    strain : ndarray, shape (Rx, Ry, 4)
        Truth e_xx, e_yy, e_xy, theta reported for the position (relative to the reference crystal).
    phase : ndarray of int, shape (Rx, Ry)
    phase_names : list of str
    tilt : ndarray, shape (Rx, Ry, 2)
        Local mistilt (1/Å offset of the Laue circle centre); weakens reflections with ``g . tilt`` large.
    thickness : ndarray, shape (Rx, Ry)
        Relative thickness; modulates reflection intensities like thickness fringes.
    virtual_contrast : ndarray, shape (Rx, Ry)
        Multiplier of the diffracted fraction (e.g. SiGe scatters more than Si).
    field_of_view_nm : float
        Extent of the scan along rx, nm (sets the scan step when Acquisition.r_pixel_size is None).
    name : str
    """

    components: list[ZoneReflections]
    component_names: list[str]
    weights: np.ndarray
    deformation: np.ndarray
    strain: np.ndarray
    phase: np.ndarray
    phase_names: list[str]
    tilt: np.ndarray
    thickness: np.ndarray
    virtual_contrast: np.ndarray
    field_of_view_nm: float
    name: str = "sample"


@dataclass
class SimulatedScan:
    """A simulated scan: the py4DSTEM DataCube and its exact truth."""

    datacube: object  # py4DSTEM.DataCube
    truth: ScanTruth

    @property
    def data(self) -> np.ndarray:
        """The 4D array ``(Rx, Ry, Qx, Qy)``."""
        return self.datacube.data


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, scale: float, amplitude: float) -> np.ndarray:
    """A smooth random field of the given shape (a few long-wavelength cosines), mean 0, peak ~``amplitude``."""
    rx, ry = np.meshgrid(np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1]), indexing="ij")
    out = np.zeros(shape)
    for _ in range(3):
        k = rng.normal(0, scale, 2)
        out += np.cos(2 * np.pi * (k[0] * rx + k[1] * ry) + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 3


def _batch_disks(sample: SampleModel, acq: Acquisition, rx: np.ndarray, ry: np.ndarray, origin: np.ndarray,
                 dist: np.ndarray):
    """Disk centres (px), expected electrons and labels at ``B`` scan positions at once.

    Parameters
    ----------
    rx, ry : ndarray of int, shape (B,)
        Scan positions.
    origin : ndarray, shape (B, 2)
        Direct-beam position at each, px.
    dist : ndarray, shape (2, 2)
        Detector distortion (:meth:`Acquisition.distortion`).

    Returns
    -------
    centres : ndarray, shape (B, D, 2)
        Disk centres (qx, qy), px; slot 0 is the direct beam, then the reflections of every component in order.
    inten : ndarray, shape (B, D)
        Expected electrons (0 where ``valid`` is False).
    valid : ndarray of bool, shape (B, D)
        The disk exists at that position (component present, centre near the detector).
    hkl : ndarray of int, shape (D, 3)
    comp : ndarray of int, shape (D,)
        Component index, -1 for the direct beam.
    """
    B = len(rx)
    qpix = acq.q_pixel_size
    half_diag = 0.5 * np.hypot(*acq.pattern_shape) + 2 * acq.radius_px
    frac_bragg = (1 - acq.central_beam_fraction - acq.background_fraction) * sample.virtual_contrast[rx, ry]
    tilt = sample.tilt[rx, ry]  # (B, 2)
    thick = sample.thickness[rx, ry]  # (B,)
    centres, inten, valid, hkl, comp = [origin[:, None, :]], [], [], [np.zeros((1, 3), int)], [np.array([-1])]
    for c, refl in enumerate(sample.components):
        w = sample.weights[rx, ry, c]  # (B,)
        F = sample.deformation[rx, ry, c]  # (B, 2, 2)
        g = np.einsum("kj,bji->bki", refl.g[1:], _inverse_2x2(F))  # reciprocal vectors transform with F^-T
        cen = (g / qpix) @ dist.T + origin[:, None, :]  # (B, K, 2)
        ok = np.all(np.abs(cen - origin[:, None, :]) < half_diag, axis=2) & (w > 0)[:, None]
        gl = np.linalg.norm(g, axis=2)
        excite = 0.25 + 0.75 * np.exp(-0.5 * (np.einsum("bkj,bj->bk", g, tilt) / 0.02) ** 2)
        fringe = 0.7 + 0.3 * np.cos(2 * np.pi * gl * thick[:, None] * 3.0)
        centres.append(cen)
        inten.append(np.where(ok, refl.f2[None, 1:] * excite * fringe * w[:, None], 0.0))
        valid.append(ok)
        hkl.append(refl.hkl[1:])
        comp.append(np.full(len(refl.g) - 1, c))
    bragg = np.concatenate(inten, axis=1) if inten else np.zeros((B, 0))
    total = bragg.sum(axis=1, keepdims=True)
    # electrons are conserved: what the Bragg disks take beyond their nominal share (virtual_contrast > 1)
    # comes out of the direct beam, so every pattern carries `dose` electrons (on and off the detector)
    transmitted = (1 - acq.background_fraction) * acq.dose
    bragg_total = np.where(total[:, 0] > 0, np.minimum(frac_bragg * acq.dose, transmitted), 0.0)
    scale = np.divide(bragg_total[:, None], total, out=np.ones_like(total), where=total > 0)
    bragg = bragg * scale
    inten = np.concatenate([(transmitted - bragg_total)[:, None], bragg], axis=1)
    valid = np.concatenate([np.ones((B, 1), bool)] + valid, axis=1)
    return np.concatenate(centres, axis=1), inten, valid, np.concatenate(hkl), np.concatenate(comp)


def _noise_generators(seed: int, flat_index: np.ndarray) -> list[np.random.Generator]:
    """One independent generator per scan position (noise depends on seed and position, not on batching)."""
    return [np.random.default_rng([seed, _NOISE_STREAM, int(k)]) for k in flat_index]


_NOISE_STREAM = 0x6E6F697365  # separates the per-pattern noise streams from the sample-model streams


def simulate(
    sample: SampleModel,
    acq: Acquisition,
    *,
    batch_size: int | None = None,
    workers: int = 1,
    progress: bool = False,
) -> SimulatedScan:
    """Render every pattern of the scan and collect the truth.

    Parameters
    ----------
    sample : SampleModel
    acq : Acquisition
    batch_size : int, optional
        Patterns rendered per vectorised batch (memory ~ batch_size * Qx * Qy * 16 bytes). Default: as many as
        keep one float32 batch within ~4 MiB (16 at 256 x 256), which keeps the work in the CPU caches. The
        result does not depend on it: the Poisson noise of each pattern has its own generator, seeded by
        ``acq.seed`` and the scan position.
    workers : int
        Threads that blur and count the patterns of a batch in parallel (the result does not depend on it).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    SimulatedScan
    """
    import py4DSTEM
    from tqdm.auto import tqdm

    Rx, Ry = acq.scan_shape
    H, W = acq.pattern_shape
    if batch_size is None:
        batch_size = int(np.clip((4 << 20) // (4 * H * W), 2, 64))
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1 pattern, got {batch_size}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1 thread, got {workers}")
    rng = np.random.default_rng(acq.seed)
    dist = acq.distortion()
    fx, fy = np.meshgrid(np.linspace(-0.5, 0.5, Rx), np.linspace(-0.5, 0.5, Ry), indexing="ij")
    drift_dir = rng.normal(size=2)
    drift_dir /= np.linalg.norm(drift_dir)
    centre = np.array([(H - 1) / 2, (W - 1) / 2]) + rng.uniform(-1, 1, 2)
    origin = (
        centre
        + acq.drift_px * (fx[..., None] * drift_dir[0] + fy[..., None] * drift_dir[1]) * np.array([1.0, 0.7])
        + 0.3 * acq.drift_px * (fx**2 - fy**2)[..., None]
    )
    R = acq.radius_px
    out_dtype = np.float32 if not acq.noise else (np.uint16 if acq.detector.bits <= 16 else np.uint32)
    data = np.empty((Rx, Ry, H, W), dtype=out_dtype)
    frames = data.reshape(Rx * Ry, H, W)
    truth_rows = []
    counts_per = np.zeros(Rx * Ry, np.int64)
    n_pos = Rx * Ry
    bar = tqdm(total=n_pos, desc="simulate", unit="pattern", disable=not progress)
    for start in range(0, n_pos, batch_size):
        k = np.arange(start, min(start + batch_size, n_pos))
        B = len(k)
        ri, rj = k // Ry, k % Ry
        org = origin[ri, rj]
        cen, inten, valid, hkl, comp = _batch_disks(sample, acq, ri, rj, org, dist)
        D = inten.shape[1]
        ripple = np.full((B, D), acq.ripple)
        ripple[:, 0] = 0.0  # the direct beam is the probe: flat
        disks = DiskBatch(
            qx=cen[..., 0], qy=cen[..., 1], weight=np.where(valid, inten, 0.0), radius=np.full(B, R),
            edge=np.full(B, acq.edge_px), ripple=ripple, ripple_period=np.full((B, D), max(R, 2.0)),
            shape_matrix=np.broadcast_to(dist, (B, 2, 2)),
        )
        bg = BackgroundBatch(
            origin=org,
            weight=np.full(B, acq.background_fraction * acq.dose),
            decay=np.full(B, 0.25 * min(H, W)),
            ring_fraction=np.full(B, 0.3),
            ring_radius=np.full(B, 0.3 * min(H, W)),
            ring_width=np.full(B, 0.05 * min(H, W)),
        )
        bg_img = render_background(bg, (H, W))
        # truth: every existing disk whose centre lies on the detector, in C order of (position, slot)
        on = valid & (cen[..., 0] >= -0.5) & (cen[..., 0] < H - 0.5) & (cen[..., 1] >= -0.5) & (cen[..., 1] < W - 0.5)
        bi, di = np.nonzero(on)
        rows = np.zeros(len(bi), dtype=TRUTH_DTYPE)
        rows["rx"], rows["ry"] = ri[bi], rj[bi]
        rows["qx"], rows["qy"] = cen[bi, di, 0], cen[bi, di, 1]
        rows["intensity"] = inten[bi, di]
        peak = inten[bi, di] / (np.pi * R * R)
        ix = np.clip(np.round(cen[bi, di, 0]).astype(int), 0, H - 1)
        iy = np.clip(np.round(cen[bi, di, 1]).astype(int), 0, W - 1)
        back = bg_img[bi, ix, iy].astype(np.float64)
        rows["snr"] = peak / np.sqrt(peak + back + 1e-12)
        rows["h"], rows["k"], rows["l"] = hkl[di, 0], hkl[di, 1], hkl[di, 2]
        rows["component"] = comp[di]
        truth_rows.append(rows)
        counts_per[k] = np.bincount(bi, minlength=B)
        expected = render_disks(disks, (H, W))
        expected += bg_img
        del bg_img
        rngs = _noise_generators(acq.seed, k) if acq.noise else rng
        frames[start : start + B] = detect_counts(expected, acq.detector, rngs, noise=acq.noise, workers=workers)
        bar.update(B)
    bar.close()
    disks_all = np.concatenate(truth_rows)
    offsets = np.concatenate([[0], np.cumsum(counts_per)])
    qpix = acq.q_pixel_size
    main = sample.components[0]
    # g_i' = g_i F^-1 for the main component, then to detector px with the distortion
    lattice = np.einsum("aj,xyji->xyai", main.basis, _inverse_2x2(sample.deformation[:, :, 0])) / qpix @ dist.T
    r_pix = acq.r_pixel_size or sample.field_of_view_nm / Rx
    cal = Calibration(q_pixel_size=float(qpix), r_pixel_size=float(r_pix), q_pixel_units="A^-1", r_pixel_units="nm")
    dc = py4DSTEM.DataCube(data=data, name=sample.name)
    cal.apply_to(dc.calibration)
    truth = ScanTruth(
        scan_shape=(Rx, Ry), pattern_shape=(H, W), disks=disks_all, offsets=offsets, origin=origin,
        lattice=lattice, strain=sample.strain.copy(), phase=sample.phase.copy(), phase_names=list(sample.phase_names),
        component_names=list(sample.component_names), disk_radius=R, calibration=cal,
        meta={"sample": sample.name, "acquisition": {k: v for k, v in acq.__dict__.items() if k != "detector"},
              "detector": acq.detector.__dict__},
    )
    return SimulatedScan(datacube=dc, truth=truth)


def with_options(acq: Acquisition, **changes) -> Acquisition:
    """Copy of ``acq`` with some fields changed (a thin wrapper of ``dataclasses.replace``)."""
    return replace(acq, **changes)
