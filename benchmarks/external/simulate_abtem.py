"""Multislice CBED patterns from abTEM (Si [110] or SrTiO3 [001]): an independent simulator for the detector's
generalisation test.

Runs in its own environment (abTEM needs numpy 2; py4DSTEM 0.14 needs numpy < 2)::

    python -m venv /tmp/abtem-venv && /tmp/abtem-venv/bin/pip install abtem
    /tmp/abtem-venv/bin/python benchmarks/external/simulate_abtem.py --out tests/data/abtem_si110.npz
    /tmp/abtem-venv/bin/python benchmarks/external/simulate_abtem.py --material sto001 --phonons 4 --extent 60 \
        --thickness 20 50 --convergence 2.0 3.5 --seed 1 --out tests/data/abtem_sto001.npz   # 7 min, 2 cores
    # crystals off the zone axis (beam tilt in a random direction per pattern; 1-2 min per pattern):
    /tmp/abtem-venv/bin/python benchmarks/external/simulate_abtem.py --thickness 30 --convergence 2.0 --tilt 8 16 \
        --seed 31 --out tests/data/abtem_si110_tilt8-16mrad.npz                                  # validation
    /tmp/abtem-venv/bin/python benchmarks/external/simulate_abtem.py --thickness 20 45 --convergence 1.8 \
        --tilt 6 12 20 --seed 32 --out tests/data/abtem_si110_tilt6-20mrad.npz                   # held out
    /tmp/abtem-venv/bin/python benchmarks/external/simulate_abtem.py --thickness 45 --convergence 1.8 --tilt 12 20 \
        --seed 41 --out tests/data/abtem_si110_tilt12-20mrad.npz                                 # validation
    /tmp/abtem-venv/bin/python benchmarks/external/simulate_abtem.py --material sto001 --phonons 2 --extent 60 \
        --thickness 25 --convergence 2.2 --tilt 10 20 --seed 33 --out tests/data/abtem_sto001_tilt10-20mrad.npz
    # smoother thermal diffuse scattering: 16 frozen-phonon configurations (12 min, 2 cores)
    /tmp/abtem-venv/bin/python benchmarks/external/simulate_abtem.py --material sto001 --phonons 16 --extent 60 \
        --thickness 25 50 --convergence 2.4 --seed 51 --out tests/data/abtem_sto001_16phonons.npz

Four frozen-phonon configurations leave the thermal diffuse scattering speckled (blobs a few pixels wide between
the disks), which makes the SrTiO3 set harder than real data, where the diffuse scattering is smooth; 10 or more
configurations cost proportionally more.

Each pattern: a 200 kV probe (convergence semi-angle per pattern; with ``--tilt``, tilted off the zone axis by
that many mrad in a random direction, saved as ``tilt_mrad``) focused on a slab (thickness per pattern),
multislice, with ``--phonons`` frozen-phonon configurations averaged (thermal diffuse scattering) or none; the diffraction intensity is resampled (linear
interpolation) onto a ``--size`` px detector of square pixels, 1.05-1.25 simulation pixels each (so lattice sites fall
anywhere on the pixel grid), with a random sub-pixel descan offset; then Poisson noise at ``--dose`` electrons
per pattern and 16-bit counts.

Truth: every zero-order Laue zone reflection of Si [110] on the detector (fcc rule; exact, px; the loader,
``py4dstem_ndpd.synth.external.load_external``, adds the other nodes of their net, half steps included, where the
multislice made a visible disk of its own, measured on ``expected``), with the
integrated SNR of its disk in the noiseless pattern (``I / sqrt(I + A b)``, ``b`` the local background).
Saved: ``patterns`` (N, size, size) uint16, ``expected`` (N, size, size) float32 noiseless, each summing to 1
(scale by a dose and draw Poisson counts for other doses), ``centres`` (all sites, (M, 2) qx, qy px), ``snr`` (M,), ``counts``
(N,) sites per pattern, ``radius_px`` (N,), ``thickness_nm``, ``convergence_mrad``, ``q_pixel_size`` (N,
1/A per detector pixel), ``origin`` (N, 2), ``dose``, ``simulator``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _si110(extent_A: float, thickness_nm: float):
    """Si [110]: ase's orthogonal cell repeats every a/sqrt(2) along [1-10], a along [001] and a/sqrt(2) along the
    beam direction [-1-10]; zero-order Laue zone g = (h, -h, l) / a with h, l of one parity (fcc rule), i.e. m = h
    along [1-10] (in units of 1 / cell_x = sqrt(2) / a) and n = l along [001]. (002)-type sites are kept:
    forbidden kinematically, they light up by double diffraction."""
    from ase.lattice.cubic import Diamond

    a = 5.431
    cell = np.array([a / np.sqrt(2), a, a / np.sqrt(2)])
    nx, ny = int(round(extent_A / cell[0])), int(round(extent_A / cell[1]))
    nz = max(1, int(round(thickness_nm * 10 / cell[2])))
    atoms = Diamond(directions=[[1, -1, 0], [0, 0, 1], [-1, -1, 0]], symbol="Si", latticeconstant=a,
                    size=(nx, ny, nz), pbc=True)
    return atoms, cell, (nx, ny, nz), lambda m, n: (m - n) % 2 == 0


def _sto001(extent_A: float, thickness_nm: float):
    """SrTiO3 [001] (cubic perovskite, a = 3.905 A): the cubic cell is the orthogonal cell; every (h, k, 0) is
    allowed (primitive lattice)."""
    from ase import Atoms

    a = 3.905
    unit = Atoms("SrTiO3", scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)],
                 cell=[a, a, a], pbc=True)
    nx, ny = int(round(extent_A / a)), int(round(extent_A / a))
    nz = max(1, int(round(thickness_nm * 10 / a)))
    return unit * (nx, ny, nz), np.array([a, a, a]), (nx, ny, nz), lambda m, n: np.ones_like(m, bool)


MATERIALS = {"si110": ("Si [110]", _si110), "sto001": ("SrTiO3 [001]", _sto001)}


def simulate(thickness_nm: float, convergence_mrad: float, size: int, extent_A: float = 100.0, *,
             material: str = "si110", phonons: int = 0, seed: int = 0, tilt_mrad: tuple[float, float] = (0.0, 0.0)):
    import abtem

    atoms, cell, reps, allowed_rule = MATERIALS[material][1](extent_A, thickness_nm)
    cell_x, cell_y, cell_z = cell
    assert np.allclose(atoms.cell.lengths(), np.array(reps) * cell)
    if phonons:  # frozen phonons: thermal diffuse scattering (Kikuchi bands, a diffuse background)
        atoms = abtem.FrozenPhonons(atoms, num_configs=phonons, sigmas=0.08, seed=seed)
    potential = abtem.Potential(atoms, sampling=0.1, slice_thickness=cell_z / 2, projection="infinite")
    # a tilted beam (mrad, abTEM's x and y): the crystal off its zone axis, so the Ewald sphere meets the
    # reflections along a Laue circle; the pattern stays centred on the direct beam
    probe = abtem.Probe(energy=200e3, semiangle_cutoff=convergence_mrad, tilt=tuple(float(t) for t in tilt_mrad))
    probe.grid.match(potential)
    cx, cy = reps[0] * cell_x / 2, reps[1] * cell_y / 2
    exit_wave = probe.multislice(potential, scan=[(cx, cy)])
    dp = exit_wave.diffraction_patterns(max_angle=None, fftshift=True)
    if phonons:
        dp = dp.mean(0)  # incoherent average over the configurations
    dp = dp.compute()
    arr = np.asarray(dp.array).reshape(dp.array.shape[-2:])
    sampling = np.asarray(dp.sampling)  # 1/A per pixel
    H, W = arr.shape
    wavelength = float(abtem.core.energy.energy2wavelength(200e3))
    radius_px = convergence_mrad * 1e-3 / wavelength / sampling
    # reciprocal lattice sites of the orthogonal cell: (m / cell_x, n / cell_y) in 1/A, in simulation pixels
    mx = int(H / 2 * sampling[0] * cell_x) + 1
    my = int(W / 2 * sampling[1] * cell_y) + 1
    m, n = np.meshgrid(np.arange(-mx, mx + 1), np.arange(-my, my + 1), indexing="ij")
    m, n = m.ravel(), n.ravel()
    allowed = allowed_rule(m, n)
    m, n = m[allowed], n[allowed]
    kx, ky = m / cell_x, n / cell_y
    sites = np.stack([H // 2 + kx / sampling[0], W // 2 + ky / sampling[1]], 1)
    return arr.astype(np.float64), sites, radius_px, sampling, reps


def disk_sums(image, sites, radius):
    qx, qy = np.indices(image.shape)
    out = np.zeros(len(sites))
    for i, (x, y) in enumerate(sites):
        m = (qx - x) ** 2 + (qy - y) ** 2 <= radius**2
        out[i] = image[m].sum()
    return out


def to_detector(image, scale, shift, size: int):
    """Resample onto a detector of ``size`` px whose pixel is ``1 / scale`` simulation pixels (per axis), centred
    on the zero beam plus ``shift`` (detector px), by linear interpolation. Returns the image and the mapping
    ``x_det = (x_sim - c_sim) * scale + c_det + shift``."""
    from scipy import ndimage

    c_sim = np.array(image.shape) // 2
    c_det = np.array([size // 2, size // 2], float)
    shift = np.asarray(shift, float)
    scale = np.asarray(scale, float)
    # input coordinate of output pixel o: (o - c_det - shift) / scale + c_sim
    out = ndimage.affine_transform(image, np.full(2, 1.0 / scale), offset=c_sim - (c_det + shift) / scale,
                                   output_shape=(size, size), order=1, mode="constant")
    out *= 1.0 / np.prod(scale)  # counts per detector pixel

    def mapping(x):
        return (np.asarray(x) - c_sim) * scale + c_det + shift

    return out, mapping


def site_snr(expected, sites, radius):
    """Integrated SNR of each site's disk in an expected-counts image: ``I / sqrt(I + A b)``, ``b`` the median
    of an annulus from ``radius + 2`` to ``radius + 5`` px around it (background between disks)."""
    qx, qy = np.indices(expected.shape)
    snr = np.zeros(len(sites))
    for i, (x, y) in enumerate(sites):
        d2 = (qx - x) ** 2 + (qy - y) ** 2
        disk = d2 <= radius**2
        ring = (d2 >= (radius + 2) ** 2) & (d2 <= (radius + 5) ** 2)
        b = float(np.median(expected[ring])) if ring.any() else 0.0
        intensity = float(expected[disk].sum() - b * disk.sum())
        snr[i] = max(intensity, 0.0) / np.sqrt(max(intensity, 0.0) + b * disk.sum() + 1e-12)
    return snr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--thickness", type=float, nargs="+", default=[10.0, 30.0, 60.0])
    p.add_argument("--convergence", type=float, nargs="+", default=[1.5, 2.5])
    p.add_argument("--dose", type=float, default=1e6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--material", default="si110", choices=sorted(MATERIALS))
    p.add_argument("--phonons", type=int, default=0, help="frozen-phonon configurations (0: none)")
    p.add_argument("--extent", type=float, default=100.0, help="lateral size of the slab, A")
    p.add_argument("--tilt", type=float, nargs="+", default=[0.0],
                   help="beam tilts off the zone axis, mrad (each in a random direction); 0: on axis")
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    patterns, centres, radii, meta = [], [], [], []
    all_snr, expecteds = [], []
    runs = [(t, c, tl) for t in a.thickness for c in a.convergence for tl in a.tilt]
    for t, c, tl in runs:
        t0 = time.perf_counter()
        phi = rng.uniform(0, 2 * np.pi) if tl else 0.0
        tilt = (tl * np.cos(phi), tl * np.sin(phi))
        img, sites, r, sampling, reps = simulate(t, c, a.size, a.extent, material=a.material,
                                                 phonons=a.phonons, seed=a.seed, tilt_mrad=tilt)
        # square detector pixels of q_det 1/A, 1.05-1.25 simulation pixels: lattice sites off the pixel grid
        q_det = sampling.max() / rng.uniform(0.8, 0.95)
        scale = sampling / q_det
        off = rng.uniform(-0.5, 0.5, 2)
        det, mapping = to_detector(img, scale, off, a.size)
        sites = mapping(sites)
        r = float(np.mean(r * scale))
        on = (sites >= -0.5).all(1) & (sites < a.size - 0.5).all(1)
        sites = sites[on]
        expected = det / det.sum() * a.dose
        snr = site_snr(expected, sites, r)
        counts = np.clip(rng.poisson(expected), 0, 65535).astype(np.uint16)
        patterns.append(counts)
        expecteds.append((expected / a.dose).astype(np.float32))
        centres.append(sites)
        all_snr.append(snr)
        radii.append(r)
        meta.append((t, c, off, q_det, tilt))
        print(f"thickness {t} nm, convergence {c} mrad, tilt {tl} mrad: radius {r:.2f} px, {len(sites)} sites, "
              f"{(snr >= 3).sum()} with SNR >= 3, cell reps {reps}, {time.perf_counter() - t0:.1f} s", flush=True)
    np.savez_compressed(
        a.out, patterns=np.stack(patterns), expected=np.stack(expecteds), centres=np.concatenate(centres), counts=np.array([len(c) for c in centres]),
        snr=np.concatenate(all_snr), radius_px=np.array(radii), q_pixel_size=np.array([m[3] for m in meta]), thickness_nm=np.array([m[0] for m in meta]),
        convergence_mrad=np.array([m[1] for m in meta]), tilt_mrad=np.array([m[4] for m in meta]), origin=np.array([a.size // 2 + m[2] for m in meta]),
        dose=a.dose, simulator=(f"abTEM {__import__('abtem').__version__} multislice, {MATERIALS[a.material][0]}, 200 kV"
                                + (f", {a.phonons} frozen phonons" if a.phonons else "") + f", seed {a.seed}"),
    )


if __name__ == "__main__":
    main()
