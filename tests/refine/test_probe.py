"""The direct beam as the probe (refine/probe.py): which disk it is, and how the detector's own errors are weighed."""
import numpy as np

from py4dstem_ndpd.refine import refine
from py4dstem_ndpd.refine.benchmark import rms_errors
from py4dstem_ndpd.refine.probe import asymmetry, choose_probes

from _render import render


def lattice(origin, g1, g2, n=2):
    uv = np.array([(u, v) for u in range(-n, n + 1) for v in range(-n, n + 1)], float)
    return uv, origin + uv @ np.array([g1, g2])


def test_choose_probes_finds_a_direct_beam_that_is_not_the_brightest_disk():
    uv, c = lattice(np.array([60.3, 58.9]), [14.2, 1.1], [-0.8, 13.7])
    order = np.abs(uv).max(1)
    counts = np.choose(order.astype(int), [1000.0, 6000.0, 1500.0])  # thick crystal: first order outshines
    rng = np.random.default_rng(0)
    counts = counts * rng.uniform(0.95, 1.05, len(counts))
    k = len(c)
    direct = int(np.flatnonzero(order == 0)[0])
    two = np.concatenate([c, c + 0.1])  # two patterns; the second has its direct beam brightest
    counts2 = np.concatenate([counts, np.where(order == 0, 9000.0, counts)])
    group = np.repeat([0, 1], k)
    probe = choose_probes(two, counts2, group, 2, radius_px=4.0)
    assert probe[0] == direct
    assert probe[1] == k + direct
    # few disks: the brightest is kept (no symmetry to judge by)
    few = np.flatnonzero(order <= 1)[:6]
    assert choose_probes(c[few], counts[few], np.zeros(6, int), 1, 4.0)[0] == int(np.argmax(counts[few]))
    # a pattern without disks
    assert choose_probes(c[:0], counts[:0], np.zeros(0, int), 1, 4.0)[0] == -1
    # intensities without Friedel symmetry (a tilted crystal, or the randomised training patterns): no candidate
    # is a clear centre of symmetry, so the brightest disk stays the probe
    for seed in range(20):
        rand = np.random.default_rng(seed).lognormal(0.0, 1.5, k)
        assert choose_probes(c, rand, np.zeros(k, int), 1, 4.0)[0] == int(np.argmax(rand)), seed


def test_refinement_takes_its_origin_from_the_direct_beam_of_a_thick_crystal_pattern():
    uv, c = lattice(np.array([63.6, 64.2]), [20.1, 0.6], [-0.5, 19.9])
    order = np.abs(uv).max(1)
    frame = np.zeros((128, 128))
    for scale, sel in ((150.0, order == 0), (900.0, order == 1), (300.0, order == 2)):
        frame += render(c[sel], 4.0, shape=(128, 128), scale=scale, noise=False)
    frame = np.random.default_rng(1).poisson(frame).astype(float)
    start = c + np.random.default_rng(2).normal(0, 0.3, c.shape)
    r = refine(frame[None], [start], radius_px=4.0)
    assert np.linalg.norm(r.origin[0] - c[order == 0][0]) < 0.1
    assert np.sqrt(np.mean(np.sum((r.centres[0] - c) ** 2, 1))) < 0.1


def test_asymmetry_is_zero_for_a_symmetric_disk_and_large_for_a_crescent():
    from py4dstem_ndpd.refine._windows import extract_windows

    centre = np.array([[24.37, 23.81]])
    sym = render(centre, 5.0, shape=(48, 48), noise=False)
    cres = render(np.vstack([[0.0, 0.0], centre]), 5.0, shape=(48, 48), crescent=1.5, origin=np.zeros(2),
                  noise=False)
    out = []
    for frame in (sym, cres):
        win, anchor = extract_windows(frame[None], np.zeros(1, int), centre, 12)
        out.append(asymmetry(np.fft.fft2(win), centre - anchor)[0])
    assert out[0] < 1e-3 and out[1] > 0.3, out


def test_a_detector_biased_towards_the_pattern_centre_does_not_pull_the_lattice(case):
    """Dynamical disks pull the detector's centres towards the direct beam (~1 px on abTEM patterns); its
    weight in the lattice fit then follows its measured error, not the 0.3 px it has on uniform disks."""
    c = case("si_sige_multilayer", 1e5, (4, 2))
    det = []
    for t, o in zip(c.truth, c.origin):
        r = t - o
        n = np.linalg.norm(r, axis=1, keepdims=True)
        det.append(t - r / np.maximum(n, 1e-9) * (n > 1))  # 1 px towards the direct beam
    res = refine(c.frames, det, radius_px=c.radius)
    assert rms_errors(res.centres, c)[0] < 0.06  # measured 0.039; with the fixed 0.3 px weight: 0.10
