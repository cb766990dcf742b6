"""Draw docs/architecture.png: the data flow simulate -> detect -> refine -> BraggVectors -> strain / phase.

    python docs/make_architecture_figure.py        # writes docs/architecture.png

Only matplotlib (Agg backend); the layout is fixed, so the PNG is reproducible.
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent / "architecture.png"

# colours per layer
C_DATA = "#dbe9f6"     # data and files
C_CORE = "#fde2c8"     # detector core (plain arrays, torch)
C_BRIDGE = "#d9f0d3"   # py4DSTEM objects
C_SCI = "#e8dff5"      # science workflows
C_TRAIN = "#f2f2f2"    # training (offline)
C_ENGINE = "#fff7e0"   # engine frame


def box(ax, x, y, w, h, title, body, colour):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=colour, ec="#333333",
                                lw=1.0, zorder=2))
    ax.text(x + w / 2, y + h - 0.13, title, ha="center", va="top", fontsize=9.5, weight="bold", zorder=3)
    ax.text(x + w / 2, y + h - 0.42, body, ha="center", va="top", fontsize=7.4, zorder=3, linespacing=1.25,
            family="DejaVu Sans")
    return (x, y, w, h)


def arrow(ax, a, b, text=None, *, start="right", end="left", rad=0.0, style="-|>", ls="-", colour="#222222"):
    def anchor(r, side):
        x, y, w, h = r
        return {"right": (x + w, y + h / 2), "left": (x, y + h / 2), "top": (x + w / 2, y + h),
                "bottom": (x + w / 2, y)}[side]

    p0, p1 = anchor(a, start), anchor(b, end)
    ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle=style, mutation_scale=12, lw=1.2, ls=ls, color=colour,
                                 connectionstyle=f"arc3,rad={rad}", zorder=4, shrinkA=2, shrinkB=2))
    if text:
        ax.text((p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2 + 0.08, text, ha="center", va="bottom", fontsize=7,
                style="italic", color="#444444", zorder=5)


def draw(path: Path = OUT) -> Path:
    fig, ax = plt.subplots(figsize=(13.5, 6.6))
    ax.set_xlim(0, 13.5)
    ax.set_ylim(-0.25, 6.6)
    ax.axis("off")

    # row 1: main data flow
    y, h = 3.35, 1.55
    sim = box(ax, 0.15, y, 1.9, h, "simulate", "synth/\nsimulate_preset()\nexact truth: centres,\nstrain, phase",
              C_DATA)
    data = box(ax, 2.35, y, 1.9, h, "4D data", "(Rx, Ry, Qx, Qy)\nDataCube, numpy, dask,\nEMD / HDF5 / .npy\nio/ load_input()",
               C_DATA)
    # engine frame around detect + refine
    ax.add_patch(FancyBboxPatch((4.5, 2.95), 4.35, 2.1, boxstyle="round,pad=0.02,rounding_size=0.1", fc=C_ENGINE,
                                ec="#b58900", lw=1.0, ls="--", zorder=1))
    ax.text(6.68, 3.14, "engine/  run_scan (async batches)  |  run_distributed (Dask workers, one model each)",
            ha="center", va="center", fontsize=7.4, color="#7a5c00")
    det = box(ax, 4.65, y, 2.0, h, "detect", "detect/\nnormalise (log, P99.5)\nresize to 256, YOLOv8n\nDFL soft-argmax decode\nedge-aware NMS",
              C_CORE)
    ref = box(ax, 6.8, y, 1.9, h, "refine", "refine/\nnative resolution\nautocorrelation /\nprobe lattice fit",
              C_CORE)
    peaks = box(ax, 9.1, y, 1.8, h, "peak tables", "peaks.ScanPeaks\n(qx, qy, intensity,\nconfidence) per\nposition, px", C_CORE)
    bv = box(ax, 11.3, y, 2.05, h, "BraggVectors", "bridge.to_braggvectors()\npy4DSTEM.BraggVectors\n+ calibration\npy4DSTEM.save / read",
             C_BRIDGE)

    # row 2: science
    y2, h2 = 0.35, 1.55
    strain = box(ax, 11.3, y2, 2.05, h2, "strain", "analysis.strain_map()\npy4DSTEM StrainMap\ne_xx, e_yy, e_xy, theta\nvs reference region",
                 C_SCI)
    phase = box(ax, 9.1, y2, 1.8, h2, "phase", "analysis.phase_map()\nk-means on\ninteratomic distances",
                C_SCI)
    figs = box(ax, 6.8, y2, 1.9, h2, "figures, report", "analysis.figures\nwrite_report()\nndpd demo", C_SCI)
    evalb = box(ax, 4.65, y2, 2.0, h2, "evaluate / compare", "evaluate.py: recall,\nprecision, centre error\nvs simulator truth\ncompare.py: vs template",
                C_SCI)
    # training (offline) and baseline
    train = box(ax, 0.15, y2, 1.9, h2, "train (offline)", "synth/randomized.py\ndomain randomisation\ntraining/ train()\npseudo_label()",
                C_TRAIN)
    weights = box(ax, 2.35, y2, 1.9, h2, "weights", "weights/\nndpd_yolov8n.pt\n(shipped; or your\nfine-tuned file)", C_TRAIN)
    base = box(ax, 9.1, 5.55, 4.25, 0.9, "baseline: py4DSTEM template matching",
               "baseline.template_matching()  ->  BraggVectors", C_BRIDGE)

    arrow(ax, sim, data)
    arrow(ax, data, det, "batches")
    arrow(ax, det, ref, "centres")
    arrow(ax, ref, peaks)
    arrow(ax, peaks, bv)
    arrow(ax, bv, strain, start="bottom", end="top")
    arrow(ax, bv, phase, start="bottom", end="top", rad=0.0)
    arrow(ax, phase, figs, start="left", end="right")
    arrow(ax, strain, figs, start="bottom", end="bottom", rad=-0.22)
    arrow(ax, peaks, evalb, start="bottom", end="top", rad=-0.15)
    arrow(ax, train, weights)
    arrow(ax, weights, det, start="top", end="bottom", rad=-0.2)
    ax.text(4.55, 2.45, "weights loaded\nonce per process", fontsize=7, style="italic", color="#444444", ha="right")
    arrow(ax, data, base, start="top", end="left", rad=-0.2, ls="--")
    arrow(ax, base, bv, start="bottom", end="top", ls="--")

    ax.text(0.15, 6.45, "py4dstem-ndpd: data flow", fontsize=12, weight="bold", va="top")
    legend = [(C_DATA, "data"), (C_CORE, "detector core (plain arrays; no py4DSTEM)"), (C_BRIDGE, "py4DSTEM objects"),
              (C_SCI, "science workflows"), (C_TRAIN, "training (offline)")]
    for i, (c, t) in enumerate(legend):
        ax.add_patch(FancyBboxPatch((0.2 + i * 1.9, 5.72), 0.22, 0.16, boxstyle="square,pad=0", fc=c, ec="#333333",
                                    lw=0.6))
        ax.text(0.48 + i * 1.9, 5.80, t.split(" (")[0], fontsize=7.2, va="center")
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


if __name__ == "__main__":
    print("wrote", draw(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
