"""Throughput of the 4D-STEM simulator (``py4dstem_ndpd.synth.simulate``), in patterns per second.

For each preset (``si_sige_multilayer``, ``tinb_multiphase``) and pattern size (256 x 256 and 512 x 512) it
simulates a small scan (16 x 16 and 8 x 8 positions, dose 1e6 electrons per pattern, Poisson noise on) a few
times after one warm-up run and keeps the best run. The sample model is built outside the timed region; the timed
region is :func:`~py4dstem_ndpd.synth.simulate` (rendering, detector, truth, DataCube). Both wall-clock and
process-CPU rates are recorded: on a shared machine the CPU rate is the steadier one.

Writes ``benchmarks/results/simulator.json`` and the plot ``benchmarks/out/simulator.png``.

Usage::

    python benchmarks/bench_simulator.py [--repeats 3] [--quick]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import sys
import time
from pathlib import Path

from _machine import machine_info  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

logger = logging.getLogger("bench_simulator")

CASES = (  # (preset, pattern size, scan shape)
    ("si_sige_multilayer", 256, (16, 16)),
    ("tinb_multiphase", 256, (16, 16)),
    ("si_sige_multilayer", 512, (8, 8)),
    ("tinb_multiphase", 512, (8, 8)),
)


def bench_case(preset: str, size: int, scan_shape: tuple[int, int], repeats: int, workers: int) -> dict:
    """Best-of-``repeats`` rate of one case (one warm-up run first, not timed)."""
    from py4dstem_ndpd.synth import Acquisition, simulate
    from py4dstem_ndpd.synth.presets import PRESETS

    acq = Acquisition(scan_shape=scan_shape, pattern_shape=(size, size), dose=1e6, seed=0)
    sample = PRESETS[preset](acq)
    kw = {"workers": workers} if workers != 1 else {}
    simulate(sample, acq, **kw)  # warm-up: imports, caches, page faults of the first allocation
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        scan = simulate(sample, acq, **kw)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    n = scan_shape[0] * scan_shape[1]
    res = {
        "preset": preset,
        "pattern_shape": [size, size],
        "scan_shape": list(scan_shape),
        "patterns": n,
        "workers": workers,
        "repeats": repeats,
        "wall_s": walls,
        "cpu_s": cpus,
        "patterns_per_s": n / min(walls),
        "patterns_per_cpu_s": n / min(cpus),
        "disks_per_pattern": float(len(scan.truth.disks) / n),
    }
    logger.info(
        "%-20s %4d px %2dx%-2d  %7.1f patterns/s (wall)  %7.1f patterns/CPU-s",
        preset, size, *scan_shape, res["patterns_per_s"], res["patterns_per_cpu_s"],
    )
    return res


def plot(results: list[dict], path: Path, before: list[dict] | None = None) -> None:
    """Bar chart of patterns/s per case (with the earlier version's rates as markers when given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['preset']}\n{r['pattern_shape'][0]} px" for r in results]
    x = range(len(results))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar([i - 0.2 for i in x], [r["patterns_per_s"] for r in results], width=0.4, label="wall clock")
    ax.bar([i + 0.2 for i in x], [r["patterns_per_cpu_s"] for r in results], width=0.4, label="per CPU second")
    if before:
        old = {(b["preset"], tuple(b["pattern_shape"])): b for b in before}
        for i, r in enumerate(results):
            b = old.get((r["preset"], tuple(r["pattern_shape"])))
            if b is not None:
                ax.plot([i - 0.2], [b["patterns_per_s"]], "kv", ms=6, label="before (wall)" if i == 0 else None)
                ax.plot([i + 0.2], [b["patterns_per_cpu_s"]], "k^", ms=6, label="before (CPU)" if i == 0 else None)
    ax.axhline(200, color="k", lw=0.8, ls="--", label="target at 256 px")
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set_ylabel("patterns / s")
    ax.set_title("py4dstem_ndpd.synth.simulate throughput (1 thread)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (best kept)")
    parser.add_argument("--workers", type=int, default=1, help="threads counting patterns (simulate(workers=))")
    parser.add_argument("--quick", action="store_true", help="one timed run per case, 256 px only")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "simulator.json")
    parser.add_argument("--png", type=Path, default=ROOT / "benchmarks" / "out" / "simulator.png")
    parser.add_argument(
        "--before", type=Path, default=None,
        help="JSON written by this script for an earlier version: stored under 'before', with the speed-ups",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    cases = [c for c in CASES if not args.quick or c[1] == 256]
    repeats = 1 if args.quick else args.repeats
    info = machine_info()
    results = [bench_case(p, s, shape, repeats, args.workers) for p, s, shape in cases]
    out = {
        "benchmark": "simulator",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_simulator.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
        "settings": {
            "dose": 1e6, "noise": True, "seed": 0, "workers": args.workers,
            "timed": "simulate(sample, acq) incl. truth and DataCube; sample model built once outside",
            "warm_up": "one untimed run per case", "statistic": "best of repeats",
        },
        "machine": info,
        "results": results,
    }
    if args.before is not None:
        before = json.loads(args.before.read_text())
        out["before"] = {"source": str(args.before), "git_commit": before["machine"].get("git_commit"),
                         "date": before.get("date"),
                         "load_average_1min_at_start": before["machine"].get("load_average_1min_at_start"),
                         "results": before["results"]}
        for r in results:
            for b in before["results"]:
                if (b["preset"], b["pattern_shape"]) == (r["preset"], r["pattern_shape"]):
                    r["speedup_wall"] = r["patterns_per_s"] / b["patterns_per_s"]
                    r["speedup_cpu"] = r["patterns_per_cpu_s"] / b["patterns_per_cpu_s"]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    plot(results, args.png, out.get("before", {}).get("results"))
    logger.info("wrote %s and %s", args.json, args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
