"""The `ndpd` command: subcommands, outputs, exit codes."""
import json

import py4DSTEM
import pytest

from py4dstem_ndpd.cli import EXIT_ERROR, EXIT_EXISTS, EXIT_OK, main


def test_help_everywhere(capsys):
    for cmd in ([], ["info"], ["simulate"], ["detect"], ["train"], ["demo"], ["strain"], ["phase"], ["compare"], ["bench"]):
        with pytest.raises(SystemExit) as e:
            main(cmd + ["--help"])
        assert e.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_info(capsys):
    assert main(["info"]) == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert info["weights_present"] and info["ultralytics"]


def test_simulate_detect_strain_phase(tmp_path, capsys):
    scan = tmp_path / "si.h5"
    assert main(["simulate", "si_sige_multilayer", "-o", str(scan), "--scan", "8", "2"]) == EXIT_OK
    assert main(["simulate", "si_sige_multilayer", "-o", str(scan), "--scan", "8", "2"]) == EXIT_EXISTS
    bv = tmp_path / "bv.h5"
    assert main(["detect", str(scan), "-o", str(bv), "--batch-size", "8"]) == EXIT_OK
    back = py4DSTEM.read(str(bv))
    assert type(back).__name__ == "BraggVectors" and back.Rshape == (8, 2)
    assert main(["detect", str(scan), "-o", str(bv)]) == EXIT_EXISTS
    assert main(["strain", str(bv), "-o", str(tmp_path / "strain.h5"), "--reference", "0", "2", "0", "2"]) == EXIT_OK
    maps = py4DSTEM.read(str(tmp_path / "strain.h5"))
    assert maps.data.shape == (8, 2, 4)
    assert main(["phase", str(bv), "-o", str(tmp_path / "phase.h5"), "--n-phases", "2"]) == EXIT_OK


def test_errors_have_exit_codes_and_messages(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "o.h5")]) == EXIT_ERROR
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 10)
    assert main(["detect", str(bad), "-o", str(tmp_path / "o.h5")]) == EXIT_ERROR
    assert "truncated" in capsys.readouterr().err
    assert main(["detect", str(bad), "-o", str(tmp_path / "o.h5"), "--conf", "2"]) == EXIT_ERROR
    assert "conf" in capsys.readouterr().err  # options are checked before the file is read
    assert main(["detect", str(bad), "-o", str(tmp_path / "o.h5"), "--gain", "0"]) == EXIT_ERROR
    assert "gain must be > 0" in capsys.readouterr().err


def test_compare_with_a_vacuum_probe(tmp_path, capsys):
    import numpy as np

    scan = tmp_path / "si.h5"
    assert main(["simulate", "si_sige_multilayer", "-o", str(scan), "--scan", "2", "2"]) == EXIT_OK
    qx, qy = np.indices((256, 256))
    vacuum = tmp_path / "vacuum.npy"
    np.save(vacuum, (np.hypot(qx - 128, qy - 128) <= 4.0) * 1000.0)
    out = tmp_path / "cmp"
    assert main(["compare", str(scan), "-o", str(out), "--vacuum", str(vacuum), "--batch-size", "4"]) == EXIT_OK
    report = json.loads((out / "comparison.json").read_text())
    assert report["n_patterns"] == 4
    assert (out / "report.html").exists()
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not an array")
    assert main(["compare", str(scan), "-o", str(out), "--vacuum", str(broken), "--overwrite"]) == EXIT_ERROR
    assert "vacuum probe" in capsys.readouterr().err


def test_bench_takes_turns_and_reports_both_methods(capsys):
    import pytest

    from py4dstem_ndpd.compare import CompareOptions
    from py4dstem_ndpd.exceptions import ConfigError

    assert main(["bench", "--scan", "2", "2", "--size", "128", "--repeats", "2"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["repeats"] == 2 and out["patterns"] == 4
    assert out["methods"]["ndpd"]["recall"] == 1.0  # 10^6 e-, the Si/SiGe preset
    assert out["methods"]["template"]["patterns_per_s"] > 0
    assert out["speedup"] == pytest.approx(out["methods"]["ndpd"]["patterns_per_s"]
                                           / out["methods"]["template"]["patterns_per_s"])
    with pytest.raises(ConfigError, match="repeats"):
        CompareOptions(repeats=0)


def test_detect_flags_reach_the_detector_options():
    """The detect flags set the DetectOptions the run uses (the dead-pixel repair is on unless switched off)."""
    from py4dstem_ndpd.cli import _detect_options, build_parser

    default = _detect_options(build_parser().parse_args(["detect", "scan.h5", "-o", "out.h5"]))
    assert default.repair_dead_pixels is True and default.min_snr_off_lattice == 5.0
    off = _detect_options(build_parser().parse_args(
        ["detect", "scan.h5", "-o", "out.h5", "--keep-dead-pixels", "--keep-off-lattice"]))
    assert off.repair_dead_pixels is False and off.min_snr_off_lattice is None


def test_camera_tail_from_a_vacuum_file_reaches_the_detector_options(tmp_path, capsys):
    import numpy as np

    from py4dstem_ndpd.cli import _detect_options, build_parser
    from py4dstem_ndpd.synth.cameras import Scintillator

    rng = np.random.default_rng(0)
    r = np.hypot(*(np.indices((128, 128)) - 64))
    disk = np.clip(8.5 - r, 0.0, 1.0)
    vac = Scintillator(tail_fraction=0.2, tail_px=6.0).apply(rng.poisson(disk / disk.sum() * 1e5, (1, 4, 128, 128)), rng)
    path = tmp_path / "vacuum.npy"
    np.save(path, vac[0])
    opts = _detect_options(build_parser().parse_args(["detect", "scan.h5", "-o", "o.h5", "--camera-tail-from",
                                                      str(path)]))
    assert abs(opts.camera_tail.fraction - 0.2) < 0.03 and abs(opts.camera_tail.length_px - 6.0) < 0.6
    assert _detect_options(build_parser().parse_args(["detect", "scan.h5", "-o", "o.h5"])).camera_tail is None
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not an array")
    from py4dstem_ndpd.cli import main

    assert main(["detect", "scan.h5", "-o", str(tmp_path / "o.h5"), "--camera-tail-from", str(broken)]) != 0
    assert "vacuum" in capsys.readouterr().err
