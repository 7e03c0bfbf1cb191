"""Option ``event_repr`` on the datasets besides HighREV: the synthetic datasets build any registered
representation from raw events (defaults unchanged); layouts without raw events say so."""
import cv2
import h5py
import numpy as np
import pytest

from basicsr.data import build_dataset
from basicsr.data.h5_image_dataset import H5ImageDataset
from basicsr.data.synthetic_event_dataset import SyntheticEventDeblurDataset, random_texture
from basicsr.events import event_mask, normalize_maxabs, normalize_nonzero, scer, voxel_grid
from basicsr.synthesis import DVSSimulator
from basicsr.synthesis.blur_synthesis import event_blur_sample, linear_trajectory

OPT = {'name': 'syn', 'type': 'SyntheticEventDeblurDataset', 'phase': 'val', 'num_samples': 2, 'size': [24, 32],
       'seed': 5}


def _sample_events(opt, index):
    """The events of sample ``index``, drawn exactly as the dataset draws them (defaults of its options)."""
    rng = np.random.default_rng([opt['seed'], index])
    height, width = opt['size']
    sharp = random_texture(rng, height, width)
    shift = rng.uniform(-8.0, 8.0, size=2)
    sim = DVSSimulator(pos_thres=0.2, neg_thres=0.2, sigma_thres=0, cutoff_hz=0, leak_rate_hz=0,
                       shot_noise_rate_hz=0, shuffle=False)
    return event_blur_sample(sharp, linear_trajectory(shift, 9), rng, simulator=sim)['events']


@pytest.mark.parametrize('norm_voxel', [True, False])
def test_synthetic_default_is_the_max_abs_scer_with_its_mask(norm_voxel):
    item = SyntheticEventDeblurDataset({**OPT, 'norm_voxel': norm_voxel})[1]
    ev = _sample_events(OPT, 1)
    assert len(ev) > 100
    raw = scer(ev.x, ev.y, ev.t, ev.p, 6, 24, 32)
    expected = normalize_maxabs(raw) if norm_voxel else raw
    assert np.array_equal(item['voxel'].numpy(), expected)
    assert np.array_equal(item['mask'].numpy(), event_mask(raw)[None].astype(np.float32))


def test_synthetic_event_repr_picks_a_registered_representation():
    opt = {**OPT, 'event_repr': {'type': 'voxel_grid', 'num_bins': 5}}
    item = SyntheticEventDeblurDataset(opt)[0]
    ev = _sample_events(OPT, 0)
    raw = voxel_grid(ev.x, ev.y, ev.t, ev.p, 5, 24, 32)
    assert item['voxel'].shape == (5, 24, 32)
    assert np.array_equal(item['voxel'].numpy(), normalize_maxabs(raw))
    assert np.array_equal(item['mask'].numpy(), event_mask(raw)[None].astype(np.float32))
    # The representation's own normalisation wins over norm_voxel; the mask stays that of the raw grid.
    own = SyntheticEventDeblurDataset({**opt, 'event_repr': {**opt['event_repr'], 'normalize': 'nonzero'}})[0]
    assert np.array_equal(own['voxel'].numpy(), normalize_nonzero(raw))
    assert np.array_equal(own['mask'].numpy(), item['mask'].numpy())


def test_synthetic_bad_event_repr_is_refused_at_construction():
    with pytest.raises(ValueError, match='event_repr must be a dict'):
        SyntheticEventDeblurDataset({**OPT, 'event_repr': 'scer'})
    with pytest.raises(KeyError, match='event_repr'):
        SyntheticEventDeblurDataset({**OPT, 'event_repr': {'type': 'no_such_repr'}})
    with pytest.raises(ValueError, match='normalize'):
        SyntheticEventDeblurDataset({**OPT, 'event_repr': {'type': 'scer', 'normalize': 'zscore'}})


def test_h5_dataset_refuses_event_repr_without_raw_events(tmp_path):
    with h5py.File(tmp_path / 'seq.h5', 'w') as f:
        f.create_dataset('images/image000000000', data=np.zeros((3, 8, 8), np.uint8))
        f.create_dataset('voxels/voxel000000000', data=np.zeros((6, 8, 8), np.float32))
    opt = {'name': 'h5', 'dataroot': str(tmp_path), 'return_gt_frame': False}
    assert len(H5ImageDataset(opt)) == 1
    with pytest.raises(ValueError, match=r"dataset 'h5': option \"event_repr\" needs raw events"):
        H5ImageDataset({**opt, 'event_repr': {'type': 'voxel_grid', 'num_bins': 5}})


def _lowlight_root(root, stems=('a_000', 'b_001'), height=8, width=10):
    """A tiny low-light synthetic layout whose stored voxel grid is made from its raw events, as the maker does."""
    rng = np.random.default_rng(2)
    for stem in stems:
        n = 400
        events = np.stack([np.sort(rng.uniform(0, 0.1, n)), rng.integers(0, width, n), rng.integers(0, height, n),
                           rng.choice([-1.0, 1.0], n)], axis=1).astype(np.float32)
        ev = events.astype(np.float64)
        vox = voxel_grid(ev[:, 1].astype(np.int64), ev[:, 2].astype(np.int64), ev[:, 0], ev[:, 3], 13, height, width,
                         t_range=(0.0, 0.1))
        files = {'others/events': events, 'subnetwork1/events_voxel_grid': vox.transpose(1, 2, 0),
                 'share/flow': rng.normal(size=(height, width, 4)).astype(np.float32)}
        for folder, arr in files.items():
            (root / folder).mkdir(parents=True, exist_ok=True)
            np.save(root / folder / f'{stem}.npy', arr)
        for folder in ('share/APS_blur', 'share/APS_blur_clean', 'subnetwork2/APS'):
            (root / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / folder / f'{stem}.png'), rng.integers(0, 256, (height, width)).astype(np.uint8))
    return root


def test_lowlight_synthetic_event_repr_reproduces_the_stored_grid_from_raw_events(tmp_path):
    root = _lowlight_root(tmp_path)
    opt = {'name': 'll', 'type': 'LowLightSyntheticDataset', 'phase': 'val', 'dataroot': str(root)}
    stored = build_dataset(opt)
    rebuilt = build_dataset({**opt, 'event_repr': {'type': 'voxel_grid', 'num_bins': 13, 't_range': [0, 0.1]}})
    assert len(rebuilt) == len(stored) == 2
    for i in range(2):
        a, b = stored[i], rebuilt[i]
        assert a['image_name'] == b['image_name']
        # Same grid; the standardisation sums the non-zero entries in another memory order (the stored grid is a
        # transposed (H, W, C) view), so float32 rounding of values of order 1 may differ in the last bits.
        np.testing.assert_allclose(b['E'].numpy(), a['E'].numpy(), rtol=0, atol=1e-5)
        assert np.abs(a['E'].numpy()).max() > 0.5
        for key in ('B', 'Bi_clean', 'S', 'F'):
            assert np.array_equal(a[key].numpy(), b[key].numpy()), key
    other = build_dataset({**opt, 'event_repr': {'type': 'scer', 'num_bins': 6, 'normalize': None}})[0]
    ev = np.load(root / 'others/events/a_000.npy').astype(np.float64)
    expected = scer(ev[:, 1].astype(np.int64), ev[:, 2].astype(np.int64), ev[:, 0], ev[:, 3], 6, 8, 10)
    assert np.array_equal(other['E'].numpy(), expected)


def test_lowlight_real_layout_refuses_event_repr(tmp_path):
    (tmp_path / 'events_voxel_grid').mkdir()
    (tmp_path / 'APS_blur').mkdir()
    np.save(tmp_path / 'events_voxel_grid' / 'x.npy', np.zeros((8, 40, 13), np.float32))
    cv2.imwrite(str(tmp_path / 'APS_blur' / 'x.png'), np.zeros((8, 40), np.uint8))
    opt = {'name': 'real', 'type': 'LowLightRealDataset', 'dataroot': str(tmp_path)}
    assert len(build_dataset(opt)) == 1
    with pytest.raises(ValueError, match=r"dataset 'real': option \"event_repr\" needs raw events"):
        build_dataset({**opt, 'event_repr': {'type': 'voxel_grid', 'num_bins': 13}})
