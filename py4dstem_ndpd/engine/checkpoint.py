"""Checkpoints: finished chunks on disk, so an interrupted run resumes where it stopped.

Layout of a checkpoint directory::

    manifest.json          identity of the run (input fingerprint, shapes, backend and its parameters, chunking)
    chunk-000000.npz       counts (int32, one per position) and peaks (PEAK_DTYPE, all positions concatenated)
    chunk-000001.npz       ...

Every file is written to a temporary name in the same directory, flushed to disk and renamed (``os.replace``),
so a run killed at any instant leaves only complete chunks. Chunk ``i`` holds flat positions
``i * chunk_size .. min((i + 1) * chunk_size, Rx * Ry) - 1``.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..exceptions import ConfigError
from ..peaks import PEAK_DTYPE

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def pack_tables(tables: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-position peak tables -> ``(counts int32 (n,), peaks PEAK_DTYPE (sum(counts),))``."""
    counts = np.fromiter((len(t) for t in tables), dtype=np.int32, count=len(tables))
    flat = np.concatenate(tables) if len(tables) else np.zeros(0, PEAK_DTYPE)
    return counts, flat.astype(PEAK_DTYPE, copy=False)


def unpack_tables(counts: np.ndarray, flat: np.ndarray) -> list[np.ndarray]:
    """Inverse of :func:`pack_tables` (each table is a copy, independent of ``flat``)."""
    ends = np.cumsum(counts)
    if len(flat) != (int(ends[-1]) if len(ends) else 0):
        raise ValueError(f"{len(flat)} peaks for counts summing to {int(ends[-1]) if len(ends) else 0}")
    return [flat[e - c:e].copy() for c, e in zip(counts.tolist(), ends.tolist())]


def chunk_ranges(n_positions: int, chunk_size: int) -> list[tuple[int, int]]:
    """Flat position ranges ``[(start, stop), ...]`` of the chunks of a scan."""
    return [(a, min(a + chunk_size, n_positions)) for a in range(0, n_positions, chunk_size)]


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _setting_change(was: str, now: str) -> str:
    """The settings that differ between two backend-parameter reprs, e.g. ``"; was conf=None, now conf=0.9"``."""
    import re

    def parts(text: str) -> list[str]:
        return [t.strip() for t in re.split(r"[(){},]", text) if "=" in t or ":" in t]

    a, b = parts(was), parts(now)
    gone, new = [t for t in a if t not in b], [t for t in b if t not in a]
    if not gone and not new:
        return ""
    return f"; was {', '.join(gone) or '-'}, now {', '.join(new) or '-'}"


class Checkpoint:
    """A checkpoint directory for one run.

    Parameters
    ----------
    directory : path-like
        Created if missing.
    identity : dict
        JSON-serialisable description of the run (input fingerprint, backend, parameters); a resumed run must
        have the same identity.
    n_positions, chunk_size : int
        Scan size and chunking; both are part of the identity.
    resume : bool
        False refuses a directory that already holds a checkpoint; True reuses its chunks (or starts a new
        checkpoint if the directory has none).

    Raises
    ------
    ConfigError
        The directory holds a checkpoint and ``resume`` is False, or holds the checkpoint of a different run.
    """

    def __init__(self, directory: str | os.PathLike, identity: dict[str, Any], *, n_positions: int,
                 chunk_size: int, resume: bool) -> None:
        self.directory = Path(directory)
        self.ranges = chunk_ranges(n_positions, chunk_size)
        manifest = {
            "format": FORMAT_VERSION,
            "identity": identity,
            "n_positions": int(n_positions),
            "chunk_size": int(chunk_size),
            "n_chunks": len(self.ranges),
        }
        # Round-trip through JSON so that tuples/lists compare equal to what a previous run wrote.
        manifest = json.loads(json.dumps(manifest))
        self.directory.mkdir(parents=True, exist_ok=True)
        mpath = self.directory / MANIFEST
        if mpath.exists() and not resume and not any(self.directory.glob("chunk-*.npz")):
            # A run that stopped before its first chunk (e.g. its cluster did not start) left nothing to keep.
            log.info("%s holds the manifest of a run that finished no chunk; starting afresh", self.directory)
            mpath.unlink()
        if mpath.exists():
            if not resume:
                raise ConfigError(
                    f"{self.directory} already holds a checkpoint; pass resume=True (CLI --resume) to continue that "
                    "run, or choose another (empty) checkpoint_dir"
                )
            old = json.loads(mpath.read_text())
            if old != manifest:
                diff = sorted(
                    k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k)
                ) + sorted(
                    f"identity.{k}" for k in set(old.get("identity", {})) | set(identity)
                    if old.get("identity", {}).get(k) != manifest["identity"].get(k)
                )
                was = old.get("identity", {}).get("backend_params")
                now = manifest["identity"].get("backend_params")
                detail = _setting_change(was, now) if isinstance(was, str) and isinstance(now, str) else ""
                raise ConfigError(
                    f"{self.directory} holds the checkpoint of a different run (differs in: {', '.join(diff)}"
                    f"{detail}); resume with the same data, backend, parameters and chunk_size, or use another "
                    "checkpoint_dir"
                )
        else:
            _atomic_write(mpath, lambda fh: fh.write(json.dumps(manifest, indent=1, sort_keys=True).encode()))
        self.manifest = manifest

    def path(self, i: int) -> Path:
        """File of chunk ``i``."""
        return self.directory / f"chunk-{i:06d}.npz"

    def done(self) -> set[int]:
        """Indices of the chunks on disk."""
        return {i for i in range(len(self.ranges)) if self.path(i).exists()}

    def load(self, i: int) -> list[np.ndarray] | None:
        """Peak tables of chunk ``i``, or None (with a warning) if the file is missing or unreadable."""
        p = self.path(i)
        try:
            with np.load(p, allow_pickle=False) as z:
                start, stop = int(z["start"]), int(z["stop"])
                if (start, stop) != self.ranges[i]:
                    raise ValueError(f"holds positions {start}..{stop}, expected {self.ranges[i]}")
                return unpack_tables(z["counts"], z["peaks"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as e:
            log.warning("checkpoint chunk %s is unreadable (%s); it will be recomputed", p, e)
            return None

    def save(self, i: int, tables: Sequence[np.ndarray]) -> None:
        """Write chunk ``i`` atomically."""
        start, stop = self.ranges[i]
        if len(tables) != stop - start:
            raise ValueError(f"chunk {i} has {stop - start} positions, got {len(tables)} tables")
        counts, flat = pack_tables(tables)
        _atomic_write(self.path(i), lambda fh: np.savez(fh, start=start, stop=stop, counts=counts, peaks=flat))
