"""Paper-style figures (matplotlib, no display needed).

Every function takes arrays or results and an output path, writes ``<path>.png`` and ``<path>.pdf`` (the
suffix of ``path``, if any, is replaced), and returns the ``matplotlib.figure.Figure``. Figures are built with
``matplotlib.figure.Figure`` directly, not through ``pyplot``, so no GUI backend is touched and nothing is left
open in pyplot's figure manager.

Conventions: maps are drawn with ``rx`` (scan row) down and ``ry`` across (``imshow`` of the (Rx, Ry) array);
patterns with ``qx`` (row) down and ``qy`` across; peak markers are plotted at (x = qy, y = qx).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence, Union

import numpy as np

from ..exceptions import InputError
from ..peaks import ScanPeaks
from .strain import line_profile
from .virtual import _array

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

PathLike = Union[str, Path]


def _figure(figsize) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def save_figure(fig: "Figure", path: PathLike, *, dpi: int = 150) -> tuple[Path, Path]:
    """Write ``fig`` as PNG and PDF next to each other; return both paths.

    ``path`` may end in ``.png``, ``.pdf`` or nothing; parent folders are created.
    """
    p = Path(path)
    stem = p.with_suffix("") if p.suffix.lower() in (".png", ".pdf") else p
    stem.parent.mkdir(parents=True, exist_ok=True)
    png = stem.parent / (stem.name + ".png")
    pdf = stem.parent / (stem.name + ".pdf")
    fig.savefig(png, dpi=dpi)
    fig.savefig(pdf)
    log.info("wrote %s and %s", png, pdf)
    return png, pdf


def _pattern_image(img: np.ndarray) -> np.ndarray:
    """Display scaling of a diffraction pattern: log(1 + counts / median background)."""
    img = np.asarray(img, dtype=float)
    bg = np.median(img[img > 0]) if np.any(img > 0) else 1.0
    return np.log1p(np.clip(img, 0, None) / max(bg, 1e-12))


def _peaks_at(peaks, rx: int, ry: int) -> np.ndarray:
    """(N, 2) qx, qy of the peaks of one position, from ScanPeaks, BraggVectors or a list of tables."""
    if peaks is None:
        return np.zeros((0, 2))
    if isinstance(peaks, ScanPeaks):
        t = peaks.at(rx, ry)
        return np.stack([t["qx"], t["qy"]], axis=1).astype(float)
    if hasattr(peaks, "raw") and hasattr(peaks, "Rshape"):  # py4DSTEM.BraggVectors
        d = peaks.raw[rx, ry].data
        return np.stack([d["qx"], d["qy"]], axis=1).astype(float)
    if hasattr(peaks, "disks_at"):  # ScanTruth
        d = peaks.disks_at(rx, ry)
        return np.stack([d["qx"], d["qy"]], axis=1).astype(float)
    raise InputError(f"peaks must be ScanPeaks, BraggVectors or ScanTruth, got {type(peaks).__name__}")


def plot_detections(
    data,
    peaks,
    positions: Sequence[tuple[int, int]],
    path: PathLike,
    *,
    truth=None,
    disk_radius: float | None = None,
    ncols: int | None = None,
    title: str | None = None,
) -> "Figure":
    """Grid of example patterns with the detected disk centres (and boxes) drawn on them (paper Fig. 6).

    Parameters
    ----------
    data : py4DSTEM.DataCube or array (Rx, Ry, Qx, Qy)
    peaks : ScanPeaks or py4DSTEM.BraggVectors
        Detections (raw pixel positions).
    positions : sequence of (rx, ry)
        Patterns to show.
    path : str or Path
        Output path (PNG and PDF are written).
    truth : ScanTruth or ScanPeaks, optional
        True centres, drawn as small circles.
    disk_radius : float, optional
        If given, a square box of side ``2 * disk_radius`` px is drawn around each detection, like the
        detector's bounding boxes.
    ncols : int, optional
        Panels per row (default: up to 4).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Rectangle

    arr = _array(data)
    positions = [tuple(int(v) for v in p) for p in positions]
    if not positions:
        raise InputError("positions is empty; give at least one (rx, ry) to show.")
    n = len(positions)
    ncols = ncols or min(4, n)
    nrows = int(np.ceil(n / ncols))
    fig = _figure((3.0 * ncols, 3.0 * nrows + (0.4 if title else 0)))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, (rx, ry) in zip(axes, positions):
        ax.imshow(_pattern_image(np.asarray(arr[rx, ry])), cmap="gray", interpolation="nearest")
        det = _peaks_at(peaks, rx, ry)
        if truth is not None:
            tq = _peaks_at(truth, rx, ry)
            ax.scatter(tq[:, 1], tq[:, 0], s=30, facecolors="none", edgecolors="cyan", linewidths=0.8, label="truth")
        ax.scatter(det[:, 1], det[:, 0], marker="+", s=25, c="red", linewidths=0.8, label="detected")
        if disk_radius:
            for qx, qy in det:
                ax.add_patch(
                    Rectangle(
                        (qy - disk_radius, qx - disk_radius), 2 * disk_radius, 2 * disk_radius, fill=False,
                        edgecolor="lime", linewidth=0.6,
                    )
                )
        ax.set_title(f"(rx, ry) = ({rx}, {ry}): {len(det)} disks", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_axis_off()
    axes[0].legend(loc="upper right", fontsize=6, framealpha=0.6)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return fig


def _map(ax, img, title, *, cmap="viridis", vlim=None, pixel_size=None, units="nm", label=None, fig=None):
    extent = None
    if pixel_size:
        Rx, Ry = img.shape
        extent = (-0.5 * pixel_size, (Ry - 0.5) * pixel_size, (Rx - 0.5) * pixel_size, -0.5 * pixel_size)
    kw = {} if vlim is None else {"vmin": vlim[0], "vmax": vlim[1]}
    im = ax.imshow(img, cmap=cmap, interpolation="nearest", extent=extent, **kw)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"ry ({units})" if pixel_size else "ry (px)", fontsize=8)
    ax.set_ylabel(f"rx ({units})" if pixel_size else "rx (px)", fontsize=8)
    if fig is not None:
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        if label:
            cb.set_label(label, fontsize=8)
    return im


def plot_virtual_images(
    bright_field: np.ndarray,
    dark_field: np.ndarray,
    path: PathLike,
    *,
    pixel_size: float | None = None,
    units: str = "nm",
) -> "Figure":
    """Virtual bright-field and annular dark-field images side by side.

    Parameters
    ----------
    bright_field, dark_field : ndarray, shape (Rx, Ry)
        e.g. from :func:`~py4dstem_ndpd.analysis.virtual.virtual_bright_field`.
    path : str or Path
    pixel_size : float, optional
        Scan step in ``units`` for the axes.
    """
    bf, df = np.asarray(bright_field, float), np.asarray(dark_field, float)
    if bf.ndim != 2 or bf.shape != df.shape:
        raise InputError(f"bright_field and dark_field must be 2D maps of one shape, got {bf.shape} and {df.shape}")
    fig = _figure((8, 4.2))
    ax = fig.subplots(1, 2)
    _map(ax[0], bf, "virtual bright field", cmap="gray", pixel_size=pixel_size, units=units, fig=fig, label="counts")
    _map(ax[1], df, "virtual annular dark field", cmap="gray", pixel_size=pixel_size, units=units, fig=fig,
         label="counts")
    save_figure(fig, path)
    return fig


def _strain_limits(*maps) -> tuple[float, float]:
    vals = np.concatenate([np.asarray(m, float)[np.isfinite(m)].ravel() for m in maps] or [np.zeros(1)])
    if vals.size == 0:
        return (-1.0, 1.0)
    lim = float(np.percentile(np.abs(vals), 99)) or 1e-4
    return (-lim, lim)


def plot_strain_maps(
    e_xx: np.ndarray,
    e_yy: np.ndarray,
    path: PathLike,
    *,
    virtual: np.ndarray | None = None,
    profile_xx: tuple | None = None,
    profile_yy: tuple | None = None,
    pixel_size: float | None = None,
    units: str = "nm",
    truth: tuple[np.ndarray, np.ndarray] | None = None,
) -> "Figure":
    """Strain maps with line profiles (paper Fig. 7).

    Top: the virtual image (if given), ``e_xx`` and ``e_yy`` in %. Bottom: ``e_xx`` along ``profile_xx`` and
    ``e_yy`` along ``profile_yy`` (mean and +-1 std across the band, from
    :func:`~py4dstem_ndpd.analysis.strain.line_profile`), with the truth profiles if given.

    Parameters
    ----------
    e_xx, e_yy : ndarray, shape (Rx, Ry)
        Dimensionless strain (NaN allowed).
    path : str or Path
    virtual : ndarray (Rx, Ry), optional
        e.g. the virtual dark-field image.
    profile_xx, profile_yy : (start, end, width), optional
        Lines in scan pixels ``(rx, ry)``. Defaults: ``e_xx`` along rx through the middle column averaged over
        the full width (the growth direction of the Si/SiGe preset); ``e_yy`` along ry through the middle row,
        averaged over all rows.
    pixel_size : float, optional
        Scan step in ``units`` (axes and profile distance).
    truth : (e_xx, e_yy), optional
        True maps; their profiles are drawn dashed.
    """
    exx, eyy = np.asarray(e_xx, float), np.asarray(e_yy, float)
    if exx.ndim != 2 or exx.shape != eyy.shape:
        raise InputError(f"e_xx and e_yy must be 2D maps of one shape, got {exx.shape} and {eyy.shape}")
    Rx, Ry = exx.shape
    profile_xx = profile_xx or ((0, (Ry - 1) / 2), (Rx - 1, (Ry - 1) / 2), Ry)
    profile_yy = profile_yy or (((Rx - 1) / 2, 0), ((Rx - 1) / 2, Ry - 1), Rx)
    vlim = _strain_limits(exx, eyy)
    ncols = 3 if virtual is not None else 2
    fig = _figure((4.0 * ncols, 7.5))
    top = fig.subfigures(2, 1, height_ratios=[1.2, 1])
    ax = top[0].subplots(1, ncols)
    k = 0
    if virtual is not None:
        _map(ax[0], np.asarray(virtual, float), "virtual image", cmap="gray", pixel_size=pixel_size, units=units,
             fig=top[0])
        k = 1
    pct = (100 * vlim[0], 100 * vlim[1])
    _map(ax[k], 100 * exx, r"$\varepsilon_{xx}$ (%)", cmap="RdBu_r", vlim=pct, pixel_size=pixel_size, units=units,
         fig=top[0])
    _map(ax[k + 1], 100 * eyy, r"$\varepsilon_{yy}$ (%)", cmap="RdBu_r", vlim=pct, pixel_size=pixel_size,
         units=units, fig=top[0])
    s = pixel_size or 1.0
    for a, (p0, p1, _w) in ((ax[k], profile_xx), (ax[k + 1], profile_yy)):
        a.plot([p0[1] * s, p1[1] * s], [p0[0] * s, p1[0] * s], "k--", lw=0.8)
    bx = top[1].subplots(1, 2)
    for a, img, prof, name, t in (
        (bx[0], exx, profile_xx, r"$\varepsilon_{xx}$", None if truth is None else truth[0]),
        (bx[1], eyy, profile_yy, r"$\varepsilon_{yy}$", None if truth is None else truth[1]),
    ):
        d, m, sd = line_profile(img, prof[0], prof[1], prof[2], pixel_size=pixel_size)
        a.fill_between(d, 100 * (m - sd), 100 * (m + sd), alpha=0.3, color="C0")
        a.plot(d, 100 * m, "C0-", lw=1.2, label="measured")
        if t is not None:
            dt, mt, _ = line_profile(np.asarray(t, float), prof[0], prof[1], prof[2], pixel_size=pixel_size)
            a.plot(dt, 100 * mt, "k--", lw=1.0, label="truth")
        a.set_xlabel(f"distance ({units})" if pixel_size else "distance (px)", fontsize=8)
        a.set_ylabel(f"{name} (%)", fontsize=8)
        a.axhline(0, color="gray", lw=0.5)
        a.legend(fontsize=7)
    save_figure(fig, path)
    return fig


def plot_phase_strain(
    labels: np.ndarray,
    e_xx: np.ndarray,
    e_yy: np.ndarray,
    path: PathLike,
    *,
    virtual: np.ndarray | None = None,
    phase_names: Sequence[str] | None = None,
    examples: Sequence[np.ndarray] | None = None,
    pixel_size: float | None = None,
    units: str = "nm",
) -> "Figure":
    """Phase map with strain maps (paper Fig. 8).

    Rows: example patterns per phase (if given); the virtual image (if given) and the phase map; ``e_xx`` and
    ``e_yy`` in %.

    Parameters
    ----------
    labels : ndarray of int, shape (Rx, Ry)
        e.g. ``PhaseResult.labels``.
    e_xx, e_yy : ndarray, shape (Rx, Ry)
    path : str or Path
    virtual : ndarray (Rx, Ry), optional
    phase_names : sequence of str, optional
        Legend names, indexed by label.
    examples : sequence of 2D arrays, optional
        One diffraction pattern per phase (e.g. at ``PhaseSummary.representative``).
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    lab = np.asarray(labels)
    exx, eyy = np.asarray(e_xx, float), np.asarray(e_yy, float)
    if lab.ndim != 2 or exx.shape != lab.shape or eyy.shape != lab.shape:
        raise InputError(f"labels, e_xx and e_yy must be 2D maps of one shape, got {lab.shape}, {exx.shape}, {eyy.shape}")
    n = int(lab.max()) + 1 if lab.size else 1
    rows = 3 if examples else 2
    ratios = [8.5 / len(examples) + 0.4, 3.8, 3.8] if examples else [3.8, 3.8]  # inches
    fig = _figure((8.5, sum(ratios)))
    sub = fig.subfigures(rows, 1, height_ratios=ratios)
    r = 0
    if examples:
        ax = sub[0].subplots(1, len(examples), squeeze=False)[0]
        for i, (a, img) in enumerate(zip(ax, examples)):
            a.imshow(_pattern_image(img), cmap="gray", interpolation="nearest")
            name = phase_names[i] if phase_names is not None and i < len(phase_names) else f"phase {i}"
            a.set_title(name, fontsize=8)
            a.set_xticks([])
            a.set_yticks([])
        r = 1
    ax = sub[r].subplots(1, 2)
    if virtual is not None:
        _map(ax[0], np.asarray(virtual, float), "virtual image", cmap="gray", pixel_size=pixel_size, units=units,
             fig=sub[r])
    else:
        ax[0].set_axis_off()
    colors = [f"C{i % 10}" for i in range(n)]
    cmap = ListedColormap(colors)
    norm = BoundaryNorm(np.arange(n + 1) - 0.5, n)
    extent = None
    if pixel_size:
        Rx, Ry = lab.shape
        extent = (-0.5 * pixel_size, (Ry - 0.5) * pixel_size, (Rx - 0.5) * pixel_size, -0.5 * pixel_size)
    im = ax[1].imshow(lab, cmap=cmap, norm=norm, interpolation="nearest", extent=extent)
    ax[1].set_title("phase map", fontsize=9)
    cb = sub[r].colorbar(im, ax=ax[1], ticks=np.arange(n), shrink=0.85)
    names = [phase_names[i] if phase_names is not None and i < len(phase_names) else str(i) for i in range(n)]
    cb.ax.set_yticklabels(names, fontsize=7)
    vlim = _strain_limits(exx, eyy)
    pct = (100 * vlim[0], 100 * vlim[1])
    ax = sub[r + 1].subplots(1, 2)
    _map(ax[0], 100 * exx, r"$\varepsilon_{xx}$ (%)", cmap="RdBu_r", vlim=pct, pixel_size=pixel_size, units=units,
         fig=sub[r + 1])
    _map(ax[1], 100 * eyy, r"$\varepsilon_{yy}$ (%)", cmap="RdBu_r", vlim=pct, pixel_size=pixel_size, units=units,
         fig=sub[r + 1])
    save_figure(fig, path)
    return fig


def plot_error_histograms(
    errors: Union[np.ndarray, Mapping[str, np.ndarray]],
    path: PathLike,
    *,
    bins: int = 50,
    units: str = "px",
) -> "Figure":
    """Histograms of disk-centre errors (detected minus true).

    Parameters
    ----------
    errors : ndarray (N, 2) or (N,), or mapping name -> such arrays
        ``(dqx, dqy)`` per matched disk, or already the distances; one mapping entry per method (overlaid).
    path : str or Path
    bins : int
    units : str
        Axis label unit.

    Returns
    -------
    matplotlib.figure.Figure
        Panels ``dqx``, ``dqy`` and ``|d|`` (only ``|d|`` for 1D input), with the RMS in the legend.
    """
    sets = dict(errors) if isinstance(errors, Mapping) else {"errors": errors}
    arrays = {k: np.asarray(v, float) for k, v in sets.items()}
    if not arrays or any(a.size == 0 for a in arrays.values()):
        raise InputError("errors is empty; give at least one matched disk per method.")
    two_d = all(a.ndim == 2 and a.shape[1] == 2 for a in arrays.values())
    if not two_d and not all(a.ndim == 1 for a in arrays.values()):
        raise InputError("errors must all be (N, 2) offsets or all (N,) distances")
    panels = ["dqx", "dqy", "|d|"] if two_d else ["|d|"]
    fig = _figure((3.6 * len(panels), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for j, panel in enumerate(panels):
        comp = {}
        for name, a in arrays.items():
            if panel == "|d|":
                comp[name] = np.hypot(a[:, 0], a[:, 1]) if two_d else np.abs(a)
            else:
                comp[name] = a[:, 0 if panel == "dqx" else 1]
        allv = np.concatenate(list(comp.values()))
        lo, hi = (0.0, float(np.percentile(allv, 99.5))) if panel == "|d|" else tuple(np.percentile(allv, [0.25, 99.75]))
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-3, bins + 1)
        for i, (name, v) in enumerate(comp.items()):
            rms = float(np.sqrt(np.mean(v**2)))
            axes[j].hist(v, bins=edges, histtype="step", lw=1.2, color=f"C{i}", label=f"{name}: RMS {rms:.3f}")
        axes[j].set_xlabel(f"{panel} ({units})", fontsize=8)
        axes[j].set_ylabel("disks", fontsize=8)
        axes[j].legend(fontsize=7)
    save_figure(fig, path)
    return fig
