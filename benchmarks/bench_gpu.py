"""One short run on a GPU machine: the CUDA/AMP path checked against the CPU, and end-to-end patterns/s.

Made for the workplace's lent GPU machine (one H200, 15 minutes of device time per session, no network, its own
Python with torch and numpy 2 but without py4DSTEM or Dask): there it needs only this package, torch, ultralytics
and the scientific stack. The simulator builds py4DSTEM DataCubes, so the patterns are simulated here first
(``--prepare FILE``: an HDF5 file of about 1.4 MB with the check scan, its truth and the frames tiled for the
throughput) and read there (``--inputs FILE``). Stages, each timed and written to the JSON as it finishes, so that
a run cut short still reports what it measured:

1. ``check``: a simulated Si/SiGe scan (``--check-scan``, default 4 x 4 at ``--size``) detected on the CPU and on
   the GPU with AMP fp16: recall, precision and centre RMS against the truth for both, and the detection counts
   (the issue's test ``test_cuda_amp_matches_cpu`` asks for counts within 1 %);
2. ``batch``: the batch size chosen from free device memory (``batch_size=None``);
3. ``throughput``: end-to-end ``run_scan`` (numpy array in memory -> ScanPeaks) in ``mode="sync"`` and
   ``mode="async"``, best of ``--repeats`` after a warm-up, on ``--patterns`` patterns (the simulated scan tiled);
   and the network's forward passes alone on the same patterns (batches prepared beforehand), the ceiling.

    python benchmarks/bench_gpu.py --prepare .gpu/inputs.h5            # here: simulate (512 px)
    python benchmarks/bench_gpu.py --inputs .gpu/inputs.h5 --out gpu.json      # there: device cuda
    python benchmarks/bench_gpu.py --device cpu --size 128 --patterns 64 --out /tmp/gpu.json   # checks it runs

``scripts/device_check.sh`` does both halves (the wheels, the inputs, and the command for the device).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _machine(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "cuda": torch.version.cuda, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def _scores(peaks, truth) -> dict:
    from py4dstem_ndpd.evaluate import evaluate_detections

    m = evaluate_detections(peaks, truth, min_snr=3.0).to_dict()
    return {k: m[k] for k in ("recall", "precision", "error_rms", "n_true", "n_detected")}


def simulate_inputs(args) -> tuple[np.ndarray, object, np.ndarray]:
    """The check scan (Rx, Ry, Qx, Qy), its ScanTruth, and 16 frames (16, Qx, Qy) to tile for the throughput."""
    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    shape = (args.size, args.size)
    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=tuple(args.check_scan), pattern_shape=shape,
                                                             dose=1e5, seed=2))
    seed = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(4, 4), pattern_shape=shape, dose=1e5,
                                                             seed=3))
    return np.asarray(scan.data), scan.truth, np.asarray(seed.data).reshape((-1,) + shape)


def prepare(path: str, args) -> None:
    """Write :func:`simulate_inputs` to an HDF5 file for a machine without py4DSTEM."""
    import h5py

    data, truth, frames = simulate_inputs(args)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("check", data=data, compression="gzip")
        truth.to_h5(f.create_group("truth"))
        f.create_dataset("frames", data=frames, compression="gzip")
    print(f"wrote {path} ({Path(path).stat().st_size / 1e6:.1f} MB)")


def load_inputs(args):
    if args.inputs is None:
        return simulate_inputs(args)
    import h5py

    from py4dstem_ndpd.synth.truth import ScanTruth

    with h5py.File(args.inputs, "r") as f:
        return f["check"][()], ScanTruth.from_h5(f["truth"]), f["frames"][()]


def check(args, out: dict, inputs) -> None:
    """Stage 1: the same scan on the CPU (float32) and on ``args.device`` with AMP."""
    from py4dstem_ndpd.api import detect_scan
    from py4dstem_ndpd.detect.backend import DetectOptions

    data, truth, _ = inputs
    res = {}
    runs = (("cpu", DetectOptions(device="cpu")), (args.device, DetectOptions(device=args.device, amp=True)))
    for name, opts in runs:
        t = time.perf_counter()
        peaks = detect_scan(data, options=opts, progress=False)
        res[name] = dict(_scores(peaks, truth), n_peaks=int(peaks.n_peaks), seconds=time.perf_counter() - t)
    a, b = res["cpu"]["n_peaks"], res[args.device]["n_peaks"]
    res["counts_within_1_percent"] = bool(abs(a - b) <= 0.01 * a)
    out["check"] = res


def batch(args, out: dict, inputs) -> int:
    """Stage 2: the batch size the backend picks on ``args.device``."""
    from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend

    be = NDPDBackend(None, DetectOptions(device=args.device, amp=args.device != "cpu"))
    bs = int(be.preferred_batch_size())
    out["batch"] = {"preferred_batch_size": bs, "imgsz": int(be.imgsz)}
    return bs


def throughput(args, out: dict, inputs) -> None:
    """Stage 3: end-to-end sync and async, and the network alone, on ``args.patterns`` patterns."""
    from bench_throughput import network_only
    from py4dstem_ndpd.detect.backend import DetectOptions, NDPDBackend
    from py4dstem_ndpd.engine import EngineOptions, run_scan

    frames = np.asarray(inputs[2], np.float32)
    size = frames.shape[-1]
    side = int(np.sqrt(args.patterns))
    reps = -(-(side * side) // len(frames))
    data = np.tile(frames, (reps, 1, 1))[: side * side].reshape(side, side, size, size)
    n = side * side
    be = NDPDBackend(None, DetectOptions(device=args.device, amp=args.device != "cpu"))
    res = {"patterns": n, "pattern_shape": [size, size]}
    for mode in ("sync", "async"):
        opts = EngineOptions(mode=mode, progress=False)
        run_scan(data[:2], be, options=opts)  # warm-up (CUDA context, cuDNN autotune, allocator)
        walls = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            peaks = run_scan(data, be, options=opts)
            walls.append(time.perf_counter() - t)
        res[mode] = {"patterns_per_s": n / min(walls), "wall_s": min(walls), "n_peaks": int(peaks.n_peaks),
                     "timings": {k: float(v) for k, v in peaks.timings.items() if isinstance(v, (int, float))}}
        out["throughput"] = res
        _write(args, out)
    bs = out.get("batch", {}).get("preferred_batch_size", 32)
    res["network_only"] = network_only(data.reshape((-1, size, size)), be, bs, args.repeats)
    res["async_over_sync"] = res["async"]["patterns_per_s"] / res["sync"]["patterns_per_s"]
    res["async_over_network"] = res["async"]["patterns_per_s"] / res["network_only"]["patterns_per_s"]
    out["throughput"] = res


def _write(args, out: dict) -> None:
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--patterns", type=int, default=4096)
    p.add_argument("--check-scan", type=int, nargs=2, default=[4, 4])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu.json"))
    p.add_argument("--prepare", metavar="FILE", help="simulate the inputs into FILE (HDF5) and stop")
    p.add_argument("--inputs", metavar="FILE", help="read the inputs from FILE (made by --prepare)")
    args = p.parse_args()
    if args.prepare:
        prepare(args.prepare, args)
        return
    out = {"benchmark": "gpu", "date": time.strftime("%Y-%m-%d %H:%M"), "machine": _machine(args.device)}
    t = time.perf_counter()
    inputs = load_inputs(args)
    out["stage_seconds"] = {"inputs": time.perf_counter() - t}
    for name, stage in (("check", check), ("batch", batch), ("throughput", throughput)):
        t = time.perf_counter()
        try:
            stage(args, out, inputs)
        except Exception as e:  # report and go on: a later stage may still work
            out.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"
        out.setdefault("stage_seconds", {})[name] = time.perf_counter() - t
        _write(args, out)
        print(json.dumps({name: out.get(name, out.get("errors", {}).get(name))}, default=float), flush=True)


if __name__ == "__main__":
    main()
