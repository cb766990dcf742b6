"""Train YOLOv8n from its model YAML (random initialisation), fully offline.

Nothing is downloaded: the model is built from ``yolov8n.yaml`` (no COCO weights), the AMP check is off on CPU
(``amp=False``), plots are off and a local font is provided (see :mod:`py4dstem_ndpd._offline`).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..exceptions import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    """Training settings (ultralytics names).

    Attributes
    ----------
    epochs : int
        Upper bound on epochs (``hours`` may stop earlier).
    hours : float or None
        Wall-clock budget; ultralytics fits the epoch count and LR schedule to it.
    imgsz : int
        Network input size, px.
    batch : int
        Batch size; the nominal batch ``nbs`` is set equal, so every batch is one optimiser step.
    device : str
        ``"cpu"``, ``"0"``...
    seed : int
    weights : str or None
        Start from these weights (fine-tuning; ``"shipped"`` = the package's model) instead of the random
        ``yolov8n.yaml`` initialisation.
    resume : bool
        Continue the interrupted run in ``out_dir`` (``weights/last.pt``); starts afresh when there is none.
        A run that finished its epochs cannot be resumed (a ``ConfigError`` says so).
    overwrite : bool
        Train again from the start in an ``out_dir`` that already holds a run (its weights are replaced);
        without it (and without ``resume``) such an ``out_dir`` is refused.
    lr0 : float or None
        Initial learning rate (None: ultralytics' default for the optimiser; with ``"AdamW"`` it is 0.002, what
        ``optimizer="auto"`` picks for one class).
    optimizer : str
        ultralytics optimiser name. ``"AdamW"`` by default: ``"auto"`` picks MuSGD for runs of more than 10,000
        iterations, whose Newton-Schulz step took 90 % of the CPU time here (measured with py-spy).
    """

    epochs: int = 100
    hours: float | None = None
    imgsz: int = 256
    batch: int = 16
    device: str = "cpu"
    seed: int = 0
    weights: str | None = None
    resume: bool = False
    overwrite: bool = False
    lr0: float | None = None
    workers: int = 0
    patience: int = 100
    optimizer: str = "AdamW"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or self.imgsz % 32:
            raise ConfigError(
                f"TrainOptions: epochs ({self.epochs}) and batch ({self.batch}) must be >= 1 and imgsz ({self.imgsz}) a "
                "multiple of 32; the defaults (batch 16, imgsz 256) suit a CPU."
            )


#: Augmentations (the paper's: flips, brightness, noise via the data; rotation by 90° multiples comes from
#: flips; arbitrary rotations are drawn in the simulator instead, because rotating a box enlarges it).
AUGMENT = dict(
    hsv_h=0.0, hsv_s=0.0, hsv_v=0.3, degrees=0.0, translate=0.05, scale=0.3, shear=0.0, perspective=0.0,
    fliplr=0.5, flipud=0.5, mosaic=0.0, mixup=0.0, cutmix=0.0, copy_paste=0.0, erasing=0.0, close_mosaic=0,
)


def train(data_yaml: str | Path, out_dir: str | Path, options: TrainOptions = TrainOptions()) -> Path:
    """Train the detector and return the path of the best weights.

    Parameters
    ----------
    data_yaml : path
        ``data.yaml`` of a YOLO dataset (see :func:`py4dstem_ndpd.training.build_dataset`).
    out_dir : path
        Run directory: ``out_dir/weights/{best,last}.pt``, ``results.csv``, ``train_options.json``.
    options : TrainOptions

    Returns
    -------
    Path
        ``out_dir/weights/best.pt``.

    Raises
    ------
    ConfigError
        ``data_yaml`` does not exist, or ``resume`` asks to continue a run that finished.
    OutputExistsError
        ``out_dir`` already holds a run and neither ``resume`` nor ``overwrite`` is set.
    DeviceError
        A CUDA device is asked for and none is visible.
    """
    from .._offline import import_ultralytics

    out_dir = Path(out_dir)
    last = out_dir / "weights" / "last.pt"
    resuming = _check_run(Path(data_yaml), out_dir, last, options)
    _check_device(options.device)

    import_ultralytics()
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics import YOLO

    # ultralytics trains on the CPU with cpu_count - 1 torch threads (NUM_THREADS): one thread on a 2-core machine.
    # With workers=0 the data loading shares the main thread anyway, so use every core (measured: 100 % instead
    # of 200 % CPU on 2 cores).
    torch_utils.NUM_THREADS = max(1, os.cpu_count() or 1)

    if resuming:
        model = YOLO(str(last))
        model.add_callback("on_fit_epoch_end", _log_epoch)
        model.train(resume=True)
    else:
        if options.weights:
            from ..detect.model import to_ultralytics_checkpoint

            src = None if options.weights == "shipped" else options.weights
            start = to_ultralytics_checkpoint(src, out_dir / "start.pt")
            model = YOLO(str(start))
        else:
            model = YOLO("yolov8n.yaml")
        kwargs = dict(
            data=str(data_yaml), epochs=options.epochs, imgsz=options.imgsz, batch=options.batch,
            nbs=options.batch, device=options.device, workers=options.workers, seed=options.seed,
            deterministic=True, amp=False, plots=False, pretrained=bool(options.weights), cache="ram",
            project=str(out_dir.parent.resolve()), name=out_dir.name, exist_ok=True, patience=options.patience,
            single_cls=True, verbose=True, optimizer=options.optimizer, **AUGMENT,
        )
        if options.hours:
            kwargs["time"] = options.hours
        kwargs["lr0"] = options.lr0 or (0.002 if options.optimizer == "AdamW" else 0.01)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "train_options.json").write_text(json.dumps(asdict(options), indent=2))
        model.add_callback("on_fit_epoch_end", _log_epoch)
        model.train(**kwargs)
    best = out_dir / "weights" / "best.pt"
    return best if best.exists() else last


def _log_epoch(trainer) -> None:
    """One log line per epoch (ultralytics' own output is off, ``YOLO_VERBOSE=False``): losses and val metrics.

    ultralytics runs ``on_fit_epoch_end`` once more after its final validation (``trainer.epoch`` one past the last
    epoch, or the last one again after an early stop); that call is not an epoch."""
    if trainer.epoch >= trainer.epochs or getattr(trainer, "_ndpd_logged_epoch", None) == trainer.epoch:
        return
    trainer._ndpd_logged_epoch = trainer.epoch
    try:
        values = dict(trainer.label_loss_items(trainer.tloss, prefix="train")) if trainer.tloss is not None else {}
        values.update(trainer.metrics or {})
        text = ", ".join(f"{k.replace('metrics/', '').replace('(B)', '')} {float(v):.4g}" for k, v in values.items())
    except Exception as err:  # noqa: BLE001 - a log line must never stop a training run
        text = f"(metrics unavailable: {err})"
    logger.info("epoch %d/%d: %s", trainer.epoch + 1, trainer.epochs, text)


def _check_run(data_yaml: Path, out_dir: Path, last: Path, options: TrainOptions) -> bool:
    """Refuse runs that would lose work or start from nothing; return whether ``last`` is resumed."""
    from ..io.writers import OutputExistsError

    if options.resume and last.exists():
        if _finished(last):
            raise ConfigError(
                f"the training run in {out_dir} finished its epochs: there is nothing to resume. Fine-tune from its "
                f"weights into another folder (weights='{out_dir / 'weights' / 'best.pt'}', CLI --weights), or "
                "train it again from the start with overwrite=True (CLI --overwrite)."
            )
        return True
    if last.exists() and not options.overwrite:
        raise OutputExistsError(
            f"{out_dir} already holds a training run (weights/last.pt); pass --resume (resume=True) to continue "
            "it, --overwrite (overwrite=True) to replace it, or choose another --out."
        )
    if not data_yaml.is_file():
        raise ConfigError(
            f"{data_yaml} not found: give the data.yaml of a YOLO dataset (or its folder), e.g. the one written by "
            "py4dstem_ndpd.training.pseudo_label or build_dataset."
        )
    return False


def _finished(last: Path) -> bool:
    """Whether an ultralytics ``last.pt`` is the final, stripped checkpoint of a finished run (epoch -1)."""
    import torch

    try:
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - unreadable: let ultralytics say what is wrong with it
        return False
    return isinstance(ckpt, dict) and ckpt.get("epoch", -1) == -1


def _check_device(device: str) -> None:
    """Raise DeviceError for a CUDA device on a machine without one (ultralytics prints diagnostics instead)."""
    import torch

    from ..exceptions import DeviceError

    if str(device).lower() not in ("cpu", "mps") and not torch.cuda.is_available():
        raise DeviceError(
            f"training device {device!r} asks for a CUDA GPU, but none is visible here (torch.cuda.is_available() "
            "is False); train with device='cpu' (CLI --device cpu)."
        )


def install_weights(src: str | Path, dst: str | Path) -> Path:
    """Copy trained weights (optimizer state stripped by ultralytics) to ``dst``."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst
