"""The centre of point symmetry of a set of pixels with dead ones among them (the probe's window, a pattern's
Friedel pairs): shared by :mod:`~py4dstem_ndpd.refine.probe` and :mod:`~py4dstem_ndpd.refine.friedel`."""
from __future__ import annotations

import numpy as np


def _bilinear(image: np.ndarray, variance: np.ndarray, mx: np.ndarray, my: np.ndarray):
    """``image`` read bilinearly at (mx, my) (0 outside) and the variance of that reading, ``sum b_j^2 var_j``."""
    H, W = image.shape
    x0, y0 = np.floor(mx).astype(np.int64), np.floor(my).astype(np.int64)
    fx, fy = mx - x0, my - y0
    val = np.zeros(mx.shape)
    var = np.zeros(mx.shape)
    for dx, bx in ((0, 1 - fx), (1, fx)):
        for dy, by in ((0, 1 - fy), (1, fy)):
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (xi < H) & (yi >= 0) & (yi < W)
            b = np.where(ok, bx * by, 0.0)
            xi, yi = np.clip(xi, 0, H - 1), np.clip(yi, 0, W - 1)
            val += b * image[xi, yi]
            var += b * b * variance[xi, yi]
    return val, var


def symmetry_centre(image: np.ndarray, live: np.ndarray, px: np.ndarray, py: np.ndarray, w0: np.ndarray,
                    starts: list[np.ndarray], offset: float = 0.0,
                    variance: np.ndarray | None = None) -> np.ndarray:
    """The ``c`` that minimises the squared difference between the image and its point image through ``c``.

    The cost is ``sum w (I(p) - I(2c - p))^2 / sum w (I(p)^2 + I(2c - p)^2)`` over the pixels ``p = (px, py)``
    (``I(p)`` read off ``image`` there), with ``w = w0 * live(2c - p)^4`` and the point images read bilinearly: dead
    pixels neither compare nor are compared with. Searched on a grid (+-1 px, 0.5 px steps) around each of
    ``starts``, then by a simplex from the best grid point.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    live : ndarray of float, shape (H, W)
        1 for live pixels, 0 for dead ones.
    px, py : ndarray, shape (M,)
        Pixel coordinates (rows, columns) in the frame of ``c``; ``image[px + offset, py + offset]`` is their value.
    w0 : ndarray, shape (M,)
        Weight of each pixel (a soft disk mask, 0 on dead pixels).
    starts : list of ndarray (2,)
    offset : float
        Index of ``c``'s origin in ``image`` (a window's ``half`` for window-local coordinates, 0 for the frame's).
    variance : ndarray, shape (H, W), optional
        Noise variance of each pixel of ``image``. Given, the expected noise of each comparison, ``sum b_j^2
        var_j`` over the bilinear weights ``b_j`` of the point image, is taken off the numerator and the
        denominator: a bilinear reading averages the noise of its neighbours, least half-way between pixels, so
        without this the cost favours half-pixel positions of the point image (the Friedel-pair origin at 1e5
        electrons: common shift 0.055 px without, 0.029 px with it; validation scans, ``docs/refinement.md``).

    Returns
    -------
    ndarray, shape (2,)
        ``c`` (px, same frame as ``px, py``); the first start when the simplex strays more than 2 px from it.
    """
    from scipy.ndimage import map_coordinates
    from scipy.optimize import minimize

    I = image[(px + offset).astype(np.int64), (py + offset).astype(np.int64)]

    def cost(c):
        mx, my = 2 * c[0] - px + offset, 2 * c[1] - py + offset
        w = w0 * map_coordinates(live, [mx, my], order=1, mode="constant") ** 4
        if variance is None:
            mirrored = map_coordinates(image, [mx, my], order=1, mode="constant")
            v = 0.0
        else:
            mirrored, v = _bilinear(image, variance, mx, my)
        # relative to the power compared: matching only the faint pixels (the bright ones' images in the gap)
        # scores ~1, not ~0, and nothing favours a larger overlap
        return float(np.sum(w * ((I - mirrored) ** 2 - v)) / max(np.sum(w * (I**2 + mirrored**2 - v)), 1e-12))

    # a coarse grid first, so that the simplex starts in the right valley
    steps = np.arange(-1.0, 1.0001, 0.5)
    grid = [np.asarray(s0, np.float64) + np.array([a, b]) for s0 in starts for a in steps for b in steps]
    best = grid[int(np.argmin([cost(g) for g in grid]))]
    simplex = best + np.array([[0.0, 0.0], [0.3, 0.0], [0.0, 0.3]])
    res = minimize(cost, best, method="Nelder-Mead",
                   options={"xatol": 2e-3, "fatol": 0.0, "maxfev": 120, "initial_simplex": simplex})
    # the simplex has shrunk below 2e-3 px or run out of evaluations: either way its best point
    start = np.asarray(starts[0], np.float64)
    return res.x if np.all(np.isfinite(res.x)) and np.all(np.abs(res.x - best) < 2.0) else start
