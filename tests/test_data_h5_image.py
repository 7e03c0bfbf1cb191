"""Tests of H5ImageDataset (EFNet processed h5) and the h5 -> lmdb converter, on tiny files in tmp_path."""
import importlib.util
import pickle
import random
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from basicsr.data import build_dataloader, build_dataset
from basicsr.events import event_mask, normalize_maxabs

REPO = Path(__file__).resolve().parents[1]
H, W, C = 12, 16, 6


def _write_seq(path, n, seed, gray=False, sharp=True, voxels=True, masks=True):
    rng = np.random.default_rng(seed)
    data = {'images': [], 'sharp_images': [], 'voxels': [], 'masks': []}
    with h5py.File(path, 'w') as f:
        f.attrs['sensor_resolution'] = [H, W]
        for i in range(n):
            img = rng.integers(0, 256, (1 if gray else 3, H, W)).astype(np.uint8)
            f.create_dataset(f'images/image{i:09d}', data=img).attrs['size'] = img.shape
            data['images'].append(img)
            if sharp:
                gt = rng.integers(0, 256, img.shape).astype(np.uint8)
                f.create_dataset(f'sharp_images/image{i:09d}', data=gt)
                data['sharp_images'].append(gt)
            vox = (rng.normal(size=(C, H, W)) * (rng.random((C, H, W)) < 0.3) * 5).astype(np.float32)
            if voxels:
                f.create_dataset(f'voxels/voxel{i:09d}', data=vox)
                data['voxels'].append(vox)
            if masks:
                m = (event_mask(vox)[None] * 255).astype(np.uint8)
                f.create_dataset(f'masks/mask{i:09d}', data=m)
                data['masks'].append(m)
    return data


@pytest.fixture
def split(tmp_path):
    root = tmp_path / 'train'
    root.mkdir()
    seqs = {'seqB': _write_seq(root / 'seqB.h5', 2, 1), 'seqA': _write_seq(root / 'seqA.h5', 3, 0)}
    (root / 'notes.txt').write_text('ignored')
    return root, seqs


def _opt(root, **kw):
    opt = {'name': 'gopro', 'type': 'H5ImageDataset', 'phase': 'val', 'dataroot': str(root), 'norm_voxel': True,
           'return_voxel': True, 'return_mask': True, 'return_gt_frame': True}
    opt.update(kw)
    return opt


def test_full_frame_items_sorted_and_exact(split):
    root, seqs = split
    ds = build_dataset(_opt(root))
    assert len(ds) == 5
    item = ds[1]
    assert item['seq'] == 'seqA' and item['image_name'] == 'seqA/0001'
    assert item['lq_path'].endswith('seqA.h5/images/image000000001')
    src = seqs['seqA']
    np.testing.assert_allclose(item['frame'].numpy(), src['images'][1] / 255., atol=1e-7)  # stored order, no swap
    np.testing.assert_allclose(item['frame_gt'].numpy(), src['sharp_images'][1] / 255., atol=1e-7)
    np.testing.assert_allclose(item['voxel'].numpy(), normalize_maxabs(src['voxels'][1]), atol=1e-7)
    assert item['voxel'].abs().max().item() == pytest.approx(1.)
    assert item['mask'].shape == (1, H, W) and set(item['mask'].unique().tolist()) <= {0., 1.}
    np.testing.assert_array_equal(item['mask'].numpy()[0], src['masks'][1][0] / 255)
    assert ds[3]['image_name'] == 'seqB/0000'
    ignored = build_dataset(_opt(root, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]))[1]['frame']
    torch.testing.assert_close(ignored, item['frame'])  # EFNet's mean/std options are accepted and unused
    raw = build_dataset(_opt(root, norm_voxel=False))[1]['voxel'].numpy()
    np.testing.assert_array_equal(raw, src['voxels'][1])


def test_crop_and_flips_identical_on_all_arrays(split):
    root, _ = split
    ds = build_dataset(_opt(root, phase='train', crop_size=8, use_flip=True, use_rot=True, norm_voxel=False))
    full = build_dataset(_opt(root, norm_voxel=False))[2]
    ref = {k: full[k].numpy() for k in ('frame', 'frame_gt', 'voxel', 'mask')}
    random.seed(0)
    shapes = set()
    for _ in range(12):
        item = ds[2]
        shapes.add(tuple(item['frame'].shape))
        # locate the crop through the frame and check every array shows the same transformed window
        matched = False
        for k_t in (False, True):
            for k_v in (False, True):
                for k_h in (False, True):
                    def tf(a, k_h=k_h, k_v=k_v, k_t=k_t):
                        a = a[..., ::-1] if k_h else a
                        a = a[..., ::-1, :] if k_v else a
                        return np.swapaxes(a, -1, -2) if k_t else a
                    for top in range(H - 8 + 1):
                        for left in range(W - 8 + 1):
                            win = {k: tf(v[..., top:top + 8, left:left + 8]) for k, v in ref.items()}
                            if np.array_equal(win['frame'], item['frame'].numpy()):
                                for k in ref:
                                    np.testing.assert_array_equal(item[k].numpy(), win[k])
                                matched = True
        assert matched
    assert shapes == {(3, 8, 8)}


def test_joint_flip_mode_only_rotates_180(split):
    root, _ = split
    ds = build_dataset(_opt(root, use_flip=True, flip_mode='joint', return_voxel=False, return_mask=False))
    full = build_dataset(_opt(root, return_voxel=False, return_mask=False))[0]['frame'].numpy()
    outcomes = set()
    for seed in range(20):
        random.seed(seed)
        out = ds[0]['frame'].numpy()
        if np.array_equal(out, full):
            outcomes.add('id')
        elif np.array_equal(out, full[:, ::-1, ::-1]):
            outcomes.add('180')
        else:
            outcomes.add('other')
    assert outcomes == {'id', '180'}


def test_crop_rows_gray_replication_and_mask_fallback(tmp_path):
    root = tmp_path / 'reblur'
    root.mkdir()
    data = _write_seq(root / 'r.h5', 1, 3, gray=True, masks=False)
    item = build_dataset(_opt(root, crop_rows=8))[0]
    assert item['frame'].shape == (3, 8, W) and item['voxel'].shape == (C, 8, W)
    np.testing.assert_allclose(item['frame'][2].numpy(), data['images'][0][0, :8] / 255., atol=1e-7)
    np.testing.assert_array_equal(item['mask'].numpy()[0], event_mask(data['voxels'][0])[:8])


def test_list_file_and_lazy_handles_and_pickling(split, tmp_path):
    root, _ = split
    lst = tmp_path / 'list.txt'
    lst.write_text('train/seqB.h5\n' + str(root / 'seqA.h5') + '\n')
    ds = build_dataset(_opt(str(lst)))
    assert [s['seq'] for s in ds.sources] == ['seqB', 'seqA']
    assert not ds.file_client.client.is_open
    ds[0]
    assert ds.file_client.client.is_open
    clone = pickle.loads(pickle.dumps(ds))
    assert not clone.file_client.client.is_open
    torch.testing.assert_close(clone[4]['frame'], ds[4]['frame'])
    opt = _opt(root, phase='train', batch_size_per_gpu=2, num_worker_per_gpu=2, crop_size=8)
    loader = build_dataloader(build_dataset(opt), opt, num_gpu=0, seed=0)
    batches = list(loader)
    assert len(batches) == 2 and batches[0]['voxel'].shape == (2, C, 8, 8)


def test_errors_name_paths(tmp_path, split):
    root, _ = split
    with pytest.raises(FileNotFoundError, match='nowhere'):
        build_dataset(_opt(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no .h5 files.*empty'):
        build_dataset(_opt(tmp_path / 'empty'))
    bad = tmp_path / 'bad'
    bad.mkdir()
    with h5py.File(bad / 'x.h5', 'w') as f:
        f['voxels/voxel000000000'] = np.zeros((C, H, W), np.float32)
    with pytest.raises(KeyError, match=r'x\.h5 has no "images" group'):
        build_dataset(_opt(bad))
    nogt = tmp_path / 'nogt'
    nogt.mkdir()
    _write_seq(nogt / 'n.h5', 1, 0, sharp=False)
    with pytest.raises(KeyError, match=r'n\.h5.*"sharp_images".*return_gt_frame'):
        build_dataset(_opt(nogt))
    item = build_dataset(_opt(nogt, return_gt_frame=False))[0]
    assert 'frame_gt' not in item
    (tmp_path / 'l.txt').write_text('missing.h5\n')
    with pytest.raises(FileNotFoundError, match=r"missing\.h5.*l\.txt"):
        build_dataset(_opt(tmp_path / 'l.txt'))
    with pytest.raises(ValueError, match='flip_mode'):
        build_dataset(_opt(root, flip_mode='diagonal'))


def _load_script():
    spec = importlib.util.spec_from_file_location('create_lmdb', REPO / 'scripts' / 'data_preparation' /
                                                  'create_lmdb.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_create_lmdb_from_h5_matches_h5_reading(split, tmp_path):
    root, _ = split
    out = tmp_path / 'train.lmdb'
    result = subprocess.run([sys.executable, str(REPO / 'scripts/data_preparation/create_lmdb.py'), 'h5', '--input',
                             str(root), '--output', str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.glob('train.lmdb.tmp*'))
    h5_ds = build_dataset(_opt(root))
    lmdb_ds = build_dataset(_opt(out, io_backend={'type': 'lmdb'}))
    assert len(lmdb_ds) == len(h5_ds) == 5
    lmdb_ds = pickle.loads(pickle.dumps(lmdb_ds))
    for i in range(len(h5_ds)):
        a, b = h5_ds[i], lmdb_ds[i]
        assert a['image_name'] == b['image_name'] and a['seq'] == b['seq']
        for k in ('frame', 'frame_gt', 'voxel', 'mask'):
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    with pytest.raises(FileExistsError, match='train.lmdb'):
        _load_script().create_lmdb_from_h5(str(root), str(out))


def test_create_lmdb_from_images_feeds_paired_dataset(tmp_path):
    import cv2
    for sub in ('gt', 'lq'):
        (tmp_path / sub).mkdir()
        for stem in ('a', 'b'):
            cv2.imwrite(str(tmp_path / sub / f'{stem}.png'), np.full((6, 8, 3), ord(stem) + len(sub), np.uint8))
    script = _load_script()
    assert script.create_lmdb_from_images(str(tmp_path / 'gt'), str(tmp_path / 'gt.lmdb')) == 2
    script.create_lmdb_from_images(str(tmp_path / 'lq'), str(tmp_path / 'lq.lmdb'))
    ds = build_dataset({'name': 'p', 'type': 'PairedImageDataset', 'phase': 'val', 'io_backend': {'type': 'lmdb'},
                        'dataroot_gt': str(tmp_path / 'gt.lmdb'), 'dataroot_lq': str(tmp_path / 'lq.lmdb')})
    item = ds[1]
    assert item['gt_path'] == 'b' and item['gt'][0, 0, 0].item() == pytest.approx((ord('b') + 2) / 255.)
