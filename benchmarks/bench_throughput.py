"""End-to-end throughput of the engine: patterns/s sync vs async, 1 vs 2 Dask workers, and memory while streaming.

For each pattern size (default 256 x 256; add 512 with ``--sizes 256 512``) a Si/SiGe scan is simulated once and
written to an HDF5 file (one pattern per HDF5 chunk). Then, reading from that file:

* ``run_scan`` in ``mode="sync"``, ``mode="async"`` (the default: on a CPU two batches at once, one per lane)
  and ``mode="async"`` with ``lanes=1`` (one model thread, the design before 2026-12-01), taking turns (this
  process);
* ``run_distributed`` on a ``LocalCluster`` of 1 and of 2 worker processes, one thread each (``OMP_NUM_THREADS=1``
  in the workers). Cluster start-up and the first model load are excluded: a warm-up run goes first.

With the NDPD backend, two references on the same patterns, in this process: the network's forward passes alone
(batches prepared beforehand: what the network alone costs; end to end adds reading, normalising, decoding and
refinement) and py4DSTEM template matching at its most accurate settings (``TemplateOptions.accurate()``:
multicorr, upsampling 16; the throughput target's baseline).

Every case runs ``--repeats`` times after a warm-up and keeps the best wall time; rates are patterns / wall second,
end to end (file read, preprocessing, model, decoding, assembly).

Memory: a child process streams a scan from an HDF5 file larger than ``--memory-budget-mb`` (the file is built by
tiling the simulated scan, written block by block) with ``run_scan(mode="async")``, while a thread samples its
RSS with psutil every 5 ms. Reported: RSS before the run (imports + model loaded), peak RSS during the run, and
the file size; the growth stays far below the file size because at most ``prefetch + 1 + max(lanes, 1 +
postprocess_threads)`` batches are ever held.

Backends: ``--backend ndpd`` (default; the YOLOv8n detector, shipped weights or ``--weights``; falls back to
``template`` with a message if no weights can be loaded) or ``--backend template`` (py4DSTEM template matching,
``find_Bragg_disks`` with a synthetic-probe sigmoid kernel, sub-pixel ``poly``).

Writes ``benchmarks/results/throughput.json`` and ``benchmarks/out/throughput.png``.

Usage::

    python benchmarks/bench_throughput.py                        # 16 x 16 scan, 256 px, ndpd
    python benchmarks/bench_throughput.py --sizes 256 512 --scan 32 32 --memory-budget-mb 512
    python benchmarks/bench_throughput.py --quick                # 4 x 4 scan, 128 px: checks that it all runs
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _machine import machine_info  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

logger = logging.getLogger("bench_throughput")


# -- backends -------------------------------------------------------------------------------------------------------
class TemplateBackend:
    """py4DSTEM template matching as an engine backend (``find_Bragg_disks`` on each batch).

    Parameters
    ----------
    disk_radius : float
        Disk radius, px (sets the synthetic probe and the sigmoid kernel radii 1.2 r, 3 r).
    pattern_shape : (int, int)
    threshold_rel : float
        py4DSTEM ``minRelativeIntensity``.
    subpixel : str
        py4DSTEM ``subpixel`` (``"poly"`` is the fast one).
    """

    def __init__(self, disk_radius: float = 4.0, pattern_shape: tuple[int, int] = (256, 256),
                 threshold_rel: float = 0.005, subpixel: str = "poly") -> None:
        import py4DSTEM

        self.disk_radius = float(disk_radius)
        self.pattern_shape = tuple(int(s) for s in pattern_shape)
        self.threshold_rel = float(threshold_rel)
        self.subpixel = subpixel
        r = self.disk_radius
        probe = py4DSTEM.Probe.generate_synthetic_probe(radius=r, width=0.5, Qshape=self.pattern_shape)
        origin = (self.pattern_shape[0] / 2, self.pattern_shape[1] / 2)
        self.kernel = probe.get_kernel(mode="sigmoid", origin=origin, radii=(1.2 * r, 3.0 * r), bilinear=False)

    def params(self) -> dict:
        return {"disk_radius": self.disk_radius, "pattern_shape": self.pattern_shape,
                "threshold_rel": self.threshold_rel, "subpixel": self.subpixel}

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        from py4DSTEM.braggvectors.diskdetection import find_Bragg_disks

        from py4dstem_ndpd.peaks import make_peaks

        r = self.disk_radius
        with contextlib.redirect_stderr(io.StringIO()):  # py4DSTEM's own progress bars
            found = find_Bragg_disks(np.asarray(frames, dtype=np.float64), self.kernel, corrPower=1.0, sigma_cc=0,
                                     subpixel=self.subpixel, minRelativeIntensity=self.threshold_rel,
                                     minPeakSpacing=2 * r, edgeBoundary=max(1, int(r)), maxNumPeaks=200)
        if not isinstance(found, list):
            found = [found]
        return [make_peaks(q.data["qx"], q.data["qy"], q.data["intensity"]) for q in found]


def make_backend(kind: str, weights: str | None, pattern_shape: tuple[int, int], disk_radius: float,
                 refine: str = "lattice"):
    """``(backend_cls, params, name)``; ``ndpd`` falls back to ``template`` when no weights can be loaded."""
    if kind == "ndpd":
        from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend
        from py4dstem_ndpd.exceptions import ModelLoadError

        params = {"weights": weights, "options": DetectOptions(batch_size=256, refine=refine)}
        try:
            NDPDBackend(**params)
            return NDPDBackend, params, "ndpd"
        except ModelLoadError as e:
            logger.warning("ndpd backend unavailable (%s); falling back to --backend template", e)
        except ImportError as e:
            logger.warning("ndpd backend cannot be imported (%s); falling back to --backend template", e)
    return (TemplateBackend, {"disk_radius": disk_radius, "pattern_shape": tuple(pattern_shape)}, "template")


# -- data -----------------------------------------------------------------------------------------------------------
def write_scan(path: Path, scan_shape: tuple[int, int], size: int, seed: int = 0) -> float:
    """Simulate a Si/SiGe scan and write it to ``path`` (dataset ``/data``, one pattern per chunk).

    Returns the disk radius in px.
    """
    import h5py

    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    acq = Acquisition(scan_shape=scan_shape, pattern_shape=(size, size), dose=1e6, seed=seed)
    scan = simulate_preset("si_sige_multilayer", acq)
    data = np.asarray(scan.datacube.data, dtype=np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data, chunks=(1, 1, size, size))
    return float(scan.truth.disk_radius)


def write_big_file(path: Path, small: Path, min_bytes: int) -> tuple[tuple[int, int], int]:
    """An HDF5 file of at least ``min_bytes`` made by tiling the scan of ``small`` along rx, written row by row."""
    import h5py

    with h5py.File(small, "r") as f:
        tile = f["data"][()]
    rx, ry, qx, qy = tile.shape
    row_bytes = ry * qx * qy * tile.itemsize
    n_rx = max(rx, -(-min_bytes // row_bytes))
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("data", shape=(n_rx, ry, qx, qy), dtype=tile.dtype, chunks=(1, 1, qx, qy))
        for i in range(n_rx):
            ds[i] = tile[i % rx]
    return (n_rx, ry), os.path.getsize(path)


# -- measurements ---------------------------------------------------------------------------------------------------
def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    return min(_timed(fn) for _ in range(repeats))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_size(path: Path, n: int, backend_cls, params: dict, batch_size: int, repeats: int,
               worker_counts: list[int]) -> dict:
    """Rates (patterns/s) of sync, async and distributed runs over the file ``path`` of ``n`` patterns."""
    from py4dstem_ndpd.engine import ClusterSpec, DistributedOptions, EngineOptions, open_client, run_scan
    from py4dstem_ndpd.engine.distributed import run_distributed

    backend = backend_cls(**params)
    out: dict = {}
    # in this process: the cases take turns, so that a slow spell of the machine hits them alike
    cases = {"sync": {"mode": "sync"}, "async": {"mode": "async"}, "async_1_lane": {"mode": "async", "lanes": 1}}
    walls: dict = {c: [] for c in cases}
    stages: dict = {c: {} for c in cases}
    for r in range(repeats + 1):  # the first round is the warm-up
        for case, kw in cases.items():
            opts = EngineOptions(batch_size=batch_size, progress=False, chunk_size=n, **kw)
            t = time.perf_counter()
            stages[case] = dict(run_scan(str(path), backend, options=opts).timings)
            if r:
                walls[case].append(time.perf_counter() - t)
    for case in cases:
        wall = min(walls[case])
        out[case] = {"patterns_per_s": n / wall, "wall_s": wall, "stages_s_last_run": stages[case]}
        logger.info("  %-12s %8.1f patterns/s", case, n / wall)
    from py4dstem_ndpd.engine import BatchRunner

    out["async_lanes"] = BatchRunner(backend, EngineOptions(mode="async")).lanes()
    if hasattr(backend, "_forward"):
        out.update(bench_floor_and_template(path, n, backend, batch_size, repeats))
    for k in worker_counts:
        chunk = max(batch_size, -(-n // (4 * k)) // batch_size * batch_size)
        opts = DistributedOptions(engine=EngineOptions(batch_size=batch_size, chunk_size=chunk, progress=False))
        spec = ClusterSpec(kind="local", n_workers=k, threads_per_worker=1,
                           options={"env": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}})
        with open_client(spec) as client:
            wall = best_of(lambda: run_distributed(str(path), backend_cls, params, client, options=opts), repeats)
        out[f"dask_{k}_workers"] = {"patterns_per_s": n / wall, "wall_s": wall, "chunk_size": chunk}
        logger.info("  dask x%d %7.1f patterns/s", k, n / wall)
    return out


def network_only(frames: np.ndarray, backend, batch_size: int, repeats: int) -> dict:
    """The network's forward passes alone on ``frames`` (N, Qx, Qy): batches of ``batch_size`` normalised and
    resized beforehand, best of ``repeats`` after a warm-up; on CUDA the device is synchronised before the clock
    stops."""
    from py4dstem_ndpd.detect.backend import _resize_batch
    from py4dstem_ndpd.detect.preprocess import normalize

    batches = [_resize_batch(normalize(frames[i : i + batch_size]), backend.imgsz)[0]
               for i in range(0, len(frames), batch_size)]

    def run():
        for x in batches:
            backend._forward(x)
        if getattr(getattr(getattr(backend, "model", None), "device", None), "type", "cpu") == "cuda":
            import torch

            torch.cuda.synchronize()

    wall = best_of(run, repeats)
    return {"patterns_per_s": len(frames) / wall, "wall_s": wall, "batch_size": batch_size}


def bench_floor_and_template(path: Path, n: int, backend, batch_size: int, repeats: int) -> dict:
    """Two references for the NDPD rates, on the same patterns in this process.

    * ``network_only``: the network's forward passes alone (torch's threads, batches of ``batch_size``
      normalised and resized beforehand, from memory): what the network alone costs per pattern here.
    * ``template_matching``: py4DSTEM template matching at its most accurate settings
      (:func:`py4dstem_ndpd.baseline.template_matching`, ``TemplateOptions.accurate()``: multicorr, upsampling
      16), the baseline of the throughput target, timed as its ``seconds`` (disk detection, from memory).
    """
    import h5py
    import py4DSTEM

    from py4dstem_ndpd.baseline import TemplateOptions, template_matching

    with h5py.File(path, "r") as f:
        data = np.asarray(f["data"][...], np.float32)
    frames = data.reshape((-1,) + data.shape[2:])
    out = {"network_only": network_only(frames, backend, batch_size, repeats)}
    logger.info("  %-12s %8.1f patterns/s", "network only", out["network_only"]["patterns_per_s"])
    dc = py4DSTEM.DataCube(data=data)
    seconds = []
    for _ in range(repeats):
        seconds.append(template_matching(dc, options=TemplateOptions.accurate()).seconds)
    out["template_matching"] = {"patterns_per_s": n / min(seconds), "wall_s": min(seconds),
                                "settings": "TemplateOptions.accurate()"}
    logger.info("  %-12s %8.1f patterns/s", "template", n / min(seconds))
    return out


def stream_child(args) -> None:
    """In a child process: stream a big file with run_scan(async) while sampling RSS; print JSON."""
    import psutil

    from py4dstem_ndpd.engine import EngineOptions, run_scan

    proc = psutil.Process()
    spec = json.loads(args.stream_child)
    backend_cls, params, name = make_backend(spec["backend"], spec["weights"], tuple(spec["pattern_shape"]),
                                             spec["disk_radius"], spec["refine"])
    backend = backend_cls(**params)
    from py4dstem_ndpd.engine import H5Source

    warm = H5Source(spec["path"])
    backend.detect(warm.read(0, spec["batch_size"]))  # the model's own buffers are allocated before the baseline
    warm.close()
    before = proc.memory_info().rss
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample():
        t0 = time.perf_counter()
        while not done.is_set():
            samples.append((time.perf_counter() - t0, proc.memory_info().rss))
            time.sleep(0.005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t = time.perf_counter()
    res = run_scan(spec["path"], backend, options=EngineOptions(batch_size=spec["batch_size"], progress=False))
    wall = time.perf_counter() - t
    done.set()
    th.join()
    peak = max(r for _, r in samples + [(0, before)])
    print(json.dumps({
        "backend": name, "rss_before_bytes": before, "rss_peak_bytes": peak, "rss_growth_bytes": peak - before,
        "patterns": len(res.peaks), "wall_s": wall, "patterns_per_s": len(res.peaks) / wall,
        "rss_timeline": [(round(a, 3), b) for a, b in samples[:: max(1, len(samples) // 400)]],
    }))


def bench_memory(path: Path, budget: int, args, pattern_shape, disk_radius: float, backend: str) -> dict:
    scan_shape, nbytes = write_big_file(path.with_name("big.h5"), path, 2 * budget)
    spec = {"path": str(path.with_name("big.h5")), "backend": backend, "weights": args.weights,
            "pattern_shape": list(pattern_shape), "disk_radius": disk_radius, "batch_size": args.batch_size,
            "refine": args.refine}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cp = subprocess.run([sys.executable, __file__, "--stream-child", json.dumps(spec)], capture_output=True,
                        text=True, env=env, check=False)
    if cp.returncode != 0:
        raise RuntimeError(f"streaming child failed:\n{cp.stderr[-3000:]}")
    res = json.loads(cp.stdout.strip().splitlines()[-1])
    res.update({"file_bytes": nbytes, "memory_budget_bytes": budget, "scan_shape": list(scan_shape),
                "batch_size": args.batch_size})
    logger.info("  streamed %.0f MB: RSS %.0f -> peak %.0f MB (+%.1f MB), %.1f patterns/s", nbytes / 2**20,
                res["rss_before_bytes"] / 2**20, res["rss_peak_bytes"] / 2**20, res["rss_growth_bytes"] / 2**20,
                res["patterns_per_s"])
    return res


# -- report ---------------------------------------------------------------------------------------------------------
def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    cases = [c for c in ("sync", "async", "async_1_lane", "dask_1_workers", "dask_2_workers", "network_only",
                         "template_matching")
             if any(c in r for r in results["throughput"].values())]
    sizes = list(results["throughput"])
    w = 0.8 / max(1, len(sizes))
    for i, s in enumerate(sizes):
        vals = [results["throughput"][s].get(c, {}).get("patterns_per_s", 0) for c in cases]
        ax1.bar(np.arange(len(cases)) + i * w, vals, w, label=f"{s} px")
    ax1.set_xticks(np.arange(len(cases)) + w * (len(sizes) - 1) / 2)
    ax1.set_xticklabels([c.replace("dask_", "dask ").replace("_workers", " wk").replace("network_only", "network\nalone")
                         .replace("template_matching", "template\nmatching").replace("async_1_lane", "async\n1 lane")
                         for c in cases], fontsize=8)
    ax1.set_ylabel("patterns / s (end to end; network alone: forward passes only)")
    ax1.set_title(f"throughput, backend {results['settings']['backend']}")
    ax1.legend()
    mem = results.get("memory")
    if mem:
        t, rss = zip(*mem["rss_timeline"]) if mem["rss_timeline"] else ([0], [mem["rss_before_bytes"]])
        ax2.plot(t, np.array(rss) / 2**20, label="RSS while streaming")
        ax2.axhline(mem["rss_before_bytes"] / 2**20, ls=":", c="gray", label="RSS before the run")
        ax2.axhline((mem["rss_before_bytes"] + mem["file_bytes"]) / 2**20, ls="--", c="r",
                    label="before + file size")
        ax2.set_xlabel("s")
        ax2.set_ylabel("MB")
        ax2.set_title(f"streaming a {mem['file_bytes'] / 2**20:.0f} MB HDF5 file")
        ax2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("ndpd", "template"), default="ndpd")
    ap.add_argument("--weights", default=None, help="detector weights for --backend ndpd (default: shipped)")
    ap.add_argument("--refine", choices=("lattice", "autocorrelation", "probe", "none"), default="lattice",
                    help="NDPD refinement (default lattice, the package default)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256], help="pattern sizes, px")
    ap.add_argument("--scan", type=int, nargs=2, default=[16, 16], metavar=("RX", "RY"))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="Dask worker counts to compare")
    ap.add_argument("--memory-budget-mb", type=float, default=256.0,
                    help="stream a file of twice this size and report the RSS (0 skips)")
    ap.add_argument("--quick", action="store_true", help="4 x 4 scan of 128 px, 1 repeat, 8 MB budget")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "throughput.json"))
    ap.add_argument("--plot", default=str(ROOT / "benchmarks" / "out" / "throughput.png"))
    ap.add_argument("--stream-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if args.stream_child:
        stream_child(args)
        return
    if args.quick:
        args.sizes, args.scan, args.repeats, args.memory_budget_mb = [128], [4, 4], 1, 8.0
        args.batch_size = min(args.batch_size, 8)

    results: dict = {"benchmark": "engine throughput", "date": _dt.datetime.now().isoformat(timespec="seconds"),
                     "machine": machine_info(), "throughput": {}}
    n = args.scan[0] * args.scan[1]
    with tempfile.TemporaryDirectory(prefix="ndpd-bench-") as tmp:
        used, radii = None, {}
        for size in args.sizes:
            path = Path(tmp) / f"scan_{size}.h5"
            radius = radii[size] = write_scan(path, tuple(args.scan), size)
            backend_cls, params, used = make_backend(args.backend, args.weights, (size, size), radius,
                                                     args.refine)
            logger.info("%d x %d px, %d patterns, backend %s:", size, size, n, used)
            results["throughput"][str(size)] = bench_size(path, n, backend_cls, params, args.batch_size,
                                                          args.repeats, args.workers)
        results["settings"] = {"backend": used, "requested_backend": args.backend, "weights": args.weights,
                               "refine": args.refine, "scan_shape": args.scan, "batch_size": args.batch_size,
                               "repeats": args.repeats, "sizes": args.sizes, "workers": args.workers,
                               "quick": args.quick}
        if args.memory_budget_mb > 0:
            size = args.sizes[0]
            path = Path(tmp) / f"scan_{size}.h5"
            results["memory"] = bench_memory(path, int(args.memory_budget_mb * 2**20), args, (size, size),
                                             radii[size], used)
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    plot(results, Path(args.plot))
    logger.info("wrote %s and %s", out, args.plot)


if __name__ == "__main__":
    main()
