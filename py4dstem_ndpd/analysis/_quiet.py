"""Run py4DSTEM calls without their progress bars, pop-up figures and calibration warnings."""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_py4dstem(*, keep_figures: bool = False) -> Iterator[None]:
    """Silence a block of py4DSTEM calls.

    py4DSTEM's StrainMap methods draw figures (``choose_basis_vectors``, ``get_strain``), print tqdm bars to
    stderr and warn about missing calibrations. Inside this block stderr is captured (and logged at DEBUG), the
    warnings are logged at DEBUG instead of shown, and every figure created in the block is closed on exit
    unless ``keep_figures``.
    """
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    err = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            yield
    finally:
        if not keep_figures:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
    for w in caught:
        log.debug("py4DSTEM warning: %s", w.message)
    text = err.getvalue().strip()
    if text:
        log.debug("py4DSTEM stderr (last 500 chars): %s", text[-500:])
