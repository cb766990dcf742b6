"""Dead pixels and detector gaps: find them in a batch of patterns and fill them in before detection.

Hybrid pixel detectors built of several chips (a Medipix/Timepix quad, for instance) have gaps between the chips,
and most cameras have a few dead rows, columns or pixels: pixels that read 0 whatever falls on them. A gap through
a disk cuts it in two, and through the direct beam it distorts the probe every other disk is measured against
(on abTEM Si [110] with a 4 px cross of zeros through the direct beam's edge, the centre RMS went from 0.10 to
0.51 px; ``benchmarks/bench_detectors.py``).

:func:`repair_dead_pixels` first takes whole rows and columns that read 0 in every pattern of the batch, in bands up
to :data:`MAX_GAP_PX` wide between counting lines (chip gaps, dead columns), as dead, wherever they cross the disks.
Then it looks at the other pixels that are 0 in every pattern of the batch. Through each it takes the
shorter of the two runs of such pixels, along its column or its row (across a gap, not along it), up to
:data:`MAX_GAP_PX` long. The pixel is dead when the live pixels at both ends of that run are bright: each has
counted at least :data:`MIN_END_COUNTS` electrons over the batch, so a live pixel between them staying at 0 has a
chance of about ``exp(-20)``. It is then filled by linear interpolation between the two ends. Where the patterns
are faint nothing is flagged, and nothing needs to be; wider regions of zeros (a beam stop, a mask) are left as
they are. A second pass fills what the first made reachable (where two gaps cross); then the zeros next to dead
pixels on a row or column holding a line of dead pixels, where a gap runs on across the edge of a disk (one end
bright, the other faint), are taken as dead and filled too.
"""
from __future__ import annotations

import numpy as np

#: Electrons (summed over the batch) that each live end of a run of zeros must have counted for the run to be dead.
MIN_END_COUNTS = 20.0
#: A dead row or column needs neighbours that counted this many times :data:`MIN_END_COUNTS` (whole lines).
LINE_END_FACTOR = 10.0
#: Runs of zeros up to this long (along the column or the row) can be dead and are filled, px.
MAX_GAP_PX = 8
#: The brightest pixels of a line left out of its counts when it is tested as a gap's bright side: hot pixels.
HOT_PIXELS_PER_LINE = 4


def repair_dead_pixels(frames: np.ndarray, gain: float = 1.0) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Find the dead pixels of a batch of patterns and fill them in.

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy)
        A batch of patterns of one scan (counts, any real dtype).
    gain : float
        Counts per electron (:func:`~py4dstem_ndpd.refine.gain.estimate_gain`); :data:`MIN_END_COUNTS` is in
        electrons.

    Returns
    -------
    repaired : ndarray, shape (N, Qx, Qy), float32, or None
        A new array with every dead pixel interpolated along the shorter run (``frames`` is not modified); None
        when no pixel is dead (the common case, checked first and cheaply).
    dead : ndarray of bool, shape (Qx, Qy), or None
        The dead pixels.
    """
    f = np.asarray(frames)
    if f.ndim != 3 or f.shape[0] == 0:
        return None, None
    zero = ~np.any(f != 0, axis=0)
    if not zero.any():
        return None, None
    out = f.astype(np.float32, copy=True)
    total = f.sum(axis=0, dtype=np.float64)
    threshold = MIN_END_COUNTS * float(gain)
    dead = np.zeros(zero.shape, bool)
    lines = _dead_lines(zero, total, threshold)
    if lines.any():
        dead |= _fill_pass(out, total, lines, -np.inf)
    # only zeros within MAX_GAP_PX (along a row or a column) of a bright pixel can have bright ends: at low dose
    # that is a small part of the many zeros, and the passes below cost in proportion
    from scipy.ndimage import maximum_filter1d

    bright = total >= threshold
    span = 2 * MAX_GAP_PX + 1
    reach = maximum_filter1d(bright, span, axis=0) | maximum_filter1d(bright, span, axis=1)
    for _ in range(3):
        filled = _fill_pass(out, total, zero & reach & ~dead, threshold)
        if not filled.any():
            break
        dead |= filled
    if not dead.any():
        return None, None
    # the same gaps go on where one end is faint (across the edge of a disk): the zeros next to dead pixels, on a
    # row or column that holds a line of dead pixels (>= MAX_GAP_PX), are dead too when one end of their run is
    # bright
    from scipy.ndimage import binary_dilation

    for _ in range(MAX_GAP_PX):
        lines = (dead.sum(1) >= MAX_GAP_PX)[:, None] | (dead.sum(0) >= MAX_GAP_PX)[None, :]
        near = zero & ~dead & lines & binary_dilation(dead, np.ones((3, 3), bool))
        if not near.any():
            break
        filled = _fill_pass(out, total, near, threshold, either_end=True)
        if not filled.any():
            break
        dead |= filled
    return out, dead


def _dead_lines(zero: np.ndarray, total: np.ndarray, threshold: float) -> np.ndarray:
    """Whole rows and columns that read 0 in every pattern, in bands of at most :data:`MAX_GAP_PX`, between lines
    that counted (both > 0 over the batch, one of them at least ``LINE_END_FACTOR * threshold`` and a quarter of
    the median line without its :data:`HOT_PIXELS_PER_LINE` brightest pixels): the chip gaps, wherever they cross
    the disks. A gap along the direct beam's edge can have a
    nearly empty line on its far side (6 electrons in 3 abTEM Si patterns at 10⁵ e⁻), while a dark line of the
    pattern itself fades in over both neighbours (on an abTEM Si [110] pattern two near-empty columns had
    neighbours of 13 and 50 electrons against a median column of several hundred)."""
    out = np.zeros(zero.shape, bool)
    for axis in (0, 1):
        line_zero = zero.all(axis=1 - axis)
        if not line_zero.any():
            continue
        line_total = total.sum(axis=1 - axis)
        # the bright side without its brightest pixels: on a nearly empty pattern one hot pixel (a saturated
        # counter) would otherwise make a line next to an empty band look like the bright edge of a gap
        rows = np.moveaxis(total, axis, 0)
        cut = rows.shape[1] - min(HOT_PIXELS_PER_LINE, rows.shape[1] - 1)
        line_bright = line_total - np.partition(rows, cut, axis=1)[:, cut:].sum(1)
        threshold_line = max(LINE_END_FACTOR * threshold, 0.25 * float(np.median(line_total)))
        n = len(line_zero)
        k = 0
        while k < n:
            if not line_zero[k]:
                k += 1
                continue
            end = k
            while end < n and line_zero[end]:
                end += 1
            ends = (line_total[k - 1], line_total[end % n])
            bright = max(line_bright[k - 1], line_bright[end % n])
            if k > 0 and end < n and end - k <= MAX_GAP_PX and min(ends) > 0 and bright >= threshold_line:
                if axis == 0:
                    out[k:end, :] = True
                else:
                    out[:, k:end] = True
            k = end
    return out


def _nearest_live(live: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest live pixel before and after each pixel along ``axis`` (-1 / n where there is none)."""
    n = live.shape[axis]
    shape = [1, 1]
    shape[axis] = n
    idx = np.broadcast_to(np.arange(n).reshape(shape), live.shape)
    before = np.maximum.accumulate(np.where(live, idx, -1), axis=axis)
    after = np.flip(np.minimum.accumulate(np.flip(np.where(live, idx, n), axis=axis), axis=axis), axis=axis)
    return before, after


def _fill_pass(out: np.ndarray, total: np.ndarray, zero: np.ndarray, threshold: float,
               either_end: bool = False) -> np.ndarray:
    """One pass: fill (in ``out`` and ``total``) the zero pixels whose shorter run has bright live ends (both, or
    with ``either_end`` one of them); returns the map of the pixels filled."""
    H, W = zero.shape
    ii, jj = np.nonzero(zero)
    b0, a0 = (x[ii, jj] for x in _nearest_live(~zero, 0))
    b1, a1 = (x[ii, jj] for x in _nearest_live(~zero, 1))
    # zeros between the two live ends; at the detector edge the one-sided run to the edge; none: longer than any
    len0 = np.where(b0 >= 0, ii - b0, ii + 1) + np.where(a0 < H, a0 - ii, H - ii) - 1
    len1 = np.where(b1 >= 0, jj - b1, jj + 1) + np.where(a1 < W, a1 - jj, W - jj) - 1
    len0 = np.where((b0 < 0) & (a0 >= H), H + 1, len0)
    len1 = np.where((b1 < 0) & (a1 >= W), W + 1, len1)
    along0 = len0 <= len1
    filled = np.zeros_like(zero)
    for use0 in (True, False):
        sel = (along0 if use0 else ~along0) & (np.minimum(len0, len1) <= MAX_GAP_PX)
        i, j = ii[sel], jj[sel]
        lo, hi, pos, n = (b0[sel], a0[sel], i, H) if use0 else (b1[sel], a1[sel], j, W)
        lo_ok, hi_ok = lo >= 0, hi < n
        lo_c, hi_c = np.where(lo_ok, lo, hi), np.where(hi_ok, hi, lo)  # one-sided: repeat the live end
        ends = (total[lo_c, j], total[hi_c, j]) if use0 else (total[i, lo_c], total[i, hi_c])
        bright = (np.maximum(*ends) if either_end else np.minimum(*ends)) >= threshold
        i, j, lo_c, hi_c, pos = i[bright], j[bright], lo_c[bright], hi_c[bright], pos[bright]
        t = np.where(lo_c != hi_c, (pos - lo_c) / np.maximum(hi_c - lo_c, 1), 0.0).astype(np.float32)
        va, vb = (out[:, lo_c, j], out[:, hi_c, j]) if use0 else (out[:, i, lo_c], out[:, i, hi_c])
        out[:, i, j] = (1 - t) * va + t * vb
        filled[i, j] = True
    total[filled] = out[:, filled].sum(axis=0)
    return filled


__all__ = ["HOT_PIXELS_PER_LINE", "MAX_GAP_PX", "MIN_END_COUNTS", "repair_dead_pixels"]
