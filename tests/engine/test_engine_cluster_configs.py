"""The run configurations in cluster/ are valid, and the local one really runs."""
from __future__ import annotations

import py_compile
from pathlib import Path

import pytest
from engine_helpers import LocalMaxima, assert_same_peaks

from py4dstem_ndpd.engine import ClusterSpec, DistributedOptions, load_config, open_client
from py4dstem_ndpd.exceptions import ConfigError

CLUSTER_DIR = Path(__file__).resolve().parents[2] / "cluster"


@pytest.mark.parametrize(
    "name, kind", [("local_cpu", "local"), ("multi_gpu", "local-cuda"), ("slurm", "slurm"), ("pbs", "pbs"),
                   ("existing_scheduler", "address")],
)
def test_every_config_loads(name, kind):
    spec, opts = load_config(CLUSTER_DIR / f"{name}.yaml")
    assert spec.kind == kind and isinstance(opts, DistributedOptions)
    assert opts.engine.chunk_size % opts.engine.batch_size == 0


def test_example_scripts_compile(tmp_path):
    scripts = sorted(CLUSTER_DIR.glob("*.py"))
    assert len(scripts) >= 5
    for p in scripts:
        py_compile.compile(str(p), cfile=str(tmp_path / (p.stem + ".pyc")), doraise=True)


def test_local_config_runs_a_scan(sim, reference):
    from dataclasses import replace

    from py4dstem_ndpd.engine import run_distributed

    spec, opts = load_config(CLUSTER_DIR / "local_cpu.yaml")
    assert (spec.n_workers, spec.threads_per_worker, spec.options["memory_limit"]) == (2, 1, "4GiB")
    opts = replace(opts, engine=replace(opts.engine, progress=False, chunk_size=16))
    assert_same_peaks(run_distributed(str(sim.path), LocalMaxima, {}, spec, options=opts), reference)


def test_config_errors(tmp_path):
    def write(text):
        p = tmp_path / "c.yaml"
        p.write_text(text)
        return p

    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['batchsize'\] in section 'engine'"):
        load_config(write("engine: {batchsize: 4}\n"))
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['clusters'\]"):
        load_config(write("clusters: {kind: local}\n"))
    with pytest.raises(ConfigError, match="kind must be one of"):
        load_config(write("cluster: {kind: kubernetes}\n"))
    with pytest.raises(ConfigError, match="batch_size must be an integer"):
        load_config(write("engine: {batch_size: 0}\n"))
    with pytest.raises(ConfigError, match="needs address="):
        ClusterSpec(kind="address")
    with pytest.raises(ConfigError, match="only used with kind='address'"):
        ClusterSpec(address="tcp://x:1")
    with pytest.raises(ConfigError, match="cannot read the run configuration"):
        load_config(write("engine: [unclosed\n"))
    spec, opts = load_config(write(""))  # everything optional
    assert spec == ClusterSpec() and opts == DistributedOptions()


def test_jobqueue_kinds_need_dask_jobqueue():
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("dask-jobqueue is installed")
    with pytest.raises(ConfigError, match="pip install dask-jobqueue"):
        with open_client(ClusterSpec(kind="slurm")):
            pass
