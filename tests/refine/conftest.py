"""Simulated batches with exact truth for the refinement tests (each simulated once per session)."""
from __future__ import annotations

from functools import lru_cache

import pytest

from py4dstem_ndpd.refine.benchmark import Case, simulate_case


@lru_cache(maxsize=None)
def _case(preset: str, dose: float, scan_shape: tuple[int, int]) -> Case:
    return simulate_case(preset, dose, scan_shape=scan_shape, pattern_shape=(256, 256), seed=3)


@pytest.fixture(scope="session")
def case():
    """``case(preset, dose, scan_shape=(8, 4))`` -> :class:`~py4dstem_ndpd.refine.benchmark.Case` (cached)."""

    def get(preset: str, dose: float, scan_shape: tuple[int, int] = (8, 4)) -> Case:
        return _case(preset, float(dose), tuple(scan_shape))

    return get
