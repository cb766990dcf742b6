"""How many patterns go through the network at once when the user does not say (``batch_size=None``).

* CPU: :data:`CPU_BATCH` (32). Measured on the 2-core CPU of ``docs/performance.md``: 16-32 give the same
  patterns/s within the machine's spread; larger batches only hold more memory.
* CUDA: as many as half of the device's free memory holds (:func:`batch_size_for_memory`), measured once per
  backend with a probe forward pass of :data:`PROBE_BATCH` patterns at the model's input size (AMP as configured),
  between :data:`MIN_GPU_BATCH` and :data:`MAX_GPU_BATCH`, a multiple of 8.

The engine also caps an automatic batch so that one batch of native patterns stays below
:data:`~py4dstem_ndpd.engine.runner.AUTO_BATCH_BYTES` of host memory (large frames, many batches in flight).
"""
from __future__ import annotations

#: Batch size on a CPU.
CPU_BATCH = 32
#: Patterns in the probe forward pass that measures the device memory one pattern needs.
PROBE_BATCH = 8
#: Bounds of the batch size chosen on a GPU.
MIN_GPU_BATCH = 8
MAX_GPU_BATCH = 256
#: Share of the free device memory an automatic batch may use.
GPU_MEMORY_FRACTION = 0.5


def batch_size_for_memory(free_bytes: float, bytes_per_pattern: float, *, fraction: float = GPU_MEMORY_FRACTION,
                          lo: int = MIN_GPU_BATCH, hi: int = MAX_GPU_BATCH, multiple: int = 8) -> int:
    """The largest batch whose activations fit in ``fraction`` of ``free_bytes``, within ``[lo, hi]``.

    Parameters
    ----------
    free_bytes : float
        Free device memory, bytes (``torch.cuda.mem_get_info()[0]``).
    bytes_per_pattern : float
        Peak device memory one pattern adds to a forward pass, bytes (> 0).
    fraction : float
        Share of ``free_bytes`` to use (the rest is left to other processes and the allocator's fragmentation).
    lo, hi : int
        Bounds; ``lo`` is returned even if it does not fit (the forward pass then reports the out-of-memory error
        with what to do).
    multiple : int
        Round down to a multiple of this (when above it).

    Returns
    -------
    int
    """
    if not bytes_per_pattern > 0:
        raise ValueError(f"bytes_per_pattern must be > 0, got {bytes_per_pattern!r}")
    n = int(max(0.0, float(free_bytes)) * fraction // bytes_per_pattern)
    if n >= multiple:
        n -= n % multiple
    return int(min(max(n, lo), hi))
