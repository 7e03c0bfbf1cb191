"""Event denoising: the background-activity filter keeps a moving edge and drops isolated noise; hot pixels found."""
import numpy as np
import pytest

from basicsr.events.denoise import (background_activity_mask, check_denoise_options, denoise_events, hot_pixel_mask)

H, W = 40, 60


def moving_edge(rng, duration=0.05):
    """An edge in the upper half sweeping 40 columns: each column fires 3 events per row, in time order, with 0.2 ms
    jitter."""
    rows, cols = H // 2, np.arange(10, 50)
    t_col = (cols - 10) / 40 * duration
    x = np.repeat(cols, rows * 3)
    y = np.tile(np.repeat(np.arange(rows), 3), cols.size)
    t = np.repeat(t_col, rows * 3) + rng.uniform(0, 2e-4, x.size)
    return x, y, t, np.ones(x.size, np.int8)


def background(rng, rate_hz, duration=0.05):
    """Uniform background activity at ``rate_hz`` per pixel."""
    n = rng.poisson(rate_hz * duration * H * W)
    return (rng.integers(0, W, n), rng.integers(0, H, n), rng.uniform(0, duration, n),
            np.where(rng.random(n) < 0.5, -1, 1).astype(np.int8))


def brute_force_mask(x, y, t, window, include_self):
    keep = np.zeros(t.size, bool)
    for i in range(t.size):
        near = (np.abs(x - x[i]) <= 1) & (np.abs(y - y[i]) <= 1) & (t <= t[i]) & (t >= t[i] - window)
        if not include_self:
            near &= (x != x[i]) | (y != y[i])
        near[i] = False
        keep[i] = near.any()
    return keep


@pytest.mark.parametrize('include_self', [False, True])
def test_ba_mask_equals_the_definition(include_self):
    """The searchsorted formulation equals a brute-force reading of the definition, events in any order."""
    rng = np.random.default_rng(0)
    n = 400
    x, y = rng.integers(0, 8, n), rng.integers(0, 6, n)
    t = np.round(rng.uniform(0, 0.02, n), 4)  # rounded: simultaneous events occur
    got = background_activity_mask(x, y, t, 6, 8, window=2e-3, include_self=include_self)
    np.testing.assert_array_equal(got, brute_force_mask(x, y, t, 2e-3, include_self))


def test_ba_filter_drops_isolated_noise_and_keeps_a_moving_edge():
    """Background activity at 1 Hz per pixel (and 0.2 Hz) over 0.5 s, the edge in its first 50 ms: at least 99 % of
    the edge's events are kept, and of the noise events away from the edge (lower half) only chance coincidences
    survive a 5 ms window (measured 3.4 % at 1 Hz, expected 8 neighbours x 1 Hz x 5 ms = 4 %; a noise event next
    to the edge while it passes is rightly supported)."""
    rng = np.random.default_rng(1)
    edge = moving_edge(rng)
    for rate in (0.2, 1.0):
        noise = background(rng, rate, duration=0.5)
        x, y, t, p = (np.concatenate(pair) for pair in zip(edge, noise))
        keep = background_activity_mask(x, y, t, H, W, window=5e-3)
        n_edge = edge[0].size
        assert keep[:n_edge].mean() >= 0.99
        away = y[n_edge:] >= H // 2 + 1
        assert away.sum() > 100
        # a noise event survives only by chance coincidence with one of 8 neighbours: 8 * rate * window
        assert keep[n_edge:][away].mean() <= 8 * rate * 5e-3 + 0.01, keep[n_edge:][away].mean()


def test_hot_pixels_are_found_and_removed():
    """Three pixels firing 100 times in the exposure among an edge and background activity: exactly those found."""
    rng = np.random.default_rng(2)
    hot = [(5, 7), (20, 33), (39, 59)]
    parts = [moving_edge(rng), background(rng, 1.0)]
    for row, col in hot:
        parts.append((np.full(100, col), np.full(100, row), rng.uniform(0, 0.05, 100),
                      np.where(rng.random(100) < 0.5, -1, 1).astype(np.int8)))
    x, y, t, p = (np.concatenate(arrays) for arrays in zip(*parts))
    mask = hot_pixel_mask(x, y, H, W)
    assert sorted(zip(*np.nonzero(mask))) == hot
    kx, ky, kt, kp = denoise_events(x, y, t, p, H, W, {'hot_pixels': True})
    assert kx.size == x.size - mask[y, x].sum() and mask[y, x].sum() >= 300
    assert not mask[ky, kx].any()


def test_denoise_options_are_checked():
    assert check_denoise_options(None)['ba_window'] is None
    x, y, t, p = (np.arange(3), np.zeros(3, int), np.arange(3) * 1e-3, np.ones(3, np.int8))
    np.testing.assert_array_equal(denoise_events(x, y, t, p, 2, 4, None)[0], x)
    with pytest.raises(ValueError, match='unknown key'):
        check_denoise_options({'ba_windw': 0.01})
    with pytest.raises(ValueError, match='ba_window'):
        check_denoise_options({'ba_window': -1})
    with pytest.raises(ValueError, match='hot_pixels'):
        check_denoise_options({'hot_pixels': 'yes'})
    with pytest.raises(ValueError, match='outside the sensor'):
        background_activity_mask(np.array([5]), np.array([0]), np.array([0.0]), 2, 4)


def test_highrev_raw_dataset_denoises_with_the_event_denoise_option(tmp_path):
    """The split's events are isolated in space; only (row 2, col 11) fires twice. A BA filter that counts the pixel
    itself keeps just its second event; the plain 8-neighbour filter keeps nothing."""
    from basicsr.data import build_dataset
    from test_data_highrev import _make_split, _opt

    _make_split(tmp_path)
    own = build_dataset(_opt(tmp_path, event_denoise={'ba_window': 5.0, 'ba_include_self': True}))[0]['voxel']
    mass = own.numpy().sum(0)
    assert mass[2, 11] == pytest.approx(1.0) and np.count_nonzero(mass) == 1
    none = build_dataset(_opt(tmp_path, event_denoise={'ba_window': 5.0}))[0]['voxel']
    assert not none.numpy().any()
    with pytest.raises(ValueError, match="dataset 'highrev': event_denoise"):
        build_dataset(_opt(tmp_path, event_denoise={'ba_window': 'x'}))


def test_make_event_h5_denoises_each_window(tmp_path):
    """make_event_h5.py --denoise: the SCER of every exposure window is that of its denoised events."""
    import importlib.util
    import sys
    from pathlib import Path

    import h5py

    from basicsr.events import scer
    from test_make_event_h5 import SCRIPT, _raw

    spec = importlib.util.spec_from_file_location('make_event_h5', SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules['make_event_h5'] = mod
    spec.loader.exec_module(mod)
    stream, frames, _ = _raw(tmp_path / 'seq.h5', num_imgs=3, sharp=False, n_events=20000)
    out = tmp_path / 'out'
    mod.main(['--input', str(tmp_path / 'seq.h5'), '--output', str(out), '--window', 'exposure', '--no-progress',
              '--denoise', 'ba_window=0.002', '--denoise', 'hot_pixels=true'])
    height, width = stream.height, stream.width
    with h5py.File(Path(out) / 'seq.h5', 'r') as f:
        for i, frame in enumerate(frames):
            sel = (stream.t >= frame.exposure_start) & (stream.t <= frame.exposure_end)
            kept = denoise_events(stream.x[sel], stream.y[sel], stream.t[sel], stream.p[sel], height, width,
                                  {'ba_window': 0.002, 'hot_pixels': True})
            assert 0 < kept[0].size < sel.sum()
            np.testing.assert_array_equal(f[f'voxels/voxel{i:09d}'][()], scer(*kept, 6, height, width))
    for bad in (['--denoise', 'ba_window'], ['--denoise', 'ba_windw=1'], ['--denoise', 'hot_pixels=maybe']):
        with pytest.raises(SystemExit):
            mod.main(['--input', str(tmp_path / 'seq.h5'), '--output', str(tmp_path / 'o2')] + bad)
    assert not (tmp_path / 'o2').exists()
