"""Tests of the HighREV datasets (raw npz events and voxel npz) on tiny files written in tmp_path."""
import random

import cv2
import numpy as np
import pytest

from basicsr.data import build_dataset
from basicsr.events import normalize_nonzero, scer, voxel_grid

H, W = 10, 14


def _chunk(path, rows, cols, ts, pols):
    col = lambda a: np.asarray(a).reshape(-1, 1)  # noqa: E731
    np.savez(path, x=col(rows), y=col(cols), timestamp=col(ts), polarity=col(pols))  # x = row, y = column


def _make_split(root, stems=('SEQ_00001', 'SEQ_00000'), gt=True):
    rng = np.random.default_rng(0)
    for sub in ('blur', 'sharp', 'event'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    truth = {}
    for k, stem in enumerate(stems):
        blur = rng.integers(0, 256, (H, W, 3)).astype(np.uint8)
        cv2.imwrite(str(root / 'blur' / f'{stem}.png'), blur)
        if gt:
            cv2.imwrite(str(root / 'sharp' / f'{stem}.png'), 255 - blur)
        # chunk 00: +1 at (row 2, col 11) at t=0 and t=1; chunk 01: -1 at (row 7, col 3) at t=2, +1 (1, 1) t=4
        _chunk(root / 'event' / f'{stem}_00.npz', [2, 2], [11, 11], [0., 1.], [1, 1])
        _chunk(root / 'event' / f'{stem}_01.npz', [7, 1], [3, 1], [2., 4.], [0, 1])
        # last chunk: outside the exposure, must be dropped
        _chunk(root / 'event' / f'{stem}_02.npz', [5], [5], [9.], [1])
        truth[stem] = blur
    return truth


def _opt(root, **kw):
    opt = {'name': 'highrev', 'type': 'NpzPngSingleDeblurDataset', 'phase': 'val', 'dataroot': str(root),
           'voxel_bins': 5, 'norm_voxel': False}
    opt.update(kw)
    return opt


def test_raw_events_voxel_swap_and_last_chunk_dropped(tmp_path):
    truth = _make_split(tmp_path)
    ds = build_dataset(_opt(tmp_path))
    assert len(ds) == 2
    item = ds[0]
    assert item['image_name'] == 'SEQ_00000'
    np.testing.assert_allclose(item['frame'].numpy(), truth['SEQ_00000'][:, :, ::-1].transpose(2, 0, 1) / 255.,
                               atol=1e-7)
    np.testing.assert_allclose(item['frame_gt'].numpy(), 1 - item['frame'].numpy(), atol=1e-6)
    vox = item['voxel'].numpy()
    assert vox.shape == (5, H, W)
    mass = vox.sum(0)
    assert mass[2, 11] == pytest.approx(2.) and mass[7, 3] == pytest.approx(-1.) and mass[1, 1] == pytest.approx(1.)
    assert mass[5, 5] == 0. and mass[3, 7] == 0.  # last chunk dropped; x/y not taken unswapped
    # t0 = 0, t1 = 4, 5 bins: tau = t -> event at t=1 fully in bin 1, at t=2 in bin 2, at t=4 in bin 4
    assert vox[1, 2, 11] == pytest.approx(1.) and vox[2, 7, 3] == pytest.approx(-1.) and vox[4, 1, 1] == 1.
    expected = voxel_grid(np.array([11, 11, 3, 1]), np.array([2, 2, 7, 1]), np.array([0., 1., 2., 4.]),
                          np.array([1, 1, -1, 1]), 5, H, W)
    np.testing.assert_allclose(vox, expected)
    normed = build_dataset(_opt(tmp_path, norm_voxel=True))[0]['voxel'].numpy()
    np.testing.assert_allclose(normed, normalize_nonzero(expected), atol=1e-6)


def test_train_crop_and_flips_identical(tmp_path):
    _make_split(tmp_path)
    full = build_dataset(_opt(tmp_path))[1]
    ds = build_dataset(_opt(tmp_path, phase='train', gt_size=6, use_hflip=True, use_rot=True))
    random.seed(3)
    flips_seen = set()
    for _ in range(16):
        item = ds[1]
        assert item['frame'].shape == (3, 6, 6) and item['voxel'].shape == (5, 6, 6)
        f = item['frame'].numpy()
        found = False
        for top in range(H - 5):
            for left in range(W - 5):
                for hf in (0, 1):
                    for vf in (0, 1):
                        for tr in (0, 1):
                            def tf(a, hf=hf, vf=vf, tr=tr):
                                a = a[..., top:top + 6, left:left + 6]
                                a = a[..., ::-1] if hf else a
                                a = a[..., ::-1, :] if vf else a
                                return np.swapaxes(a, -1, -2) if tr else a
                            if np.array_equal(tf(full['frame'].numpy()), f):
                                np.testing.assert_array_equal(tf(full['frame_gt'].numpy()), item['frame_gt'].numpy())
                                np.testing.assert_array_equal(tf(full['voxel'].numpy()), item['voxel'].numpy())
                                found = True
                                flips_seen.add((hf, vf, tr))
        assert found
    assert any(hf for hf, _, _ in flips_seen)  # flips really applied (reference defect #7)


def test_voxel_npz_dataset_and_count_mismatch(tmp_path):
    _make_split(tmp_path)
    vdir = tmp_path / 'voxel'
    vdir.mkdir()
    vox = {}
    for k, stem in enumerate(['SEQ_00000', 'SEQ_00001']):
        vox[stem] = np.random.default_rng(k).normal(size=(H, W, 6)).astype(np.float32)
        vox[stem][vox[stem] < 0.5] = 0
        np.savez(vdir / f'{stem}.npz', voxel=vox[stem])
    opt = _opt(tmp_path, type='VoxelnpzPngSingleDeblurDataset', dataroot_voxel=str(vdir), norm_voxel=True)
    item = build_dataset(opt)[1]
    assert item['image_name'] == 'SEQ_00001'
    np.testing.assert_allclose(item['voxel'].numpy(), normalize_nonzero(vox['SEQ_00001'].transpose(2, 0, 1)),
                               atol=1e-6)
    np.savez(vdir / 'SEQ_00002.npz', voxel=vox['SEQ_00000'])
    with pytest.raises(ValueError, match=r'3 voxel \.npz files.*2 blurry'):
        build_dataset(opt)
    (vdir / 'SEQ_00002.npz').unlink()
    np.savez(vdir / 'SEQ_00001.npz', voxel=np.zeros((H + 1, W, 6), np.float32))
    with pytest.raises(ValueError, match=r'SEQ_00001\.npz has shape'):
        build_dataset(opt)[1]
    np.savez(vdir / 'SEQ_00001.npz', vox=vox['SEQ_00001'])
    with pytest.raises(ValueError, match=r'SEQ_00001\.npz.*"voxel"'):
        build_dataset(opt)[1]


def test_errors(tmp_path):
    _make_split(tmp_path)
    (tmp_path / 'sharp' / 'SEQ_00001.png').unlink()
    with pytest.raises(FileNotFoundError, match=r"missing stems: \['SEQ_00001'\]"):
        build_dataset(_opt(tmp_path))
    item = build_dataset(_opt(tmp_path, return_gt_frame=False))[1]
    assert 'frame_gt' not in item
    for p in (tmp_path / 'event').glob('SEQ_00000_0[12].npz'):
        p.unlink()
    with pytest.raises(FileNotFoundError, match=r'SEQ_00000 \(1\)'):
        build_dataset(_opt(tmp_path, return_gt_frame=False))
    with pytest.raises(FileNotFoundError, match=r'"blur" folder under option "dataroot"'):
        build_dataset(_opt(tmp_path / 'nothing'))
    with pytest.raises(KeyError, match='gt_size'):
        build_dataset(_opt(tmp_path, phase='train', return_gt_frame=False))


def test_event_repr_option_selects_the_representation(tmp_path):
    _make_split(tmp_path)
    item = build_dataset(_opt(tmp_path, event_repr={'type': 'scer', 'num_bins': 4}))[0]
    expected = scer(np.array([11, 11, 3, 1]), np.array([2, 2, 7, 1]), np.array([0., 1., 2., 4.]),
                    np.array([1, 1, -1, 1]), 4, H, W)
    np.testing.assert_allclose(item['voxel'].numpy(), expected)
    with pytest.raises(ValueError, match='num_bins must be an even integer'):
        build_dataset(_opt(tmp_path, event_repr={'type': 'scer', 'num_bins': 5}))
