"""Fine-tuning data from a user's own scan: pseudo-labels to review, then fine-tune the shipped model.

1. :func:`pseudo_label` picks ``n`` patterns spread over the scan, lets a labeller (py4DSTEM template matching by
   default, or the shipped NDPD model) propose one box per disk, and writes an ultralytics YOLO dataset plus a
   review sheet (PNG) with the proposed boxes drawn on each pattern.
2. The user reviews the label files (``labels/*/NNNNNN.txt``, one ``0 x y w h`` line per disk, normalised;
   any YOLO annotation tool reads them), deleting wrong boxes and adding missed ones.
3. ``ndpd train --data DIR/data.yaml --weights shipped --epochs 30`` fine-tunes the shipped model
   (:func:`py4dstem_ndpd.training.train` with ``TrainOptions(weights=...)``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np

from ..exceptions import ConfigError
from ..synth.yolo import boxes_from_centres, write_data_yaml, write_sample

logger = logging.getLogger(__name__)


def pseudo_label(
    datacube,
    out_dir: str | Path,
    *,
    n: int = 40,
    labeller: Literal["template", "ndpd"] = "template",
    val_fraction: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a YOLO dataset of ``n`` patterns of ``datacube`` with proposed labels; return its ``data.yaml``.

    Parameters
    ----------
    datacube : py4DSTEM.DataCube, ndarray, dask array or path
        The scan, as :func:`py4dstem_ndpd.find_Bragg_disks` takes it (a file is read pattern by pattern).
    out_dir : path
    n : int
        Patterns to label (spread at random over the scan).
    labeller : {"template", "ndpd"}
        py4DSTEM template matching (:func:`py4dstem_ndpd.baseline.template_matching`) or the shipped model.
    val_fraction : float
        Share of the patterns put in the validation split.
    seed : int
    overwrite : bool
        Replace the dataset already in ``out_dir`` (with the labels you may have corrected). Without it such a
        folder is refused, so that rerunning a notebook cell never undoes a review.

    Raises
    ------
    OutputExistsError
        ``out_dir`` already holds a dataset and ``overwrite`` is False.
    ConfigError
        Unknown ``labeller``.
    InputError
        Data that cannot be read (as for :func:`py4dstem_ndpd.find_Bragg_disks`).
    """
    import py4DSTEM

    from ..engine.source import as_source
    from ..io.readers import load_input
    from ..io.writers import OutputExistsError

    out = Path(out_dir)
    if not overwrite and ((out / "data.yaml").exists() or any((out / "labels").glob("*/*.txt"))):
        raise OutputExistsError(
            f"{out} already holds a dataset (data.yaml and labels, perhaps reviewed by hand); pass overwrite=True to "
            "replace it, or write to another folder."
        )
    if labeller not in ("template", "ndpd"):
        raise ConfigError(f"labeller must be 'template' or 'ndpd', got {labeller!r}.")
    src = as_source(load_input(datacube).array)
    Rx, Ry = src.scan_shape
    rng = np.random.default_rng(seed)
    flat = rng.choice(Rx * Ry, size=min(n, Rx * Ry), replace=False)
    pos = [(int(i // Ry), int(i % Ry)) for i in flat]
    frames = np.concatenate([np.asarray(src.read(int(i), int(i) + 1)) for i in flat])
    src.close()
    if labeller == "template":
        from ..baseline import template_matching

        sub = py4DSTEM.DataCube(data=frames[:, None].astype(np.float32))  # py4DSTEM's vacuum probe: float sums
        res = template_matching(sub)
        tables = res.peaks.peaks
        radius = float(res.settings["disk_radius"])
    elif labeller == "ndpd":
        from ..detect.backend import NDPDBackend

        b = NDPDBackend()
        tables = b.detect(frames)
        radius = float(b.last_radius or 4.0)
    n_val = max(1, int(round(val_fraction * len(pos))))
    for k, (fr, t) in enumerate(zip(frames, tables)):
        split = "val" if k < n_val else "train"
        c = np.stack([t["qx"], t["qy"]], 1)
        write_sample(out, split, k, fr, boxes_from_centres(c, radius, fr.shape))
    _review_sheet(frames, tables, radius, out / "review.png")
    (out / "positions.txt").write_text("\n".join(f"{k:06d} rx={i} ry={j}" for k, (i, j) in enumerate(pos)) + "\n")
    logger.info("wrote %d pseudo-labelled patterns to %s; review them before fine-tuning", len(pos), out)
    return write_data_yaml(out)


def _review_sheet(frames, tables, radius, path: Path, max_panels: int = 16) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..detect.preprocess import normalize

    k = min(len(frames), max_panels)
    cols = 4
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(k):
        ax = axes.ravel()[i]
        ax.imshow(normalize(frames[i]), cmap="gray")
        t = tables[i]
        for qx, qy in zip(t["qx"], t["qy"]):
            ax.add_patch(plt.Circle((qy, qx), radius, fill=False, ec="r", lw=0.6))
        ax.set_title(f"{i:06d}: {len(t)} disks", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
