"""The CPU forward pass runs as a frozen TorchScript graph that gives the eager module's outputs bit for bit."""
from __future__ import annotations

import numpy as np
import torch

from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend


def test_traced_forward_equals_the_eager_module_for_any_batch_size():
    b = NDPDBackend(None, DetectOptions(device="cpu"))
    assert b._graph is not None  # the CPU backend traces the network
    graph = b._graph
    rng = np.random.default_rng(0)
    for n in (1, 3, 9):
        x = rng.random((n, b.imgsz, b.imgsz), dtype=np.float32)
        b._graph = None
        eager = b._forward(x)
        b._graph = graph
        traced = b._forward(x)
        assert torch.equal(eager["boxes"], traced["boxes"]) and torch.equal(eager["scores"], traced["scores"])
        assert [f.shape for f in eager["feats"]] == [f.shape for f in traced["feats"]]


def test_a_backend_at_another_input_size_traces_at_that_size():
    b = NDPDBackend(None, DetectOptions(device="cpu", imgsz=128, refine="none"))
    assert b._graph is not None
    x = np.random.default_rng(1).random((2, 128, 128), dtype=np.float32)
    raw = b._forward(x)  # traced at 128 px
    assert raw["boxes"].shape[0] == 2
    frames = np.zeros((2, 100, 90), np.float32)
    assert len(b.detect(frames)) == 2  # resized and padded to 128 px: the traced graph's size
