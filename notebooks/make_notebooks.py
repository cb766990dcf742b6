"""Write the example notebooks (``notebooks/*.ipynb``) with nbformat, without outputs.

    python notebooks/make_notebooks.py                 # refinement: the default if available, else "none"
    python notebooks/make_notebooks.py --refine none   # force DetectOptions(refine="none")
    python notebooks/make_notebooks.py --check         # exit 1 if the .ipynb files differ from this script

Every notebook works on small simulated data (a few seconds to a minute on 2 CPU cores), writes only into a
temporary directory that it deletes at the end, and never touches the network. Run them all with

    python -m pytest --nbmake notebooks/ -q

Refinement: the notebooks use the detector's default refinement (``DetectOptions()``) when
``py4dstem_ndpd.refine.refine_centres`` can be imported when this script runs; otherwise they pass
``DetectOptions(refine="none")`` (the DFL sub-pixel centres) and say so. Rerun this script once refinement lands.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _refine_available() -> bool:
    sys.path.insert(0, str(ROOT))
    try:
        from py4dstem_ndpd.refine import refine_centres  # noqa: F401
    except ImportError:
        return False
    return True


class Text:
    """Snippets that depend on whether refinement is used."""

    def __init__(self, refine_none: bool) -> None:
        self.none = refine_none
        #: expression for the detector options used in the notebooks
        self.opts = 'DetectOptions(refine="none")' if refine_none else "DetectOptions()"
        self.note = (
            "> **Note.** This notebook passes `DetectOptions(refine=\"none\")`: the DFL sub-pixel centres without the "
            "autocorrelation refinement step (regenerate it with `python notebooks/make_notebooks.py` to use the "
            "default)."
            if refine_none else ""
        )


def _nb(cells: list, title: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["title"] = title
    # stable ids so regenerating gives identical files
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    return nb


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


SETUP = '''
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt

logging.basicConfig(level=logging.WARNING)
work = Path(tempfile.mkdtemp(prefix="ndpd-notebook-"))  # everything this notebook writes goes here
print("working directory:", work)
'''

CLEANUP = '''
shutil.rmtree(work)  # remove the temporary files of this notebook
'''


# ---- 01 ----------------------------------------------------------------------------------------------------------
def nb01(t: Text):
    return _nb([
        md(f"""
# 01 · Swap the backend of an existing py4DSTEM script

py4dstem-ndpd replaces py4DSTEM's template matching (`datacube.find_Bragg_disks(template=..., ...)`) with a neural
detector **in one line**. The result is a real `py4DSTEM.BraggVectors`, so everything downstream (origin fitting,
calibration, `StrainMap`, `py4DSTEM.save`/`read`) runs unchanged.

This notebook: a small simulated Si/SiGe scan → the classic py4DSTEM script → the one-line swap → origin →
`StrainMap` → save and read back. About 30 s on 2 CPU cores.

{t.note}
"""),
        code(SETUP),
        md("""
## The data

A stand-in for `py4DSTEM.read("my_scan.h5")`: a simulated Si [110] / SiGe multilayer, 8 × 4 scan positions,
256 × 256 px patterns, 10⁶ electrons per pattern. The simulator also gives the exact truth (disk centres, origin,
strain), which we use to check the results. We save the DataCube and read it back, as a real script would.
"""),
        code('''
import py4DSTEM
from py4dstem_ndpd.synth import Acquisition, simulate_preset

scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(8, 4), pattern_shape=(256, 256), dose=1e6, seed=0))
py4DSTEM.save(str(work / "my_scan.h5"), scan.datacube, mode="o")

datacube = py4DSTEM.read(str(work / "my_scan.h5"))
datacube
'''),
        md("""
## Before: py4DSTEM template matching

The classic recipe: build a probe template, then find the disks with a dozen parameters tuned by hand for this
dataset (threshold, spacing, edge, sub-pixel method...).
"""),
        code('''
# --- an existing py4DSTEM script -------------------------------------------------------------------------------
mean_probe = datacube.get_vacuum_probe(ROI=np.ones(datacube.Rshape, bool), align=True)
alpha, qx0, qy0 = py4DSTEM.process.calibration.get_probe_size(mean_probe.probe)   # disk radius, px
probe = py4DSTEM.Probe.generate_synthetic_probe(radius=alpha, width=1, Qshape=datacube.Qshape)
probe.get_kernel(mode="sigmoid", origin=(datacube.Qshape[0] // 2, datacube.Qshape[1] // 2),
                 radii=(1.2 * alpha, 3 * alpha), bilinear=False)

t0 = time.perf_counter()
braggpeaks_tm = datacube.find_Bragg_disks(
    template=probe.kernel, corrPower=1.0, sigma=0, edgeBoundary=4, minRelativeIntensity=0.002,
    minAbsoluteIntensity=0, minPeakSpacing=8, subpixel="multicorr", upsample_factor=16, maxNumPeaks=200,
)
print(f"template matching: {time.perf_counter() - t0:.1f} s, "
      f"{len(braggpeaks_tm.raw[0, 0].data)} disks at (0, 0), {len(scan.truth.disks_at(0, 0))} in the truth")
'''),
        md(f"""
## After: one line

```python
import py4dstem_ndpd
braggpeaks = py4dstem_ndpd.find_Bragg_disks(datacube)
```

No template, no thresholds: the shipped YOLOv8n model finds every disk, and its centre comes from the detection
head's distribution (DFL) outputs at sub-pixel level. Options, when you need them, live in one small dataclass,
`DetectOptions` (confidence threshold, refinement, device `"auto" | "cpu" | "cuda"`, batch size).
"""),
        code(f'''
import py4dstem_ndpd
from py4dstem_ndpd import DetectOptions

t0 = time.perf_counter()
braggpeaks = py4dstem_ndpd.find_Bragg_disks(datacube, options={t.opts})   # <- the swap
print(f"NDPD: {{time.perf_counter() - t0:.1f}} s (includes loading the model once)")
braggpeaks
'''),
        md("""
Each vector has the py4DSTEM fields `qx` (detector row), `qy` (column), `intensity` (counts in the disk) plus
`confidence`. Against the simulator's truth:
"""),
        code('''
from py4dstem_ndpd.bridge import from_braggvectors
from py4dstem_ndpd.evaluate import evaluate_detections

print(braggpeaks.raw[0, 0].data[:3])
for name, bv in [("template matching", braggpeaks_tm), ("NDPD", braggpeaks)]:
    m = evaluate_detections(from_braggvectors(bv), scan.truth, min_snr=3.0)
    print(f"{name:>18}: recall {m.recall:.3f}  precision {m.precision:.3f}  centre RMS error {m.error_rms:.3f} px")
'''),
        md("""
## Downstream, unchanged: the origin

py4DSTEM's own methods work on these BraggVectors: the direct beam at each position (`measure_origin`), a smooth
fit over the scan (`fit_origin`), then calibrated vectors (`braggpeaks.cal`).
"""),
        code('''
qx0_meas, qy0_meas, mask = braggpeaks.measure_origin()
braggpeaks.fit_origin(plot=False)
braggpeaks.setcal()

qx0_fit, qy0_fit = braggpeaks.calibration.get_origin()
err = np.hypot(qx0_fit - scan.truth.origin[..., 0], qy0_fit - scan.truth.origin[..., 1])
print(f"origin at (0, 0): fitted ({qx0_fit[0, 0]:.2f}, {qy0_fit[0, 0]:.2f}) px, "
      f"truth ({scan.truth.origin[0, 0, 0]:.2f}, {scan.truth.origin[0, 0, 1]:.2f}) px; "
      f"mean error {err.mean():.2f} px")
print("calibrated vectors at (0, 0):", braggpeaks.cal[0, 0].data[:2])
'''),
        md("""
## Downstream, unchanged: `py4DSTEM.StrainMap`

The usual py4DSTEM strain workflow: choose the basis vectors on the Bragg vector map (py4DSTEM finds them
automatically and shows its choice), fit `g1, g2` at every position, and compute the strain relative to a
reference region (here the first row of the scan, in the Si substrate).
"""),
        code('''
strainmap = py4DSTEM.StrainMap(braggvectors=braggpeaks)
strainmap.choose_basis_vectors(minSpacing=4, maxNumPeaks=20, figsize=(8, 5))
strainmap.max_peak_spacing = 2.0   # px: a vector is indexed to a lattice point closer than this
strainmap.fit_basis_vectors()
reference = np.zeros(datacube.Rshape, bool)
reference[0] = True
strainmap.get_strain(gvects=reference)
'''),
        code('''
e_xx = strainmap.get_slice("e_xx").data
fig, ax = plt.subplots(1, 2, figsize=(6, 4), sharey=True)
for a, img, title in [(ax[0], e_xx, "e_xx, py4DSTEM StrainMap"), (ax[1], scan.truth.strain[..., 0], "e_xx, truth")]:
    im = a.imshow(100 * img, vmin=-0.2, vmax=1.2, cmap="RdBu_r")
    a.set_title(title, fontsize=9)
    a.set_xlabel("ry")
ax[0].set_ylabel("rx (growth direction)")
fig.colorbar(im, ax=ax, label="%")
plt.show()
print("mean |e_xx - truth| =", float(np.nanmean(np.abs(e_xx - scan.truth.strain[..., 0]))))
'''),
        md("""
`py4dstem_ndpd.analysis.strain_map(braggpeaks, reference=...)` does the same steps without a figure, refits each
position robustly and reports the strain in the simulator's convention (see notebook 02).

## Downstream, unchanged: save and read

`py4DSTEM.save` writes the BraggVectors (with the extra `confidence` field and the calibration) to an EMD file;
`py4DSTEM.read` gives them back.

`tree=False` saves the BraggVectors without the objects py4DSTEM attached to them: `StrainMap(braggvectors=...)`
attached the strain map as a child, and py4DSTEM 0.14 cannot read a saved `StrainMap` back
(`TypeError: StrainMap.__init__() got an unexpected keyword argument 'data'`). Save the strain map's slices
separately if you need them.
"""),
        code('''
py4DSTEM.save(str(work / "braggpeaks.h5"), braggpeaks, mode="o", tree=False)
braggpeaks_read = py4DSTEM.read(str(work / "braggpeaks.h5"))

a, b = braggpeaks.raw[3, 2].data, braggpeaks_read.raw[3, 2].data
print(type(braggpeaks_read).__name__, braggpeaks_read.Rshape, b.dtype.names)
assert np.array_equal(a, b)
print("identical after the round trip")
'''),
        md(f"""
## One pattern

`detect_pattern` takes one `(Qx, Qy)` pattern and returns `(K, 4)` rows of `qx, qy, intensity, confidence`.
"""),
        code(f'''
pattern = np.asarray(datacube.data[0, 0])
rows = py4dstem_ndpd.detect_pattern(pattern, options={t.opts})
print(rows.shape)
plt.figure(figsize=(4, 4))
plt.imshow(np.log1p(pattern), cmap="gray")
plt.scatter(rows[:, 1], rows[:, 0], s=30, facecolors="none", edgecolors="r")   # qy is the column
plt.title(f"{{len(rows)}} disks")
plt.show()
'''),
        code(CLEANUP),
    ], "01 Swap the backend")


# ---- 02 ----------------------------------------------------------------------------------------------------------
def nb02(t: Text):
    return _nb([
        md(f"""
# 02 · Strain in a Si/SiGe multilayer

The paper's first application: map the strain of SiGe layers grown on Si (Si [110] zone axis, growth along the
scan's `rx` and the detector's `qx`). SiGe with 13 % Ge is stretched along the growth direction by
ε<sub>xx</sub> ≈ 0.85 % relative to the Si substrate; the Si layers are unstrained.

Pipeline: simulate → `find_Bragg_disks` → `analysis.strain_map` (py4DSTEM's `StrainMap` with an automatic basis,
robust per-position refit) → compare with the truth. About 40 s on 2 CPU cores.

{t.note}
"""),
        code(SETUP),
        code('''
from py4dstem_ndpd.synth import Acquisition, sige_strain, simulate_preset

scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(24, 3), pattern_shape=(256, 256), dose=1e6, seed=0))
datacube, truth = scan.datacube, scan.truth
print(datacube.data.shape, "| expected e_xx in SiGe:", round(sige_strain(), 5))
'''),
        md("## Virtual images"),
        code('''
from py4dstem_ndpd.analysis import virtual_annular_dark_field, virtual_bright_field

bf = virtual_bright_field(datacube)
adf = virtual_annular_dark_field(datacube)
fig, ax = plt.subplots(1, 3, figsize=(7, 4))
ax[0].imshow(bf, cmap="gray"); ax[0].set_title("virtual BF")
ax[1].imshow(adf, cmap="gray"); ax[1].set_title("virtual ADF")
ax[2].imshow(truth.phase, cmap="coolwarm"); ax[2].set_title("truth: 0 Si, 1 SiGe")
for a in ax:
    a.set_xticks([])
plt.show()
'''),
        md("## Detect the disks"),
        code(f'''
from py4dstem_ndpd import DetectOptions, detect_scan
from py4dstem_ndpd.bridge import to_braggvectors
from py4dstem_ndpd.evaluate import evaluate_detections

t0 = time.perf_counter()
peaks = detect_scan(datacube, options={t.opts}, progress=False)   # ScanPeaks (plain arrays)
print(f"{{peaks.n_peaks}} disks in {{time.perf_counter() - t0:.1f}} s")
braggpeaks = to_braggvectors(peaks, datacube.calibration)       # what find_Bragg_disks returns
metrics = evaluate_detections(peaks, truth, min_snr=3.0)
print(f"recall {{metrics.recall:.3f}}, precision {{metrics.precision:.3f}}, centre RMS {{metrics.error_rms:.3f}} px")
'''),
        md("""
## Strain map

The reference region is the substrate: the first rows of the scan. `strain_map` works on a copy of the
BraggVectors, fits the origin, picks `g1, g2` automatically, runs py4DSTEM's `fit_basis_vectors` and `get_strain`,
and returns the strain in this package's convention (real-space deformation, `x` = `qx` rows), the same as the
simulator's truth. `result.strainmap` is py4DSTEM's own `StrainMap`.
"""),
        code('''
from py4dstem_ndpd.analysis import StrainOptions, strain_map

reference = (0, 3, 0, 3)           # rows 0..2, all columns (half-open, like slices)
result = strain_map(braggpeaks, reference=reference, options=StrainOptions())
print("basis g1, g2 (px):", result.g1.round(2), result.g2.round(2))
print("precision in the reference (std):", {k: f"{v:.1e}" for k, v in result.precision.items()})
print("fitted positions:", int(result.valid.sum()), "of", result.valid.size)
'''),
        code('''
from py4dstem_ndpd.evaluate import strain_error

core = (truth.phase == 1) & (truth.strain[..., 0] > 0.9 * truth.strain[..., 0].max())
print(f"mean e_xx in the SiGe cores: measured {np.nanmean(result.e_xx[core]):.5f}, "
      f"truth {truth.strain[..., 0][core].mean():.5f}")
print("e_xx error vs truth:", {k: round(v, 5) for k, v in strain_error(result.e_xx, truth.strain[..., 0], mask=result.valid).items()})
'''),
        md("## Figure: maps and a line profile along the growth direction"),
        code('''
from py4dstem_ndpd.analysis import line_profile, plot_strain_maps

Rx, Ry = datacube.Rshape
step = truth.calibration.r_pixel_size
line = dict(start=(0, (Ry - 1) / 2), end=(Rx - 1, (Ry - 1) / 2), width=Ry, pixel_size=step)
d, prof, sd = line_profile(result.e_xx, **line)
d_t, prof_t, _ = line_profile(truth.strain[..., 0], **line)
# default profiles: e_xx along rx through the middle column (the growth direction), e_yy along ry
fig = plot_strain_maps(result.e_xx, result.e_yy, work / "strain", virtual=adf, pixel_size=step,
                       truth=(truth.strain[..., 0], truth.strain[..., 1]))
fig
'''),
        code('''
plt.figure(figsize=(6, 3))
plt.plot(d, 100 * prof, "o-", label="NDPD + StrainMap")
plt.plot(d_t, 100 * prof_t, "k--", label="truth")
plt.xlabel(f"distance along the growth direction ({truth.calibration.r_pixel_units})")
plt.ylabel("e_xx (%)")
plt.legend()
plt.show()
'''),
        code(CLEANUP),
    ], "02 Si/SiGe strain")


# ---- 03 ----------------------------------------------------------------------------------------------------------
def nb03(t: Text):
    return _nb([
        md(f"""
# 03 · Phase mapping in a multiphase Ti-Nb alloy

The paper's second application: tell the phases of a Ti-Nb alloy apart from the **interatomic distances** seen
in each diffraction pattern. `analysis.phase_map` builds, for every scan position, a fingerprint of the
reciprocal distances of the detected disks, and clusters the positions with k-means; the number of phases is
chosen by the silhouette score. The simulated sample has 4 phases (a bcc matrix and three others). About 50 s on
2 CPU cores.

{t.note}
"""),
        code(SETUP),
        code('''
from py4dstem_ndpd.synth import Acquisition, simulate_preset

scan = simulate_preset("tinb_multiphase", Acquisition(scan_shape=(10, 10), pattern_shape=(256, 256), dose=1e6, seed=1))
datacube, truth = scan.datacube, scan.truth
print(datacube.data.shape, "| phases in the truth:", np.unique(truth.phase).tolist())
'''),
        code(f'''
from py4dstem_ndpd import DetectOptions, find_Bragg_disks

t0 = time.perf_counter()
braggpeaks = find_Bragg_disks(datacube, options={t.opts}, progress=False)
print(f"detected in {{time.perf_counter() - t0:.1f}} s")
'''),
        md("## Phase map"),
        code('''
from sklearn.metrics import adjusted_rand_score
from py4dstem_ndpd.analysis import PhaseOptions, phase_map

phases = phase_map(braggpeaks, options=PhaseOptions())
print("phases found:", phases.n_phases, "| silhouette per k:", {k: round(v, 3) for k, v in phases.silhouette.items()})
print(phases.table())
print("adjusted Rand index vs truth:", round(adjusted_rand_score(truth.phase.ravel(), phases.labels.ravel()), 3))
'''),
        code('''
fig, ax = plt.subplots(1, 2, figsize=(7, 3.5))
ax[0].imshow(phases.labels, cmap="tab10", vmin=0, vmax=9); ax[0].set_title("phase map (k-means)")
ax[1].imshow(truth.phase, cmap="tab10", vmin=0, vmax=9); ax[1].set_title("truth")
plt.show()
'''),
        md("""
## One pattern per phase

The representative position of each phase (nearest to its cluster centre), with the detections (red) and the
true disk centres (small circles).
"""),
        code('''
from py4dstem_ndpd.analysis import plot_detections

reps = [p.representative for p in phases.phases]
fig = plot_detections(datacube, braggpeaks, reps, work / "detections", truth=truth, title="one pattern per phase")
fig
'''),
        md("""
## The radial fingerprints

Each position's feature: a clipped sum of Gaussians at the lengths `|g|` of its vectors. The mean per phase shows
which distances separate them.
"""),
        code('''
plt.figure(figsize=(7, 3))
for p in phases.phases:
    mean = phases.radial[phases.labels == p.label].mean(0)
    plt.plot(phases.radial_axis, mean, label=f"phase {p.label} ({p.count} positions)")
plt.xlabel("|g| (px)")
plt.ylabel("mean occupancy")
plt.legend(fontsize=8)
plt.show()
'''),
        code(CLEANUP),
    ], "03 Ti-Nb phase mapping")


# ---- 04 ----------------------------------------------------------------------------------------------------------
def nb04(t: Text):
    return _nb([
        md(f"""
# 04 · Running on a Dask cluster

For large scans the engine spreads chunks of scan positions over Dask workers. Each worker builds the detector
**once** from its parameters and keeps it; the model never travels through the scheduler. Given a file, the
workers read their own chunks, so the data never goes through this process either.

Here: a `LocalCluster` of 2 single-threaded worker processes on this machine. The same code runs on a SLURM/PBS
cluster or an existing scheduler (see `cluster/README.md` and `docs/cluster.md`). About 60 s on 2 CPU cores
(starting the workers and loading the model in each takes most of it).

{t.note}
"""),
        code(SETUP),
        code('''
import py4DSTEM
from py4dstem_ndpd.synth import Acquisition, simulate_preset

scan = simulate_preset("si_sige_multilayer", Acquisition(scan_shape=(8, 4), pattern_shape=(256, 256), dose=1e6, seed=2))
path = work / "scan.h5"
py4DSTEM.save(str(path), scan.datacube, mode="o")   # workers read their chunks from this file
print(path, scan.datacube.data.shape)
'''),
        md("## Reference: one process"),
        code(f'''
from py4dstem_ndpd import DetectOptions, detect_scan
from py4dstem_ndpd.engine import EngineOptions

options = {t.opts}
engine = EngineOptions(batch_size=8, chunk_size=8, progress=False)   # 8 positions per chunk = 4 chunks
t0 = time.perf_counter()
local = detect_scan(str(path), options=options, engine=engine)
print(f"one process: {{local.n_peaks}} disks in {{time.perf_counter() - t0:.1f}} s")
'''),
        md("""
## A LocalCluster with 2 workers

`find_Bragg_disks(data, distributed=...)` takes a `distributed.Client`, a scheduler address, or `"local"` (a
LocalCluster started and closed for you). With a client of our own we can reuse the workers for several runs.
"""),
        code('''
from distributed import Client, LocalCluster

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
client = Client(cluster)
client
'''),
        code(f'''
from py4dstem_ndpd import find_Bragg_disks

t0 = time.perf_counter()
braggpeaks = find_Bragg_disks(str(path), options=options, engine=engine, distributed=client)
print(f"2 workers (first run, models loading): {{time.perf_counter() - t0:.1f}} s")
braggpeaks
'''),
        md("""
The engine level gives more control: `run_distributed` takes the backend class and its parameters (rebuilt on each
worker), `DistributedOptions` (chunks in flight per worker, Dask resources) and, through `EngineOptions`,
checkpoints: every finished chunk is written atomically, and `resume=True` computes only the missing ones.
"""),
        code('''
from py4dstem_ndpd.detect.backend import NDPDBackend
from py4dstem_ndpd.engine import DistributedOptions, run_distributed

ckpt = work / "checkpoint"
dopts = DistributedOptions(engine=EngineOptions(batch_size=8, chunk_size=8, progress=False, checkpoint_dir=ckpt),
                           chunks_per_worker=2)
t0 = time.perf_counter()
distributed_peaks = run_distributed(str(path), NDPDBackend, {"weights": None, "options": options}, client, options=dopts)
print(f"2 workers (models loaded): {time.perf_counter() - t0:.1f} s; timings: "
      f"{ {k: round(v, 2) for k, v in distributed_peaks.timings.items()} }")
print("checkpoint files:", sorted(p.name for p in ckpt.iterdir()))
'''),
        md("""
Same batches and chunks give the same peaks wherever they run, up to float rounding: the workers run torch on one
thread each, this process on all cores, which changes the order of the sums inside the network (~1e-5 px).
"""),
        code('''
def max_difference(a, b):
    """Largest centre difference (px) between two ScanPeaks with the same disks."""
    assert all(len(p) == len(q) for p, q in zip(a.peaks, b.peaks)), "different numbers of disks"
    return max(float(np.abs(p["qx"] - q["qx"]).max(initial=0) + np.abs(p["qy"] - q["qy"]).max(initial=0))
               for p, q in zip(a.peaks, b.peaks))

diff = max_difference(local, distributed_peaks)
print(f"same disks as the one-process run; largest centre difference {diff:.1e} px")
assert diff < 1e-3
'''),
        code('''
# resume: every chunk is already in the checkpoint, so nothing is recomputed
t0 = time.perf_counter()
resumed = run_distributed(str(path), NDPDBackend, {"weights": None, "options": options}, client,
                          options=DistributedOptions(engine=EngineOptions(batch_size=8, chunk_size=8, progress=False,
                                                                          checkpoint_dir=ckpt, resume=True)))
same = all(np.array_equal(p, q) for p, q in zip(distributed_peaks.peaks, resumed.peaks))
print(f"resumed in {time.perf_counter() - t0:.2f} s, identical to the checkpointed run: {same}")
'''),
        code('''
client.close()
cluster.close()
'''),
        md("""
## Run configurations

The same setups as YAML files (`cluster/local_cpu.yaml`, `multi_gpu.yaml`, `slurm.yaml`, `pbs.yaml`,
`existing_scheduler.yaml`), loaded with `load_config`. From a script (guard the entry point: local clusters spawn
processes):

```python
from py4dstem_ndpd.engine import load_config, run_distributed
from py4dstem_ndpd.detect.backend import NDPDBackend

if __name__ == "__main__":
    spec, options = load_config("cluster/slurm.yaml")
    peaks = run_distributed("/shared/scan.h5", NDPDBackend, {"weights": None}, spec, options=options)
```

or from the shell: `ndpd detect /shared/scan.h5 -o bv.h5 --scheduler tcp://head:8786 --checkpoint-dir ckpt/`.
"""),
        code('''
from py4dstem_ndpd.engine import ClusterSpec, load_config

config = Path.cwd().parent / "cluster" / "local_cpu.yaml"   # present in a source checkout
if config.exists():
    spec, dopts_from_file = load_config(config)
    print(spec)
    print(dopts_from_file.engine)
else:
    print(ClusterSpec(kind="local", n_workers=2, threads_per_worker=1))
'''),
        code(CLEANUP),
    ], "04 Dask cluster")


# ---- 05 ----------------------------------------------------------------------------------------------------------
def nb05(t: Text):
    return _nb([
        md(f"""
# 05 · NDPD against py4DSTEM template matching

`py4dstem_ndpd.compare.compare` runs both detectors on the same DataCube, in the same process:

* **NDPD** (the neural detector), and, from the same network pass, its stages: *rounded boxes* (what a plain
  `model.predict` user gets) and *DFL centres* (the sub-pixel decoding, paper eqs. 1-3);
* **py4DSTEM template matching** with every setting derived from the data (`baseline.template_matching`: probe,
  kernel, threshold; multicorr sub-pixel fit, upsampling 16), the most accurate setting py4DSTEM offers.

With ground truth (simulated data) each gets recall, precision and centre errors; their agreement is reported too.
Two doses, 4 × 4 positions each. About 40 s on 2 CPU cores.

{t.note}
"""),
        code(SETUP),
        code(f'''
from py4dstem_ndpd import DetectOptions
from py4dstem_ndpd.compare import LABELS, CompareOptions, compare
from py4dstem_ndpd.synth import Acquisition, simulate_preset

results = {{}}
for dose in (1e6, 1e4):
    scan = simulate_preset("si_sige_multilayer",
                           Acquisition(scan_shape=(4, 4), pattern_shape=(256, 256), dose=dose, seed=5))
    results[dose] = compare(scan.datacube, truth=scan.truth, options=CompareOptions(detect={t.opts}))
'''),
        code('''
print(f"{'dose':>6} {'method':<28} {'recall':>7} {'precision':>9} {'RMS px':>7} {'median px':>9} {'patterns/s':>10}")
for dose, res in results.items():
    for name, m in res.methods.items():
        q = m.metrics
        print(f"{dose:>6.0e} {LABELS[name]:<28} {q.recall:>7.3f} {q.precision:>9.3f} {q.error_rms:>7.3f} "
              f"{q.error_median:>9.3f} {m.patterns_per_second:>10.1f}")
'''),
        md("""
Speed on this machine (CPU; the detector runs much faster on a GPU), and the agreement between the two methods
without looking at the truth (what you can measure on real data):
"""),
        code('''
for dose, res in results.items():
    a = res.agreement
    print(f"dose {dose:.0e}: NDPD / template speed ratio {res.speedup:.2f}; matched {a['matched']}, "
          f"only NDPD {a['only_first']}, only template {a['only_second']}, "
          f"median distance {a['distance_median']:.3f} px")
'''),
        md("## Centre errors"),
        code('''
from py4dstem_ndpd.analysis import plot_error_histograms

res = results[1e6]
fig = plot_error_histograms({LABELS[k]: m.metrics.offsets for k, m in res.methods.items()}, work / "errors")
fig
'''),
        md("""
The full benchmark (256 and 512 px, doses 10³-10⁷, both samples) is `benchmarks/bench_accuracy.py`; its numbers
are in `docs/performance.md`.
"""),
        code(CLEANUP),
    ], "05 NDPD vs template matching")


# ---- 06 ----------------------------------------------------------------------------------------------------------
def nb06(t: Text):
    return _nb([
        md(f"""
# 06 · Fine-tuning on your own patterns

The shipped model was trained only on simulated patterns. If your data look different (detector, disk size,
background), fine-tune it on a few dozen of your own patterns:

1. **pseudo-label**: `training.pseudolabels.pseudo_label` picks patterns spread over the scan, lets py4DSTEM
   template matching (or the shipped model) propose one box per disk, and writes a YOLO dataset plus a review sheet;
2. **review** the labels (delete wrong boxes, add missed ones; one `0 x y w h` line per disk, any YOLO annotation
   tool reads them);
3. **fine-tune** from the shipped weights: `training.train(..., TrainOptions(weights="shipped"))`, or
   `ndpd train --weights shipped --data labels/data.yaml --epochs 30`.

Everything runs offline. This notebook keeps it tiny (8 patterns, 1 epoch: about 60 s on 2 CPU cores), so the
fine-tuned model is **not** better; it only shows the steps.

{t.note}
"""),
        code(SETUP),
        md("""
## "Your" data

A stand-in for your scan: a small Ti-Nb scan with larger disks than the presets' default.
"""),
        code('''
from py4dstem_ndpd.synth import Acquisition, simulate_preset

scan = simulate_preset("tinb_multiphase", Acquisition(scan_shape=(4, 4), pattern_shape=(256, 256), dose=1e5,
                                                      disk_radius_px=6.0, seed=11))
datacube = scan.datacube
datacube.data.shape
'''),
        md("## 1. Pseudo-labels"),
        code('''
from py4dstem_ndpd.training.pseudolabels import pseudo_label

labels_dir = work / "labels"
data_yaml = pseudo_label(datacube, labels_dir, n=8, labeller="template", val_fraction=0.25, seed=0)
print(data_yaml.read_text())
print(sorted(str(p.relative_to(labels_dir)) for p in labels_dir.rglob("*.txt"))[:4], "...")
'''),
        md("## 2. Review"),
        code('''
from IPython.display import Image, display

display(Image(filename=str(labels_dir / "review.png"), width=700))
first = sorted((labels_dir / "labels").rglob("*.txt"))[0]
print(first.name, "- class x_centre y_centre width height (normalised, x = column):")
print("\\n".join(first.read_text().splitlines()[:5]))
'''),
        md("""
To correct a label, edit its text file: delete the line of a wrong box, add a line for a missed disk. Here we
keep the proposals as they are.

## 3. Fine-tune from the shipped weights

One epoch at batch 4 on 6 training patterns (a real fine-tune: ~40 patterns, `epochs=30`). ultralytics runs fully
offline: the model is rebuilt from the shipped weights, and nothing is downloaded.
"""),
        code('''
from py4dstem_ndpd.training import TrainOptions, train

t0 = time.perf_counter()
best = train(data_yaml, work / "finetune", TrainOptions(epochs=1, batch=4, weights="shipped", workers=0))
print(f"fine-tuned in {time.perf_counter() - t0:.0f} s ->", best.relative_to(work))
'''),
        md("""
## Use the fine-tuned weights

Fine-tuning changes the network, so we compare the network's own output: the DFL sub-pixel centres, without the
refinement step (`refine="none"`); in normal use keep the default refinement.
"""),
        code('''
from py4dstem_ndpd import DetectOptions, detect_scan
from py4dstem_ndpd.evaluate import evaluate_detections

for name, weights in [("shipped", None), ("fine-tuned (1 epoch)", str(best))]:
    peaks = detect_scan(datacube, options=DetectOptions(refine="none"), weights=weights, progress=False)
    m = evaluate_detections(peaks, scan.truth, min_snr=3.0)
    print(f"{name:>22}: recall {m.recall:.3f}  precision {m.precision:.3f}  centre RMS {m.error_rms:.3f} px")
'''),
        md("""
`find_Bragg_disks(data, weights="path/to/best.pt")` and `ndpd detect --weights path/to/best.pt` use a fine-tuned
model the same way. See `docs/training.md` for training from scratch.
"""),
        code(CLEANUP),
    ], "06 Fine-tuning")


NOTEBOOKS = {
    "01_swap_backend.ipynb": nb01,
    "02_si_sige_strain.ipynb": nb02,
    "03_tinb_phase_mapping.ipynb": nb03,
    "04_dask_cluster.ipynb": nb04,
    "05_ndpd_vs_template_matching.ipynb": nb05,
    "06_fine_tuning.ipynb": nb06,
}


def build(refine: str = "auto") -> dict[str, str]:
    refine_none = refine == "none" or (refine == "auto" and not _refine_available())
    t = Text(refine_none)
    return {name: nbformat.writes(fn(t)) + "\n" for name, fn in NOTEBOOKS.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--refine", choices=["auto", "none", "default"], default="auto",
                   help="auto: the default refinement if py4dstem_ndpd.refine.refine_centres imports, else 'none'")
    p.add_argument("--check", action="store_true", help="exit 1 if a notebook differs from what this script writes")
    a = p.parse_args(argv)
    texts = build(a.refine)
    stale = []
    for name, text in texts.items():
        path = HERE / name
        if a.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print("wrote", path)
    if a.check:
        print("notebooks up to date" if not stale else f"out of date: {', '.join(stale)}")
        return 1 if stale else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
