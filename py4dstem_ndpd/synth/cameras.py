"""What other cameras record of the same electrons: held-out detector families for the generalisation benchmark.

The training randomisation (:mod:`py4dstem_ndpd.synth.randomized`) covers counting detectors and integrating
cameras with a Gaussian point-spread function, gain spread, read noise, hot and dead pixels. The models here are
deliberately *not* in it, so that ``benchmarks/bench_detectors.py`` measures how the shipped detector copes with a
camera it never saw:

* :class:`QuadGaps`: a hybrid pixel detector of 2 x 2 chips (Medipix/Timepix quad) whose chip gaps read zero, a
  cross of dead rows and columns near the pattern centre (along the direct beam's edge, or through its centre);
* :class:`Scintillator`: a scintillator-coupled camera, whose point-spread function has a long exponential tail
  (light scattered in the phosphor and the fibre optics) on top of a Gaussian core, with per-electron gain
  spread, read noise and a subtracted dark offset;
* :class:`Binned`: the same counts summed over ``factor x factor`` pixels (a small, fast camera, e.g. 128 x 128 px).

Each model's :meth:`apply` takes electron counts of a counting detector ``(..., Qx, Qy)`` (row ``qx``, column
``qy``) and returns the frames that camera would give; :meth:`truth` maps the exact truth to its pixel grid.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..exceptions import ConfigError, InputError
from .truth import ScanTruth


def _frames(counts) -> np.ndarray:
    a = np.asarray(counts)
    if a.ndim < 2 or 0 in a.shape[-2:]:
        raise InputError(f"camera models take frames (..., Qx, Qy); got shape {a.shape}")
    return a


@dataclass(frozen=True)
class QuadGaps:
    """Chip gaps of a 2 x 2 hybrid pixel detector: rows and columns that read zero.

    Attributes
    ----------
    width_px : int
        Width of each gap, px.
    offset_px : tuple of int
        Position of the cross relative to the pattern centre ``(Qx // 2, Qy // 2)``, ``(qx, qy)`` px. A gap through
        the direct beam's centre is the hardest case; users usually put the beam next to it.
    """

    width_px: int = 4
    offset_px: tuple[int, int] = (6, -10)

    def __post_init__(self) -> None:
        if int(self.width_px) < 1:
            raise ConfigError(f"width_px must be >= 1 px, got {self.width_px}")

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Boolean (Qx, Qy) map of the gap pixels."""
        m = np.zeros(shape, bool)
        w = int(self.width_px)
        for axis in (0, 1):
            c = shape[axis] // 2 + int(self.offset_px[axis]) - w // 2
            sl = slice(max(c, 0), max(c + w, 0))
            if axis == 0:
                m[sl, :] = True
            else:
                m[:, sl] = True
        return m

    def apply(self, counts, rng: np.random.Generator | None = None) -> np.ndarray:
        """The counts with the gap pixels set to 0 (same dtype)."""
        a = _frames(counts).copy()
        a[..., self.mask(a.shape[-2:])] = 0
        return a

    def truth(self, truth: ScanTruth) -> ScanTruth:
        """Unchanged: the pixel grid is the same."""
        return truth


@dataclass(frozen=True)
class Scintillator:
    """A scintillator-coupled integrating camera.

    Each electron gives a gamma-distributed signal (mean ``gain`` ADU, shape ``gain_shape``), spread on the
    detector by a point-spread function ``(1 - tail_fraction) * Gaussian(core_sigma_px) + tail_fraction * T(r)``,
    with the normalised tail ``T`` either ``exp(-r / tail_px)`` (``tail_shape="exponential"``) or
    ``(1 + (r / tail_px)^2)^(-3/2)`` (``"lorentzian"``: the heavier, power-law tail of fibre-optic glare); then Gaussian read noise and a dark offset, which is subtracted again
    (values go negative). Float32 ADU.

    Attributes
    ----------
    gain : float
        Mean ADU per electron.
    gain_shape : float
        Shape of the per-electron gamma distribution (larger: less spread).
    core_sigma_px : float
        Gaussian core of the point-spread function, px.
    tail_fraction : float
        Fraction of the signal in the tail, 0..1.
    tail_px : float
        Decay length (exponential) or half width (lorentzian) of the tail, px.
    read_noise_e : float
        Read noise, electrons RMS.
    tail_shape : {"exponential", "lorentzian"}
    """

    gain: float = 20.0
    gain_shape: float = 3.0
    core_sigma_px: float = 0.8
    tail_fraction: float = 0.25
    tail_px: float = 8.0
    read_noise_e: float = 0.3
    tail_shape: str = "exponential"

    def __post_init__(self) -> None:
        wrong = [name for name, ok in (("tail_shape 'exponential' or 'lorentzian'",
                                        self.tail_shape in ("exponential", "lorentzian")),("gain > 0", self.gain > 0), ("gain_shape > 0", self.gain_shape > 0),
                                       ("core_sigma_px >= 0", self.core_sigma_px >= 0),
                                       ("tail_px > 0", self.tail_px > 0), ("read_noise_e >= 0", self.read_noise_e >= 0),
                                       ("0 <= tail_fraction <= 1", 0 <= self.tail_fraction <= 1)) if not ok]
        if wrong:
            raise ConfigError(f"Scintillator settings must have {', '.join(wrong)}; got {self}")

    def psf(self) -> np.ndarray:
        """The normalised point-spread function, an odd square kernel reaching 5 tail lengths (12 for the
        lorentzian tail)."""
        reach = 5 if self.tail_shape == "exponential" else 12
        h = int(np.ceil(max(reach * self.tail_px, 4 * self.core_sigma_px, 1)))
        y, x = np.mgrid[-h:h + 1, -h:h + 1].astype(float)
        r = np.hypot(x, y)
        core = np.exp(-0.5 * (r / self.core_sigma_px) ** 2) if self.core_sigma_px > 0 else (r == 0).astype(float)
        if self.tail_shape == "exponential":
            tail = np.exp(-r / self.tail_px)
        else:
            tail = (1.0 + (r / self.tail_px) ** 2) ** -1.5
        k = (1 - self.tail_fraction) * core / core.sum() + self.tail_fraction * tail / tail.sum()
        return k / k.sum()

    def apply(self, counts, rng: np.random.Generator | None = None) -> np.ndarray:
        """Float32 ADU, dark offset subtracted, of the electron ``counts``."""
        from scipy.signal import fftconvolve

        rng = rng or np.random.default_rng(0)
        n = np.maximum(_frames(counts).astype(np.float64), 0)
        signal = np.where(n > 0, rng.gamma(np.maximum(n, 1e-9) * self.gain_shape, self.gain / self.gain_shape), 0.0)
        k = self.psf()
        flat = signal.reshape(-1, *signal.shape[-2:])
        spread = np.stack([fftconvolve(f, k, mode="same") for f in flat]).reshape(signal.shape)
        offset = 100.0
        raw = np.clip(spread + offset + rng.normal(0, self.read_noise_e * self.gain, spread.shape), 0, 65535)
        return (raw - offset).astype(np.float32)

    def truth(self, truth: ScanTruth) -> ScanTruth:
        """Unchanged: the pixel grid is the same."""
        return truth


@dataclass(frozen=True)
class Binned:
    """Counts summed over ``factor x factor`` pixels (a smaller camera; the pattern shrinks by ``factor``).

    Attributes
    ----------
    factor : int
    """

    factor: int = 2

    def __post_init__(self) -> None:
        if int(self.factor) < 1:
            raise ConfigError(f"factor must be >= 1, got {self.factor}")

    def apply(self, counts, rng: np.random.Generator | None = None) -> np.ndarray:
        """Summed counts ``(..., Qx // factor, Qy // factor)``; trailing rows and columns that do not fill a
        block are dropped. Integer counts stay integers (uint32 when the sum could overflow uint16)."""
        a = _frames(counts)
        f = int(self.factor)
        H, W = (a.shape[-2] // f) * f, (a.shape[-1] // f) * f
        if H == 0 or W == 0:
            raise InputError(f"a {a.shape[-2:]} pattern is smaller than one {f} x {f} block")
        b = a[..., :H, :W].reshape(*a.shape[:-2], H // f, f, W // f, f)
        dtype = np.uint32 if a.dtype.kind == "u" else (np.int64 if a.dtype.kind == "i" else np.float32)
        return b.sum(axis=(-3, -1), dtype=dtype)

    def truth(self, truth: ScanTruth) -> ScanTruth:
        """The truth on the binned grid: pixel centres map as ``q' = (q + 0.5) / factor - 0.5``."""
        f = float(self.factor)
        d = truth.disks.copy()
        d["qx"], d["qy"] = (d["qx"] + 0.5) / f - 0.5, (d["qy"] + 0.5) / f - 0.5
        return replace(truth, disks=d, pattern_shape=tuple(int(s) // int(f) for s in truth.pattern_shape),
                       origin=(truth.origin + 0.5) / f - 0.5, lattice=truth.lattice / f,
                       disk_radius=truth.disk_radius / f,
                       calibration=replace(truth.calibration,
                                           q_pixel_size=truth.calibration.q_pixel_size * f))


#: The held-out camera families of ``benchmarks/bench_detectors.py`` (name: model; ``None`` is the counting
#: detector itself).
CAMERAS: dict[str, QuadGaps | Scintillator | Binned | None] = {
    "counting": None,
    "quad_gaps": QuadGaps(),
    "quad_gaps_centred": QuadGaps(width_px=3, offset_px=(1, -1)),  # the beam on the chip cross
    "scintillator": Scintillator(),
    # another tail shape (a power law), made on 2026-12-02 to test the camera-tail correction, which models an
    # exponential tail and was designed on the exponential ones
    "scintillator_lorentzian": Scintillator(gain=25.0, gain_shape=4.0, tail_fraction=0.2, tail_px=4.0,
                                            tail_shape="lorentzian"),
    "binned_2x": Binned(2),
    # an integrating camera with a plain 1.2 px Gaussian point-spread function and no tail (charge sharing, a
    # CCD's fibre-optic coupling without glare); added on 2026-12-03 after scratch runs on the validation abTEM
    # file showed thick crystals losing most of their accuracy under such a blur (docs/performance.md)
    "integrating_blur": Scintillator(gain=20.0, gain_shape=3.0, core_sigma_px=1.2, tail_fraction=0.0),
}

__all__ = ["CAMERAS", "Binned", "QuadGaps", "Scintillator"]
