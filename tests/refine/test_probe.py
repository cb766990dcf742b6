"""The direct beam as the probe (refine/probe.py): which disk it is, and how the detector's own errors are weighed."""
import numpy as np
import pytest

from py4dstem_ndpd.refine import refine
from py4dstem_ndpd.refine.benchmark import rms_errors
from py4dstem_ndpd.refine.probe import asymmetry, choose_probes, probe_positions

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


def _graded(centres, radius, shape, scale, grade, direction):
    """Disks whose intensity rises linearly across them by ``grade`` (a tilted crystal's rocking curve)."""
    X, Y = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    img = np.zeros(shape)
    n = np.asarray(direction, float) / np.linalg.norm(direction)
    for c, s in zip(np.atleast_2d(centres), np.broadcast_to(scale, len(np.atleast_2d(centres)))):
        dx, dy = X - c[0], Y - c[1]
        disk = 0.5 * (1 - np.tanh((np.hypot(dx, dy) - radius) / 0.6))
        img += s * disk * np.clip(1 + grade * (dx * n[0] + dy * n[1]) / radius, 0, None)
    return img


def test_a_direct_beam_with_a_gradient_across_it_is_located_by_its_rim():
    """Off a zone axis the rocking curve crosses the direct beam too: its centroid moves, and with it every disk
    of the pattern, since all are measured against it; its rim does not. A +-50 % ramp: centroid 0.65 px off, the
    rim 0.01-0.07 px (seeds 3-7; 0.11-0.17 px before the interior's slope was taken out of the gradients)."""
    from py4dstem_ndpd.refine import RefineOptions

    uv, c = lattice(np.array([63.6, 64.2]), [20.1, 0.6], [-0.5, 19.9])
    order = np.abs(uv).max(1)
    frame = _graded(c, 5.0, (128, 128), np.where(order == 0, 400.0, 150.0), 0.5, (0.6, -0.8))
    frame = np.random.default_rng(3).poisson(frame).astype(float)
    direct = c[order == 0][0]
    start = c + np.random.default_rng(4).normal(0, 0.3, c.shape)
    centroid = refine(frame[None], [start], radius_px=5.0, options=RefineOptions(edge=False))
    r = refine(frame[None], [start], radius_px=5.0)
    assert np.linalg.norm(centroid.origin[0] - direct) > 0.5
    assert np.linalg.norm(r.origin[0] - direct) < 0.1
    assert np.sqrt(np.mean(np.sum((r.centres[0] - c) ** 2, 1))) < 0.1


def test_a_uniform_direct_beam_keeps_its_centroid():
    """Where the rim and the centroid agree within the shot noise, the centroid (the more precise) is kept."""
    from py4dstem_ndpd.refine.probe import _edge_probes

    centre = np.array([[24.37, 23.81]])
    frame = np.random.default_rng(5).poisson(render(centre, 5.0, shape=(48, 48), scale=300.0, noise=False))
    from py4dstem_ndpd.refine._windows import extract_windows

    win, anchor = extract_windows(frame[None].astype(float), np.zeros(1, int), centre, 12)
    t = centre - anchor + 0.03
    out = _edge_probes(np.fft.fft2(win), t, np.array([150.0]), 12, 5.0, 1.5)
    assert np.array_equal(out, t)


def test_the_direct_beam_is_not_pulled_by_neighbours_reaching_into_its_background_ring():
    """abTEM Si [110] with 8.3 px disks binned 2 x 2: the neighbours' edges 9 px from the direct beam's centre, in
    its background ring, moved its centroid (and every disk of the pattern) by 0.78 px."""
    from pathlib import Path

    from py4dstem_ndpd.api import detect_scan
    from py4dstem_ndpd.synth.cameras import Binned
    from py4dstem_ndpd.synth.external import load_external

    data = Path(__file__).parents[1] / "data" / "abtem_si110.npz"
    ext = [e for e in load_external(data, dose=1e5, seed=5) if e.truth.disk_radius > 6][0]
    cam = Binned(2)
    truth = cam.truth(ext.truth)
    peaks = detect_scan(cam.apply(ext.frames), progress=False)
    for n in range(ext.frames.shape[1]):
        p = peaks.at(0, n)
        d = np.hypot(p["qx"] - truth.origin[0, n, 0], p["qy"] - truth.origin[0, n, 1])
        assert d.min() < 0.15, (n, d.min())


def _probe_windows(radius: float, seeds: range, scale: float):
    """Noisy renders of one disk, cut and flattened as :func:`probe_positions` does for a probe."""
    from py4dstem_ndpd.refine._windows import extract_windows, remove_background, taper

    half = int(np.ceil(radius + 7.0))
    centre = np.array([[31.3, 32.6]])
    frames = np.stack([render(centre, radius, shape=(64, 64), scale=scale, seed=s) for s in seeds])
    win, anchor = extract_windows(frames, np.arange(len(frames)), np.repeat(centre, len(frames), 0), half)
    flat = remove_background(win, half, radius + 4.0, robust=True)
    return flat * taper(half, radius + 2.0, radius + 4.0), centre - anchor, half


@pytest.mark.parametrize("radius", [3.0, 10.0])
def test_the_direct_beam_takes_the_more_precise_of_its_centroid_and_its_centre_of_symmetry(radius):
    """The centroid weighs a disk's pixels by their distance from its centre, the centre of point symmetry (the
    self-convolution maximum) weighs its edge: on a small disk the first is the more precise, on a large sharp one
    the second. The predicted variances pick, per probe, the one with the smaller error."""
    from py4dstem_ndpd.refine.probe import _centroid, _precise_probe_centre

    win, truth, half = _probe_windows(radius, range(200), 30.0)
    start = truth + 0.3
    centroid = _centroid(win, start, half, radius + 2.5)
    best = _precise_probe_centre(win, np.maximum(win, 0.0) + 1.0, centroid, half, radius + 2.5, 0.5)
    rms = lambda c: float(np.sqrt(np.mean(np.sum((c - truth) ** 2, 1))))  # noqa: E731
    moved = np.any(best != centroid, 1)
    if radius < 5:
        assert moved.mean() < 0.1, moved.mean()
        assert rms(best) <= 1.02 * rms(centroid)
    else:
        assert moved.mean() > 0.9, moved.mean()
        assert rms(best) < 0.85 * rms(centroid), (rms(best), rms(centroid))


def test_a_faint_direct_beam_keeps_its_centroid():
    """Below an SNR of 30 the predicted error of the centre of symmetry is too optimistic (validation scans at 1e3
    electrons), so a faint probe keeps its centroid; a bright one of the same shape takes the centre of symmetry."""
    from py4dstem_ndpd.refine.probe import SYMMETRY_MIN_SNR, _centroid, probe_positions

    centre = np.array([[31.3, 32.6]])
    for scale, faint in ((0.4, True), (30.0, False)):
        win, local, half = _probe_windows(10.0, range(1), scale)
        frame = render(centre, 10.0, shape=(64, 64), scale=scale, seed=0)
        # the same window and start as the test's centroid: the detector's centre is the true one
        fit = probe_positions(frame[None], np.zeros(1, int), centre, 1, 10.0, edge=False)
        assert (fit.snr[0] < SYMMETRY_MIN_SNR) == faint, fit.snr[0]
        c = _centroid(win, local, half, 12.5)
        same = np.allclose(fit.positions[0] - (centre[0] - local[0]), c[0], atol=1e-9)
        assert same == faint, (scale, fit.positions[0], c[0])


@pytest.mark.parametrize("dose", [1e5, 1e6])
def test_the_poisson_likelihood_locates_uniform_disks_better_than_the_plain_correlation(case, dose):
    """Correlating with ``log(1 + P / f)`` instead of the probe ``P`` weighs the disks' outer edge, where a count
    says most about the position: per-disk median error on Si/SiGe measured 0.101 -> 0.081 px (1e5 electrons),
    0.030 -> 0.025 px (1e6)."""
    from py4dstem_ndpd.refine.benchmark import detector_like

    c = case("si_sige_multilayer", dose)
    det = detector_like(c.truth)
    group = np.concatenate([np.full(len(d), n) for n, d in enumerate(det)])
    truth = np.concatenate(c.truth)
    pf = probe_positions(np.asarray(c.frames, np.float32), group, np.concatenate(det), len(det), c.radius)
    disks = (pf.snr >= 5) & ~pf.clipped
    disks[pf.probe[pf.probe >= 0]] = False  # the direct beams are the probes: no correlation
    err = {k: np.median(np.hypot(*(pf.alternatives[k][disks] - truth[disks]).T)) for k in ("plain", "poisson")}
    assert err["poisson"] < 0.9 * err["plain"], err
