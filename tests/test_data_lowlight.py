"""Tests of the low-light datasets (synthetic with GT, real/hybrid without) on tiny folders in tmp_path."""
import random

import cv2
import numpy as np
import pytest

from basicsr.data import build_dataset
from basicsr.events import normalize_nonzero

H, W = 8, 10


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == '.npy':
        np.save(path, arr)
    else:
        cv2.imwrite(str(path), arr)


def _make_synthetic(root, stems=('b_001', 'a_000')):
    rng = np.random.default_rng(0)
    truth = {}
    for stem in stems:
        vox = rng.normal(size=(H, W, 13)).astype(np.float32) * (rng.random((H, W, 13)) < 0.4)
        flow = rng.normal(size=(H, W, 4)).astype(np.float32)
        t = {'vox': vox, 'flow': flow}
        for key, shape in [('aps_blur', (H, W)), ('aps_clean', (H, W)), ('aps', (H, W)),
                           ('rgb', (3 * H, 3 * W, 3)), ('rgb_blur', (3 * H, 3 * W, 3)),
                           ('rgb_clean', (3 * H, 3 * W, 3))]:
            t[key] = rng.integers(0, 256, shape).astype(np.uint8)
        _save(root / 'subnetwork1/events_voxel_grid' / f'{stem}.npy', vox)
        _save(root / 'share/flow' / f'{stem}.npy', flow)
        _save(root / 'share/APS_blur' / f'{stem}.png', t['aps_blur'])
        _save(root / 'share/APS_blur_clean' / f'{stem}.png', t['aps_clean'])
        _save(root / 'subnetwork2/APS' / f'{stem}.png', t['aps'])
        _save(root / 'subnetwork2/RGB' / f'{stem}.png', t['rgb'])
        _save(root / 'subnetwork2/RGB_blur' / f'{stem}.png', t['rgb_blur'])
        _save(root / 'subnetwork2/RGB_blur_clean' / f'{stem}.png', t['rgb_clean'])
        truth[stem] = t
    return truth


def _rgb(bgr):
    return bgr[:, :, ::-1].transpose(2, 0, 1) / 255.


def test_aps_items(tmp_path):
    truth = _make_synthetic(tmp_path)
    ds = build_dataset({'name': 'll', 'type': 'LowLightSyntheticDataset', 'phase': 'train', 'dataroot': str(tmp_path)})
    assert len(ds) == 2
    item = ds[0]
    t = truth['a_000']
    assert item['name'] == item['image_name'] == 'a_000'
    assert item['E'].shape == (13, H, W) and str(item['E'].dtype) == 'torch.float32'
    np.testing.assert_allclose(item['E'].numpy(), normalize_nonzero(t['vox']).transpose(2, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(item['F'].numpy(), t['flow'].transpose(2, 0, 1))
    np.testing.assert_allclose(item['B'].numpy()[0], t['aps_blur'] / 255., atol=1e-7)
    assert item['Bi'] is item['B']
    np.testing.assert_allclose(item['Bi_clean'].numpy()[0], t['aps_clean'] / 255., atol=1e-7)
    np.testing.assert_allclose(item['S'].numpy()[0], t['aps'] / 255., atol=1e-7)


def test_rgb_items_and_scaled_crop(tmp_path):
    truth = _make_synthetic(tmp_path)
    opt = {'name': 'll', 'type': 'LowLightSyntheticDataset', 'phase': 'test', 'dataroot': str(tmp_path), 'rgb': True}
    item = build_dataset(opt)[1]
    t = truth['b_001']
    assert item['Bi'].shape == (3, 3 * H, 3 * W) and item['B'].shape == (1, H, W)
    np.testing.assert_allclose(item['Bi'].numpy(), _rgb(t['rgb_blur']), atol=1e-7)
    np.testing.assert_allclose(item['Bi_clean'].numpy(), _rgb(t['rgb_clean']), atol=1e-7)
    np.testing.assert_allclose(item['S'].numpy(), _rgb(t['rgb']), atol=1e-7)
    crop_ds = build_dataset({**opt, 'crop_size': 4})
    random.seed(1)
    tops = set()
    for _ in range(10):
        c = crop_ds[1]
        assert c['E'].shape == (13, 4, 4) and c['Bi'].shape == (3, 12, 12) and c['F'].shape == (4, 4, 4)
        full_e = item['E'].numpy()
        hits = [(r, q) for r in range(H - 3) for q in range(W - 3)
                if np.array_equal(full_e[:, r:r + 4, q:q + 4], c['E'].numpy())]
        assert len(hits) == 1
        r, q = hits[0]
        tops.add(hits[0])
        np.testing.assert_array_equal(c['Bi'].numpy(), item['Bi'].numpy()[:, 3 * r:3 * r + 12, 3 * q:3 * q + 12])
        np.testing.assert_array_equal(c['S'].numpy(), item['S'].numpy()[:, 3 * r:3 * r + 12, 3 * q:3 * q + 12])
        np.testing.assert_array_equal(c['B'].numpy(), item['B'].numpy()[:, r:r + 4, q:q + 4])
    assert len(tops) > 1


def test_missing_stem_and_size_errors(tmp_path):
    _make_synthetic(tmp_path)
    (tmp_path / 'share/flow/b_001.npy').unlink()
    opt = {'name': 'll', 'type': 'LowLightSyntheticDataset', 'phase': 'train', 'dataroot': str(tmp_path)}
    with pytest.raises(FileNotFoundError, match=r"share/flow; missing stems: \['b_001'\]"):
        build_dataset(opt)
    np.save(tmp_path / 'share/flow/b_001.npy', np.zeros((H + 1, W, 4), np.float32))
    with pytest.raises(ValueError, match=r'b_001\.npy \(F\) has size 9x10, expected 8x10'):
        build_dataset(opt)[1]
    with pytest.raises(FileNotFoundError, match='dataroot.*nope'):
        build_dataset({**opt, 'dataroot': str(tmp_path / 'nope')})


def test_real_and_hybrid(tmp_path):
    rng = np.random.default_rng(1)
    vox = rng.normal(size=(H, W, 13)).astype(np.float32)
    _save(tmp_path / 'events_voxel_grid/r0.npy', vox)
    _save(tmp_path / 'APS_blur/r0.png', rng.integers(0, 256, (H, W)).astype(np.uint8))
    opt = {'name': 'real', 'type': 'LowLightRealDataset', 'phase': 'test', 'dataroot': str(tmp_path)}
    item = build_dataset(opt)[0]
    assert set(item) == {'E', 'B', 'Bi', 'name', 'image_name'}
    assert item['Bi'] is item['B'] and item['E'].shape == (13, H, W)
    with pytest.raises(FileNotFoundError, match='RGB_blur'):
        build_dataset({**opt, 'rgb': True})
    rgb = rng.integers(0, 256, (3 * H, 3 * W, 3)).astype(np.uint8)
    _save(tmp_path / 'RGB_blur/r0.png', rgb)
    item = build_dataset({**opt, 'rgb': True})[0]
    np.testing.assert_allclose(item['Bi'].numpy(), _rgb(rgb), atol=1e-7)
