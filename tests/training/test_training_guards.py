"""Training and pseudo-labelling never lose a user's work, never start from nothing by mistake, never go online."""
from __future__ import annotations

import logging

import numpy as np
import pytest

import py4DSTEM
from py4dstem_ndpd.cli import main
from py4dstem_ndpd.exceptions import ConfigError, DeviceError
from py4dstem_ndpd.io.writers import OutputExistsError
from py4dstem_ndpd.training import DatasetSpec, TrainOptions, build_dataset, train
from py4dstem_ndpd.training.pseudolabels import pseudo_label

TINY = dict(epochs=1, batch=2, imgsz=128)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("train")
    yaml = build_dataset(base / "data", DatasetSpec(n_train=4, n_val_random=2, n_val_presets=0, size=128), progress=False)
    records, log = _Records(), logging.getLogger("py4dstem_ndpd.training.train")
    log.addHandler(records)
    level = log.level
    log.setLevel(logging.INFO)  # setLevel, not an assignment: it clears the logger's cached isEnabledFor answers
    try:
        train(yaml, base / "run", TrainOptions(**TINY))
    finally:
        log.removeHandler(records)
        log.setLevel(level)
    return yaml, base / "run", records.lines


def test_every_epoch_logs_its_losses_and_metrics(finished_run):
    lines = [m for m in finished_run[2] if m.startswith("epoch ")]
    assert len(lines) == 1 and lines[0].startswith("epoch 1/1: ")
    assert "train/box_loss" in lines[0] and "mAP50" in lines[0]


def test_a_finished_run_is_neither_resumed_online_nor_overwritten(finished_run, no_network):
    yaml, run, _ = finished_run
    with pytest.raises(ConfigError, match="finished its epochs: there is nothing to resume"):
        train(yaml, run, TrainOptions(**TINY, resume=True))
    with pytest.raises(OutputExistsError, match="already holds a training run.*--overwrite"):
        train(yaml, run, TrainOptions(**TINY))


def test_a_missing_dataset_is_an_error_not_a_simulated_one(tmp_path, capsys):
    with pytest.raises(ConfigError, match="not found"):
        train(tmp_path / "nothere" / "data.yaml", tmp_path / "run", TrainOptions(**TINY))
    assert main(["train", "--data", str(tmp_path / "nothere" / "data.yaml"), "--out", str(tmp_path / "t"),
                 "--epochs", "1"]) == 1
    assert "no such data.yaml" in capsys.readouterr().err
    assert not (tmp_path / "nothere").exists() and not (tmp_path / "t").exists()


def test_cuda_training_without_cuda_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    yaml = tmp_path / "data.yaml"
    yaml.write_text("path: .\n")
    with pytest.raises(DeviceError, match="no.*CUDA|none is visible"):
        train(yaml, tmp_path / "run", TrainOptions(**TINY, device="0"))


def test_pseudo_labels_from_a_file_keep_a_review(tmp_path, si_scan):
    """From a path (not only a DataCube), with one pattern (py4DSTEM's vacuum probe of a 1-position scan), and a
    second call never replaces labels a user corrected."""
    path = tmp_path / "scan.h5"
    py4DSTEM.save(str(path), si_scan.datacube, mode="o")
    out = tmp_path / "labels"
    yaml = pseudo_label(str(path), out, n=1)
    lines = (out / "labels" / "val" / "000000.txt").read_text().splitlines()
    assert yaml.is_file() and len(lines) >= 10
    (out / "labels" / "val" / "000000.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # the user's review
    with pytest.raises(OutputExistsError, match="already holds a dataset"):
        pseudo_label(si_scan.datacube, out, n=2)
    assert (out / "labels" / "val" / "000000.txt").read_text() == "0 0.5 0.5 0.1 0.1\n"
    pseudo_label(np.asarray(si_scan.data[:2]), out, n=3, overwrite=True, labeller="ndpd")
    assert len(list((out / "labels").glob("*/*.txt"))) == 3
