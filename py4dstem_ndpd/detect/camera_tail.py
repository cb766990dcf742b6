"""The long tail of a scintillator camera's point-spread function: measured on a vacuum pattern, taken off the data.

In a scintillator-coupled camera part of the light of every electron spreads far from where it landed (light
scattered in the phosphor and the fibre optics). Around the bright direct beam this makes a halo whose slope
pulls the faint disks towards it, a lattice scale error, and it can hide the direct beam's edge from the network.
On the held-out abTEM Si [110] patterns with a 25 % / 8 px exponential tail (``benchmarks/bench_detectors.py``)
the centre RMS was 0.664 px at 10⁵ e⁻ (0.098 px on a counting detector) and one direct beam was not found.

A pattern alone cannot tell the tail from diffuse scattering (thermal diffuse scattering, Kikuchi bands and the
direct beam's own profile fit it as well, measured on abTEM patterns). A *vacuum* pattern can: with no specimen,
everything outside the direct beam's rim is the tail. :func:`measure_camera_tail` fits it there, and
:func:`remove_camera_tail` divides the recorded frames' spectrum by the tail's transfer function
``(1 - a) + a K(k)`` (``a`` the fraction of the signal in the tail, ``K`` the normalised tail kernel). That
filter is bounded by ``1 / (1 - a)``, so it does not amplify noise the way a full deconvolution does; it leaves
the camera's sharp core (its blur of a pixel or so) as it is.

The tail is modelled as ``exp(-r / length_px)`` (per unit area), the usual model of a phosphor's halo; a tail of
another shape is approximated by the exponential that fits it best outside the direct beam.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..exceptions import ConfigError, InputError

#: Tail lengths tried by :func:`measure_camera_tail`, px.
LENGTHS_PX = np.geomspace(1.0, 64.0, 49)
#: A measured tail fraction below this is reported as no tail (``fraction = 0``).
MIN_FRACTION = 0.01
#: A pattern with this many pixels at its maximum value is saturated; :func:`remove_camera_tail` leaves it as it is.
SATURATED_PIXELS = 4

log = logging.getLogger(__name__)
_warned: list[bool] = []


@dataclass(frozen=True)
class CameraTail:
    """Long-range part of a camera's point-spread function: ``fraction`` of each electron's signal spread as
    ``exp(-r / length_px)``.

    Attributes
    ----------
    fraction : float
        Fraction of the signal in the tail, ``0 <= fraction < 1`` (0: no tail, nothing is changed).
    length_px : float
        Decay length of the tail, detector px (> 0).
    """

    fraction: float
    length_px: float

    def __post_init__(self) -> None:
        if not (0.0 <= float(self.fraction) < 1.0):
            raise ConfigError(f"CameraTail.fraction must be in [0, 1), got {self.fraction!r}; it is the share of "
                              "each electron's signal in the long tail (measure it: measure_camera_tail(vacuum)).")
        if not float(self.length_px) > 0.0:
            raise ConfigError(f"CameraTail.length_px must be > 0 px, got {self.length_px!r}.")


def _kernel(shape: tuple[int, int], length_px: float) -> np.ndarray:
    """The normalised tail ``exp(-r / length)`` on a periodic grid of ``shape``, centred on pixel (0, 0)."""
    i = np.fft.fftfreq(shape[0]) * shape[0]
    j = np.fft.fftfreq(shape[1]) * shape[1]
    k = np.exp(-np.hypot(i[:, None], j[None, :]) / float(length_px))
    return k / k.sum()


def _direct_beam(v: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Centre (qx, qy), radius (px) and interior values (1.5 px inside its rim) of the brightest disk of a vacuum
    pattern."""
    from scipy.ndimage import gaussian_filter, label

    s = gaussian_filter(v, 1.0)
    lab, _ = label(s > 0.5 * s.max())
    region = lab == lab[np.unravel_index(np.argmax(s), s.shape)]
    ii, jj = np.nonzero(region)
    w = v[region]
    centre = np.array([(ii * w).sum(), (jj * w).sum()]) / max(w.sum(), 1e-300)
    radius = float(np.sqrt(region.sum() / np.pi))
    inner = np.hypot(*(np.indices(v.shape) - centre[:, None, None])) <= max(radius - 1.5, 0.5)
    return centre, radius, v[inner]


def _radial_mean(img: np.ndarray, centre: np.ndarray, n: int) -> np.ndarray:
    r = np.hypot(*(np.indices(img.shape) - centre[:, None, None]))
    rb = np.floor(r).astype(np.int64).ravel()
    keep = rb < n
    cnt = np.bincount(rb[keep], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(rb[keep], img.ravel()[keep], minlength=n) / cnt


def measure_camera_tail(vacuum: np.ndarray) -> CameraTail:
    """Measure the camera's long tail on a vacuum pattern (or the mean of many).

    The direct beam is taken as a disk of uniform intensity (its centre, radius and level from the pattern); for
    every tail length of :data:`LENGTHS_PX` the radial profile outside its rim (from 3 px past the rim to the
    pattern's edge) is fitted by ``amplitude x (tail kernel convolved with the disk) + constant`` (least squares),
    and the length with the smallest residual is kept; the amplitude and the disk's level give the fraction.

    Parameters
    ----------
    vacuum : ndarray, shape (Qx, Qy), or (..., Qx, Qy) (averaged)
        Pattern(s) recorded with the same camera and beam and no specimen, dark-subtracted (counts or ADU).

    Returns
    -------
    CameraTail
        ``fraction = 0`` when the fit finds less than :data:`MIN_FRACTION`.

    Raises
    ------
    InputError
        If the pattern is not 2D after averaging, holds NaN/inf, or has no bright direct beam inside it.
    """
    v = np.asarray(vacuum, dtype=np.float64)
    if v.ndim > 2:
        v = v.reshape(-1, *v.shape[-2:]).mean(0)
    if v.ndim != 2 or min(v.shape) < 16:
        raise InputError(f"vacuum must be a pattern (Qx, Qy) of at least 16 x 16 px, or a stack of them; got shape "
                         f"{np.shape(vacuum)}.")
    if not np.all(np.isfinite(v)):
        raise InputError("vacuum holds NaN or inf; pass a dark-subtracted vacuum pattern with finite values.")
    if not v.max() > 0:
        raise InputError("vacuum has no positive values: it should show the direct beam with no specimen.")
    centre, radius, interior = _direct_beam(v)
    level = float(np.median(interior)) if interior.size else 0.0
    at_max = float(np.mean(interior >= v.max())) if interior.size else 0.0
    if at_max > 0.1:
        raise InputError(f"vacuum: the direct beam is saturated ({at_max:.0%} of its pixels read the maximum, "
                         f"{v.max():g}); record it at a lower dose per frame and average frames.")
    reach = int(min(centre[0], centre[1], v.shape[0] - 1 - centre[0], v.shape[1] - 1 - centre[1]))
    if not level > 0 or radius < 1.0 or reach < radius + 8:
        raise InputError(f"vacuum: no bright direct beam found well inside the pattern (radius {radius:.1f} px, "
                         f"{reach} px from its centre to the edge); record the vacuum with the beam near the centre.")
    prof = _radial_mean(v, centre, reach)
    r = np.arange(reach) + 0.5
    use = (r > radius + 3.0) & np.isfinite(prof)
    # the disk (anti-aliased edge) on a grid wide enough that the tail does not wrap onto the profile
    size = int(2 * (reach + 3 * LENGTHS_PX.max()))
    o = np.fft.fftfreq(size) * size
    disk = np.clip(radius + 0.5 - np.hypot(o[:, None], o[None, :]), 0.0, 1.0)
    Fd = np.fft.rfft2(disk)
    best = None
    for length in LENGTHS_PX:
        halo = np.fft.irfft2(Fd * np.fft.rfft2(_kernel((size, size), length)), s=(size, size))
        h = _radial_mean(np.fft.fftshift(halo), np.array([size // 2, size // 2], float), reach)
        A = np.stack([h[use], np.ones(use.sum())], 1)
        coef, *_ = np.linalg.lstsq(A, prof[use], rcond=None)
        rss = float(np.sum((A @ coef - prof[use]) ** 2))
        if best is None or rss < best[0]:
            best = (rss, float(length), float(coef[0]), float(h[0]))
    _, length, amp, h0 = best
    # inside the disk: level = S (1 - a) + S a h0 and outside: amp = S a  ->  a = amp / (level - amp h0 + amp)
    fraction = amp / (level - amp * h0 + amp) if amp > 0 else 0.0
    return CameraTail(fraction=float(fraction) if fraction >= MIN_FRACTION else 0.0, length_px=length)


def remove_camera_tail(frames: np.ndarray, tail: CameraTail) -> np.ndarray:
    """Take a camera's long tail off patterns: divide their spectrum by ``(1 - a) + a K(k)``.

    Each pattern is padded by three tail lengths (edge values) so that the tail does not wrap around, filtered,
    and cropped back. The total counts stay (the filter is 1 at zero frequency): the sharp part of each
    electron's signal, ``1 - a`` of it before, is the whole of it after.

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy) or (Qx, Qy)
        Patterns (counts or ADU).
    tail : CameraTail

    Returns
    -------
    ndarray of float32, the shape of ``frames``. Unchanged (as float32) when ``tail.fraction == 0``, and so is
    every pattern with :data:`SATURATED_PIXELS` or more pixels at its maximum value (a logged warning): on a
    validation abTEM pattern whose direct beam was saturated the correction moved the disks outwards, 0.27 ->
    0.45 px RMS.
    """
    x = np.asarray(frames, dtype=np.float32)
    if tail.fraction == 0:
        return x
    single = x.ndim == 2
    x3 = x[None] if single else x
    flat = x3.reshape(len(x3), -1)
    top = flat.max(axis=1)
    # a saturated direct beam recorded less than it received, and its tail cannot be inferred from it
    saturated = ((flat >= top[:, None]).sum(axis=1) >= SATURATED_PIXELS) & (top > 0)
    out = x3.copy()
    todo = np.flatnonzero(~saturated)
    if saturated.any():
        # once per process at warning level (a scan sends many batches), then at debug level
        level = logging.DEBUG if _warned else logging.WARNING
        if not _warned:
            _warned.append(True)
        log.log(level, "camera tail left on %d of %d patterns of a batch whose brightest pixels are saturated (%d "
                "or more at their maximum)", int(saturated.sum()), len(x3), SATURATED_PIXELS)
    if todo.size:
        pad = int(np.ceil(3 * tail.length_px))
        xp = np.pad(x3[todo], ((0, 0), (pad, pad), (pad, pad)), mode="edge").astype(np.float64)
        shape = xp.shape[1:]
        H = (1.0 - tail.fraction) + tail.fraction * np.fft.rfft2(_kernel(shape, tail.length_px))
        f = np.fft.irfft2(np.fft.rfft2(xp) / H[None], s=shape)
        out[todo] = f[:, pad:pad + x3.shape[1], pad:pad + x3.shape[2]]
    return out[0] if single else out
