"""Options are checked when built; every bad value gets a ConfigError that names it."""
from __future__ import annotations

from pathlib import Path

import pytest

from py4dstem_ndpd.engine import DistributedOptions, EngineOptions
from py4dstem_ndpd.exceptions import ConfigError


def test_defaults_are_valid():
    o = EngineOptions()
    assert (o.batch_size, o.mode, o.prefetch, o.checkpoint_dir, o.resume) == (None, "async", 2, None, False)
    assert DistributedOptions().engine == o


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"mode": "threads"}, "mode must be 'sync' or 'async'"),
        ({"prefetch": 0}, "prefetch must be an integer >= 1"),
        ({"postprocess_threads": -1}, "postprocess_threads"),
        ({"progress": "yes"}, "progress must be True or False"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"resume": True}, r"resume=True \(CLI --resume\) needs checkpoint_dir"),
        ({"checkpoint_dir": ""}, "checkpoint_dir must be a directory path"),
        ({"checkpoint_dir": 3}, "checkpoint_dir must be a directory path"),
    ],
)
def test_engine_options_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        EngineOptions(**kwargs)


def test_checkpoint_dir_becomes_a_path(tmp_path):
    o = EngineOptions(checkpoint_dir=str(tmp_path), resume=True)
    assert o.checkpoint_dir == Path(tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"engine": {"batch_size": 4}}, "engine must be an EngineOptions"),
        ({"chunks_per_worker": 0}, "chunks_per_worker"),
        ({"resources": {"GPU": 0}}, "resources must map resource names to positive amounts"),
        ({"resources": ["GPU"]}, "resources"),
    ],
)
def test_distributed_options_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DistributedOptions(**kwargs)
