"""Keep large freed buffers in the process for the next batch instead of handing them back to the OS.

Every batch allocates the same large arrays again: the network's activations (several MB each), the normalised
and resized batch, the refinement's windows. glibc's ``malloc`` serves blocks above its *mmap threshold* with a
fresh ``mmap`` and returns them with ``munmap`` when freed, so each batch page-faults and zeroes all of that memory
again. By default the threshold adapts upwards once such blocks are freed, but only up to 32 MB, and a fixed
``MALLOC_TRIM_THRESHOLD_`` switches the adaptation off: Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in
every worker it spawns (``distributed.nanny.pre-spawn-environ``), which left our workers at about half speed.

:func:`keep_large_buffers` (called when a detector is built, :class:`~py4dstem_ndpd.detect.backend.NDPDBackend`)
raises the mmap threshold to :data:`MMAP_THRESHOLD` and the trim threshold to :data:`TRIM_THRESHOLD` with
``mallopt``, at run time, so it also works where the environment was set before the process started (any Dask
worker, local or on a cluster). Measured on the 2-core CPU of ``docs/performance.md``, per pattern, batches of 32:
network stage 256 px 6.7 -> 5.3 ms (2 threads) and 11.7 -> 9.1 ms (1 thread); 512 px 12.4 -> 7.4 ms (2 threads);
inside a Dask worker (1 thread) 21 -> 9 ms. The outputs do not change (only where memory comes from).

The cost is memory that stays with the process after a batch: at most the trim threshold at the top of the heap
plus what is free inside it, bounded by the largest working set of one batch, which the engine's bounded queues
keep flat. Set ``NDPD_KEEP_LARGE_BUFFERS=0`` to leave ``malloc`` as it is. Other C libraries (macOS, musl) are
left alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading

logger = logging.getLogger(__name__)

#: Blocks up to this size come from the heap (and are reused), bytes.
MMAP_THRESHOLD = 64 << 20
#: Free memory at the top of the heap kept for reuse before it is returned to the OS, bytes.
TRIM_THRESHOLD = 256 << 20
#: Environment switch: "0" leaves ``malloc`` untouched.
ENV_SWITCH = "NDPD_KEEP_LARGE_BUFFERS"

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3

_lock = threading.Lock()
_state: dict[str, bool | None] = {"tuned": None}


def keep_large_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds for this process, once (thread-safe).

    Returns
    -------
    bool
        True if the thresholds are set (now or by an earlier call), False where this is not glibc on Linux, the
        call failed, or ``NDPD_KEEP_LARGE_BUFFERS=0``.
    """
    with _lock:
        if _state["tuned"] is not None:
            return bool(_state["tuned"])
        _state["tuned"] = _set_thresholds()
        return bool(_state["tuned"])


def large_buffers_kept() -> bool:
    """Whether :func:`keep_large_buffers` has set the thresholds in this process."""
    return bool(_state["tuned"])


def _set_thresholds() -> bool:
    if os.environ.get(ENV_SWITCH, "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not ok:
        logger.debug("mallopt refused the thresholds; malloc left as it is")
    return ok
