"""The ``ndpd`` command.

Exit codes: 0 success; 1 a documented error (bad input or options, missing weights, unavailable device: the
message says what to do); 2 usage error; 3 the output exists and ``--overwrite`` was not given; 130 interrupted
(finished chunks stay checkpointed; rerun with ``--resume``).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_EXISTS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _detect_options(a):
    from .detect.backend import DetectOptions
    from .refine import RefineOptions

    gain = getattr(a, "gain", None)
    vacuum = getattr(a, "camera_tail_from", None)
    return DetectOptions(conf=a.conf, refine=a.refine, device=a.device, batch_size=a.batch_size,
                         min_snr_off_lattice=None if a.keep_off_lattice else DetectOptions.min_snr_off_lattice,
                         min_snr_empty_sites=getattr(a, "complete_lattice", None),
                         repair_dead_pixels=not getattr(a, "keep_dead_pixels", False),
                         camera_tail=None if vacuum is None else _camera_tail(vacuum),
                         refine_options=None if gain is None else RefineOptions(gain=gain))


def _camera_tail(path: str):
    """The camera tail measured on a vacuum recording (read as :func:`_vacuum_probe` reads one; a stack is
    averaged)."""
    import logging

    from .detect.camera_tail import measure_camera_tail

    tail = measure_camera_tail(_vacuum_probe(path))
    logging.getLogger(__name__).info("camera tail measured on %s: %.1f %% of the signal, decay length %.1f px",
                                     path, 100 * tail.fraction, tail.length_px)
    return tail


def cmd_info(a) -> int:
    import platform

    import numpy
    import py4DSTEM
    import torch

    from . import __version__
    from ._offline import import_ultralytics
    from .detect.model import shipped_weights_path

    ul = import_ultralytics()
    w = shipped_weights_path()
    info = {
        "py4dstem_ndpd": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
        "torch": torch.__version__, "ultralytics": ul.__version__, "py4DSTEM": py4DSTEM.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)",
        "weights": str(w), "weights_present": w.is_file(),
    }
    if w.is_file():
        info["weights_size_MB"] = round(w.stat().st_size / 1e6, 2)
    print(json.dumps(info, indent=2))
    return EXIT_OK


def cmd_simulate(a) -> int:
    from .io.writers import check_writable
    from .synth import Acquisition, save_scan, simulate_preset

    out = check_writable(a.output, a.overwrite)
    acq = Acquisition(scan_shape=tuple(a.scan), pattern_shape=(a.size, a.size), dose=a.dose, seed=a.seed)
    scan = simulate_preset(a.preset, acq, progress=True)
    save_scan(out, scan, overwrite=True)
    print(f"wrote {out}: {scan.data.shape} {scan.data.dtype}, truth included")
    return EXIT_OK


def cmd_detect(a) -> int:
    from .io.writers import check_writable, save_py4dstem

    from .io.readers import load_input

    check_writable(a.output, a.overwrite)
    options = _detect_options(a) if a.backend != "template" else None  # bad options fail before any reading
    data = load_input(a.input, dataset_path=a.dataset, scan_shape=a.scan_shape)
    if a.backend == "template":
        from .baseline import template_matching
        from .io.readers import to_datacube

        if a.weights:
            logging.getLogger("py4dstem_ndpd.cli").warning("--weights is not used by --backend template")

        bv = template_matching(to_datacube(data)).braggvectors
    else:
        from .api import find_Bragg_disks
        from .engine import EngineOptions

        engine = EngineOptions(batch_size=a.batch_size, chunk_size=a.chunk_size, checkpoint_dir=a.checkpoint_dir,
                               resume=a.resume)
        bv = find_Bragg_disks(data, options=options, weights=a.weights, engine=engine,
                              distributed=a.scheduler)
    save_py4dstem(a.output, bv, overwrite=a.overwrite)
    print(f"wrote {a.output}")
    return EXIT_OK


def cmd_train(a) -> int:
    from .training import DatasetSpec, TrainOptions, build_dataset, train

    from .exceptions import ConfigError

    data = Path(a.data) if a.data else Path(a.out) / "data"
    yaml = data / "data.yaml" if data.is_dir() else data
    if not yaml.exists():
        if a.data:  # a dataset the user named is never replaced by a simulated one
            raise ConfigError(f"--data {a.data}: no such data.yaml or dataset folder; give the YOLO dataset to train "
                              "on (e.g. the folder written by pseudo_label), or leave --data out to simulate one.")
        yaml = build_dataset(data, DatasetSpec(n_train=a.n_train, seed=a.seed, randomization=a.randomization))
    best = train(yaml, Path(a.out) / "run", TrainOptions(epochs=a.epochs, hours=a.hours, seed=a.seed,
                                                         weights=a.weights, resume=a.resume, device=a.device_train,
                                                         overwrite=a.overwrite, **({"lr0": a.lr0} if a.lr0 else {})))
    print(f"best weights: {best}")
    return EXIT_OK


def _read_braggvectors(path):
    import py4DSTEM

    from .exceptions import InputError

    try:
        obj = py4DSTEM.read(str(path))
    except Exception as err:  # noqa: BLE001
        raise InputError(f"{path}: cannot read it with py4DSTEM.read ({type(err).__name__}: {err}).") from None
    if type(obj).__name__ != "BraggVectors":
        raise InputError(f"{path} holds a {type(obj).__name__}, not BraggVectors; run `ndpd detect` first.")
    return obj


def _reference(a):
    return tuple(a.reference) if a.reference else None


def cmd_demo(a) -> int:
    from .demo import DemoOptions, run_demo

    opts = DemoOptions.quick() if a.quick else DemoOptions()
    if a.weights:
        from dataclasses import replace

        opts = replace(opts, weights=a.weights)
    s = run_demo(a.output, opts, overwrite=a.overwrite)
    si, tn = s["si_sige_multilayer"], s["tinb_multiphase"]
    print(f"demo written to {a.output}/ in {s['total_s']:.0f} s (report: {a.output}/report.html)")
    print(f"  Si/SiGe: {si['patterns_per_s']:.1f} patterns/s, recall {si['detection']['recall']:.4f}, "
          f"centre RMS {si['detection']['error_rms']:.3f} px, strain precision {si['precision_e_xx_substrate']:.1e}, "
          f"SiGe e_xx {si['mean_e_xx_sige_core']:.5f} (truth {si['truth_e_xx_sige_core']:.5f})")
    print(f"  Ti-Nb:   {tn['patterns_per_s']:.1f} patterns/s, recall {tn['detection']['recall']:.4f}, "
          f"{tn['n_phases']} phases, ARI vs truth {tn['adjusted_rand_index']:.3f}")
    return EXIT_OK


def cmd_strain(a) -> int:
    from .analysis import plot_strain_maps, strain_map
    from .demo import _maps_slice
    from .io.writers import check_writable, save_py4dstem

    out = check_writable(a.output, a.overwrite)
    st = strain_map(_read_braggvectors(a.input), reference=_reference(a))
    save_py4dstem(out, _maps_slice({"e_xx": st.e_xx, "e_yy": st.e_yy, "e_xy": st.e_xy, "theta": st.theta}, "strain"),
                  overwrite=a.overwrite)
    plot_strain_maps(st.e_xx, st.e_yy, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}; precision (std in reference): "
          f"e_xx {st.precision['e_xx']:.2e}, e_yy {st.precision['e_yy']:.2e}")
    return EXIT_OK


def cmd_phase(a) -> int:
    from .analysis import phase_map
    from .demo import _maps_slice
    from .io.writers import check_writable, save_py4dstem

    out = check_writable(a.output, a.overwrite)
    ph = phase_map(_read_braggvectors(a.input), n_phases=a.n_phases)
    save_py4dstem(out, _maps_slice({"phase": ph.labels}, "phase"), overwrite=a.overwrite)
    print(f"wrote {out}: {ph.n_phases} phases")
    for p in ph.phases:
        print(f"  phase {p.label}: {p.fraction:.1%} of positions, |g1| {p.g1:.2f} px, |g2| {p.g2:.2f} px, "
              f"angle {p.angle:.1f} deg, example at {p.representative}")
    return EXIT_OK


def _open_datacube(path, dataset=None, scan_shape=None):
    """DataCube (and truth when the file was written by ``ndpd simulate``)."""
    import h5py

    from .synth.io import TRUTH_GROUP, load_scan

    try:
        with h5py.File(path, "r") as f:
            has_truth = TRUTH_GROUP in f
    except OSError:
        has_truth = False
    if has_truth:
        scan = load_scan(path)
        return scan.datacube, scan.truth
    from .io.readers import load_input, to_datacube

    return to_datacube(load_input(path, dataset_path=dataset, scan_shape=scan_shape)), None


def _vacuum_probe(path: str | None):
    """A vacuum probe for template matching: a ``.npy`` image (Qx, Qy) or stack (N, Qx, Qy), or any 4D file
    ``load_input`` reads (all its patterns). None: template matching takes its probe from the data."""
    if path is None:
        return None
    import numpy as np

    from .exceptions import InputError

    p = Path(path)
    if p.suffix.lower() == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the vacuum probe {p} ({e}); give a .npy image (Qx, Qy) or stack "
                             "(N, Qx, Qy), or a 4D py4DSTEM/EMD/HDF5 file of vacuum patterns.") from None
    from .io.readers import load_input

    arr = np.asarray(load_input(p).array[:])
    return arr.reshape(-1, *arr.shape[-2:])


def cmd_compare(a) -> int:
    from .compare import CompareOptions, compare, write_comparison_report
    from .io.writers import OutputExistsError

    out = Path(a.output)
    if (out / "comparison.json").exists() and not a.overwrite:
        raise OutputExistsError(f"{out} holds a comparison; pass --overwrite to replace it.")
    dc, truth = _open_datacube(a.input, a.dataset, a.scan_shape)
    res = compare(dc, truth=truth, options=CompareOptions(detect=_detect_options(a), weights=a.weights,
                                                          tempo4d=a.tempo4d, vacuum=_vacuum_probe(a.vacuum)))
    summary = write_comparison_report(res, dc, out, truth=truth, reference=_reference(a))
    print(json.dumps({k: summary[k] for k in ("n_patterns", "speedup_ndpd_over_template", "agreement")}, indent=1,
                     default=float))
    print(f"report: {out / 'report.html'}")
    return EXIT_OK


def cmd_bench(a) -> int:
    from .compare import CompareOptions, compare
    from .synth import Acquisition, simulate_preset

    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=tuple(a.scan), pattern_shape=(a.size, a.size),
                                                             dose=a.dose, seed=123))
    res = compare(scan.datacube, truth=scan.truth, options=CompareOptions(detect=_detect_options(a), stages=False,
                                                                          repeats=a.repeats))
    rows = {k: {"patterns_per_s": m.patterns_per_second, "recall": m.metrics.recall,
                "precision": m.metrics.precision, "centre_rms_px": m.metrics.error_rms} for k, m in res.methods.items()}
    print(json.dumps({"patterns": res.n_patterns, "size": a.size, "dose": a.dose, "repeats": a.repeats, "methods": rows,
                      "speedup": res.speedup}, indent=1, default=float))
    return EXIT_OK


def _add_detect_args(p):
    p.add_argument("--weights", default=None, help="weights file (default: the shipped model)")
    p.add_argument("--conf", type=float, default=None,
                   help="confidence threshold in (0, 1) (default: the one stored with the weights, else 0.25)")
    p.add_argument("--refine", choices=["lattice", "autocorrelation", "probe", "none"], default="lattice",
                   help="sub-pixel refinement of the DFL centres (default lattice; see docs/refinement.md)")
    p.add_argument("--keep-off-lattice", action="store_true",
                   help="keep faint detections (SNR < 5) that no fitted lattice indexes (default: drop them; they "
                        "are mostly background noise at low dose)")
    p.add_argument("--keep-dead-pixels", action="store_true",
                   help="do not fill in dead pixels and detector gaps (pixels at 0 in a whole batch between bright "
                        "ones; default: filled by interpolation; see docs/refinement.md)")
    p.add_argument("--complete-lattice", type=float, default=None, metavar="SNR",
                   help="also report disks at empty sites of the fitted lattices whose integrated SNR reaches SNR "
                        "(confidence 0; e.g. 3 for low-dose scans; default: off; see docs/refinement.md)")
    p.add_argument("--camera-tail-from", default=None, metavar="VACUUM",
                   help="vacuum recording of the same camera (.npy image or stack, or a 4D file; averaged): the "
                        "long tail of a scintillator camera's point-spread function is measured on it and taken off "
                        "the data (default: off; see docs/refinement.md)")
    p.add_argument("--gain", type=float, default=None,
                   help="detector counts per electron (default: read from the data; give it for counts multiplied "
                        "by an integer after counting)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="patterns per forward pass (default: 32 on a CPU, from the free memory on a GPU)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ndpd", description="Neural Bragg-disk detection for 4D-STEM (py4DSTEM backend).")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # -v also after the subcommand (`ndpd detect ... -v`); SUPPRESS keeps the main parser's value otherwise
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[verbose], **kw)

    s = command("info", help="versions, device and weights")
    s.set_defaults(func=cmd_info)

    s = command("simulate", help="simulate a scan with ground truth (EMD file)")
    s.add_argument("preset", choices=["si_sige_multilayer", "tinb_multiphase"])
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--scan", type=int, nargs=2, default=[32, 16], metavar=("RX", "RY"))
    s.add_argument("--size", type=int, default=256, help="pattern size, px (square)")
    s.add_argument("--dose", type=float, default=1e6, help="electrons per pattern")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_simulate)

    s = command("detect", help="find Bragg disks in a scan; writes py4DSTEM BraggVectors (EMD)")
    s.add_argument("input", help="py4DSTEM/EMD/HDF5/.npy file")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--backend", choices=["ndpd", "template"], default="ndpd")
    s.add_argument("--scheduler", default=None, help="Dask scheduler address, or 'local'")
    s.add_argument("--dataset", default=None, help="HDF5 dataset path (generic HDF5 files)")
    s.add_argument("--scan-shape", type=int, nargs=2, default=None, metavar=("RX", "RY"),
                   help="scan shape for 3D stacks (Merlin, Dectris...) that do not record it")
    s.add_argument("--chunk-size", type=int, default=1024,
                   help="scan positions per checkpointed chunk (default 1024; best a multiple of --batch-size: "
                        "batches never straddle two chunks)")
    s.add_argument("--checkpoint-dir", default=None, help="keep finished chunks here (resumable)")
    s.add_argument("--resume", action="store_true", help="reuse finished chunks from --checkpoint-dir")
    s.add_argument("--overwrite", action="store_true")
    _add_detect_args(s)
    s.set_defaults(func=cmd_detect)

    s = command("train", help="train or fine-tune the detector offline")
    s.add_argument("--out", default="ndpd-train")
    s.add_argument("--data", default=None, help="YOLO data.yaml or folder (default: simulate one)")
    s.add_argument("--weights", default=None, help="start from these weights (fine-tuning)")
    s.add_argument("--epochs", type=int, default=100)
    s.add_argument("--hours", type=float, default=None)
    s.add_argument("--n-train", type=int, default=2400)
    s.add_argument("--randomization", default="v3", choices=["v1", "v2", "v3", "v4"],
                   help="domain randomisation of the simulated dataset (v2: + dynamical disks, Kikuchi bands, "
                        "integrating cameras; v3: v1 and v2 mixed, + speckled diffuse scattering, more overlapping "
                        "lattices; v4: v3 + scintillator cameras whose point-spread function blurs the noise)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    s.add_argument("--overwrite", action="store_true", help="train again from the start in an --out that holds a run")
    s.add_argument("--lr0", type=float, default=None, help="initial learning rate (default 0.002 with AdamW; the "
                   "fine-tunes in docs/training.md used 0.001)")
    s.add_argument("--device", dest="device_train", default="cpu")
    s.set_defaults(func=cmd_train)

    s = command("demo", help="the main job: simulate Si/SiGe and Ti-Nb, detect, strain, phases, report")
    s.add_argument("-o", "--output", default="ndpd-demo", help="output folder (default ./ndpd-demo)")
    s.add_argument("--quick", action="store_true", help="tiny scans (seconds)")
    s.add_argument("--weights", default=None)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_demo)

    s = command("strain", help="strain map of BraggVectors (EMD) with py4DSTEM's StrainMap")
    s.add_argument("input", help="file with py4DSTEM BraggVectors (from `ndpd detect`)")
    s.add_argument("-o", "--output", required=True, help="EMD file for the maps (a PNG is written beside it)")
    s.add_argument("--reference", type=int, nargs=4, metavar=("RX0", "RX1", "RY0", "RY1"), default=None,
                   help="strain-free reference rectangle (half-open), default: the whole scan")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_strain)

    s = command("phase", help="k-means phase map of BraggVectors (EMD) from interatomic distances")
    s.add_argument("input")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--n-phases", type=int, default=None, help="default: chosen by the silhouette score")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_phase)

    s = command("compare", help="NDPD vs py4DSTEM template matching on the same data, with a report")
    s.add_argument("input", help="py4DSTEM/EMD file (with ground truth if written by `ndpd simulate`)")
    s.add_argument("-o", "--output", default="ndpd-compare", help="report folder")
    s.add_argument("--reference", type=int, nargs=4, metavar=("RX0", "RX1", "RY0", "RY1"), default=None)
    s.add_argument("--dataset", default=None, help="HDF5 dataset path (generic HDF5 files)")
    s.add_argument("--scan-shape", type=int, nargs=2, default=None, metavar=("RX", "RY"))
    s.add_argument("--tempo4d", action="store_true",
                   help="also run the paper authors' released model (pip install --no-deps tempo4d)")
    s.add_argument("--vacuum", default=None, metavar="FILE",
                   help="vacuum probe for template matching: .npy image (Qx, Qy) or stack, or a 4D file of vacuum "
                        "patterns (default: the mean central disk of the data; give one where the direct beam is "
                        "not the brightest disk, e.g. off a zone axis)")
    s.add_argument("--overwrite", action="store_true")
    _add_detect_args(s)
    s.set_defaults(func=cmd_compare)

    s = command("bench", help="quick speed/accuracy check against template matching on simulated data")
    s.add_argument("--scan", type=int, nargs=2, default=[8, 8], metavar=("RX", "RY"))
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--dose", type=float, default=1e6)
    s.add_argument("--repeats", type=int, default=3,
                   help="time both methods this many times, taking turns, and keep each one's fastest (default 3)")
    _add_detect_args(s)
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    from ._offline import configure_offline
    from .exceptions import NDPDError
    from .io.writers import OutputExistsError

    configure_offline()
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(a.func(a) or 0)
    except OutputExistsError as err:
        print(f"ndpd: error: {err}", file=sys.stderr)
        return EXIT_EXISTS
    except NDPDError as err:
        print(f"ndpd: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except FileNotFoundError as err:
        print(f"ndpd: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError:
        print("ndpd: error: out of memory; lower --batch-size (or use `ndpd detect`, which streams)", file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:
        print(f"ndpd: error: {err}. The input may be truncated or corrupt, or the output folder not writable; with "
              "--checkpoint-dir finished chunks are kept (rerun with --resume).", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("ndpd: interrupted; finished chunks are kept in the checkpoint folder (rerun with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
