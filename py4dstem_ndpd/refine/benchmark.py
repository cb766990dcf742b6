"""Measure the centre refinement against simulated truth: ``python -m py4dstem_ndpd.refine.benchmark``.

The "detector" input is the truth centres plus a per-disk Gaussian error (``--sigma``, px per axis) and an
offset common to all disks of a pattern (``--common``, px, random direction), which is how the YOLO detector
errs. Every method refines that input and the RMS distance to the true centres is reported for the disks with
true peak SNR >= 3 and for all disks on the detector, with the time per pattern.

Besides the simulator's presets (whose disks have centrosymmetric interiors), the pseudo-preset
``"si_tilted"`` re-renders the Si/SiGe disks (same centres and intensities) with a linear intensity gradient
across every diffracted disk, +-40 % at the disk edge in a random direction: the kind of asymmetric interior
(rocking curve across a tilted disk) that biases intensity-weighted centre estimators.

With ``--detector`` the input is instead the output of the shipped YOLO detector (CPU, no refinement), and the
errors are measured on the detections matched one-to-one to a true disk within 2 px.

Examples (the tables in the refine report)::

    python -m py4dstem_ndpd.refine.benchmark --repeats 3
    python -m py4dstem_ndpd.refine.benchmark --detector --doses 1e4 1e5 1e6
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from .centres import METHODS, refine


@dataclass
class Case:
    """A simulated batch with its truth, as plain arrays."""

    name: str
    dose: float
    frames: np.ndarray  # (N, Qx, Qy)
    truth: list  # per pattern (K, 2)
    snr: list  # per pattern (K,)
    radius: float
    origin: np.ndarray  # (N, 2)
    lattice: np.ndarray  # (N, 2, 2)
    strain: np.ndarray  # (N, 4)
    intensity: list  # per pattern (K,), expected electrons
    phase: np.ndarray  # (N,) phase label


def simulate_case(preset: str, dose: float, *, scan_shape=(8, 4), pattern_shape=(256, 256), seed: int = 3) -> Case:
    """Simulate ``preset`` at ``dose`` electrons per pattern and return plain arrays."""
    from ..synth import Acquisition, simulate_preset

    scan = simulate_preset(preset, Acquisition(scan_shape=scan_shape, pattern_shape=pattern_shape, dose=dose,
                                               seed=seed))
    t = scan.truth
    Rx, Ry = scan_shape
    disks = [t.disks_at(i, j) for i in range(Rx) for j in range(Ry)]
    return Case(
        name=preset, dose=dose, frames=scan.data.reshape(-1, *pattern_shape).astype(np.float32),
        truth=[np.stack([d["qx"], d["qy"]], 1) for d in disks], snr=[d["snr"].astype(float) for d in disks],
        radius=float(t.disk_radius), origin=t.origin.reshape(-1, 2), lattice=t.lattice.reshape(-1, 2, 2),
        strain=t.strain.reshape(-1, 4), intensity=[d["intensity"].astype(float) for d in disks],
        phase=t.phase.reshape(-1),
    )


def tilted_case(base: Case, *, gradient: float = 0.4, background: float = 0.15, seed: int = 7) -> Case:
    """Re-render ``base``'s disks with a linear intensity gradient across each diffracted disk.

    Every disk but the direct beam gets ``1 + gradient * (d . x) / radius`` inside it (``d`` a random unit
    vector, ``x`` the offset from its centre), a tanh edge of 0.6 px and a 0.6 px Gaussian blur; a flat
    background of ``background * dose`` electrons and Poisson noise are added.
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    N, H, W = base.frames.shape
    r = base.radius
    half = int(np.ceil(r + 4))
    o = np.arange(-half, half + 1)
    counts = np.array([len(c) for c in base.truth])
    c = np.concatenate(base.truth)
    inten = np.concatenate(base.intensity)
    n = np.repeat(np.arange(N), counts)
    ang = rng.uniform(0, 2 * np.pi, len(c))
    slope = gradient / r * np.stack([np.cos(ang), np.sin(ang)], 1)
    slope[np.concatenate([[0], np.cumsum(counts)[:-1]])] = 0.0  # the direct beam (first truth disk) stays flat
    a = np.rint(c).astype(np.int64)
    X = a[:, 0, None, None] + o[None, :, None]
    Y = a[:, 1, None, None] + o[None, None, :]
    dx, dy = X - c[:, 0, None, None], Y - c[:, 1, None, None]
    prof = 0.5 * (1 - np.tanh((np.hypot(dx, dy) - r) / 0.6))
    prof *= np.clip(1 + slope[:, 0, None, None] * dx + slope[:, 1, None, None] * dy, 0, None)
    prof *= (inten / prof.sum((1, 2)))[:, None, None]
    ok = (X >= 0) & (X < H) & (Y >= 0) & (Y < W)
    img = np.zeros(N * H * W)
    np.add.at(img, ((n[:, None, None] * H + X) * W + Y)[ok], prof[ok])
    img = ndimage.gaussian_filter(img.reshape(N, H, W), (0, 0.6, 0.6)) + background * base.dose / (H * W)
    frames = rng.poisson(img).astype(np.float32)
    return Case(name="si_tilted", dose=base.dose, frames=frames, truth=base.truth, snr=base.snr, radius=r,
                origin=base.origin, lattice=base.lattice, strain=base.strain, intensity=base.intensity,
                phase=base.phase)


def detector_like(truth: list, *, sigma: float = 0.3, common: float = 0.3, seed: int = 0) -> list:
    """Truth centres plus per-disk Gaussian errors and a common offset per pattern (px)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in truth:
        off = rng.normal(size=2)
        off *= common / np.linalg.norm(off)
        out.append(c + rng.normal(0.0, sigma, c.shape) + off)
    return out


def rms_errors(refined: list, case: Case, min_snr: float = 3.0) -> tuple[float, float, int]:
    """RMS error (px) over disks with true SNR >= ``min_snr``, over all disks, and the count of the former."""
    e = np.linalg.norm(np.concatenate(refined) - np.concatenate(case.truth), axis=1)
    s = np.concatenate(case.snr) >= min_snr
    strong = float(np.sqrt(np.mean(e[s] ** 2))) if s.any() else float("nan")
    return strong, float(np.sqrt(np.mean(e**2))), int(s.sum())


def detector_input(case: Case, backend) -> tuple[list, list]:
    """Centres found by ``backend.detect`` and, per pattern, the ``(detected, truth)`` indices of matched pairs."""
    from ..evaluate import match_peaks

    peaks = backend.detect(case.frames)
    det = [np.stack([p["qx"], p["qy"]], 1).astype(np.float64) for p in peaks]
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    pairs = [match_peaks(d, t, 2.0) if len(d) and len(t) else empty for d, t in zip(det, case.truth)]
    return det, pairs


def run(presets, doses, methods, *, scan_shape=(8, 4), pattern_shape=(256, 256), sigma=0.3, common=0.3,
        repeats: int = 1, detector: bool = False) -> list[dict]:
    """Run the benchmark; one dict per (preset, dose, method)."""
    backend = None
    if detector:
        from ..detect.backend import DetectOptions, NDPDBackend

        backend = NDPDBackend(None, DetectOptions(device="cpu", refine="none"))
    rows = []
    for preset in presets:
        for dose in doses:
            if preset == "si_tilted":
                case = tilted_case(simulate_case("si_sige_multilayer", dose, scan_shape=scan_shape,
                                                 pattern_shape=pattern_shape))
            else:
                case = simulate_case(preset, dose, scan_shape=scan_shape, pattern_shape=pattern_shape)
            if backend is None:
                det = detector_like(case.truth, sigma=sigma, common=common)
                scored, radius = case, case.radius
            else:
                det, pairs = detector_input(case, backend)
                radius = backend.last_radius or case.radius  # the radius the detector measured, as in use
                # score the matched pairs only: a Case whose truth lists follow the detections
                scored = Case(**{**case.__dict__, "truth": [t[q] for t, (_, q) in zip(case.truth, pairs)],
                                 "snr": [s_[q] for s_, (_, q) in zip(case.snr, pairs)]})
            for m in methods:
                best = np.inf
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    res = refine(case.frames, det, radius_px=radius, method=m)
                    best = min(best, time.perf_counter() - t0)
                refined = res.centres if backend is None else [c[d] for c, (d, _) in zip(res.centres, pairs)]
                strong, allr, n = rms_errors(refined, scored)
                rows.append(dict(preset=preset, dose=dose, method=m, rms_snr3=strong, rms_all=allr, n_snr3=n,
                                 n_all=int(sum(len(c) for c in scored.truth)),
                                 ms_per_pattern=1e3 * best / len(case.frames)))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["si_sige_multilayer", "tinb_multiphase", "si_tilted"])
    p.add_argument("--doses", nargs="+", type=float, default=[1e3, 1e4, 1e5, 1e6])
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--scan", nargs=2, type=int, default=[8, 4])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--sigma", type=float, default=0.3)
    p.add_argument("--common", type=float, default=0.3)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--detector", action="store_true", help="refine the shipped detector's centres instead")
    a = p.parse_args(argv)
    rows = run(a.presets, a.doses, a.methods, scan_shape=tuple(a.scan), pattern_shape=(a.size, a.size),
               sigma=a.sigma, common=a.common, repeats=a.repeats, detector=a.detector)
    print(f"{'preset':20s} {'dose':>7s} {'method':16s} {'RMS snr>=3':>10s} {'n':>5s} {'RMS all':>8s} {'n':>5s} "
          f"{'ms/pattern':>10s}")
    for r in rows:
        print(f"{r['preset']:20s} {r['dose']:7.0e} {r['method']:16s} {r['rms_snr3']:10.3f} {r['n_snr3']:5d} "
              f"{r['rms_all']:8.3f} {r['n_all']:5d} {r['ms_per_pattern']:10.2f}")


if __name__ == "__main__":
    main()
