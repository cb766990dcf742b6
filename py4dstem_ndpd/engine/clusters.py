"""Where a distributed run executes: a small cluster description, its YAML form, and a client for it.

A run configuration file (see ``cluster/*.yaml`` in the repository) has three sections::

    cluster:                 # ClusterSpec: where to run
      kind: local            # local | local-cuda | address | slurm | pbs
      n_workers: 2
      threads_per_worker: 1
      options: {memory_limit: 4GiB}   # passed to LocalCluster / LocalCUDACluster / SLURMCluster / PBSCluster
    engine:                  # EngineOptions: batching in each worker, chunking, checkpoint/resume, progress
      batch_size: 32
      chunk_size: 1024
    distributed:             # DistributedOptions without `engine`: in-flight window, Dask resources
      chunks_per_worker: 2

:func:`load_config` reads it into ``(ClusterSpec, DistributedOptions)``; :func:`open_client` starts (or connects
to) the cluster and closes what it started.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Iterator, Literal, Mapping

from ..exceptions import ConfigError
from .options import DistributedOptions, EngineOptions

ClusterKind = Literal["local", "local-cuda", "address", "slurm", "pbs"]
_KINDS = ("local", "local-cuda", "address", "slurm", "pbs")


@dataclass(frozen=True)
class ClusterSpec:
    """A Dask cluster to run on.

    Attributes
    ----------
    kind : {"local", "local-cuda", "address", "slurm", "pbs"}
        ``"local"``: ``distributed.LocalCluster`` of worker processes on this machine. ``"local-cuda"``:
        ``dask_cuda.LocalCUDACluster``, one worker per visible GPU (``pip install dask-cuda``). ``"address"``: an
        existing scheduler. ``"slurm"``/``"pbs"``: ``dask_jobqueue.SLURMCluster``/``PBSCluster`` batch jobs
        (``pip install dask-jobqueue``).
    n_workers : int
        ``"local"``: worker processes (default 2). Ignored by the other kinds (``local-cuda`` has one per GPU).
    threads_per_worker : int
        ``"local"``/``"local-cuda"``: threads per worker process (default 1: one backend call at a time).
    address : str, optional
        ``"address"``: the scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    jobs : int
        ``"slurm"``/``"pbs"``: batch jobs to submit (``cluster.scale(jobs=...)``; default 1).
    options : mapping
        Extra keyword arguments of the cluster class (``memory_limit``, ``CUDA_VISIBLE_DEVICES``, ``queue``,
        ``cores``, ``memory``, ``walltime``, ``job_extra_directives``...).
    """

    kind: ClusterKind = "local"
    n_workers: int = 2
    threads_per_worker: int = 1
    address: str | None = None
    jobs: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(f"ClusterSpec.kind must be one of {', '.join(_KINDS)}; got {self.kind!r}")
        for name in ("n_workers", "threads_per_worker", "jobs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"ClusterSpec.{name} must be an integer >= 1, got {v!r}")
        if self.kind == "address":
            if not isinstance(self.address, str) or not self.address:
                raise ConfigError("ClusterSpec(kind='address') needs address='tcp://host:port' of a running scheduler")
        elif self.address is not None:
            raise ConfigError(f"ClusterSpec.address is only used with kind='address' (kind is {self.kind!r})")
        if not isinstance(self.options, Mapping) or not all(isinstance(k, str) for k in self.options):
            raise ConfigError(f"ClusterSpec.options must map keyword names to values, got {self.options!r}")
        object.__setattr__(self, "options", dict(self.options))


def _section(data: Mapping[str, Any], name: str, allowed: set[str], path: str) -> dict[str, Any]:
    sec = data.get(name) or {}
    if not isinstance(sec, Mapping):
        raise ConfigError(f"{path}: section '{name}' must be a mapping, got {type(sec).__name__}")
    unknown = set(sec) - allowed
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown)} in section '{name}'; allowed: {sorted(allowed)}"
        )
    return dict(sec)


def load_config(path: str | os.PathLike) -> tuple[ClusterSpec, DistributedOptions]:
    """Read a run configuration YAML file (sections ``cluster``, ``engine``, ``distributed``; all optional).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    (ClusterSpec, DistributedOptions)

    Raises
    ------
    ConfigError
        Unreadable YAML, unknown sections or keys, or invalid values (the message names them).
    """
    import yaml

    path = str(path)
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read the run configuration {path}: {e}") from e
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping with sections cluster, engine, distributed")
    unknown = set(data) - {"cluster", "engine", "distributed"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: cluster, engine, distributed")
    spec = ClusterSpec(**_section(data, "cluster", {f.name for f in fields(ClusterSpec)}, path))
    engine = EngineOptions(**_section(data, "engine", {f.name for f in fields(EngineOptions)}, path))
    dist = _section(data, "distributed", {f.name for f in fields(DistributedOptions)} - {"engine"}, path)
    return spec, DistributedOptions(engine=engine, **dist)


def _import_optional(module: str, package: str, kind: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(
            f"cluster kind {kind!r} needs {package}; install it with `pip install {package}`"
        ) from e


@contextmanager
def open_client(spec: ClusterSpec) -> Iterator[Any]:
    """A ``distributed.Client`` on the cluster ``spec`` describes; clusters started here are closed afterwards.

    Raises
    ------
    ConfigError
        The optional package for ``local-cuda`` (dask-cuda) or ``slurm``/``pbs`` (dask-jobqueue) is missing, or
        the scheduler at ``address`` cannot be reached.
    """
    import logging

    from distributed import Client, LocalCluster

    if spec.kind == "address":
        try:
            client = Client(spec.address, **{"timeout": "20s", **spec.options})
        except (OSError, TimeoutError) as e:
            raise ConfigError(
                f"cannot connect to a Dask scheduler at {spec.address!r} ({e}); start one with `dask scheduler` "
                "and workers with `dask worker <address>`"
            ) from e
        with client:
            yield client
        return
    if spec.kind == "local":
        kwargs = {"dashboard_address": None, "silence_logs": logging.ERROR, **spec.options}
        cluster = LocalCluster(n_workers=spec.n_workers, threads_per_worker=spec.threads_per_worker,
                               processes=True, **kwargs)
    elif spec.kind == "local-cuda":
        dask_cuda = _import_optional("dask_cuda", "dask-cuda", spec.kind)
        cluster = dask_cuda.LocalCUDACluster(threads_per_worker=spec.threads_per_worker, **spec.options)
    else:
        jq = _import_optional("dask_jobqueue", "dask-jobqueue", spec.kind)
        cls = jq.SLURMCluster if spec.kind == "slurm" else jq.PBSCluster
        cluster = cls(**spec.options)
        cluster.scale(jobs=spec.jobs)
    with cluster, Client(cluster) as client:
        yield client
