"""Tests of image reading, writing and tensor conversion."""
import os

import cv2
import numpy as np
import pytest
import torch

from basicsr.utils.img_util import imfrombytes, img2tensor, imread, imwrite, tensor2img


def test_tensor2img_rounds_and_clamps():
    t = torch.tensor([[[0.5 / 255, 1.6 / 255, 254.5 / 255], [-0.2, 1.3, 0.5]]])  # (1, 2, 3) gray
    img = tensor2img(t)
    assert img.dtype == np.uint8 and img.shape == (2, 3)
    np.testing.assert_array_equal(img, [[np.round(0.5), 2, np.round(254.5)], [0, 255, 128]])
    # truncation would give 1 for 1.6 / 255; rounding gives 2
    assert img[0, 1] == 2


def test_tensor2img_shapes_and_channel_order():
    rgb = torch.zeros(3, 2, 2)
    rgb[0] = 1.  # red
    bgr = tensor2img(rgb)
    assert bgr.shape == (2, 2, 3) and bgr[0, 0].tolist() == [0, 0, 255]
    assert tensor2img(rgb, rgb2bgr=False)[0, 0].tolist() == [255, 0, 0]
    assert tensor2img(rgb[None]).shape == (2, 2, 3)
    assert tensor2img(torch.zeros(2, 2)).shape == (2, 2)
    assert tensor2img(torch.zeros(1, 1, 4, 5)).shape == (4, 5)
    out = tensor2img([rgb, rgb], out_type=np.float32)
    assert isinstance(out, list) and out[0].dtype == np.float32 and out[0].max() == 1.
    assert tensor2img(torch.full((1, 2, 2), 0.), min_max=(-1, 1))[0, 0] == 128
    with pytest.raises(ValueError, match='batch of 2'):
        tensor2img(torch.zeros(2, 3, 4, 4))
    with pytest.raises(TypeError):
        tensor2img(np.zeros((3, 3)))


def test_img2tensor_roundtrip():
    img = np.random.default_rng(0).integers(0, 256, (5, 6, 3)).astype(np.uint8)
    t = img2tensor(img.astype(np.float32) / 255.)
    assert t.shape == (3, 5, 6) and t.dtype == torch.float32
    np.testing.assert_allclose(t[0].numpy(), img[:, :, 2] / 255., atol=1e-7)
    np.testing.assert_array_equal(tensor2img(t), img)
    gray = img2tensor([img[:, :, 0]], float32=False)[0]
    assert gray.shape == (1, 5, 6) and gray.dtype == torch.uint8


def test_imwrite_atomic_and_imread(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (7, 9, 3)).astype(np.uint8)
    path = tmp_path / 'sub' / 'a.png'
    imwrite(img, path)
    assert os.listdir(tmp_path / 'sub') == ['a.png']
    np.testing.assert_array_equal(imread(path, 'unchanged'), img)
    f = imread(str(path), 'color', float32=True)
    assert f.dtype == np.float32 and f.max() <= 1.
    np.testing.assert_array_equal(imfrombytes(path.read_bytes(), 'grayscale').shape, (7, 9))
    # overwrite keeps a readable file and no temporary leftovers
    imwrite(img[:, :, 0], path)
    assert os.listdir(tmp_path / 'sub') == ['a.png']
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).ndim == 2


def test_imwrite_failure_leaves_existing_file(tmp_path):
    path = tmp_path / 'keep.png'
    imwrite(np.zeros((4, 4), np.uint8), path)
    before = path.read_bytes()
    with pytest.raises(IOError, match='keep.png'):
        imwrite(np.zeros((4, 4, 7), np.float64), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['keep.png']


def test_imread_errors_name_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.png'):
        imread(tmp_path / 'missing.png')
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='bad.png'):
        imread(bad)
