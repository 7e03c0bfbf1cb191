"""Tests of PairedImageDataset on PNGs written in tmp_path."""
import copy

import cv2
import numpy as np
import pytest
import torch

from basicsr.data import build_dataloader, build_dataset


def _write_pairs(root, stems, size=(16, 20), scale=1, tmpl='{}'):
    (root / 'gt').mkdir(parents=True, exist_ok=True)
    (root / 'lq').mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = {}
    for stem in stems:
        lq = rng.integers(0, 256, (size[0] // scale, size[1] // scale, 3)).astype(np.uint8)
        gt = np.repeat(np.repeat(lq, scale, axis=0), scale, axis=1)  # blocks: any flip keeps gt[::s, ::s] == lq
        cv2.imwrite(str(root / 'gt' / f'{stem}.png'), gt)
        cv2.imwrite(str(root / 'lq' / f'{tmpl.format(stem)}.png'), lq)
        images[stem] = (lq, gt)
    return images


def _opt(root, **kw):
    opt = {'name': 'pairs', 'type': 'PairedImageDataset', 'phase': 'val', 'dataroot_gt': str(root / 'gt'),
           'dataroot_lq': str(root / 'lq'), 'io_backend': {'type': 'disk'}}
    opt.update(kw)
    return opt


def test_val_items_rgb_float_and_sorted(tmp_path):
    images = _write_pairs(tmp_path, ['b', 'a', 'c'])
    opt = _opt(tmp_path)
    snapshot = copy.deepcopy(opt)
    ds = build_dataset(opt)
    assert opt == snapshot
    assert len(ds) == 3
    item = ds[0]
    assert set(item) == {'lq', 'gt', 'lq_path', 'gt_path', 'image_name'} and item['image_name'] == 'a'
    assert item['gt_path'].endswith('a.png') and item['lq_path'].endswith('a.png')
    lq_bgr = images['a'][0]
    assert item['lq'].shape == (3, 16, 20) and item['lq'].dtype == torch.float32
    np.testing.assert_allclose(item['lq'][0].numpy(), lq_bgr[:, :, 2] / 255., atol=1e-6)  # channel 0 = R


def test_train_crop_scaled_and_aligned(tmp_path):
    _write_pairs(tmp_path, ['x', 'y'], size=(24, 24), scale=2, tmpl='{}x2')
    ds = build_dataset(_opt(tmp_path, phase='train', gt_size=8, scale=2, filename_tmpl='{}x2', use_hflip=True,
                            use_rot=True))
    for _ in range(5):
        item = ds[1]
        assert item['gt'].shape == (3, 8, 8) and item['lq'].shape == (3, 4, 4)
        torch.testing.assert_close(item['gt'][:, ::2, ::2], item['lq'])
    loader = build_dataloader(ds, {**ds.opt, 'batch_size_per_gpu': 2, 'num_worker_per_gpu': 0}, num_gpu=0)
    batch = next(iter(loader))
    assert batch['gt'].shape == (2, 3, 8, 8)


def test_missing_folder_names_option_and_path(tmp_path):
    _write_pairs(tmp_path, ['a'])
    with pytest.raises(FileNotFoundError, match=r'dataroot_lq.*nowhere'):
        build_dataset(_opt(tmp_path, dataroot_lq=str(tmp_path / 'nowhere')))


def test_mismatched_lists_name_missing_stems(tmp_path):
    _write_pairs(tmp_path, ['a', 'b'])
    (tmp_path / 'lq' / 'b.png').unlink()
    with pytest.raises(FileNotFoundError, match=r"missing stems: \['b'\]"):
        build_dataset(_opt(tmp_path))
    cv2.imwrite(str(tmp_path / 'lq' / 'b.png'), np.zeros((16, 20, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'lq' / 'z.png'), np.zeros((16, 20, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"unmatched stems: \['z'\]"):
        build_dataset(_opt(tmp_path))


def test_meta_info_file_selects_subset(tmp_path):
    _write_pairs(tmp_path, ['a', 'b', 'c'])
    meta = tmp_path / 'meta.txt'
    meta.write_text('c.png (16,20,3)\na.png (16,20,3)\n')
    ds = build_dataset(_opt(tmp_path, meta_info_file=str(meta)))
    assert [p['gt_path'][-5:] for p in ds.paths] == ['c.png', 'a.png']
