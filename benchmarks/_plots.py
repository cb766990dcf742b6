"""Figure layout shared by the benchmarks that plot one column per (pattern size, preset)."""
from __future__ import annotations

from pathlib import Path


def preset_columns(rows: list[dict], path: Path, nrows: int, height: float):
    """A non-interactive figure with ``nrows`` rows and one column per ``(size, preset)`` of ``rows``.

    Returns ``(fig, axes, combos)``; ``axes`` is 2D, ``combos`` the sorted ``(size, preset)`` pairs. Creates
    ``path``'s folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(exist_ok=True)
    combos = sorted({(r["size"], r["preset"]) for r in rows})
    fig, axes = plt.subplots(nrows, len(combos), figsize=(4 * len(combos), height), squeeze=False)
    return fig, axes, combos
