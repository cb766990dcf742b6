"""Nothing may reach the network: training, inference and the demo run under a socket guard."""
import numpy as np

from py4dstem_ndpd.detect.model import load_model
from py4dstem_ndpd.training import DatasetSpec, TrainOptions, build_dataset, train


def test_training_smoke_one_epoch_offline(tmp_path, no_network):
    yaml = build_dataset(tmp_path / "data", DatasetSpec(n_train=8, n_val_random=4, n_val_presets=0, size=128), progress=False)
    best = train(yaml, tmp_path / "run", TrainOptions(epochs=1, batch=4, imgsz=128))
    assert best.is_file()
    m = load_model(best, "cpu")
    assert m.net.model[-1].nc == 1 and m.in_channels == 1
    labels = sorted((tmp_path / "data" / "labels" / "train").glob("*.txt"))
    assert len(labels) == 8


def test_fine_tuning_starts_from_shipped_weights_offline(tmp_path, no_network):
    yaml = build_dataset(tmp_path / "data", DatasetSpec(n_train=4, n_val_random=2, n_val_presets=0, size=128), progress=False)
    best = train(yaml, tmp_path / "ft", TrainOptions(epochs=1, batch=2, imgsz=128, weights="shipped"))
    assert load_model(best, "cpu").net is not None


def test_demo_quick_offline(tmp_path, no_network):
    from py4dstem_ndpd.demo import DemoOptions, run_demo

    s = run_demo(tmp_path / "demo", DemoOptions(si_scan=(16, 2), tinb_scan=(8, 8)))
    for name in ("report.html", "si_sige_strain.png", "si_sige_strain.pdf", "tinb_phase_strain.png",
                 "si_sige_braggvectors.h5", "tinb_maps.h5", "summary.json"):
        assert (tmp_path / "demo" / name).stat().st_size > 1000, name
    assert s["si_sige_multilayer"]["detection"]["recall"] >= 0.99
    assert np.isfinite(s["si_sige_multilayer"]["precision_e_xx_substrate"])
