"""The centre of point symmetry of a set of pixels with dead ones among them (the probe's window, a pattern's
Friedel pairs): shared by :mod:`~py4dstem_ndpd.refine.probe` and :mod:`~py4dstem_ndpd.refine.friedel`."""
from __future__ import annotations

import numpy as np

#: Steps of the 3 x 3 grids of the quadratic fits after the coarse grid, px.
QUADRATIC_STEPS_PX = (0.25, 0.06)


class _PointImages:
    """Bilinear readings of ``image``, ``variance`` and ``live`` at the point images ``2c + offset - p`` of the
    integer pixels ``p + offset``: all share the fractional part of ``2c``, so each reading is four gathers with
    scalar weights. Outside the arrays they read 0, and the zeros are interpolated with (as
    ``map_coordinates(..., mode="grid-constant")``)."""

    def __init__(self, image, variance, live, px, py, offset):
        self.shape = image.shape
        self.stride = image.shape[1] + 2
        # without a variance map the reading's variance is 0 and is not gathered
        self.has_variance = variance is not None
        arrays = (image, live) + ((variance,) if self.has_variance else ())
        self.flat = [np.pad(np.asarray(a, np.float64), 1).ravel() for a in arrays]
        self.px, self.py = np.rint(px).astype(np.int64), np.rint(py).astype(np.int64)
        self.offset = offset
        self._gathered: dict[tuple[int, int], list[np.ndarray]] = {}  # the search visits few integer shifts

    def _at(self, ix: int, iy: int) -> list[np.ndarray]:
        got = self._gathered.get((ix, iy))
        if got is None:
            H, W = self.shape
            idx = (np.clip(ix - self.px, -1, H) + 1) * self.stride + np.clip(iy - self.py, -1, W) + 1
            got = self._gathered[(ix, iy)] = [f[idx] for f in self.flat]
        return got

    def __call__(self, c):
        """(image, variance of the reading ``sum b_j^2 var_j``, live) at the point images through ``c``."""
        sx, sy = 2.0 * c[0] + self.offset, 2.0 * c[1] + self.offset
        ax, ay = int(np.floor(sx)), int(np.floor(sy))
        fx, fy = sx - ax, sy - ay
        out = [0.0, 0.0, 0.0]
        for dx, bx in ((0, 1.0 - fx), (1, fx)):
            for dy, by in ((0, 1.0 - fy), (1, fy)):
                b = bx * by
                if b == 0.0:
                    continue
                got = self._at(ax + dx, ay + dy)
                out[0] = out[0] + b * got[0]
                out[2] = out[2] + b * got[1]
                if self.has_variance:
                    out[1] = out[1] + b * b * got[2]
        return out


def symmetry_centre(image: np.ndarray, live: np.ndarray, px: np.ndarray, py: np.ndarray, w0: np.ndarray,
                    starts: list[np.ndarray], offset: float = 0.0,
                    variance: np.ndarray | None = None) -> np.ndarray:
    """The ``c`` that minimises the squared difference between the image and its point image through ``c``.

    The cost is ``sum w (I(p) - I(2c - p))^2 / sum w (I(p)^2 + I(2c - p)^2)`` over the pixels ``p = (px, py)``
    (``I(p)`` read off ``image`` there), with ``w = w0 * live(2c - p)^4`` and the point images read bilinearly
    (zeros beyond the array): dead pixels neither compare nor are compared with. Searched on a grid (+-1 px, 0.5 px
    steps) around each of ``starts``, then by two quadratic fits around the best grid point
    (:func:`_quadratic_step`, steps :data:`QUADRATIC_STEPS_PX`). The pixels are integer, so every point image
    shares the fractional part of ``2c``, and the search gathers the arrays once per integer shift
    (:class:`_PointImages`; 2.5x faster than ``map_coordinates`` on 512 px Friedel pairs).

    Parameters
    ----------
    image : ndarray, shape (H, W)
    live : ndarray of float, shape (H, W)
        1 for live pixels, 0 for dead ones.
    px, py : ndarray, shape (M,)
        Integer pixel coordinates (rows, columns) in the frame of ``c``; ``image[px + offset, py + offset]`` is
        their value.
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
        ``c`` (px, same frame as ``px, py``); the first start when the search strays more than 2 px from it.
    """
    I = image[(px + offset).astype(np.int64), (py + offset).astype(np.int64)]

    read = _PointImages(image, variance, live, px, py, offset)

    def cost(c):
        mirrored, v, lv = read(c)
        w = w0 * lv**4
        # relative to the power compared: matching only the faint pixels (the bright ones' images in the gap)
        # scores ~1, not ~0, and nothing favours a larger overlap
        return float(np.sum(w * ((I - mirrored) ** 2 - v)) / max(np.sum(w * (I**2 + mirrored**2 - v)), 1e-12))

    # a coarse grid first, so that the fine search starts in the right valley
    steps = np.arange(-1.0, 1.0001, 0.5)
    grid = [np.asarray(s0, np.float64) + np.array([a, b]) for s0 in starts for a in steps for b in steps]
    best = grid[int(np.argmin([cost(g) for g in grid]))]
    # then two quadratic fits on 3 x 3 grids, of 0.25 and 0.06 px steps: 18 evaluations where a simplex took up to
    # 120, and the same or slightly better on validation scans (Friedel-pair origins at 1e5 / 1e6 electrons,
    # common shift 0.023-0.031 / 0.007-0.011 px with the simplex, 0.023-0.031 / 0.006-0.011 with this)
    c = best
    for h in QUADRATIC_STEPS_PX:
        c = _quadratic_step(cost, c, h)
    start = np.asarray(starts[0], np.float64)
    return c if np.all(np.isfinite(c)) and np.all(np.abs(c - best) < 2.0) else start


def _quadratic_step(cost, c: np.ndarray, h: float) -> np.ndarray:
    """The vertex of the quadratic through ``cost`` on the 3 x 3 grid of step ``h`` around ``c`` (kept within
    ``h`` of ``c``; the best grid point when the quadratic has no minimum)."""
    o = np.array([-h, 0.0, h])
    X, Y = (a.ravel() for a in np.meshgrid(o, o, indexing="ij"))
    f = np.array([cost(c + np.array([x, y])) for x, y in zip(X, Y)])
    A = np.stack([np.ones_like(X), X, Y, X * X, X * Y, Y * Y], 1)
    a0, ax, ay, axx, axy, ayy = np.linalg.lstsq(A, f, rcond=None)[0]
    H = np.array([[2 * axx, axy], [axy, 2 * ayy]])
    if np.all(np.linalg.eigvalsh(H) > 0):
        return c + np.clip(np.linalg.solve(H, -np.array([ax, ay])), -h, h)
    k = int(np.argmin(f))
    return c + np.array([X[k], Y[k]])
