"""The NDPD backend: normalise, resize, batched raw forward, DFL decode, native coordinates, refine, drop noise.

It implements :class:`py4dstem_ndpd.backend.Backend`: ``detect(frames) -> list of PEAK_DTYPE tables``, and is
rebuilt from ``params()`` on Dask workers (the model loads once per process, see :func:`get_backend`).
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from ..exceptions import ConfigError, InputError
from ..io.validate import check_frames
from ..peaks import empty_peaks
from ..refine.centres import RefineOptions
from .camera_tail import CameraTail
from .preprocess import normalize

logger = logging.getLogger(__name__)

Refine = Literal["lattice", "autocorrelation", "probe", "none"]


#: Confidence threshold of weights that do not store their own (``meta["conf"]``).
DEFAULT_CONF = 0.25


@dataclass(frozen=True)
class DetectOptions:
    """Options of the neural detector; the defaults need no tuning.

    Attributes
    ----------
    conf : float or None
        Confidence threshold in (0, 1). ``None`` (default): the threshold stored with the weights
        (``meta["conf"]``, chosen on validation scans when the model was trained; see ``docs/model-card.md``),
        or :data:`DEFAULT_CONF` for weights without one.
    min_distance : float or None
        Two detections closer than about this (native px) are duplicates; ``None``: 0.6 times the disk radius
        measured on each batch (see :func:`~py4dstem_ndpd.detect.decode.select`). After a refinement that fits
        lattices, refined detections closer than half a radius are also merged into one
        (:func:`~py4dstem_ndpd.refine.duplicates.duplicate_detections`).
    imgsz : int or None
        Network input size (multiple of 32); ``None``: the size the model was trained at (256).
    refine : {"lattice", "autocorrelation", "probe", "none"}
        Sub-pixel refinement of the DFL centres at native resolution (see :mod:`py4dstem_ndpd.refine` and
        ``docs/refinement.md``). ``"lattice"`` (default, most accurate in our measurements): each disk is
        correlated with the pattern's own direct beam, then up to two lattices are fitted (bases seeded from the
        Wiener-Khinchin autocorrelation) and every indexed disk is placed on its lattice site.
        ``"autocorrelation"``: the paper's eq. 4 refinement alone. ``"probe"``: correlation with the direct beam
        only. ``"none"``: the DFL centres as decoded (paper eqs. 1-3).
    device : {"auto", "cpu", "cuda", "cuda:N"}
    amp : bool
        Mixed precision (fp16 autocast) on CUDA; ignored on the CPU (float32).
    batch_size : int or None
        Patterns per forward pass. ``None`` (default): 32 on a CPU; on CUDA as many as half of the free device
        memory holds (8-256, measured once with a probe batch; :mod:`py4dstem_ndpd.detect.batching`).
    max_disks : int
        At most this many disks per pattern (the most confident).
    min_snr_off_lattice : float or None
        Drop a detection as background noise when its SNR (background-subtracted counts over their noise, measured
        at native resolution by the refinement) is below this, no fitted lattice indexes it, its pattern's lattices
        index >= 80 % of the pattern's detections, and no detection with SNR >= this lies within 2 radii + 10 px or
        its SNR measured with a background that leaves such neighbours out is below this too (all four;
        :func:`~py4dstem_ndpd.refine.noise.noise_detections`). Applies with ``refine="lattice"`` or
        ``"autocorrelation"``; ``None`` keeps every detection. At 10⁴ e⁻ the network also fires on clusters of a
        few background electrons (SNR 2-4, 20-30 px from any disk); this removes most of them and a few faint real
        disks (``docs/refinement.md``).
    min_snr_empty_sites : float or None
        Lattice completion: also report a disk at every empty site of a fitted lattice where the integrated SNR
        (the refinement's estimate) reaches this, with confidence 0 (the network did not find it;
        :func:`~py4dstem_ndpd.refine.complete.complete_lattices`). ``None`` (default) adds nothing. Applies with
        ``refine="lattice"`` or ``"autocorrelation"``; see ``docs/refinement.md`` for what it adds at low dose.
    repair_dead_pixels : bool
        Fill in dead pixels and detector gaps before detection and refinement: pixels that read 0 in every
        pattern of a batch between bright live pixels (the chip gaps of a Medipix/Timepix quad, dead rows and
        columns), interpolated across the gap (:func:`~py4dstem_ndpd.detect.dead_pixels.repair_dead_pixels`).
        Nothing changes in data without such pixels. Intensities are then summed over the filled values.
    camera_tail : CameraTail or None
        The long tail of a scintillator camera's point-spread function, measured on a vacuum pattern with
        :func:`~py4dstem_ndpd.detect.camera_tail.measure_camera_tail`; it is taken off every batch before
        detection and refinement (:func:`~py4dstem_ndpd.detect.camera_tail.remove_camera_tail`). ``None``
        (default): the data are used as recorded. Counting detectors have no such tail.
    refine_options : RefineOptions or None
        Settings of the refinement (:class:`~py4dstem_ndpd.refine.RefineOptions`); ``None`` uses its defaults,
        which need no tuning. For example ``RefineOptions(gain=50.0)`` for counts multiplied by an integer after
        counting (50 counts per electron), which the data's own quantum cannot reveal (``docs/refinement.md``).
    """

    conf: float | None = None
    min_distance: float | None = None
    imgsz: int | None = None
    refine: Refine = "lattice"
    device: str = "auto"
    amp: bool = True
    batch_size: int | None = None
    max_disks: int = 1000
    min_snr_off_lattice: float | None = 5.0
    min_snr_empty_sites: float | None = None
    repair_dead_pixels: bool = True
    camera_tail: CameraTail | None = None
    refine_options: RefineOptions | None = None

    def __post_init__(self) -> None:
        if self.camera_tail is not None and not isinstance(self.camera_tail, CameraTail):
            raise ConfigError(f"camera_tail must be a CameraTail (measure_camera_tail(vacuum)) or None, got "
                              f"{type(self.camera_tail).__name__}.")
        if self.conf is not None and not (0.0 < float(self.conf) < 1.0):
            raise ConfigError(f"conf must be in (0, 1) or None (the model's own threshold), got {self.conf!r}.")
        if self.min_distance is not None and not self.min_distance > 0:
            raise ConfigError(f"min_distance must be > 0 px or None, got {self.min_distance!r}.")
        if self.imgsz is not None and (int(self.imgsz) < 64 or int(self.imgsz) % 32):
            raise ConfigError(f"imgsz must be a multiple of 32 and >= 64, got {self.imgsz!r}.")
        if self.refine not in ("lattice", "autocorrelation", "probe", "none"):
            raise ConfigError(
                f"refine must be 'lattice', 'autocorrelation', 'probe' or 'none', got {self.refine!r}."
            )
        if self.batch_size is not None and int(self.batch_size) <= 0:
            raise ConfigError(f"batch_size must be > 0 or None (chosen for the device), got {self.batch_size!r}.")
        if int(self.max_disks) <= 0:
            raise ConfigError(f"max_disks must be > 0, got {self.max_disks!r}.")
        if self.min_snr_empty_sites is not None and not float(self.min_snr_empty_sites) > 0:
            raise ConfigError(
                f"min_snr_empty_sites must be > 0 or None (no lattice completion), got {self.min_snr_empty_sites!r}."
            )
        if self.refine_options is not None and not isinstance(self.refine_options, RefineOptions):
            raise ConfigError(
                f"refine_options must be a py4dstem_ndpd.refine.RefineOptions or None, got "
                f"{type(self.refine_options).__name__}."
            )
        if self.min_snr_off_lattice is not None and not float(self.min_snr_off_lattice) >= 0:
            raise ConfigError(
                f"min_snr_off_lattice must be >= 0 or None (keep every detection), got {self.min_snr_off_lattice!r}."
            )


def _resize_batch(v: np.ndarray, S: int):
    """Resize (N, H, W) float images so the long side is ``S`` and pad to (N, S, S). Returns images and scale."""
    import cv2

    N, H, W = v.shape
    f = S / max(H, W)
    h, w = max(1, int(round(H * f))), max(1, int(round(W * f)))
    out = np.zeros((N, S, S), np.float32)
    if (h, w) == (H, W):
        out[:, :H, :W] = v
    else:
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
        for i in range(N):
            out[i, :h, :w] = cv2.resize(v[i], (w, h), interpolation=interp)
    return out, (H / h, W / w), (h, w)


def disk_intensities(frame: np.ndarray, qx: np.ndarray, qy: np.ndarray, radius: float) -> np.ndarray:
    """Summed counts inside a disk of ``radius`` px around each centre (pixels off the detector ignored)."""
    r = max(int(np.ceil(radius)), 1)
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1]
    inside = ox**2 + oy**2 <= radius * radius + 0.25
    ox, oy = ox[inside], oy[inside]
    H, W = frame.shape
    X = np.round(qx).astype(np.int64)[:, None] + oy[None]
    Y = np.round(qy).astype(np.int64)[:, None] + ox[None]
    ok = (X >= 0) & (X < H) & (Y >= 0) & (Y < W)
    vals = frame[np.clip(X, 0, H - 1), np.clip(Y, 0, W - 1)].astype(np.float64)
    f32 = np.finfo(np.float32).max
    return np.clip((vals * ok).sum(1), -f32, f32).astype(np.float32)


@dataclass
class StageTimes:
    """Seconds spent per stage, accumulated over calls (from any thread)."""

    preprocess: float = 0.0
    infer: float = 0.0
    decode: float = 0.0
    refine: float = 0.0
    frames: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **seconds: float) -> None:
        """Add to the named stages (``frames=`` counts patterns)."""
        with self._lock:
            for name, v in seconds.items():
                setattr(self, name, getattr(self, name) + v)


class NDPDBackend:
    """YOLOv8n disk detector with DFL sub-pixel decoding and autocorrelation refinement.

    Parameters
    ----------
    weights : str or None
        Weights file; ``None`` uses the shipped model.
    options : DetectOptions or None

    Examples
    --------
    >>> from py4dstem_ndpd.detect.backend import NDPDBackend
    >>> backend = NDPDBackend()                               # doctest: +SKIP
    >>> tables = backend.detect(frames)                       # doctest: +SKIP
    """

    def __init__(self, weights: str | None = None, options: DetectOptions | None = None) -> None:
        from .._allocator import keep_large_buffers
        from .model import load_model

        keep_large_buffers()  # reuse each batch's large buffers (see py4dstem_ndpd._allocator)
        self.weights = None if weights is None else str(weights)
        self.options = options or DetectOptions()
        self.model = load_model(self.weights, self.options.device)
        self.imgsz = int(self.options.imgsz or self.model.imgsz)
        self.conf = float(self.options.conf if self.options.conf is not None
                          else self.model.meta.get("conf", DEFAULT_CONF))
        if self.options.conf is None and "conf" not in self.model.meta:
            logger.warning(
                "the weights %s store no confidence threshold: using %.2f (the shipped model's was chosen on "
                "validation scans). Give one with DetectOptions(conf=...) or --conf, or store one with "
                "py4dstem_ndpd.detect.model.export_ndpd_weights(..., meta={'conf': ...}) (docs/training.md).",
                self.weights, DEFAULT_CONF)
        self.times = StageTimes()
        self.last_radius: float | None = None
        self._batch_size: int | None = None if self.options.batch_size is None else int(self.options.batch_size)
        self._graph = None
        if self.model.device.type == "cpu":
            from .model import traced_raw_forward

            self._graph = traced_raw_forward(self.model, self.imgsz)  # None: eager forward passes

    def params(self) -> dict:
        """Constructor arguments (picklable)."""
        return {"weights": self.weights, "options": self.options}

    def preferred_batch_size(self) -> int:
        """Patterns per forward pass: ``options.batch_size``, else chosen for the device, once
        (:mod:`~py4dstem_ndpd.detect.batching`: 32 on a CPU, from the free memory on CUDA). The engine uses it when
        ``EngineOptions.batch_size`` is None."""
        if self._batch_size is None:
            from .batching import CPU_BATCH

            self._batch_size = CPU_BATCH if self.model.device.type != "cuda" else self._cuda_batch_size()
        return self._batch_size

    def _cuda_batch_size(self) -> int:
        """Batch size from the free device memory and a probe forward pass (see :mod:`.batching`)."""
        import torch

        from .batching import PROBE_BATCH, batch_size_for_memory

        dev = self.model.device
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
        self._forward(np.zeros((PROBE_BATCH, self.imgsz, self.imgsz), np.float32))
        torch.cuda.synchronize(dev)
        per = max(1.0, (torch.cuda.max_memory_allocated(dev) - base) / PROBE_BATCH)
        free, _ = torch.cuda.mem_get_info(dev)
        bs = batch_size_for_memory(free, per)
        logger.info("batch size %d on %s (%.1f MB per pattern, %.0f MB free)", bs, dev, per / 2**20, free / 2**20)
        return bs

    def default_lanes(self) -> int:
        """Batches the engine's async mode should run through this backend at once (see :meth:`lanes`).

        2 on a CPU with at least 2 torch threads: two batches, each on half the threads, keep both cores busy
        while either of them is in the (single-threaded) post-processing; 1 on a GPU.
        """
        import torch

        return 2 if self.model.device.type == "cpu" and torch.get_num_threads() >= 2 else 1

    @contextmanager
    def lanes(self, n: int):
        """While ``n`` batches run at once (one per thread), give each ``1 / n`` of torch's CPU threads.

        torch's thread count is per process: runs that overlap in one process (two runners, a Dask worker with
        several threads) share the setting of the first, and the last one to finish restores the count.
        """
        if self.model.device.type != "cpu" or n <= 1:
            yield
            return
        _LANES.enter(n)
        try:
            yield
        finally:
            _LANES.exit()

    # -- stages ---------------------------------------------------------------------------------------------------
    def _forward(self, x: np.ndarray):
        import torch

        dev = self.model.device
        t = torch.from_numpy(x)[:, None]
        if dev.type == "cuda":
            t = t.pin_memory().to(dev, non_blocking=True)
        if self.model.in_channels == 3:
            t = t.expand(-1, 3, -1, -1)
        if self._graph is not None and t.shape[-2:] == (self.imgsz, self.imgsz):
            with torch.no_grad():
                boxes, scores, *feats = self._graph(t.contiguous(memory_format=torch.channels_last))
            return {"boxes": boxes, "scores": scores, "feats": feats}
        use_amp = dev.type == "cuda" and self.options.amp
        with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=use_amp):
            _, raw = self.model.net(t)
        return raw

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """Detect disks in a batch of patterns.

        Parameters
        ----------
        frames : ndarray, shape (N, Qx, Qy) or (Qx, Qy)
            Counts of any real dtype; NaN/Inf are not allowed.

        Returns
        -------
        list of ndarray
            One PEAK_DTYPE table per frame: qx (row), qy (column) in native px, intensity (counts summed inside
            the disk), confidence (0..1).
        """
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3:
            raise InputError(f"frames must be (N, Qx, Qy), got shape {frames.shape}.")
        if frames.shape[0] == 0:
            return []
        out: list[np.ndarray] = []
        bs = self.preferred_batch_size()
        for i in range(0, frames.shape[0], bs):
            out.extend(self._detect_batch(frames[i : i + bs]))
        return out

    def decode_batch(self, frames: np.ndarray):
        """Network stage only: candidate disks of each frame in network coordinates.

        Returns
        -------
        decoded : list of Decoded
            Per frame, after thresholding and duplicate suppression (ultralytics pixel convention).
        scale : tuple of float
            Native px per network px (rows, columns); see :func:`~py4dstem_ndpd.detect.decode.to_native`.
        radius : float
            Disk radius measured from the boxes of the batch, native px (0 if nothing was found).
        """
        from .decode import dfl_decode, select

        t0 = time.perf_counter()
        v = normalize(frames)
        x, scale, hw = _resize_batch(v, self.imgsz)
        t1 = time.perf_counter()
        raw = self._forward(x)
        t2 = time.perf_counter()
        det = self.model.net.model[-1]
        cx, cy, w, h, score = dfl_decode(raw["boxes"], raw["scores"], raw["feats"], det.stride, det.reg_max)
        md = self.options.min_distance / max(scale) if self.options.min_distance else 0.0
        decoded = select(cx, cy, w, h, score, conf=self.conf, min_distance=md, image_hw=hw,
                         max_det=self.options.max_disks)
        halves = np.concatenate([0.25 * (d.w + d.h) for d in decoded]) if decoded else np.zeros(0)
        radius = float(np.median(halves) * np.mean(scale)) if halves.size else 0.0
        t3 = time.perf_counter()
        self.times.add(preprocess=t1 - t0, infer=t2 - t1, decode=t3 - t2)
        return decoded, scale, radius

    def infer(self, frames: np.ndarray):
        """Network stage of one batch (for the engine's overlap of inference and post-processing).

        ``detect(frames)`` equals ``postprocess(infer(frames), frames)`` batch by batch.
        """
        from .decode import Decoded

        frames = np.asarray(frames)
        check_frames(frames)
        prepared, dead = self.prepare(frames)
        decoded, scale, radius = self.decode_batch(frames if prepared is None else prepared)
        # A pattern without any contrast holds no disks; the network must not be asked (its zero padding next to
        # a uniformly bright, saturated image makes an edge it can mistake for a disk).
        flat = np.ptp(frames.reshape(len(frames), -1), axis=1) == 0
        for i in np.flatnonzero(flat):
            decoded[i] = Decoded(*(np.zeros(0, np.float32) for _ in range(5)))
        self.last_radius = radius or self.last_radius
        return decoded, scale, radius, (prepared, dead)

    def prepare(self, frames: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The batch as detection and refinement see it (float32), and the (Qx, Qy) map of its dead pixels, or
        ``None`` for either when there is nothing to change.

        Dead pixels are filled in (``DetectOptions.repair_dead_pixels``), then a camera's long tail is taken off
        (``DetectOptions.camera_tail``). The frames are checked by the caller.
        """
        prepared, dead = None, None
        if self.options.repair_dead_pixels:
            from ..refine.gain import estimate_gain
            from .dead_pixels import repair_dead_pixels

            given = self.options.refine_options.gain if self.options.refine_options is not None else None
            prepared, dead = repair_dead_pixels(frames, gain=float(given) if given else estimate_gain(frames))
            if dead is not None:
                logger.debug("filled %d dead pixels (gaps, dead rows/columns) in a batch of %d", int(dead.sum()),
                             len(frames))
        tail = self.options.camera_tail
        if tail is not None and tail.fraction > 0:
            from .camera_tail import remove_camera_tail

            prepared = remove_camera_tail(frames if prepared is None else prepared, tail)
        return prepared, dead

    def postprocess(self, raw, frames: np.ndarray) -> list[np.ndarray]:
        """Native coordinates, refinement and intensities for the output of :meth:`infer`."""
        from .decode import to_native

        decoded, scale, radius, (prepared, dead) = raw
        refine_options = self.options.refine_options
        if prepared is not None and (refine_options is None or refine_options.gain is None):
            # the counts per electron come from the stored values: the filled ones are interpolated, off the
            # data's quantum (counts / 4 with gaps read as 0.0625 per electron instead of 0.25)
            from ..refine.gain import estimate_gain

            refine_options = replace(refine_options or RefineOptions(), gain=estimate_gain(np.asarray(frames)))
        frames = np.asarray(frames if prepared is None else prepared)
        fr = frames if frames.dtype.kind == "f" else frames.astype(np.float32)
        centres = [np.stack(to_native(d, scale), 1) for d in decoded]
        t3 = time.perf_counter()
        if self.options.refine != "none" and radius > 0:
            from ..refine import refine

            r = refine(fr, centres, radius_px=radius, method=self.options.refine, options=refine_options, dead=dead)
            centres = r.centres
            added = self._empty_sites(fr, r, radius)
            from ..refine import duplicate_detections, noise_detections
            from .decode import Decoded

            drop = duplicate_detections(r, radius)
            if self.options.min_snr_off_lattice is not None:
                noise = noise_detections(r, radius, float(self.options.min_snr_off_lattice), frames=fr)
                drop = [a | b for a, b in zip(drop, noise)]
            keep = [~f for f in drop]
            decoded = [Decoded(d.cx[k], d.cy[k], d.w[k], d.h[k], d.score[k]) for d, k in zip(decoded, keep)]
            centres = [c[k] for c, k in zip(centres, keep)]
            if added is not None:
                decoded, centres = _append_sites(decoded, centres, added)
        t4 = time.perf_counter()
        out = []
        H, W = frames.shape[1:]
        for k, (d, c) in enumerate(zip(decoded, centres)):
            c = np.asarray(c, np.float32).reshape(-1, 2)
            on = (c[:, 0] >= -0.5) & (c[:, 0] < H - 0.5) & (c[:, 1] >= -0.5) & (c[:, 1] < W - 0.5)
            p = empty_peaks(int(on.sum()))
            p["qx"], p["qy"] = c[on, 0], c[on, 1]
            p["confidence"] = d.score[on]
            p["intensity"] = disk_intensities(fr[k], c[on, 0], c[on, 1], max(radius, 1.0)) if on.any() else 0
            out.append(p)
        t5 = time.perf_counter()
        self.times.add(refine=t4 - t3, decode=t5 - t4, frames=len(frames))
        return out

    def _empty_sites(self, frames: np.ndarray, r, radius: float):
        """Lattice completion (``min_snr_empty_sites``), or None when it is off."""
        if self.options.min_snr_empty_sites is None:
            return None
        from ..refine.complete import CompletionOptions, complete_lattices

        return complete_lattices(frames, r, radius, CompletionOptions(min_snr=float(self.options.min_snr_empty_sites)))

    def _detect_batch(self, frames: np.ndarray) -> list[np.ndarray]:
        return self.postprocess(self.infer(frames), frames)


def _append_sites(decoded: list, centres: list, added) -> tuple[list, list]:
    """Add the disks of lattice completion to each pattern's detections (score 0: not found by the network)."""
    from .decode import Decoded

    out_d, out_c = [], []
    for n, (d, c) in enumerate(zip(decoded, centres)):
        k = added.group == n
        m = int(k.sum())
        if m == 0:
            out_d.append(d)
            out_c.append(c)
            continue
        z = np.zeros(m, np.float32)
        out_d.append(Decoded(*(np.concatenate([a, z]) for a in (d.cx, d.cy, d.w, d.h, d.score))))
        out_c.append(np.concatenate([np.asarray(c, np.float64).reshape(-1, 2), added.centres[k]]))
    return out_d, out_c


class _LaneThreads:
    """Process-wide torch and BLAS thread counts while lanes run (reference-counted; see :meth:`NDPDBackend.lanes`).

    BLAS (OpenBLAS, for the refinement's small matrix products) gets the same share as torch: its idle threads
    otherwise wake on the core the other lane's network is using. Interleaved A/B, two lanes, 256 px: median
    131.6 -> 145.7 and 140.2 -> 146.6 patterns/s in two runs of 4 rounds (best 152.4 -> 156.2, 146.3 -> 148.5);
    512 px: median 98.4 -> 100.7.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._before = 0
        self._blas = None

    def enter(self, n: int) -> None:
        import torch
        from threadpoolctl import threadpool_limits

        with self._lock:
            if self._users == 0:
                self._before = torch.get_num_threads()
                torch.set_num_threads(max(1, self._before // n))
                self._blas = threadpool_limits(limits=max(1, self._before // n), user_api="blas")
            self._users += 1

    def exit(self) -> None:
        import torch

        with self._lock:
            self._users -= 1
            if self._users == 0:
                torch.set_num_threads(self._before)
                if self._blas is not None:
                    self._blas.restore_original_limits()
                    self._blas = None


_LANES = _LaneThreads()
_CACHE: dict = {}


def get_backend(weights: str | None = None, options: DetectOptions | None = None) -> NDPDBackend:
    """A per-process cached backend (one model load per worker process for given weights and options)."""
    key = (weights, options or DetectOptions())
    b = _CACHE.get(key)
    if b is None:
        b = _CACHE[key] = NDPDBackend(weights, options)
    return b
