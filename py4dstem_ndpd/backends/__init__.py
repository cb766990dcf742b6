"""Other detectors wrapped as :class:`~py4dstem_ndpd.backend.Backend` s, for side-by-side comparison.

* :class:`Tempo4DBackend`: the paper authors' released YOLOv8 model and preprocessing (``tempo4d`` on PyPI, MIT
  licence), reproduced from its source. Optional: needs ``pip install --no-deps tempo4d==0.1.8``.
"""
from __future__ import annotations

from .tempo4d import Tempo4DBackend, Tempo4DOptions, direct_beam_centres, tempo4d_weights_path

__all__ = ["Tempo4DBackend", "Tempo4DOptions", "direct_beam_centres", "tempo4d_weights_path"]
