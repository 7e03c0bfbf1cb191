"""Tests of the vectorised DVS simulator (basicsr.synthesis.simulator)."""

import math

import numpy as np
import pytest

from basicsr.synthesis.simulator import DVSSimulator, lin_log

H, W = 48, 60
BACKENDS = ['numpy', 'torch']


def exact_sim(backend='numpy', **kwargs):
    opts = dict(sigma_thres=0, cutoff_hz=None, leak_rate_hz=0, shot_noise_rate_hz=0, backend=backend,
                dtype='float64')
    opts.update(kwargs)
    return DVSSimulator(**opts)


def per_pixel_counts(ev, polarity=None, t_max=None):
    keep = np.ones(len(ev.t), bool)
    if polarity is not None:
        keep &= ev.p == polarity
    if t_max is not None:
        keep &= ev.t <= t_max
    idx = ev.y[keep].astype(np.int64) * W + ev.x[keep]
    return np.bincount(idx, minlength=H * W).reshape(H, W)


def away_from_boundaries(ratio, margin=1e-3):
    frac = ratio - np.floor(ratio)
    return (frac > margin) & (frac < 1 - margin)


@pytest.mark.parametrize('backend', BACKENDS)
def test_step_is_exact(backend):
    rng = np.random.default_rng(3)
    i0 = rng.uniform(25, 200, (H, W))
    i1 = i0 * np.exp(rng.uniform(-2.5, 2.5, (H, W)))
    i1 = np.maximum(i1, 20.5)
    sim = exact_sim(backend)
    ev = sim.simulate(np.stack([i0, i1]), [0.0, 0.01], np.random.default_rng(0))
    ratio = np.abs(np.log(i1) - np.log(i0)) / 0.3
    expected = np.floor(ratio)
    valid = away_from_boundaries(ratio)
    assert valid.mean() > 0.95 and expected.max() >= 7
    got = per_pixel_counts(ev)
    np.testing.assert_array_equal(got[valid], expected[valid])
    up = i1 > i0
    assert np.all(per_pixel_counts(ev, -1)[up] == 0) and np.all(per_pixel_counts(ev, 1)[~up] == 0)
    assert ev.t.min() > 0 and ev.t.max() <= 0.01


@pytest.mark.parametrize('backend', BACKENDS)
def test_ramp_is_exact_frame_by_frame(backend):
    rng = np.random.default_rng(4)
    # log-linear ramps in both directions, some starting in the linear region below 20
    start = rng.uniform(5, 120, (H, W))
    slope = rng.uniform(-0.35, 0.35, (H, W))
    num = 9
    frames = np.stack([start * np.exp(slope * k) for k in range(num)])
    times = np.linspace(0, 0.08, num)
    ev = exact_sim(backend).simulate(frames, times, np.random.default_rng(0))
    l0 = lin_log(frames[0])
    for k in range(1, num):
        ratio = np.abs(lin_log(frames[k]) - l0) / 0.3
        valid = away_from_boundaries(ratio)
        got = per_pixel_counts(ev, t_max=times[k] + 1e-12)
        np.testing.assert_array_equal(got[valid], np.floor(ratio)[valid])
    assert len(ev.t) > 3 * H * W


def test_event_times_interpolated_on_shared_grid():
    i0 = np.full((H, W), 50.0)
    i1 = i0.copy()
    i1[:, :30] *= math.exp(0.95)  # 3 ON events on the left half
    i1[:, 30:] *= math.exp(-0.65)  # 2 OFF events on the right half
    ev = exact_sim().simulate(np.stack([i0, i1]), [0.1, 0.2], np.random.default_rng(0))
    left = ev.x < 30
    assert set(np.round(ev.t[left], 12)) == {round(0.1 + 0.1 * j / 3, 12) for j in (1, 2, 3)}
    assert set(np.round(ev.t[~left], 12)) == {round(0.1 + 0.1 * j / 3, 12) for j in (1, 2)}
    assert np.all(ev.p[left] == 1) and np.all(ev.p[~left] == -1)


def test_canonical_output():
    rng = np.random.default_rng(5)
    frames = rng.uniform(0, 300, (6, H, W))
    ev = DVSSimulator().simulate(frames, np.linspace(0, 0.1, 6), np.random.default_rng(1))
    assert ev.x.dtype == np.uint16 and ev.y.dtype == np.uint16
    assert ev.t.dtype == np.float64 and ev.p.dtype == np.int8
    assert np.all(np.diff(ev.t) >= 0)
    assert ev.t.min() > 0 and ev.t.max() <= 0.1
    assert set(np.unique(ev.p)) == {-1, 1}
    assert ev.x.max() < W and ev.y.max() < H and (ev.height, ev.width) == (H, W)
    ev.validate()


def static_noise_run(backend='numpy', rate=20.0, every_step=True, steps=50, level=100.0, seed=0):
    sim = DVSSimulator(sigma_thres=0, cutoff_hz=30, leak_rate_hz=0, shot_noise_rate_hz=rate,
                       shot_noise_every_step=every_step, backend=backend)
    frames = np.full((steps + 1, H, W), level)
    times = np.arange(steps + 1) * 0.01
    ev = sim.simulate(frames, times, np.random.default_rng(seed))
    return sim, ev, steps * 0.01


@pytest.mark.parametrize('level', [0.0, 100.0, 255.0])  # q per cell 0.09, 0.07 (dense draw), 0.025 (sparse draw)
def test_shot_noise_rate_matches_configuration(level):
    rate = 20.0
    sim, ev, duration = static_noise_run(rate=rate, level=level)
    luma = (level + 20) / 275
    expected_each = rate / 2 * ((0.25 - 1) * luma + 1) * duration * H * W
    for key in ('noise_on', 'noise_off'):
        assert abs(sim.counts[key] / expected_each - 1) < 0.10, (key, sim.counts[key], expected_each)
    # every output event is a noise event or the signal event undoing an earlier noise event
    assert len(ev.t) == sum(sim.counts[k] for k in ('on', 'off', 'noise_on', 'noise_off'))
    assert sim.counts['on'] + sim.counts['off'] <= sim.counts['noise_on'] + sim.counts['noise_off']


def test_shot_noise_on_off_balance():
    sim, ev, _ = static_noise_run(rate=40.0, steps=40)
    n_on, n_off = sim.counts['noise_on'], sim.counts['noise_off']
    assert n_on > 2000 and abs(n_on - n_off) / (n_on + n_off) < 0.05
    on_out, off_out = int(np.sum(ev.p == 1)), int(np.sum(ev.p == -1))
    assert abs(on_out - off_out) / (on_out + off_out) < 0.05


def test_faithful_static_scene_has_no_noise():
    sim, ev, _ = static_noise_run(rate=40.0, every_step=False)
    assert len(ev.t) == 0 and sim.counts['noise_on'] == 0


def test_leak_rate():
    sim = DVSSimulator(sigma_thres=0, cutoff_hz=30, leak_rate_hz=2.5, shot_noise_rate_hz=0)
    frames = np.full((101, H, W), 80.0)
    ev = sim.simulate(frames, np.arange(101) * 0.01, np.random.default_rng(2))
    assert np.all(ev.p == 1)
    assert abs(len(ev.t) / (2.5 * 1.0 * H * W) - 1) < 0.10


@pytest.mark.parametrize('backend', BACKENDS)
def test_refractory_period_delays_events(backend):
    i0 = np.full((H, W), 50.0)
    i1 = i0 * math.exp(1.0)  # 3 events per pixel
    frames = np.stack([i0, i1, i1, i1, i1])
    times = [0.0, 0.01, 0.02, 0.03, 0.04]
    ev = exact_sim(backend, refractory_period_s=0.015).simulate(frames, times, np.random.default_rng(0))
    first = per_pixel_counts(ev, t_max=0.01 + 1e-12)
    assert np.all(first == 1)
    assert np.all(per_pixel_counts(ev) == 3)  # the blocked change is emitted later
    per_pixel_gaps = np.diff(np.sort(ev.t[(ev.x == 0) & (ev.y == 0)]))
    assert np.all(per_pixel_gaps >= 0.015 - 1e-12)


def moving_scene(num=9, seed=7):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 300, (H, W + num))
    return np.stack([base[:, k:k + W] for k in range(num)]), np.linspace(0, 0.1, num)


def test_seeded_reproducibility():
    frames, times = moving_scene()
    a = DVSSimulator(shot_noise_rate_hz=5).simulate(frames, times, np.random.default_rng([1, 2]))
    b = DVSSimulator(shot_noise_rate_hz=5).simulate(frames, times, np.random.default_rng([1, 2]))
    c = DVSSimulator(shot_noise_rate_hz=5).simulate(frames, times, np.random.default_rng([1, 3]))
    for key in ('x', 'y', 't', 'p'):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert len(a.t) != len(c.t) or not all(np.array_equal(getattr(a, k), getattr(c, k)) for k in ('x', 'y', 't', 'p'))


def test_numpy_and_torch_agree_statistically():
    frames, times = moving_scene()
    stats = {}
    for backend in BACKENDS:
        sim = DVSSimulator(shot_noise_rate_hz=5, backend=backend)
        ev = sim.simulate(frames, times, np.random.default_rng(11))
        hist = np.histogram(ev.t, bins=8, range=(0, 0.1))[0]
        stats[backend] = (sim.counts, per_pixel_counts(ev, 1), per_pixel_counts(ev, -1), hist)
    (c_np, on_np, off_np, h_np), (c_th, on_th, off_th, h_th) = stats['numpy'], stats['torch']
    for key in ('on', 'off', 'noise_on', 'noise_off'):
        assert abs(c_np[key] - c_th[key]) <= 0.02 * max(c_np[key], 50), key
    assert c_np['on'] > 1000 and c_np['off'] > 1000
    assert np.abs(on_np - on_th).sum() <= 0.02 * on_np.sum()
    assert np.abs(off_np - off_th).sum() <= 0.02 * off_np.sum()
    np.testing.assert_allclose(h_np, h_th, rtol=0.05, atol=20)


def test_bad_arguments():
    with pytest.raises(ValueError, match='backend'):
        DVSSimulator(backend='jax')
    with pytest.raises(ValueError, match='pos_thres'):
        DVSSimulator(pos_thres=0)
    sim = DVSSimulator()
    with pytest.raises(RuntimeError, match='reset'):
        sim.step(np.zeros((H, W)), 0.1)
    sim.reset(np.zeros((H, W)), 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match='not after'):
        sim.step(np.zeros((H, W)), 0.0)
    with pytest.raises(TypeError, match='Generator'):
        sim.reset(np.zeros((H, W)), 0.0, 42)


def loop_reference(frames, times, rng, p_th=0.3, sigma=0.03, cutoff=30.0, leak=0.1):
    """Per-pixel transcription of the model (lowlight.md §10.8) without shot noise: (t, x, y, p) tuples."""
    h, w = frames[0].shape
    l_old = lin_log(frames[0]) - rng.uniform(0, p_th, (h, w))
    th_on = np.maximum(rng.normal(p_th, sigma, (h, w)), 0.01)
    th_off = np.maximum(rng.normal(p_th, sigma, (h, w)), 0.01)
    l1, llp = lin_log(frames[0]), lin_log(frames[0])
    events = []
    for k in range(1, len(frames)):
        dt = times[k] - times[k - 1]
        counts = {}
        for y in range(h):
            for x in range(w):
                i = float(frames[k][y, x])
                eps = min(dt * 2 * math.pi * cutoff * (i + 20) / 275, 1.0)
                log_i = i / 20 * math.log(20) if i < 20 else math.log(i)
                l1[y, x] = (1 - eps) * l1[y, x] + eps * log_i
                llp[y, x] = (1 - eps) * llp[y, x] + eps * l1[y, x]
                l_old[y, x] -= dt * leak * p_th
                diff = llp[y, x] - l_old[y, x]
                n_on, n_off = math.floor(max(diff, 0) / th_on[y, x]), math.floor(max(-diff, 0) / th_off[y, x])
                l_old[y, x] += n_on * th_on[y, x] - n_off * th_off[y, x]
                counts[(x, y)] = (n_on, n_off)
        num_sub = max(max(c) for c in counts.values())
        for (x, y), (n_on, n_off) in counts.items():
            events += [(times[k - 1] + dt * j / num_sub, x, y, 1) for j in range(1, n_on + 1)]
            events += [(times[k - 1] + dt * j / num_sub, x, y, -1) for j in range(1, n_off + 1)]
    return sorted(events)


def smooth_columns(img):
    """3-tap horizontal smoothing so that neighbouring pixels differ moderately."""
    img = (img[:, :-2] + img[:, 1:-1] + img[:, 2:]) / 3
    return np.pad(img, ((0, 0), (1, 1)), mode='edge')


@pytest.mark.parametrize('backend', BACKENDS)
def test_matches_per_pixel_loop_reference(backend):
    rng = np.random.default_rng(9)
    base = smooth_columns(rng.uniform(0, 400, (12, 15 + 8)))
    frames = np.stack([base[:, k:k + 15] * (1 + 0.05 * k) for k in range(7)])
    times = np.arange(7) * (0.1 / 6)
    sim = DVSSimulator(shot_noise_rate_hz=0, backend=backend, dtype='float64')
    ev = sim.simulate(frames, times, np.random.default_rng(1))
    ref = loop_reference(frames, times, np.random.default_rng(1))
    got = sorted(zip(np.round(ev.t, 12), ev.x.tolist(), ev.y.tolist(), ev.p.tolist()))
    assert len(ref) > 100
    assert got == [(round(t, 12), x, y, p) for t, x, y, p in ref]
