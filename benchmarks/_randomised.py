"""Detections on randomised patterns matched to their labels (shared by bench_noise_filter and bench_completion)."""
from __future__ import annotations

import numpy as np

from py4dstem_ndpd.evaluate import edge_distance, match_peaks
from py4dstem_ndpd.synth.randomized import RANDOMIZATIONS, random_pattern


def match_counts(backends: dict, randomization: str, seed: int, n: int) -> tuple[int, dict]:
    """Detect ``n`` randomised patterns (range ``randomization``, ``seed``) with every backend, one at a time.

    Labelled disks (integrated SNR >= 3) and detections at least a radius from the edge are matched one to one
    within one radius.

    Returns
    -------
    n_true : int
        Labelled disks counted.
    counts : dict
        Per backend key: ``{"matched", "unmatched", "detections"}``.
    """
    rng = np.random.default_rng(seed)
    counts = {k: {"matched": 0, "unmatched": 0, "detections": 0} for k in backends}
    n_true = 0
    for _ in range(n):
        pat = random_pattern(rng, RANDOMIZATIONS[randomization])
        shape = pat.counts.shape
        c = pat.centres
        true = c[edge_distance(c[:, 0], c[:, 1], shape) >= pat.radius] if len(c) else np.zeros((0, 2))
        n_true += len(true)
        for key, be in backends.items():
            d = be.detect(pat.counts)[0]
            q = np.stack([d["qx"], d["qy"]], 1)
            q = q[edge_distance(q[:, 0], q[:, 1], shape) >= pat.radius]
            di, _ = match_peaks(q, true, pat.radius)
            counts[key]["matched"] += len(di)
            counts[key]["unmatched"] += len(q) - len(di)
            counts[key]["detections"] += len(q)
    return n_true, counts
