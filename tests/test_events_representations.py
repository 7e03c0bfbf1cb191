"""Event representations: exactness against the golden reference, properties and bad input."""
import numpy as np
import pytest

from basicsr.events import (EventFormatError, EventStream, build_representation, event_mask, normalize_maxabs,
                            normalize_nonzero, scer, voxel_grid)
from golden_data import REFERENCE_SETS, REPRESENTATION_TOL as TOL, load_reference

pytestmark = pytest.mark.numerics  # .ci/run repeats these on other CPU kernel paths


@pytest.fixture(scope='module', params=REFERENCE_SETS)
def golden(request):
    """The event stream and its representations recorded from the original code (in-repo set, then the full one)."""
    return load_reference(request.param)


def _events(golden):
    return golden['ev_x'], golden['ev_y'], golden['ev_t'], golden['ev_p'], int(golden['ev_H']), int(golden['ev_W'])


def random_events(n=4000, height=12, width=17, seed=0, t0=100.0, span=0.05):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, width, n).astype(np.uint16)
    y = rng.integers(0, height, n).astype(np.uint16)
    t = t0 + np.sort(rng.random(n)) * span
    p = np.where(rng.random(n) < 0.5, -1, 1).astype(np.int8)
    return x, y, t, p, height, width


def test_scer6_matches_golden_reference_rule(golden):
    x, y, t, p, h, w = _events(golden)
    ours = scer(x, y, t, p, 6, h, w, closed_end=False)
    assert ours.dtype == np.float32 and ours.shape == golden['ev_scer6'].shape
    assert np.abs(ours - golden['ev_scer6']).max() <= TOL


def test_scer7_keep_middle_matches_golden(golden):
    x, y, t, p, h, w = _events(golden)
    ours = scer(x, y, t, p, 6, h, w, keep_middle=True, closed_end=False)
    assert np.abs(ours - golden['ev_scer7_keep_middle']).max() <= TOL
    assert not ours[3].any()


def test_scer_closed_end_differs_from_golden_only_by_last_events(golden):
    x, y, t, p, h, w = _events(golden)
    ours = scer(x, y, t, p, 6, h, w)
    diff = ours - golden['ev_scer6']
    last = t == t[-1]
    expected = np.zeros((h, w))
    np.add.at(expected, (y[last], x[last]), p[last])
    assert np.abs(diff[:5]).max() == 0
    assert np.array_equal(diff[5], expected)
    assert ours[5].sum() == p[t >= t[0] + (t[-1] - t[0]) / 2].sum()


def test_voxel5_e2vid_matches_golden(golden):
    x, y, t, p, h, w = _events(golden)
    ours = voxel_grid(x, y, t, p, 5, h, w)
    assert ours.dtype == np.float32
    assert np.abs(ours - golden['ev_voxel5_e2vid']).max() <= TOL


def test_voxel13_lowlight_matches_golden(golden):
    x, y, t, p, h, w = _events(golden)
    ours = voxel_grid(x, y, t.astype(np.float32), p, 13, h, w, t_range=(0, 0.1)).transpose(1, 2, 0)
    assert np.abs(ours - golden['ev_voxel13_lowlight_hwc']).max() <= TOL
    # float64 times differ from the float32 reference only by the rounding of the timestamps
    ours64 = voxel_grid(x, y, t, p, 13, h, w, t_range=(0, 0.1)).transpose(1, 2, 0)
    assert np.abs(ours64 - golden['ev_voxel13_lowlight_hwc']).max() <= TOL


def test_normalize_nonzero_matches_golden_on_hwc(golden):
    ours = normalize_nonzero(golden['ev_voxel13_lowlight_hwc'])
    assert ours.dtype == np.float32
    assert np.abs(ours - golden['ev_voxel13_lowlight_normalized_hwc']).max() <= TOL
    # layout-agnostic: the same numbers in (C, H, W)
    chw = normalize_nonzero(golden['ev_voxel13_lowlight_hwc'].transpose(2, 0, 1))
    assert np.abs(chw.transpose(1, 2, 0) - ours).max() <= TOL  # sums in another memory order may round differently


def _scatter_voxel(x, y, t, p, num_bins, h, w, t0, t1):
    grid = np.zeros((num_bins, h, w))
    tau = (num_bins - 1) * (t - t0) / (t1 - t0)
    lower = np.minimum(np.floor(tau).astype(int), num_bins - 2)
    frac = tau - lower
    np.add.at(grid, (lower, y.astype(int), x.astype(int)), p * (1 - frac))
    np.add.at(grid, (lower + 1, y.astype(int), x.astype(int)), p * frac)
    return grid


@pytest.mark.parametrize('num_bins', [2, 5, 13])
def test_voxel_grid_equals_scatter_reference_and_keeps_signed_mass(num_bins):
    x, y, t, p, h, w = random_events(seed=num_bins)
    ours = voxel_grid(x, y, t, p, num_bins, h, w)
    assert np.abs(ours - _scatter_voxel(x, y, t, p, num_bins, h, w, t[0], t[-1])).max() < 1e-4
    assert ours.sum(dtype=np.float64) == pytest.approx(float(p.sum()), abs=1e-3)
    fixed = voxel_grid(x, y, t, p, num_bins, h, w, t_range=(99.99, 100.06))
    assert np.abs(fixed - _scatter_voxel(x, y, t, p, num_bins, h, w, 99.99, 100.06)).max() < 1e-4
    assert fixed.sum(dtype=np.float64) == pytest.approx(float(p.sum()), abs=1e-3)


def test_voxel_grid_unsorted_and_chunked_paths_agree(monkeypatch):
    import basicsr.events.representations as reps
    x, y, t, p, h, w = random_events(n=5000, seed=3)
    ref = voxel_grid(x, y, t, p, 7, h, w)
    ref_scer = scer(x, y, t, p, 6, h, w)
    perm = np.random.default_rng(1).permutation(len(t))
    # without t_range the window is the first and last event by position, so give it explicitly here
    shuffled = voxel_grid(x[perm], y[perm], t[perm], p[perm], 7, h, w, t_range=(t[0], t[-1]))
    assert np.abs(shuffled - ref).max() < 1e-5
    monkeypatch.setattr(reps, '_CHUNK', 64)
    assert np.abs(voxel_grid(x, y, t, p, 7, h, w) - ref).max() < 1e-5
    assert np.array_equal(scer(x, y, t, p, 6, h, w), ref_scer)


def test_voxel_grid_single_bin_and_zero_span():
    x, y, t, p, h, w = random_events(n=50)
    one = voxel_grid(x, y, t, p, 1, h, w)
    expected = np.zeros((h, w))
    np.add.at(expected, (y.astype(int), x.astype(int)), p)
    assert np.array_equal(one[0], expected)
    same_t = np.full_like(t, 5.0)
    grid = voxel_grid(x, y, same_t, p, 4, h, w)
    assert np.array_equal(grid[0], expected) and not grid[1:].any()


def test_scer_channels_are_cumulative_from_the_middle():
    x, y, t, p, h, w = random_events(seed=7)
    rep = scer(x, y, t, p, 6, h, w)
    rel = t - t[0]
    dt = rel[-1]
    b = np.minimum((rel / (dt / 6)).astype(int), 5)
    bins = np.zeros((6, h, w))
    np.add.at(bins, (b, y.astype(int), x.astype(int)), p)
    assert np.array_equal(rep[2], -bins[2])
    assert np.array_equal(rep[1], rep[2] - bins[1])
    assert np.array_equal(rep[0], rep[1] - bins[0])
    assert np.array_equal(rep[3], bins[3])
    assert np.array_equal(rep[4], rep[3] + bins[4])
    assert np.array_equal(rep[5], rep[4] + bins[5])
    # outermost channels cover each half: signed mass of the whole stream
    assert rep[5].sum() - rep[0].sum() == p.sum()


def test_empty_inputs_give_zeros():
    e = np.zeros(0)
    assert not voxel_grid(e, e, e, e, 5, 4, 6).any() and voxel_grid(e, e, e, e, 5, 4, 6).shape == (5, 4, 6)
    assert scer(e, e, e, e, 6, 4, 6, keep_middle=True).shape == (7, 4, 6)


@pytest.mark.parametrize('bad, name', [(0, 'num_bins'), (-3, 'num_bins'), (2.5, 'num_bins'), (True, 'num_bins')])
def test_voxel_grid_rejects_impossible_bins(bad, name):
    x, y, t, p, h, w = random_events(n=10)
    with pytest.raises(EventFormatError, match=name):
        voxel_grid(x, y, t, p, bad, h, w)


@pytest.mark.parametrize('bad', [0, 5, 3, -2])
def test_scer_rejects_odd_or_small_bins(bad):
    x, y, t, p, h, w = random_events(n=10)
    with pytest.raises(EventFormatError, match='num_bins must be an even integer'):
        scer(x, y, t, p, bad, h, w)


def test_representations_reject_bad_events():
    x, y, t, p, h, w = random_events(n=20)
    with pytest.raises(EventFormatError, match=r'x\[.*outside the sensor \(width 17'):
        voxel_grid(np.where(np.arange(20) == 4, 17, x), y, t, p, 3, h, w)
    with pytest.raises(EventFormatError, match='height must be a positive integer'):
        scer(x, y, t, p, 6, 0, w)
    with pytest.raises(EventFormatError, match='sorted'):
        scer(x, y, t[::-1], p, 6, h, w)
    with pytest.raises(EventFormatError, match='outside t_range'):
        voxel_grid(x, y, t, p, 3, h, w, t_range=(t[0], t[10]))
    with pytest.raises(EventFormatError, match='t_range must satisfy'):
        voxel_grid(x, y, t, p, 3, h, w, t_range=(1.0, 1.0))
    with pytest.raises(EventFormatError, match='equal length'):
        voxel_grid(x[:-1], y, t, p, 3, h, w)


def test_event_mask_matches_opencv_closing():
    cv2 = pytest.importorskip('cv2')
    rng = np.random.default_rng(5)
    rep = np.zeros((3, 15, 19), np.float32)
    rep[rng.integers(0, 3, 40), rng.integers(0, 15, 40), rng.integers(0, 19, 40)] = rng.standard_normal(40)
    rep[:, 0, :] = 1.0  # a full border row: a zero-padded closing would erode it, OpenCV's does not
    ours = event_mask(rep)
    union = np.any(rep != 0, axis=0).astype(np.uint8) * 255
    ref = cv2.morphologyEx(union, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) // 255
    assert ours.dtype == np.uint8 and set(np.unique(ours)) <= {0, 1}
    assert np.array_equal(ours, ref)
    assert np.array_equal(event_mask(rep.transpose(1, 2, 0), channel_axis=-1), ours)


def test_event_mask_fills_a_one_pixel_hole():
    rep = np.ones((2, 5, 5), np.float32)
    rep[:, 2, 2] = 0
    assert event_mask(rep).all()
    assert not event_mask(np.zeros((2, 5, 5))).any()


def test_normalize_maxabs_range_and_zero_guard():
    rep = np.array([[[-4.0, 2.0], [0.0, 1.0]]], np.float32)
    out = normalize_maxabs(rep)
    assert out.dtype == np.float32 and out.min() == -1.0 and out[0, 0, 1] == 0.5
    zero = normalize_maxabs(np.zeros((2, 3, 3)))
    assert np.array_equal(zero, np.zeros((2, 3, 3))) and not np.isnan(zero).any()


def test_normalize_nonzero_properties_and_guards():
    rng = np.random.default_rng(2)
    rep = np.where(rng.random((4, 6, 7)) < 0.3, rng.standard_normal((4, 6, 7)) * 3 + 1, 0).astype(np.float32)
    out = normalize_nonzero(rep)
    nz = rep != 0
    assert np.array_equal(out != 0, nz)
    assert out[nz].mean() == pytest.approx(0, abs=1e-5) and out[nz].std() == pytest.approx(1, abs=1e-4)
    assert not normalize_nonzero(np.zeros((2, 2))).any()
    const = normalize_nonzero(np.full((2, 2), 3.0))
    assert np.array_equal(const, np.full((2, 2), 3.0, np.float32))


def test_build_representation_from_options():
    x, y, t, p, h, w = random_events()
    stream = EventStream(x, y, t, p, h, w)
    opt = {'type': 'scer', 'num_bins': 6}
    rep = build_representation(opt)
    assert opt == {'type': 'scer', 'num_bins': 6}
    assert np.array_equal(rep(stream), scer(x, y, t, p, 6, h, w))
    assert rep.num_channels == 6
    vox = build_representation({'type': 'voxel_grid', 'num_bins': 13, 't_range': [100.0, 100.05],
                                'normalize': 'nonzero', 'layout': 'hwc'})
    expected = normalize_nonzero(voxel_grid(x, y, t, p, 13, h, w, t_range=(100.0, 100.05))).transpose(1, 2, 0)
    assert np.allclose(vox((x, y, t, p), h, w), expected, atol=1e-6)
    with pytest.raises(EventFormatError, match='num_bins must be an even'):
        build_representation({'type': 'scer', 'num_bins': 5})
    with pytest.raises(KeyError, match='event_repr'):
        build_representation({'type': 'scerr', 'num_bins': 6})
    with pytest.raises(EventFormatError, match='normalize'):
        build_representation({'type': 'voxel_grid', 'normalize': 'zscore'})
    with pytest.raises(EventFormatError, match='unexpected keyword'):
        build_representation({'type': 'voxel_grid', 'bins': 3})


@pytest.mark.parametrize('offset', [0.0, 1.7e3, 1.6e9])
def test_scer_boundaries_follow_relative_float64_times(offset):
    # events placed exactly on (relative) interval boundaries, at large absolute times where t0 + edge rounds
    rng = np.random.default_rng(11)
    dt = 0.03
    rel = np.sort(np.concatenate([rng.random(300) * dt, np.arange(7) * dt / 6, np.arange(7) * dt / 6]))
    t = offset + rel
    x = rng.integers(0, 5, len(t))
    y = rng.integers(0, 4, len(t))
    p = rng.choice([-1, 1], len(t))
    ours = scer(x, y, t, p, 6, 4, 5)
    r = t - t[0]
    edges = np.arange(1, 6) * (r[-1] / 6)
    edges[2] = r[-1] / 2
    cut = np.concatenate(([0], np.searchsorted(r, edges, side='left'), [len(t)]))
    bins = np.zeros((6, 4, 5))
    for k in range(6):
        s = slice(cut[k], cut[k + 1])
        np.add.at(bins[k], (y[s], x[s]), p[s])
    expected = np.concatenate([-np.cumsum(bins[:3][::-1], 0)[::-1], np.cumsum(bins[3:], 0)])
    assert np.array_equal(ours, expected)


def test_zero_one_polarity_is_read_as_off_on():
    x, y, t, p, h, w = random_events(n=300, seed=4)
    p01 = (p > 0).astype(np.uint8)
    assert np.array_equal(voxel_grid(x, y, t, p01, 4, h, w), voxel_grid(x, y, t, p, 4, h, w))
    assert np.array_equal(scer(x, y, t, p01.astype(bool), 6, h, w), scer(x, y, t, p, 6, h, w))
    with pytest.raises(EventFormatError, match=r'p\[0\] = 3: polarity must be'):
        voxel_grid(x, y, t, np.full(len(t), 3), 4, h, w)


def test_non_finite_inputs_are_rejected():
    x, y, t, p, h, w = random_events(n=30)
    t_nan = t.copy()
    t_nan[7] = np.nan
    with pytest.raises(EventFormatError, match=r't\[7\] = nan: timestamps must be finite'):
        voxel_grid(x, y, t_nan, p, 3, h, w)
    x_nan = x.astype(float)
    x_nan[3] = np.nan
    with pytest.raises(EventFormatError, match=r'x\[3\] = nan is outside the sensor'):
        scer(x_nan, y, t, p, 6, h, w)
