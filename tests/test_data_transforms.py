"""Tests of the paired transforms: identical crops/flips across arrays, scaled crops, errors."""
import random

import numpy as np
import pytest
import torch

from basicsr.data.transforms import augment, paired_random_crop


def _coords(h, w, channels=1, scale=1):
    """Array whose values encode the scale-1 pixel position, so aligned crops can be compared."""
    rows = np.repeat(np.arange(h * scale) // scale, w * scale).reshape(h * scale, w * scale)
    cols = np.tile(np.arange(w * scale) // scale, (h * scale, 1))
    base = (rows * 1000 + cols).astype(np.float32)
    return np.stack([base] * channels) if channels else base


def test_crop_identical_across_numpy_and_torch_and_layouts():
    frame = _coords(20, 30, channels=3)
    voxel = torch.from_numpy(_coords(20, 30, channels=6))
    mask = _coords(20, 30, channels=0)
    out = paired_random_crop([frame, voxel, mask], (8, 12), rng=random.Random(3))
    assert out[0].shape == (3, 8, 12) and tuple(out[1].shape) == (6, 8, 12) and out[2].shape == (8, 12)
    assert isinstance(out[1], torch.Tensor)
    np.testing.assert_array_equal(out[0][0], out[1][0].numpy())
    np.testing.assert_array_equal(out[0][0], out[2])


def test_crop_covers_every_position_and_is_reproducible():
    arr = _coords(6, 6, channels=0)
    tops = set()
    for seed in range(200):
        tops.add(int(paired_random_crop(arr, 4, rng=np.random.default_rng(seed))[0, 0]))
    assert tops == {r * 1000 + c for r in range(3) for c in range(3)}
    a = paired_random_crop(arr, 3, rng=random.Random(7))
    b = paired_random_crop(arr, 3, rng=random.Random(7))
    np.testing.assert_array_equal(a, b)


def test_scaled_crop_window():
    events = _coords(10, 12, channels=2)
    rgb = _coords(10, 12, channels=3, scale=3)
    ev_c, rgb_c = paired_random_crop([events, rgb], 4, scales=[1, 3], rng=random.Random(0))
    assert ev_c.shape == (2, 4, 4) and rgb_c.shape == (3, 12, 12)
    np.testing.assert_array_equal(rgb_c[0, ::3, ::3], ev_c[0])
    np.testing.assert_array_equal(rgb_c[0, 2::3, 2::3], ev_c[0])


def test_crop_errors_name_array_and_sizes():
    with pytest.raises(ValueError, match=r'array 1: 9x9'):
        paired_random_crop([np.zeros((3, 10, 10)), np.zeros((9, 9))], 4)
    with pytest.raises(ValueError, match=r'crop 12x12 does not fit array 0 of size 10x10'):
        paired_random_crop([np.zeros((3, 10, 10)), np.zeros((10, 10))], 12)
    with pytest.raises(ValueError, match=r'array 1 of size 10x10 is not divisible by its scale 3'):
        paired_random_crop([np.zeros((10, 10)), np.zeros((10, 10))], 2, scales=[1, 3])


def test_augment_identical_and_correct_ops():
    img = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    ten = torch.from_numpy(img.copy())
    seen = set()
    for seed in range(64):
        (a, b), status = augment([img, ten], rng=random.Random(seed), return_status=True)
        seen.add(status)
        expected = img
        if status[0]:
            expected = expected[..., ::-1]
        if status[1]:
            expected = expected[..., ::-1, :]
        if status[2]:
            expected = np.swapaxes(expected, -1, -2)
        np.testing.assert_array_equal(a, expected)
        np.testing.assert_array_equal(b.numpy(), expected)
        assert a.flags['C_CONTIGUOUS']
    assert len(seen) == 8


def test_augment_disabled_and_joint_mode():
    img = np.random.default_rng(0).random((3, 4, 4))
    for seed in range(20):
        np.testing.assert_array_equal(augment(img, False, False, False, rng=random.Random(seed)), img)
    seen = set()
    for seed in range(64):
        out, status = augment(img, True, True, False, rng=random.Random(seed), flip_mode='joint',
                              return_status=True)
        assert status[0] == status[1] and not status[2]
        seen.add(status)
        np.testing.assert_array_equal(out, img[:, ::-1, ::-1] if status[0] else img)
    assert len(seen) == 2
    with pytest.raises(ValueError, match='flip_mode'):
        augment(img, flip_mode='both')


def test_augment_misaligned_error_and_channel_axis_untouched():
    with pytest.raises(ValueError, match='array 1 has size 4x5'):
        augment([np.zeros((4, 4)), np.zeros((4, 5))])
    small, big = _coords(4, 6, channels=1), _coords(4, 6, channels=1, scale=3)
    for seed in range(10):
        s_out, b_out = augment([small, big], rng=random.Random(seed))
        np.testing.assert_array_equal(b_out[:, ::3, ::3], s_out)
    voxel = np.stack([np.full((4, 4), k, np.float32) for k in range(6)])
    for seed in range(10):
        out = augment(voxel, rng=random.Random(seed))
        np.testing.assert_array_equal(out[:, 0, 0], np.arange(6))


def test_global_random_used_when_no_rng():
    arr = _coords(8, 8, channels=0)
    random.seed(11)
    a = paired_random_crop(arr, 3)
    random.seed(11)
    b = paired_random_crop(arr, 3)
    np.testing.assert_array_equal(a, b)
