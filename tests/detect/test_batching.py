"""Automatic batch size: 32 on a CPU, from the free memory on a GPU."""
from __future__ import annotations

import numpy as np
import pytest

from py4dstem_ndpd.detect.batching import CPU_BATCH, MAX_GPU_BATCH, MIN_GPU_BATCH, batch_size_for_memory


def test_batch_fills_half_the_free_memory_within_bounds():
    mb = 2**20
    assert batch_size_for_memory(1000 * mb, 10 * mb) == 48  # 50 patterns fit in half; rounded down to 8s
    assert batch_size_for_memory(140_000 * mb, 12 * mb) == MAX_GPU_BATCH
    assert batch_size_for_memory(10 * mb, 12 * mb) == MIN_GPU_BATCH  # nothing fits: the smallest, OOM says why
    assert batch_size_for_memory(100 * mb, 10 * mb, lo=1, multiple=8) == 5  # below one multiple: not rounded
    with pytest.raises(ValueError):
        batch_size_for_memory(100 * mb, 0)


def test_cpu_backend_uses_the_cpu_batch_and_an_explicit_one_wins():
    from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend

    auto = NDPDBackend(None, DetectOptions(device="cpu"))
    assert DetectOptions().batch_size is None and auto.preferred_batch_size() == CPU_BATCH
    given = NDPDBackend(None, DetectOptions(device="cpu", batch_size=5, refine="none"))
    assert given.preferred_batch_size() == 5
    frames = np.zeros((7, 64, 64), np.float32)
    assert len(given.detect(frames)) == 7  # two forward passes of 5 and 2


@pytest.mark.gpu
def test_cuda_batch_size_from_free_memory():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend

    bs = NDPDBackend(None, DetectOptions(device="cuda")).preferred_batch_size()
    assert MIN_GPU_BATCH <= bs <= MAX_GPU_BATCH and bs % 8 == 0
