"""Tests of PSNR, the standard SSIM and EFNet's 3-D SSIM (numpy and torch variants)."""
import math

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from basicsr.metrics import calculate_metric
from basicsr.metrics.metric_util import reorder_image, to_y_channel
from basicsr.metrics.psnr_ssim import (calculate_psnr, calculate_psnr_pt, calculate_ssim, calculate_ssim_3d,
                                       calculate_ssim_3d_pt, calculate_ssim_pt)
from basicsr.utils.color_util import bgr2ycbcr, rgb2ycbcr, rgb2ycbcr_pt

pytestmark = pytest.mark.numerics  # .ci/run repeats these on other CPU kernel paths


def _structured_pair(height=40, width=52, seed=0, noise=(6., 14.)):
    """Two uint8 BGR images: a shared smooth pattern with different noise on each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 70 * np.sin(xx / (4 + c) + c) * np.cos(yy / 6.) for c in range(3)], axis=-1)
    img = np.clip(base + rng.normal(0, noise[0], base.shape), 0, 255).round().astype(np.uint8)
    img2 = np.clip(base + rng.normal(0, noise[1], base.shape), 0, 255).round().astype(np.uint8)
    return img, img2


def _reference_ssim_map(x, y, data_range, ndim):
    """Slow SSIM map: explicit edge padding of 5 on every axis and a direct sum over all window offsets."""
    taps = cv2.getGaussianKernel(11, 1.5)[:, 0]
    window = taps
    for _ in range(ndim - 1):
        window = np.multiply.outer(window, taps)

    def blur(v):
        padded = np.pad(v, 5, mode='edge')
        out = np.zeros_like(v)
        for offset in np.ndindex(*window.shape):
            out += window[offset] * padded[tuple(slice(o, o + n) for o, n in zip(offset, v.shape))]
        return out

    c1, c2 = (0.01 * data_range)**2, (0.03 * data_range)**2
    mu1, mu2 = blur(x), blur(y)
    s11 = blur(x * x) - mu1**2
    s22 = blur(y * y) - mu2**2
    s12 = blur(x * y) - mu1 * mu2
    return ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))


def test_psnr_matches_hand_computation():
    img = np.full((4, 6, 3), 100, np.uint8)
    img2 = img.copy()
    img2[1, 2, 0] = 110
    img2[3, 5, 2] = 97
    mse = (10**2 + 3**2) / img.size
    expected = 10 * math.log10(255**2 / mse)
    assert calculate_psnr(img, img2, crop_border=0) == pytest.approx(expected, abs=1e-10)
    # float input in [0, 1] uses peak 1: the same images give the same PSNR
    assert calculate_psnr(img / 255., img2 / 255., crop_border=0) == pytest.approx(expected, abs=1e-9)
    assert calculate_psnr(img.transpose(2, 0, 1), img2.transpose(2, 0, 1), 0, input_order='CHW') == pytest.approx(
        expected, abs=1e-10)


def test_psnr_crop_border_and_identical_images():
    img, _ = _structured_pair()
    img2 = img.copy()
    img2[0, :, :] = 255 - img2[0, :, :]
    assert calculate_psnr(img, img, 0) == math.inf
    assert math.isfinite(calculate_psnr(img, img2, 0))
    assert calculate_psnr(img, img2, crop_border=1) == math.inf


def test_psnr_y_channel_matches_hand_computation():
    img, img2 = _structured_pair(seed=3)
    weights = np.array([24.966, 128.553, 65.481])  # B, G, R
    y1 = (img.astype(np.float64) / 255.) @ weights + 16.
    y2 = (img2.astype(np.float64) / 255.) @ weights + 16.
    expected = 10 * math.log10(255**2 / np.mean((y1 - y2)**2))
    assert calculate_psnr(img, img2, 0, test_y_channel=True) == pytest.approx(expected, abs=1e-4)
    assert calculate_psnr(img / 255., img2 / 255., 0, test_y_channel=True) == pytest.approx(expected, abs=1e-4)


def test_near_black_uint8_image_scored_with_range_255():
    img = np.zeros((16, 16, 3), np.uint8)
    img[::2, ::3, 1] = 1
    img2 = np.zeros_like(img)
    mse = np.mean(img.astype(np.float64)**2)
    assert img.max() <= 1
    assert calculate_psnr(img, img2, 0) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-10)
    ssim_255 = _reference_ssim_map(img.astype(np.float64), img2.astype(np.float64), 255., 3).mean()
    ssim_1 = _reference_ssim_map(img.astype(np.float64), img2.astype(np.float64), 1., 3).mean()
    assert abs(ssim_255 - ssim_1) > 0.1
    assert calculate_ssim_3d(img, img2, 0) == pytest.approx(ssim_255, abs=1e-5)


def test_explicit_data_range_overrides_dtype():
    img, img2 = _structured_pair(seed=4)
    as_float = img.astype(np.float32), img2.astype(np.float32)
    assert calculate_psnr(*as_float, 0, data_range=255) == pytest.approx(calculate_psnr(img, img2, 0), abs=1e-9)
    assert calculate_ssim(*as_float, 0, data_range=255) == pytest.approx(calculate_ssim(img, img2, 0), abs=1e-9)
    with pytest.raises(TypeError, match='range'):
        calculate_psnr(img, img2 / 255., 0)


def test_standard_ssim_matches_skimage():
    img, img2 = _structured_pair()
    ours = calculate_ssim(img, img2, crop_border=0)
    # skimage drops the same 5-pixel border (its window is 11 wide for sigma 1.5, truncate 3.5), so the means agree.
    ref = structural_similarity(img, img2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255, channel_axis=2)
    assert 0.2 < ours < 0.95
    assert ours == pytest.approx(ref, abs=1e-6)
    cropped = structural_similarity(img[3:-3, 3:-3], img2[3:-3, 3:-3], gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=255, channel_axis=2)
    assert calculate_ssim(img, img2, crop_border=3) == pytest.approx(cropped, abs=1e-6)


def test_standard_ssim_y_channel_and_float_input():
    img, img2 = _structured_pair(seed=5)
    y1, y2 = to_y_channel(img)[..., 0], to_y_channel(img2)[..., 0]
    ref = structural_similarity(y1.astype(np.float64), y2.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=255)
    assert calculate_ssim(img, img2, 0, test_y_channel=True) == pytest.approx(ref, abs=1e-6)
    assert calculate_ssim(img / 255., img2 / 255., 0) == pytest.approx(calculate_ssim(img, img2, 0), abs=1e-9)


def test_identical_images_give_ssim_one():
    img, _ = _structured_pair(seed=1)
    assert calculate_ssim(img, img, 0) == pytest.approx(1.0, abs=1e-12)
    assert calculate_ssim_3d(img, img, 0) == pytest.approx(1.0, abs=1e-6)
    assert calculate_ssim_3d(img, img, 0, test_y_channel=True) == pytest.approx(1.0, abs=1e-12)


def test_ssim_3d_matches_slow_reference():
    img, img2 = _structured_pair(height=13, width=15, seed=2, noise=(10., 25.))
    ref = _reference_ssim_map(img.astype(np.float64), img2.astype(np.float64), 255., 3).mean()
    ours = calculate_ssim_3d(img, img2, crop_border=0, device='cpu')
    assert ours == pytest.approx(ref, abs=1e-5)
    # the channel axis is filtered too, so reversing the channel order (a mirror of the volume) changes nothing,
    # while the result differs from the per-channel 2-D SSIM
    assert calculate_ssim_3d(img[..., ::-1], img2[..., ::-1], 0) == pytest.approx(ours, abs=1e-6)
    assert abs(ours - calculate_ssim(img, img2, 0)) > 1e-3
    ref_crop = _reference_ssim_map(img[2:-2, 2:-2].astype(np.float64), img2[2:-2, 2:-2].astype(np.float64), 255.,
                                   3).mean()
    assert calculate_ssim_3d(img, img2, crop_border=2) == pytest.approx(ref_crop, abs=1e-5)


def test_ssim_3d_matches_conv3d_on_hwc_volume():
    # the reference layout: the H×W×3 image as a (1, 1, H, W, 3) volume through an 11×11×11 replicate-padded Conv3d
    img, img2 = _structured_pair(height=20, width=24, seed=16, noise=(8., 20.))
    taps = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(taps, taps.T)
    conv = torch.nn.Conv3d(1, 1, 11, padding=5, padding_mode='replicate', bias=False)
    with torch.no_grad():
        conv.weight[0, 0] = torch.from_numpy(np.stack([window * k for k in taps[:, 0]]))
        x = torch.from_numpy(img.astype(np.float32))[None, None]
        y = torch.from_numpy(img2.astype(np.float32))[None, None]
        c1, c2 = (0.01 * 255)**2, (0.03 * 255)**2
        mu1, mu2 = conv(x), conv(y)
        s11, s22, s12 = conv(x * x) - mu1**2, conv(y * y) - mu2**2, conv(x * y) - mu1 * mu2
        ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    assert calculate_ssim_3d(img, img2, 0) == pytest.approx(ssim_map.mean().item(), abs=1e-5)


def test_ssim_3d_y_channel_path_is_2d_replicate_ssim():
    img, img2 = _structured_pair(height=12, width=14, seed=6, noise=(10., 25.))
    y1, y2 = to_y_channel(img)[..., 0].astype(np.float64), to_y_channel(img2)[..., 0].astype(np.float64)
    ref = _reference_ssim_map(y1, y2, 255., 2).mean()
    assert calculate_ssim_3d(img, img2, 0, test_y_channel=True) == pytest.approx(ref, abs=1e-9)


def test_ssim_3d_float32_agrees_with_float64():
    from basicsr.metrics.psnr_ssim import _ssim_3d_batch
    img, img2 = _structured_pair(seed=7)
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    y = torch.from_numpy(img2).permute(2, 0, 1)[None]
    v32 = _ssim_3d_batch(x.float(), y.float(), 255.)
    v64 = _ssim_3d_batch(x.double(), y.double(), 255.)
    assert v32.item() == pytest.approx(v64.item(), abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='CUDA not available')
def test_ssim_3d_cuda_matches_cpu():
    img, img2 = _structured_pair(seed=8)
    assert calculate_ssim_3d(img, img2, 0, device='cuda') == pytest.approx(calculate_ssim_3d(img, img2, 0), abs=1e-6)


def test_torch_variants_match_numpy():
    rng = np.random.default_rng(9)
    pairs = [_structured_pair(seed=s) for s in (10, 11)]
    bgr = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    # torch variants take RGB (N, C, H, W) in [0, 1]
    rgb_t = [torch.from_numpy(b[..., ::-1].copy()).permute(0, 3, 1, 2).double() / 255. for b in bgr]
    for crop, y_only in [(0, False), (2, False), (0, True)]:
        psnr = calculate_psnr_pt(*rgb_t, crop_border=crop, test_y_channel=y_only)
        ssim = calculate_ssim_pt(*rgb_t, crop_border=crop, test_y_channel=y_only)
        ssim3 = calculate_ssim_3d_pt(*rgb_t, crop_border=crop, test_y_channel=y_only)
        assert psnr.shape == ssim.shape == ssim3.shape == (2, )
        for i in range(2):
            img, img2 = bgr[0][i] / 255., bgr[1][i] / 255.
            assert psnr[i].item() == pytest.approx(calculate_psnr(img, img2, crop, test_y_channel=y_only), abs=1e-6)
            assert ssim[i].item() == pytest.approx(calculate_ssim(img, img2, crop, test_y_channel=y_only), abs=1e-6)
            assert ssim3[i].item() == pytest.approx(
                calculate_ssim_3d(img, img2, crop, test_y_channel=y_only), abs=1e-5)
    same = torch.from_numpy(rng.random((1, 3, 16, 16)))
    assert torch.isinf(calculate_psnr_pt(same, same, 0)).all()


def test_tensor_inputs_are_chw_images():
    img, img2 = _structured_pair(seed=12)
    t1 = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255.
    t2 = torch.from_numpy(img2).permute(2, 0, 1).float()[None] / 255.
    expected = calculate_psnr(img / 255., img2 / 255., 0)
    assert calculate_psnr(t1, t2, 0) == pytest.approx(expected, abs=1e-4)
    assert calculate_psnr(t1[0], t2[0], 0, input_order='HWC') == pytest.approx(expected, abs=1e-4)


def test_registered_metrics_accept_option_file_keys():
    img, img2 = _structured_pair(seed=13)
    data = {'img': img, 'img2': img2}
    for name, func in [('calculate_psnr', calculate_psnr), ('calculate_ssim', calculate_ssim),
                       ('calculate_ssim_3d', calculate_ssim_3d)]:
        opt = {'type': name, 'crop_border': 0, 'test_y_channel': False, 'better': 'higher'}
        assert calculate_metric(data, opt) == func(img, img2, 0)
        assert opt['type'] == name


def test_bad_inputs_raise_clear_errors():
    img, img2 = _structured_pair(seed=14)
    with pytest.raises(ValueError, match='shapes differ'):
        calculate_psnr(img, img2[:-1], 0)
    with pytest.raises(ValueError, match='at least 11x11'):
        calculate_ssim(img[:8, :8], img2[:8, :8], 0)
    with pytest.raises(ValueError, match='input_order'):
        calculate_ssim(img, img2, 0, input_order='WHC')


def test_color_conversions():
    img, _ = _structured_pair(seed=15)
    ycc = bgr2ycbcr(img)
    assert ycc.dtype == np.uint8
    # the channels are summed in the other order: equal up to rounding, so a uint8 value at .5 may differ by one
    assert np.abs(ycc.astype(int) - rgb2ycbcr(img[..., ::-1])).max() <= 1
    np.testing.assert_allclose(bgr2ycbcr(img / 255.), rgb2ycbcr(img[..., ::-1] / 255.), rtol=0, atol=1e-12)
    # a grey pixel has neutral chroma and Y = 16 + 219 * v
    grey = np.full((1, 1, 3), 0.5)
    np.testing.assert_allclose(bgr2ycbcr(grey)[0, 0] * 255., [16 + 219 * 0.5, 128, 128], atol=1e-3)
    rgb = img[..., ::-1] / 255.
    t = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None]
    np.testing.assert_allclose(rgb2ycbcr_pt(t)[0].permute(1, 2, 0).numpy(), rgb2ycbcr(rgb), atol=1e-6)
    np.testing.assert_allclose(rgb2ycbcr_pt(t, y_only=True)[0, 0].numpy(), rgb2ycbcr(rgb, y_only=True), atol=1e-6)
    assert reorder_image(img[..., 0]).shape == img.shape[:2] + (1, )


def test_package_exports_metric_functions_lazily():
    """``from basicsr.metrics import calculate_psnr`` works, gives the registered function, and the package
    import alone does not import ``psnr_ssim`` (checked in a fresh interpreter)."""
    import subprocess
    import sys
    code = ('import sys, basicsr.metrics as m\n'
            'assert "basicsr.metrics.psnr_ssim" not in sys.modules\n'
            'from basicsr.metrics import (calculate_psnr, calculate_ssim, calculate_ssim_3d, calculate_psnr_pt,\n'
            '                             calculate_ssim_pt, calculate_ssim_3d_pt)\n'
            'from basicsr.utils.registry import METRIC_REGISTRY\n'
            'assert calculate_psnr is METRIC_REGISTRY.get("calculate_psnr")\n'
            'assert set(m.__all__) <= set(dir(m))\n'
            'print("ok")\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'ok'
    import basicsr.metrics as metrics
    with pytest.raises(AttributeError, match='no attribute'):
        metrics.calculate_nothing  # noqa: B018
    img, img2 = _structured_pair()
    assert metrics.calculate_psnr(img, img2, crop_border=0) == calculate_psnr(img, img2, crop_border=0)
