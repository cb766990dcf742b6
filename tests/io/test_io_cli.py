"""The ``ndpd`` command with bad inputs: a message and exit code 1, never a traceback; outputs are never replaced
without --overwrite (exit 3); Ctrl-C leaves resumable checkpoints and --resume gives the uninterrupted result."""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import py4DSTEM
import pytest

from py4dstem_ndpd.cli import EXIT_ERROR, EXIT_EXISTS, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, build_parser, main

REPO = Path(__file__).resolve().parents[2]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _run(capsys, args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture(scope="module")
def small_npy(tmp_path_factory):
    """A 4 x 2 simulated scan of 64 x 64 patterns as .npy."""
    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(4, 2), pattern_shape=(64, 64), dose=1e5,
                                                             seed=5))
    p = tmp_path_factory.mktemp("cli") / "small.npy"
    np.save(p, np.asarray(scan.data))
    return p


@pytest.mark.parametrize(
    "case, extra, match",
    [
        ("truncated", [], r"not a readable HDF5/EMD file.*truncated"),
        ("wrong_dataset", ["--dataset", "/nope"], r"'/nope' is not in the file.*--dataset"),
        ("text", [], r"not a file format ndpd reads\. Supported"),
        ("directory", [], "is a directory"),
        ("missing", [], "no such file"),
        ("three_d", [], r"got 3D.*scan_shape"),
        ("nan", [], "contains NaN or Inf"),
        ("good", ["--batch-size", "0"], r"batch_size must be (> 0|an integer >= 1)"),
        ("good", ["--conf", "1.5"], r"conf must be in \(0, 1\)"),
        ("good", ["--device", "tpu"], "unknown device 'tpu'"),
        ("good", ["--weights", "missing.pt"], "weights not found"),
    ],
)
def test_detect_input_errors_are_messages(tmp_path, capsys, case, extra, match):
    p = tmp_path / "in.h5"
    if case in ("truncated", "wrong_dataset", "good"):
        with h5py.File(p, "w") as f:
            f["scan"] = np.ones((2, 2, 32, 32), np.uint16)
        if case == "truncated":
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif case == "text":
        p = tmp_path / "in.txt"
        p.write_text("not data\n")
    elif case == "directory":
        p = tmp_path
    elif case == "missing":
        p = tmp_path / "missing.h5"
    elif case == "three_d":
        p = tmp_path / "in.npy"
        np.save(p, np.ones((4, 32, 32), np.uint16))
    elif case == "nan":
        p = tmp_path / "in.npy"
        np.save(p, np.full((1, 2, 32, 32), np.nan, np.float32))
    extra = [str(tmp_path / e) if e.endswith(".pt") else e for e in extra]
    out = tmp_path / "out.h5"
    code, err = _run(capsys, ["detect", p, "-o", out, *extra])
    assert code == EXIT_ERROR, err
    assert "ndpd: error: " in err
    assert re.search(match, err), err
    assert not out.exists()


def test_unknown_backend_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["detect", str(tmp_path / "x.h5"), "-o", str(tmp_path / "o.h5"), "--backend", "magic"])
    assert e.value.code == EXIT_USAGE
    assert "invalid choice: 'magic'" in capsys.readouterr().err


def test_corrupt_chunk_mid_run_is_a_message(tmp_path, capsys):
    p = tmp_path / "c.h5"
    x = np.random.default_rng(0).integers(0, 1000, (2, 4, 32, 32)).astype(np.uint16)
    with h5py.File(p, "w") as f:
        f.create_dataset("d", data=x, chunks=(1, 1, 32, 32), compression="gzip")
        info = f["d"].id.get_chunk_info(5)
    b = bytearray(p.read_bytes())
    b[info.byte_offset: info.byte_offset + info.size] = b"\xff" * info.size
    p.write_bytes(bytes(b))
    code, err = _run(capsys, ["detect", p, "-o", tmp_path / "o.h5", "--batch-size", "4"])
    assert code == EXIT_ERROR and "corrupt" in err


def test_outputs_are_never_overwritten_without_flag(tmp_path, capsys, small_npy):
    sim, bv, strain = tmp_path / "sim.h5", tmp_path / "bv.h5", tmp_path / "strain.h5"
    for p in (sim, bv, strain):
        p.write_bytes(b"precious results")
    before = {p: _sha(p) for p in (sim, bv, strain)}
    real_bv = tmp_path / "real_bv.h5"
    assert _run(capsys, ["detect", small_npy, "-o", real_bv, "--batch-size", "4", "--refine", "none"])[0] == EXIT_OK
    runs = [
        ["simulate", "si_sige_multilayer", "-o", sim, "--scan", "2", "2", "--size", "64"],
        ["detect", small_npy, "-o", bv, "--batch-size", "4"],
        ["strain", real_bv, "-o", strain],
    ]
    for args in runs:
        code, err = _run(capsys, args)
        assert code == EXIT_EXISTS and "--overwrite" in err, (args, err)
    assert {p: _sha(p) for p in (sim, bv, strain)} == before
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("*.tmp"))
    # with --overwrite the output is replaced by a real result
    code, _ = _run(capsys, ["detect", small_npy, "-o", bv, "--batch-size", "4", "--refine", "none", "--overwrite"])
    assert code == EXIT_OK and type(py4DSTEM.read(str(bv))).__name__ == "BraggVectors"


def _has_chunk_size() -> bool:
    try:
        build_parser().parse_args(["detect", "x", "-o", "y", "--chunk-size", "8"])
    except SystemExit:
        return False
    return True


@pytest.mark.skipif(not _has_chunk_size(), reason="needs `ndpd detect --chunk-size` (see the io report)")
def test_ctrl_c_then_resume_gives_the_uninterrupted_result(tmp_path):
    """SIGINT to a real `ndpd detect` process after its first checkpointed chunk: exit 130, no output, finished
    chunks kept; `--resume` completes the scan and gives exactly the BraggVectors of an uninterrupted run."""
    from py4dstem_ndpd.synth import Acquisition, simulate_preset

    scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(8, 8), pattern_shape=(64, 64), dose=1e5,
                                                             seed=11))
    inp = tmp_path / "scan.npy"
    np.save(inp, np.asarray(scan.data))
    full, out, ck = tmp_path / "full.h5", tmp_path / "out.h5", tmp_path / "ck"
    # The same thread count in every run: float reductions in torch differ in the last bit between thread counts
    # (and importing ultralytics sets OMP_NUM_THREADS=1 for child processes if it is unset).
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    base = [sys.executable, "-m", "py4dstem_ndpd.cli", "detect", str(inp), "--batch-size", "4", "--chunk-size", "8",
            "--refine", "none"]
    r = subprocess.run(base + ["-o", str(full)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == EXIT_OK, r.stderr
    cmd = base + ["-o", str(out), "--checkpoint-dir", str(ck)]
    # SIGINT back to its default in the child: a shell that starts a job in the background (`cmd &` in a script)
    # leaves SIGINT ignored, the children inherit that, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list(ck.glob("chunk-*.npz")):
            assert proc.poll() is None, f"finished before the first chunk: {proc.communicate()}"
            assert time.monotonic() < deadline, "no checkpoint chunk after 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "rerun with --resume" in err and "Traceback" not in err
    assert not out.exists()
    done = sorted(ck.glob("chunk-*.npz"))
    assert 1 <= len(done) < 8, f"{len(done)} of 8 chunks: the run was not interrupted mid-way"

    r = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == EXIT_OK, r.stderr
    a, b = py4DSTEM.read(str(full)), py4DSTEM.read(str(out))
    assert a.Rshape == b.Rshape == (8, 8)
    for rx in range(8):
        for ry in range(8):
            np.testing.assert_array_equal(a.raw[rx, ry].data, b.raw[rx, ry].data)


def test_output_must_be_an_emd_file_and_verbose_goes_anywhere(small_npy, tmp_path, capsys):
    """``-o bv.npy`` would write HDF5 that py4DSTEM.read refuses by its name: refused before any work. ``-v``
    works before and after the subcommand."""
    code, err = _run(capsys, ["detect", small_npy, "-o", tmp_path / "bv.npy"])
    assert code == EXIT_ERROR and "py4DSTEM.read only opens names ending in .h5" in err
    assert not (tmp_path / "bv.npy").exists()
    assert build_parser().parse_args(["detect", str(small_npy), "-o", "x.h5", "-v"]).verbose
    assert build_parser().parse_args(["-v", "info"]).verbose and not build_parser().parse_args(["info"]).verbose
