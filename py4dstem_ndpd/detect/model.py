"""Load the YOLOv8n disk detector (shipped weights or a user's file) and choose the device, offline.

Two weight formats are accepted:

* ``ndpd`` files (what the package ships): a plain dict ``{"format": "ndpd-v1", "yaml": <model yaml dict>,
  "state_dict": ..., "meta": {...}}``, loaded with ``torch.load(weights_only=True)`` (no pickled code);
* ultralytics checkpoints (``best.pt``/``last.pt`` of ``yolo train`` or ``ndpd train``): the model is rebuilt from
  the checkpoint's YAML and its state dict.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from ..exceptions import DeviceError, ModelLoadError

logger = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]

#: File name of the shipped weights inside ``py4dstem_ndpd/weights``.
SHIPPED_WEIGHTS = "ndpd_yolov8n.pt"


def shipped_weights_path() -> Path:
    """Path of the weights shipped inside the package."""
    return Path(str(resources.files("py4dstem_ndpd") / "weights" / SHIPPED_WEIGHTS))


def resolve_device(device: str = "auto"):
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    Raises
    ------
    DeviceError
        ``cuda`` was asked for on a machine without a usable CUDA device.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={device!r} was requested but no CUDA device is available on this machine; "
                "use device='cpu' or device='auto' (CLI --device cpu)."
            )
        return torch.device(device)
    raise DeviceError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'.")


@dataclass
class LoadedModel:
    """A detector ready for raw forward passes.

    Attributes
    ----------
    net : torch.nn.Module
        ultralytics ``DetectionModel`` in eval mode, fused, float32, channels-last memory format, on ``device``.
    device : torch.device
    in_channels : int
        1 (grayscale) for our models; 3 for RGB models (the image is repeated).
    imgsz : int
        Input size the model was trained at, px.
    meta : dict
        Training metadata stored with the weights.
    path : Path
    """

    net: object
    device: object
    in_channels: int
    imgsz: int
    meta: dict
    path: Path


def traced_raw_forward(model: LoadedModel, imgsz: int):
    """The network's raw forward pass as a frozen TorchScript graph, for CPU inference; ``None`` if it cannot be
    made.

    The graph runs in C++ without Python's global interpreter lock, so two engine lanes (threads) no longer
    queue behind each other for the ~230 module calls of every forward pass. Measured on the 2-core CPU of
    ``docs/performance.md`` (batches of 32 at 256 px): one thread 124 -> 129, both threads 223 -> 241, two lanes of
    one thread each 175 -> 207 patterns/s. The outputs equal the eager module's bit for bit (checked here once on
    a probe batch, and by ``tests/detect/test_model.py``).

    The graph is traced at the input size ``imgsz`` (the head's anchor grid depends on it) and takes any batch
    size. It returns ``(boxes, scores, p3, p4, p5)``: the DFL logits, the class logits and the three feature maps
    (used for their shapes only). Not used on CUDA (autocast does not trace), where the GIL matters little.

    Parameters
    ----------
    model : LoadedModel
        On the CPU.
    imgsz : int
        Network input size, px.

    Returns
    -------
    callable or None
        ``f(x) -> (boxes, scores, p3, p4, p5)`` for ``x`` of shape (B, C, imgsz, imgsz), channels-last float32.
    """
    import warnings

    import torch

    class _Raw(torch.nn.Module):
        def __init__(self, net) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            _, raw = self.net(x)
            f = raw["feats"]
            return raw["boxes"], raw["scores"], f[0], f[1], f[2]

    wrapper = _Raw(model.net).eval()
    probe = torch.rand(2, model.in_channels, imgsz, imgsz).contiguous(memory_format=torch.channels_last)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings about the head's shape checks (fixed by imgsz)
            graph = torch.jit.freeze(torch.jit.trace(wrapper, probe, check_trace=False))
            ok = all(torch.equal(a, b) for a, b in zip(wrapper(probe), graph(probe)))
    except Exception as e:  # noqa: BLE001 - any tracing failure falls back to the eager module
        logger.debug("could not trace the network (%s); eager forward passes", e)
        return None
    if not ok:
        logger.debug("traced network differs from the eager one; eager forward passes")
        return None
    return graph


def _build(yaml_cfg: dict, state_dict: dict):
    from .._offline import import_ultralytics

    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    ch = int(yaml_cfg.get("channels", yaml_cfg.get("ch", 3)))
    nc = int(yaml_cfg.get("nc", 1))
    net = DetectionModel(cfg=dict(yaml_cfg), ch=ch, nc=nc, verbose=False)
    missing, unexpected = net.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise ModelLoadError(
            f"weights do not match the model architecture (missing {len(missing)}, unexpected {len(unexpected)} "
            "tensors); use weights trained with `ndpd train` or ultralytics YOLOv8."
        )
    return net, ch


def load_model(weights: str | Path | None = None, device: str = "auto") -> LoadedModel:
    """Load detector weights for inference.

    Parameters
    ----------
    weights : path or None
        A ``.pt`` file; ``None`` loads the shipped weights.
    device : {"auto", "cpu", "cuda", "cuda:N"}

    Raises
    ------
    ModelLoadError
        The file is missing, unreadable, corrupt or not a detector checkpoint.
    DeviceError
        See :func:`resolve_device`.
    """
    import torch

    dev = resolve_device(device)
    path = Path(weights) if weights is not None else shipped_weights_path()
    if not path.is_file():
        hint = (
            "reinstall py4dstem-ndpd (the package ships its weights)" if weights is None
            else "check the path, or omit weights= (CLI --weights) to use the shipped model"
        )
        raise ModelLoadError(f"detector weights not found: {path}; {hint}.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - ultralytics checkpoints pickle their classes; retry below
        ckpt = None
    try:
        if ckpt is None:
            from .._offline import import_ultralytics

            import_ultralytics()
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling error means a bad file
        raise ModelLoadError(
            f"cannot read detector weights {path}: {type(err).__name__}: {err}. The file is corrupt or not a "
            "PyTorch checkpoint; re-copy it or use the shipped weights (omit weights=, CLI --weights)."
        ) from None
    if not isinstance(ckpt, dict):
        raise ModelLoadError(f"{path} is not a detector checkpoint (got {type(ckpt).__name__}).")
    if ckpt.get("format") == "ndpd-v1":
        net, ch = _build(ckpt["yaml"], ckpt["state_dict"])
        meta = dict(ckpt.get("meta", {}))
    elif "model" in ckpt or "ema" in ckpt:
        m = ckpt.get("ema") or ckpt.get("model")
        if m is None or not hasattr(m, "yaml"):
            raise ModelLoadError(f"{path}: ultralytics checkpoint without a model.")
        net, ch = _build(m.yaml, m.float().state_dict())
        meta = {"source": "ultralytics checkpoint", "train_args": ckpt.get("train_args", {})}
    else:
        raise ModelLoadError(f"{path} is not a detector checkpoint (keys: {sorted(ckpt)[:6]}).")
    det = net.model[-1]
    if getattr(det, "nc", 1) != 1:
        logger.warning("%s has %d classes; all are treated as 'disk'", path, det.nc)
    net = net.float().eval()
    net.fuse(verbose=False) if "verbose" in net.fuse.__code__.co_varnames else net.fuse()
    for p in net.parameters():
        p.requires_grad_(False)
    # channels-last (NHWC) convolutions: 20-25 % faster forward passes on the CPU (oneDNN), same outputs to 1e-4
    net.to(dev).to(memory_format=torch.channels_last)
    imgsz = int(meta.get("imgsz", meta.get("train_args", {}).get("imgsz", 256)) or 256)
    return LoadedModel(net=net, device=dev, in_channels=ch, imgsz=imgsz, meta=meta, path=path)


def export_ndpd_weights(checkpoint: str | Path, dst: str | Path, meta: dict | None = None) -> Path:
    """Convert an ultralytics checkpoint into the plain ``ndpd-v1`` format shipped with the package.

    The file holds only tensors, the model YAML and metadata, so it loads with ``weights_only=True``.
    """
    import torch

    from .._offline import import_ultralytics

    import_ultralytics()
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    m = ck.get("ema") or ck["model"]
    # fp16 storage halves the file (~6 MB); tensors are converted back to float32 on load
    sd = {k: v.detach().clone().half() if v.is_floating_point() else v.detach().clone() for k, v in m.float().state_dict().items()}
    out = {
        "format": "ndpd-v1",
        "yaml": dict(m.yaml),
        "state_dict": sd,
        "meta": {"imgsz": int(ck.get("train_args", {}).get("imgsz", 256)), **(meta or {})},
    }
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, dst)
    return dst


def to_ultralytics_checkpoint(weights: str | Path | None, dst: str | Path) -> Path:
    """Write weights (default: the shipped ones) as an ultralytics checkpoint, the starting point of fine-tuning.

    ``YOLO(dst)`` then loads it, and ``model.train(...)`` fine-tunes it.
    """
    import torch

    loaded = load_model(weights, "cpu")
    net = loaded.net
    # un-fused copy: rebuild from YAML and load the fused weights' source file again
    src = Path(loaded.path)
    ck = torch.load(src, map_location="cpu", weights_only=False)
    if ck.get("format") == "ndpd-v1":
        net, _ = _build(ck["yaml"], ck["state_dict"])
    else:
        net = (ck.get("ema") or ck["model"]).float()
    net.names = {0: "disk"}
    net.args = {"imgsz": loaded.imgsz}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net, "train_args": {"imgsz": loaded.imgsz}, "epoch": -1, "optimizer": None}, dst)
    return dst
