"""Export simulated patterns as an ultralytics YOLO detection dataset (one class, ``disk``).

Layout::

    root/images/{train,val}/000000.png   normalised 8-bit grayscale (py4dstem_ndpd.detect.preprocess)
    root/labels/{train,val}/000000.txt   "0 x y w h" per disk, normalised (x = column)
    root/data.yaml                       path, train, val, names {0: disk}, channels: 1
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from ..detect.preprocess import normalize, to_uint8


def write_sample(root: Path, split: str, index: int, counts: np.ndarray, boxes: np.ndarray) -> None:
    """Write one image and its label file."""
    import cv2

    img_dir = root / "images" / split
    lab_dir = root / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(img_dir / f"{index:06d}.png"), to_uint8(normalize(counts)))
    with open(lab_dir / f"{index:06d}.txt", "w") as f:
        for b in np.asarray(boxes, float).reshape(-1, 4):
            f.write(f"0 {b[0]:.6f} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f}\n")


def write_data_yaml(root: Path) -> Path:
    """Write ``data.yaml`` for ultralytics (grayscale: ``channels: 1``)."""
    path = Path(root) / "data.yaml"
    path.write_text(
        f"path: {Path(root).resolve()}\ntrain: images/train\nval: images/val\nnames:\n  0: disk\nchannels: 1\n"
    )
    return path


def boxes_from_centres(centres: np.ndarray, radius: float, shape: tuple[int, int]) -> np.ndarray:
    """YOLO boxes (normalised x, y, w, h) of disks of ``radius`` px at py4DSTEM centres (qx, qy), clipped."""
    H, W = shape
    c = np.asarray(centres, float).reshape(-1, 2)
    e = radius + 0.5
    x1 = np.clip(c[:, 1] + 0.5 - e, 0, W)
    x2 = np.clip(c[:, 1] + 0.5 + e, 0, W)
    y1 = np.clip(c[:, 0] + 0.5 - e, 0, H)
    y2 = np.clip(c[:, 0] + 0.5 + e, 0, H)
    return np.stack([(x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H], 1)


def export_scan(scan, root: str | os.PathLike, *, split: str = "val", start_index: int = 0,
                min_snr: float = 3.0, positions: Iterable[tuple[int, int]] | None = None) -> int:
    """Export patterns of a :class:`~py4dstem_ndpd.synth.SimulatedScan` with truth labels.

    Disks are labelled when their centre is on the detector and their truth peak SNR is >= ``min_snr``.
    Patterns that are not square are written as they are (ultralytics letterboxes them).

    Returns
    -------
    int
        Number of images written.
    """
    root = Path(root)
    truth = scan.truth
    Rx, Ry = truth.scan_shape
    pos = list(positions) if positions is not None else [(i, j) for i in range(Rx) for j in range(Ry)]
    for n, (i, j) in enumerate(pos):
        d = truth.disks_at(i, j)
        d = d[d["snr"] >= min_snr]
        c = np.stack([d["qx"], d["qy"]], 1)
        write_sample(root, split, start_index + n, scan.data[i, j], boxes_from_centres(c, truth.disk_radius, truth.pattern_shape))
    write_data_yaml(root)
    return len(pos)


def export_random(root: str | os.PathLike, n: int, *, split: str = "train", seed: int = 0, start_index: int = 0,
                  ranges=None, progress: bool = True) -> int:
    """Export ``n`` domain-randomised patterns (:mod:`py4dstem_ndpd.synth.randomized`) with labels."""
    from tqdm.auto import tqdm

    from .randomized import RandomizationRanges, random_pattern

    root = Path(root)
    rng = np.random.default_rng(seed)
    ranges = ranges or RandomizationRanges()
    for k in tqdm(range(n), desc=f"dataset {split}", disable=not progress):
        p = random_pattern(rng, ranges)
        write_sample(root, split, start_index + k, p.counts, p.boxes)
    write_data_yaml(root)
    return n
