"""Virtual bright-field and annular dark-field images from a 4D-STEM scan.

Input is a ``py4DSTEM.DataCube`` or a 4D array ``(Rx, Ry, Qx, Qy)`` (numpy, memory-mapped or dask). Detector
geometry is in pixels: ``qx`` is the detector row, ``qy`` the column, pixel ``i`` centred on ``i``. A virtual
image is the sum of each pattern over a detector mask, so it is in the units of the data (counts).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Union

import numpy as np

from ..exceptions import InputError

if TYPE_CHECKING:  # pragma: no cover
    import py4DSTEM

log = logging.getLogger(__name__)

Data4D = Union["py4DSTEM.DataCube", np.ndarray]


def _array(data: Data4D):
    import py4DSTEM

    arr = data.data if isinstance(data, py4DSTEM.DataCube) else data
    if getattr(arr, "ndim", None) != 4:
        raise InputError(
            f"expected a py4DSTEM DataCube or a 4D array (Rx, Ry, Qx, Qy), got {type(data).__name__} with shape "
            f"{getattr(arr, 'shape', None)}"
        )
    return arr


def _mean_pattern(arr, max_patterns: int = 256) -> np.ndarray:
    Rx, Ry = arr.shape[:2]
    n = Rx * Ry
    idx = np.unique(np.linspace(0, n - 1, min(n, max_patterns)).astype(int))
    total = np.zeros(arr.shape[2:], dtype=float)
    for i in idx:
        total += np.asarray(arr[i // Ry, i % Ry], dtype=float)
    return total / len(idx)


def central_beam(data: Data4D) -> tuple[float, float, float]:
    """Position and radius of the direct beam from the mean pattern.

    The mean of up to 256 evenly spread patterns is smoothed; pixels above half of its maximum, connected to the
    maximum, form the central disk.

    Returns
    -------
    qx0, qy0, radius : float
        Centre (row, column) and equivalent-area radius, px.

    Raises
    ------
    InputError
        For input that is not 4D or patterns that are all zero.
    """
    from scipy import ndimage

    arr = _array(data)
    mean = ndimage.gaussian_filter(_mean_pattern(arr), 1.0)
    peak = np.unravel_index(int(np.argmax(mean)), mean.shape)
    if not mean[peak] > 0:
        raise InputError("the patterns are all zero (or negative); no direct beam to find.")
    lab, _ = ndimage.label(mean > 0.5 * mean[peak])
    disk = lab == lab[peak]
    qx0, qy0 = ndimage.center_of_mass(np.where(disk, mean, 0.0))
    radius = float(np.sqrt(disk.sum() / np.pi))
    return float(qx0), float(qy0), radius


def annulus_mask(shape: tuple[int, int], origin: tuple[float, float], inner: float, outer: float) -> np.ndarray:
    """Boolean detector mask ``inner <= |q - origin| < outer`` (px); ``inner = 0`` gives a disk."""
    qx = np.arange(shape[0])[:, None] - origin[0]
    qy = np.arange(shape[1])[None, :] - origin[1]
    r = np.hypot(qx, qy)
    return (r >= inner) & (r < outer)


def virtual_image(data: Data4D, mask: np.ndarray, *, chunk_rows: int = 8) -> np.ndarray:
    """Sum every pattern over a detector mask.

    Parameters
    ----------
    data : py4DSTEM.DataCube or array (Rx, Ry, Qx, Qy)
    mask : ndarray (Qx, Qy) of bool or float
        Weights of the detector pixels.
    chunk_rows : int
        Scan rows read at once (bounds memory for large or memory-mapped data).

    Returns
    -------
    ndarray, shape (Rx, Ry), float64
    """
    arr = _array(data)
    w = np.asarray(mask, dtype=float)
    if w.shape != tuple(arr.shape[2:]):
        raise InputError(f"mask must have the pattern shape {tuple(arr.shape[2:])}, got {w.shape}")
    return _annulus_image(arr, lambda r0, r1: w, chunk_rows)


def _annulus_image(arr, mask_for_rows, chunk_rows: int = 8) -> np.ndarray:
    Rx, Ry = arr.shape[:2]
    out = np.zeros((Rx, Ry))
    for r0 in range(0, Rx, chunk_rows):
        r1 = min(Rx, r0 + chunk_rows)
        block = np.asarray(arr[r0:r1], dtype=float)
        out[r0:r1] = np.sum(block * mask_for_rows(r0, r1), axis=(-2, -1))
    return out


def _annulus(arr, origin, inner: float, outer: float) -> np.ndarray:
    """Virtual image over ``inner <= |q - origin| < outer``, with a fixed origin or an (Rx, Ry, 2) origin map."""
    Rx, Ry, Qx, Qy = arr.shape
    o = np.asarray(origin, dtype=float)
    if o.shape == (2,):
        m = annulus_mask((Qx, Qy), (o[0], o[1]), inner, outer).astype(float)
        return _annulus_image(arr, lambda r0, r1: m)
    if o.shape != (Rx, Ry, 2):
        raise InputError(f"origin must be (qx0, qy0) or an (Rx, Ry, 2) map, got shape {o.shape}")

    def rows(r0, r1):
        qx = np.arange(Qx)[None, None, :, None] - o[r0:r1, :, 0, None, None]
        qy = np.arange(Qy)[None, None, None, :] - o[r0:r1, :, 1, None, None]
        r = np.hypot(qx, qy)
        return ((r >= inner) & (r < outer)).astype(float)

    return _annulus_image(arr, rows)


def virtual_bright_field(
    data: Data4D,
    *,
    origin: tuple[float, float] | np.ndarray | None = None,
    radius: float | None = None,
) -> np.ndarray:
    """Virtual bright-field image: the counts inside a disk around the direct beam.

    Parameters
    ----------
    data : py4DSTEM.DataCube or array (Rx, Ry, Qx, Qy)
    origin : (qx0, qy0), (Rx, Ry, 2) array, or None
        Disk centre, px; a map follows the descan. ``None``: :func:`central_beam`.
    radius : float, optional
        Disk radius, px. ``None``: the measured central-disk radius.

    Returns
    -------
    ndarray, shape (Rx, Ry)

    Examples
    --------
    >>> data = np.zeros((2, 3, 16, 16)); data[..., 8, 8] = 5.0; data[..., 1, 1] = 7.0
    >>> virtual_bright_field(data, origin=(8, 8), radius=2).tolist()
    [[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]]
    """
    arr = _array(data)
    if origin is None or radius is None:
        qx0, qy0, r0 = central_beam(arr)
        origin = (qx0, qy0) if origin is None else origin
        radius = r0 if radius is None else radius
    if not radius > 0:
        raise InputError(f"radius must be > 0 px, got {radius!r}")
    return _annulus(arr, origin, 0.0, float(radius))


def virtual_annular_dark_field(
    data: Data4D,
    *,
    inner: float | None = None,
    outer: float | None = None,
    origin: tuple[float, float] | np.ndarray | None = None,
) -> np.ndarray:
    """Virtual annular dark-field image: the counts in an annulus around the direct beam.

    Parameters
    ----------
    data : py4DSTEM.DataCube or array (Rx, Ry, Qx, Qy)
    inner, outer : float, optional
        Annulus radii, px. Defaults: ``inner`` = 1.5 x the central-disk radius (excludes the direct beam),
        ``outer`` = distance from the origin to the nearest detector edge.
    origin : (qx0, qy0), (Rx, Ry, 2) array, or None
        Annulus centre, px. ``None``: :func:`central_beam`.

    Returns
    -------
    ndarray, shape (Rx, Ry)

    Raises
    ------
    InputError
        If ``outer <= inner``.
    """
    arr = _array(data)
    Qx, Qy = arr.shape[2:]
    if origin is None or inner is None:
        qx0, qy0, r0 = central_beam(arr)
        origin = (qx0, qy0) if origin is None else origin
        inner = 1.5 * r0 if inner is None else inner
    if outer is None:
        o = np.asarray(origin, dtype=float).reshape(-1, 2).mean(axis=0)
        outer = float(min(o[0] + 0.5, Qx - 0.5 - o[0], o[1] + 0.5, Qy - 0.5 - o[1]))
    if not (0 <= inner < outer):
        raise InputError(f"need 0 <= inner < outer (px), got inner={inner!r}, outer={outer!r}")
    return _annulus(arr, origin, float(inner), float(outer))
