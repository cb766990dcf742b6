"""Rendered disks for the refinement tests: uniform, or lit only along the side facing the direct beam."""
import numpy as np


def render(centres, radius, shape=(96, 96), crescent=None, origin=None, scale=2000.0, seed=0, noise=True):
    """Disks of ``radius`` (tanh edge 0.6 px); ``crescent`` (px) lights only the side facing ``origin``."""
    X, Y = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    img = np.zeros(shape)
    for c in np.atleast_2d(centres):
        dx, dy = X - c[0], Y - c[1]
        disk = 0.5 * (1 - np.tanh((np.hypot(dx, dy) - radius) / 0.6))
        if crescent is not None and origin is not None and np.linalg.norm(c - origin) > 1:
            out = (c - origin) / np.linalg.norm(c - origin)  # away from the direct beam
            disk = disk * np.exp(-np.clip(dx * out[0] + dy * out[1] + radius, 0, None) / crescent)
        img += scale * disk
    if not noise:
        return img
    return np.random.default_rng(seed).poisson(img).astype(float)
