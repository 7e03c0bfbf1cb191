"""Augmentation: geometry commutes with the representations, time reversal, EFNet noise recipe."""
import numpy as np
import pytest

from basicsr.events import (EventFormatError, EventStream, add_hot_pixel_events, add_hot_pixels, add_voxel_noise,
                            augment_events, hflip_events, hflip_rep, reverse_time_events, reverse_time_rep,
                            rot90_events, rot90_rep, scer, vflip_events, vflip_rep, voxel_grid)


def make_stream(n=3000, height=7, width=11, seed=0):
    rng = np.random.default_rng(seed)
    t = 2.0 + np.sort(rng.random(n)) * 0.04
    return EventStream.from_arrays(rng.integers(0, width, n), rng.integers(0, height, n), t,
                                   rng.choice([-1, 1], n), height, width)


def vox(s, bins=5):
    return voxel_grid(*s.arrays(), bins, s.height, s.width)


def sc(s, keep_middle=False):
    return scer(*s.arrays(), 6, s.height, s.width, keep_middle=keep_middle)


@pytest.mark.parametrize('rep', [vox, sc])
def test_flips_commute_with_representation(rep):
    s = make_stream()
    base = rep(s)
    assert np.array_equal(rep(hflip_events(s)), hflip_rep(base))
    assert np.array_equal(rep(vflip_events(s)), vflip_rep(base))
    assert not np.array_equal(hflip_rep(base), base)


@pytest.mark.parametrize('k', [1, 2, 3, 4])
@pytest.mark.parametrize('rep', [vox, sc])
def test_rot90_commutes_with_representation(rep, k):
    s = make_stream()
    rotated = rot90_events(s, k)
    assert rotated.shape == ((s.width, s.height) if k % 2 else (s.height, s.width))
    rotated.validate()
    assert np.array_equal(rep(rotated), rot90_rep(rep(s), k))
    assert np.array_equal(rot90_rep(rep(s), k), np.rot90(rep(s), k, axes=(1, 2)))


def test_hwc_layout_geometry():
    base = vox(make_stream())
    hwc = base.transpose(1, 2, 0)
    assert np.array_equal(hflip_rep(hwc, channel_axis=-1), hflip_rep(base).transpose(1, 2, 0))
    assert np.array_equal(rot90_rep(hwc, 1, channel_axis=-1), rot90_rep(base, 1).transpose(1, 2, 0))
    assert np.array_equal(reverse_time_rep(hwc, 'voxel_grid', channel_axis=-1),
                          reverse_time_rep(base, 'voxel_grid').transpose(1, 2, 0))


def test_reverse_time_events_mirrors_and_negates():
    s = make_stream()
    r = reverse_time_events(s)
    r.validate()
    assert np.allclose(r.t, (s.t[0] + s.t[-1]) - s.t[::-1])
    assert np.array_equal(r.p, -s.p[::-1]) and np.array_equal(r.x, s.x[::-1])
    back = reverse_time_events(r)
    assert np.allclose(back.t, s.t) and np.array_equal(back.p, s.p)


def test_time_reversal_of_voxel_grid_reverses_and_negates_bins():
    s = make_stream()
    assert np.allclose(vox(reverse_time_events(s)), reverse_time_rep(vox(s), 'voxel_grid'), atol=1e-5)


@pytest.mark.parametrize('keep_middle', [False, True])
def test_time_reversal_of_scer_reverses_channels_only(keep_middle):
    # times on a grid that avoids the interval boundaries, so the half-open intervals cannot move an event
    s = make_stream()
    dt = s.t[-1] - s.t[0]
    boundaries = s.t[0] + np.arange(1, 6) * dt / 6
    away = np.min(np.abs(s.t[:, None] - boundaries[None]), axis=1) > 1e-9
    s = EventStream(s.x[away], s.y[away], s.t[away], s.p[away], s.height, s.width)
    window = (s.t[0], s.t[-1])
    s = s.window(*window, closed='both')
    rev = reverse_time_events(s)
    assert np.array_equal(sc(rev, keep_middle), reverse_time_rep(sc(s, keep_middle), 'scer'))
    assert not np.array_equal(reverse_time_rep(sc(s), 'scer'), -sc(s)[::-1])


def test_reverse_time_rep_rejects_unknown_kind():
    with pytest.raises(EventFormatError, match="kind must be 'voxel_grid' or 'scer'"):
        reverse_time_rep(np.zeros((2, 3, 3)), 'histogram')


def test_hot_pixels_efnet_recipe():
    rep = np.zeros((6, 100, 120), np.float32)
    out = add_hot_pixels(rep, np.random.default_rng(0), hot_pixel_range=20, hot_pixel_fraction=1e-3)
    assert not rep.any()
    changed = np.any(out != 0, axis=0)
    assert 1 <= changed.sum() <= 12  # int(1e-3 * 12000) = 12 positions, repeats and zero values allowed
    ys, xs = np.nonzero(changed)
    for yy, xx in zip(ys, xs):
        column = out[:, yy, xx]
        assert np.all(column == column[0]) and column[0] == int(column[0]) and abs(column[0]) <= 20
    again = add_hot_pixels(rep, np.random.default_rng(0), hot_pixel_fraction=1e-3)
    assert np.array_equal(out, again)


def test_voxel_noise_fraction_and_std():
    rep = np.zeros((6, 200, 200), np.float32)
    out = add_voxel_noise(rep, np.random.default_rng(1), noise_std=2.0, noise_fraction=0.05)
    hit = out != 0
    assert hit.mean() == pytest.approx(0.05, abs=0.003)
    assert out[hit].std() == pytest.approx(2.0, rel=0.03)
    with pytest.raises(EventFormatError, match='noise_fraction'):
        add_voxel_noise(rep, np.random.default_rng(1), noise_fraction=1.5)
    with pytest.raises(TypeError, match='numpy.random.Generator'):
        add_voxel_noise(rep, 0)


def test_hot_pixel_events_and_augment_events():
    s = make_stream(n=200)
    noisy = add_hot_pixel_events(s, np.random.default_rng(2), num_pixels=3, rate=2000.0)
    noisy.validate()
    assert len(noisy) > len(s)
    out, done = augment_events(s, np.random.default_rng(3), hflip=True, vflip=True, rotation=True,
                               time_reversal=True)
    out.validate()
    expected = s
    for key, func in (('hflip', hflip_events), ('vflip', vflip_events), ('rot90', rot90_events),
                      ('time_reversal', reverse_time_events)):
        if done[key]:
            expected = func(expected)
    assert np.array_equal(out.x, expected.x) and np.array_equal(out.t, expected.t)
    none, done = augment_events(s, np.random.default_rng(3), hflip=False, vflip=False)
    assert none is s and not any(done.values())
