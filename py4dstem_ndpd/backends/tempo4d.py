"""The paper authors' released detector, ``tempo4d`` 0.1.8, as a Backend (preprocessing reproduced from its source).

Credit and licence
------------------
``tempo4d`` (PyPI ``tempo4d``; https://github.com/ArdaGen/Neural-Object-Detection-4D-STEM) is by Arda Genc
(UCSB), first author of the paper this package implements (A. Genc, R. Silverstein, "Neural Object Detection for
4D STEM: High-Throughput Sub-Pixel Electron Diffraction Pattern Recognition"), released under the **MIT licence**.
Its weights, ``tempo4d/models/yolov8_weights.pt``, are an ultralytics 8.2.24 YOLOv8n checkpoint: one class
("Spot"), 3 input channels, trained at ``imgsz=640`` (the checkpoint's own metadata carries ultralytics' AGPL-3.0
notice). Nothing of tempo4d is copied into this package: the weights are read from the installed tempo4d, and the
preprocessing below is re-implemented from its source, because ``import tempo4d`` itself needs PyQt5, pyqtgraph
and rosettasciio.

Install it without its heavy GUI/IO dependencies (ultralytics, torch, opencv and numpy are already ours)::

    pip install --no-deps tempo4d==0.1.8

What tempo4d does to each pattern
---------------------------------
Read from ``qt14_corrected.RealTimePlotApp.process_slices_batch`` (the batch pipeline behind
``DataProcessor.launch_realtime_plot``, whose defaults are ``image_size=512, normalize=100, conf=0.01,
batch_size=64``) and ``utils/auto_cc_norm_batch_log2.log_autocorrelation_2D_torch``:

1. ``cv2.normalize(frame, None, 0, 256, NORM_MINMAX, CV_8U)``: min-max to 0..256, rounded, saturated at 255.
2. Log autocorrelation (the paper's eq. 4): subtract the minimum, ``R = ifft2(|fft2(img)|**2).real`` (circular:
   no padding), ``fftshift`` (zero lag at pixel ``(Qx // 2, Qy // 2)``), divide by ``R(0)``, then
   ``log1p(10 |R| + 1e-10)``.
3. ``cv2.normalize(..., 0, normalize, NORM_MINMAX, CV_8U)`` with ``normalize=100``, grey to 3 channels and
   ``cv2.bitwise_not``: the network sees dark spots on a bright background, grey levels 155..255.
4. ``YOLO(weights).predict(images, imgsz=512, conf=0.01, iou=0.1, max_det=100, half=False)``, inside
   ``torch.amp.autocast`` on CUDA. ultralytics letterboxes each image (long side resized to ``imgsz`` with
   bilinear interpolation, so a 256 px pattern is upscaled 2x; padding to a multiple of the stride), runs NMS at
   IoU 0.1 and scales the boxes back to the pattern.
5. Spot centres are ``boxes.xywh[:, :2]`` (x = column, y = row), in ultralytics' pixel convention, **not
   rounded**. tempo4d then uses only distances and angles between spots (``utils/dspacing_batch5``), so it never
   needs the direct-beam position.

``object_detection_test`` (one pattern, called by ``DataProcessor.run_object_detection``) differs only in its
defaults (normalisation to 256 then 200, ``imgsz=640, conf=0.1, iou=0.01``) and subtracts 0.5 px from the centres.
``utils/padding.pad_images`` (min-max to uint8, zero-padding to a target shape) is a utility the pipeline does not
call.

What this backend returns
-------------------------
The network finds peaks of the *autocorrelation*: lattice vectors (differences between disk positions), not the
disks themselves. ``origin="direct_beam"`` (default) puts zero lag on the direct beam measured in each pattern
(:func:`direct_beam_centres`; our addition, tempo4d has no such step), so the tables hold disk positions in
detector pixels like every other backend; spots that land off the detector are dropped. ``origin="none"`` returns
the spots where tempo4d has them: autocorrelation-image coordinates, zero lag at ``(Qx // 2, Qy // 2)``; to
compare them with disk positions add ``origin - (Qx // 2, Qy // 2)`` for a known origin (what
``benchmarks/bench_sweeps.py`` does with the simulator's true origin). All positions use py4DSTEM's convention
(pixel ``i`` centred on ``i``): ``qx = y - 0.5``, ``qy = x - 0.5``.

``input="pattern"`` skips step 2, so the network sees the inverted, min-max-normalised pattern itself. tempo4d
never does this; it is offered to see what the released weights do on raw patterns.
"""
from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..exceptions import ConfigError, InputError, ModelLoadError
from ..io.validate import check_frames
from ..peaks import empty_peaks

logger = logging.getLogger(__name__)

#: The tempo4d release whose preprocessing this module reproduces.
TEMPO4D_VERSION = "0.1.8"
#: How to install it without its GUI/IO dependencies.
INSTALL_HINT = f"pip install --no-deps tempo4d=={TEMPO4D_VERSION}"

Input = Literal["autocorrelation", "pattern"]
Origin = Literal["direct_beam", "none"]

_CV2_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)


@dataclass(frozen=True)
class Tempo4DOptions:
    """Settings of the tempo4d pipeline; the defaults are those of ``DataProcessor.launch_realtime_plot``.

    Attributes
    ----------
    conf : float
        Confidence threshold in (0, 1) (tempo4d: 0.01).
    imgsz : int
        Network input size, px, multiple of 32 (tempo4d: 512; the paper's inference size).
    iou : float
        NMS IoU threshold in (0, 1] (tempo4d: 0.1).
    normalize : int
        Grey range of the autocorrelation image before inversion, 1..255 (tempo4d: 100).
    max_det : int
        At most this many spots per pattern (tempo4d: 100).
    input : {"autocorrelation", "pattern"}
        What the network sees: tempo4d's log autocorrelation (default) or the pattern itself (not tempo4d's use).
    origin : {"direct_beam", "none"}
        Where zero lag goes (``input="autocorrelation"`` only): on the direct beam measured in each pattern
        (default; disk positions in detector px), or nowhere (tempo4d's own coordinates, zero lag at
        ``(Qx // 2, Qy // 2)``).
    device : {"auto", "cpu", "cuda", "cuda:N"}
    amp : bool
        fp16 autocast on CUDA, as tempo4d does; ignored on the CPU.
    batch_size : int
        Patterns per ``predict`` call (tempo4d: 64).
    """

    conf: float = 0.01
    imgsz: int = 512
    iou: float = 0.1
    normalize: int = 100
    max_det: int = 100
    input: Input = "autocorrelation"
    origin: Origin = "direct_beam"
    device: str = "auto"
    amp: bool = True
    batch_size: int = 64

    def __post_init__(self) -> None:
        if not (0.0 < float(self.conf) < 1.0):
            raise ConfigError(f"conf must be in (0, 1), got {self.conf!r}; tempo4d uses 0.01.")
        if int(self.imgsz) < 32 or int(self.imgsz) % 32:
            raise ConfigError(f"imgsz must be a multiple of 32 and >= 32, got {self.imgsz!r}; tempo4d uses 512.")
        if not (0.0 < float(self.iou) <= 1.0):
            raise ConfigError(f"iou must be in (0, 1], got {self.iou!r}; tempo4d uses 0.1.")
        if not (1 <= int(self.normalize) <= 255):
            raise ConfigError(f"normalize must be an integer grey level in 1..255, got {self.normalize!r}.")
        if int(self.max_det) <= 0:
            raise ConfigError(f"max_det must be > 0, got {self.max_det!r}.")
        if self.input not in ("autocorrelation", "pattern"):
            raise ConfigError(f"input must be 'autocorrelation' or 'pattern', got {self.input!r}.")
        if self.origin not in ("direct_beam", "none"):
            raise ConfigError(f"origin must be 'direct_beam' or 'none', got {self.origin!r}.")
        if int(self.batch_size) <= 0:
            raise ConfigError(f"batch_size must be > 0, got {self.batch_size!r}.")


def tempo4d_weights_path() -> Path:
    """Path of the weights shipped inside the installed ``tempo4d`` (found without importing it).

    Raises
    ------
    ModelLoadError
        tempo4d is not installed, or its weights file is missing.
    """
    spec = importlib.util.find_spec("tempo4d")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"tempo4d is not installed; install it with `{INSTALL_HINT}` (MIT licence, ~6 MB).")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "yolov8_weights.pt"
    if not path.is_file():
        raise ModelLoadError(f"tempo4d is installed but {path} is missing; reinstall it with `{INSTALL_HINT}`.")
    try:
        from importlib.metadata import version

        v = version("tempo4d")
    except Exception:  # noqa: BLE001 - metadata is optional
        v = None
    if v is not None and v != TEMPO4D_VERSION:
        logger.warning("tempo4d %s is installed; the preprocessing reproduced here is that of %s", v, TEMPO4D_VERSION)
    return path


def _minmax_u8(x: np.ndarray, top: int) -> np.ndarray:
    """``cv2.normalize(x, None, 0, top, NORM_MINMAX, CV_8U)`` (per image)."""
    import cv2

    if x.dtype.type not in _CV2_DTYPES:
        x = x.astype(np.float64)
    return cv2.normalize(np.ascontiguousarray(x), None, 0, top, cv2.NORM_MINMAX, dtype=cv2.CV_8U)


def autocorrelation(images_u8: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Normalised circular autocorrelation ``R / R(0)`` of uint8 images, zero lag at ``(H // 2, W // 2)``.

    tempo4d's ``log_autocorrelation_2D_torch`` before its ``log1p(10 |R| + 1e-10)`` (float32, torch FFT).

    Parameters
    ----------
    images_u8 : ndarray, shape (N, H, W)
    device : str
        torch device for the FFTs.

    Returns
    -------
    ndarray of float32, shape (N, H, W)
    """
    import torch

    t = torch.as_tensor(np.asarray(images_u8), dtype=torch.float32, device=device)
    N, H, W = t.shape
    t = t - t.amin(dim=(1, 2), keepdim=True)
    power = torch.abs(torch.fft.fft2(t)) ** 2
    ac = torch.fft.fftshift(torch.fft.ifft2(power).real, dim=(-2, -1))
    centre = ac[:, H // 2, W // 2].view(N, 1, 1)
    ac = torch.where(centre != 0, ac / torch.where(centre != 0, centre, torch.ones_like(centre)), ac)
    return ac.cpu().numpy()


def network_images(frames: np.ndarray, options: Tempo4DOptions) -> tuple[list[np.ndarray], np.ndarray | None]:
    """tempo4d's preprocessing: the uint8 ``(H, W, 3)`` images its network is given (steps 1-3 of the module doc).

    Returns
    -------
    images : list of ndarray (H, W, 3) uint8
    ac : ndarray (N, H, W) float32 or None
        ``R / R(0)`` of each pattern (``input="autocorrelation"``), for the spots' intensities.
    """
    import cv2
    import torch

    u8 = np.stack([_minmax_u8(f, 256) for f in frames])
    ac = None
    if options.input == "autocorrelation":
        dev = "cuda" if str(options.device).startswith("cuda") or (options.device == "auto" and torch.cuda.is_available()) else "cpu"
        ac = autocorrelation(u8, dev)
        view = np.log1p(10 * np.abs(ac) + 1e-10).astype(np.float32)
    else:
        view = u8
    images = [cv2.bitwise_not(cv2.cvtColor(_minmax_u8(v, int(options.normalize)), cv2.COLOR_GRAY2RGB)) for v in view]
    return images, ac


def direct_beam_centres(frames: np.ndarray, *, sigma: float = 1.0, level: float = 0.5) -> np.ndarray:
    """Direct-beam position of each pattern: centroid of the brightest blob.

    The pattern is smoothed with a Gaussian of ``sigma`` px; the connected region above ``level`` times the maximum
    that contains the maximum is taken, and its centroid weighted by (smoothed value - threshold) is returned.
    Assumes the direct beam is the brightest disk (true for most thin specimens).

    Parameters
    ----------
    frames : ndarray, shape (N, Qx, Qy)

    Returns
    -------
    ndarray of float64, shape (N, 2)
        ``(qx, qy)`` in px (pixel ``i`` centred on ``i``); the detector centre for an empty pattern.
    """
    from scipy import ndimage

    frames = np.asarray(frames)
    out = np.empty((len(frames), 2))
    for k, f in enumerate(frames):
        s = ndimage.gaussian_filter(np.asarray(f, np.float64), sigma)
        top = s.max()
        if not top > s.min():
            out[k] = ((s.shape[0] - 1) / 2, (s.shape[1] - 1) / 2)
            continue
        thr = s.min() + level * (top - s.min())
        lab, _ = ndimage.label(s > thr)
        blob = lab == lab[np.unravel_index(np.argmax(s), s.shape)]
        w = np.where(blob, s - thr, 0.0)
        out[k] = ndimage.center_of_mass(w)
    return out


class Tempo4DBackend:
    """tempo4d's released YOLOv8 model and preprocessing, as a :class:`~py4dstem_ndpd.backend.Backend`.

    Parameters
    ----------
    weights : path or None
        An ultralytics checkpoint; ``None`` uses the one inside the installed tempo4d.
    options : Tempo4DOptions or None
    **overrides
        Fields of :class:`Tempo4DOptions` (e.g. ``conf=0.25``), applied on top of ``options``.

    Raises
    ------
    ModelLoadError
        tempo4d is not installed (the message gives the install command), or the weights cannot be read.
    ConfigError
        An unknown or invalid option.

    Notes
    -----
    Nothing is downloaded: the weights are read from the installed package, and ultralytics is imported with its
    network access switched off (:func:`py4dstem_ndpd._offline.import_ultralytics`).

    Examples
    --------
    >>> from py4dstem_ndpd.backends import Tempo4DBackend
    >>> backend = Tempo4DBackend(conf=0.01)                  # doctest: +SKIP
    >>> tables = backend.detect(frames)                      # doctest: +SKIP
    """

    def __init__(self, weights: str | Path | None = None, options: Tempo4DOptions | None = None,
                 **overrides: Any) -> None:
        known = {f.name for f in fields(Tempo4DOptions)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown Tempo4DBackend option(s) {unknown}; valid ones: {sorted(known)}.")
        self.options = replace(options or Tempo4DOptions(), **overrides)
        path = tempo4d_weights_path() if weights is None else Path(weights)
        if not path.is_file():
            raise ModelLoadError(f"weights not found: {path}; omit weights= to use tempo4d's own ({INSTALL_HINT}).")
        self.weights = None if weights is None else str(weights)
        self.path = path
        from ..detect.model import resolve_device

        self.device = resolve_device(self.options.device)
        from .._offline import import_ultralytics

        import_ultralytics()
        from ultralytics import YOLO

        try:
            self.model = YOLO(str(path), task="detect")
        except Exception as err:  # noqa: BLE001 - any unpickling/building error means unusable weights
            raise ModelLoadError(
                f"cannot load {path} as an ultralytics detector: {type(err).__name__}: {err}; reinstall tempo4d "
                f"(`{INSTALL_HINT}`) or pass an ultralytics YOLOv8 checkpoint."
            ) from None
        self.times = {"preprocess": 0.0, "infer": 0.0, "frames": 0}

    def params(self) -> dict[str, Any]:
        """Constructor arguments (picklable): ``Tempo4DBackend(**params())`` rebuilds an equivalent backend."""
        return {"weights": self.weights, "options": self.options}

    def _predict(self, images: list[np.ndarray]):
        import torch

        kw = dict(imgsz=int(self.options.imgsz), conf=float(self.options.conf), iou=float(self.options.iou),
                  max_det=int(self.options.max_det), half=False, verbose=False, device=str(self.device))
        with torch.no_grad():
            if self.device.type == "cuda" and self.options.amp:
                with torch.amp.autocast(device_type="cuda"):
                    return self.model.predict(source=images, **kw)
            return self.model.predict(source=images, **kw)

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """Spots of each pattern (see the module docstring for what they are).

        Parameters
        ----------
        frames : ndarray, shape (N, Qx, Qy) or (Qx, Qy)
            Counts of any real dtype; NaN/Inf are not allowed.

        Returns
        -------
        list of ndarray
            One PEAK_DTYPE table per frame, most confident first: ``qx`` (row), ``qy`` (column) in px (detector
            positions, or autocorrelation-image positions with ``origin="none"``); ``intensity``: ``R(lag)/R(0)``
            of the pattern's autocorrelation at the spot (``input="autocorrelation"``) or the counts summed inside
            the spot's inscribed disk (``input="pattern"``); ``confidence`` (0..1).

        Raises
        ------
        InputError
            Frames that are not (N, Qx, Qy) real numbers, or contain NaN/Inf.
        """
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3:
            raise InputError(f"frames must be (N, Qx, Qy), got shape {frames.shape}.")
        if frames.shape[0] == 0:
            return []
        check_frames(frames)
        out: list[np.ndarray] = []
        bs = int(self.options.batch_size)
        for i in range(0, len(frames), bs):
            out.extend(self._detect_batch(frames[i : i + bs]))
        return out

    def _detect_batch(self, frames: np.ndarray) -> list[np.ndarray]:
        from ..detect.backend import disk_intensities

        t0 = time.perf_counter()
        images, ac = network_images(frames, self.options)
        t1 = time.perf_counter()
        results = self._predict(images)
        t2 = time.perf_counter()
        H, W = frames.shape[1:]
        place = self.options.input == "autocorrelation" and self.options.origin == "direct_beam"
        origins = direct_beam_centres(frames) if place else None
        out = []
        for k, r in enumerate(results):
            xywh = r.boxes.xywh.float().cpu().numpy().reshape(-1, 4)
            conf = r.boxes.conf.float().cpu().numpy().reshape(-1)
            qx, qy = xywh[:, 1] - 0.5, xywh[:, 0] - 0.5  # ultralytics -> py4DSTEM pixel convention
            if ac is not None:
                ix = np.clip(np.round(qx).astype(int), 0, H - 1)
                iy = np.clip(np.round(qy).astype(int), 0, W - 1)
                inten = ac[k, ix, iy]
            else:
                radius = float(np.median(0.25 * (xywh[:, 2] + xywh[:, 3]))) if len(xywh) else 1.0
                inten = disk_intensities(np.asarray(frames[k], np.float32), qx, qy, max(radius, 1.0)) if len(qx) else qx
            if place:
                qx = qx - H // 2 + origins[k, 0]
                qy = qy - W // 2 + origins[k, 1]
            on = (qx >= -0.5) & (qx < H - 0.5) & (qy >= -0.5) & (qy < W - 0.5)
            p = empty_peaks(int(on.sum()))
            p["qx"], p["qy"], p["intensity"], p["confidence"] = qx[on], qy[on], inten[on], conf[on]
            out.append(p)
        self.times["preprocess"] += t1 - t0
        self.times["infer"] += t2 - t1
        self.times["frames"] += len(frames)
        return out
