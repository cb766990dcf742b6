"""The refinement benchmark runs end to end on a tiny case and reports sensible numbers."""
import numpy as np

from py4dstem_ndpd.refine.benchmark import detector_like, main, run


def test_detector_like_noise_has_the_requested_size():
    truth = [np.zeros((2000, 2)) + 100.0]
    det = detector_like(truth, sigma=0.3, common=0.3, seed=1)[0] - 100.0
    offset = det.mean(0)
    assert abs(np.linalg.norm(offset) - 0.3) < 0.03
    assert abs((det - offset).std() - 0.3) < 0.02


def test_run_reports_every_method(capsys):
    rows = run(["si_sige_multilayer"], [1e5], ["lattice", "none"], scan_shape=(2, 2), pattern_shape=(128, 128))
    by = {r["method"]: r for r in rows}
    assert set(by) == {"lattice", "none"}
    assert by["lattice"]["rms_all"] < by["none"]["rms_all"] and by["none"]["rms_all"] > 0.3
    main(["--presets", "si_tilted", "--doses", "1e5", "--methods", "none", "--scan", "1", "2", "--size", "128"])
    out = capsys.readouterr().out
    assert "si_tilted" in out and "ms/pattern" in out
