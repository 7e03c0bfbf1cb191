# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/metrics/psnr_ssim.py (Apache-2.0)
"""PSNR and SSIM: the standard BasicSR definitions and the 3-D SSIM reported by EFNet/HINet.

Data range: uint8 images have peak 255, floating-point images peak 1 (``data_range`` overrides). The range is
taken from the type, never guessed from the pixel values. Images may also be torch tensors in (C, H, W) or
(1, C, H, W) layout (e.g. network outputs in [0, 1]); they are converted to HWC arrays first.
"""
import cv2
import numpy as np
import torch

from basicsr.metrics.metric_util import as_numpy_image, default_data_range, reorder_image, to_y_channel
from basicsr.utils.color_util import rgb2ycbcr_pt
from basicsr.utils.registry import METRIC_REGISTRY

__all__ = ['calculate_psnr', 'calculate_ssim', 'calculate_ssim_3d', 'calculate_psnr_pt', 'calculate_ssim_pt',
           'calculate_ssim_3d_pt']

_WINDOW = 11
_RADIUS = _WINDOW // 2
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03


def _gaussian_taps():
    """OpenCV's normalised 11-tap Gaussian (sigma 1.5) as a float64 vector."""
    return cv2.getGaussianKernel(_WINDOW, _SIGMA)[:, 0]


def _prepare_pair(img, img2, crop_border, input_order, data_range):
    """Validates a pair of images, brings them to HWC, crops the border and resolves the data range.

    Args:
        img (ndarray | Tensor): First image.
        img2 (ndarray | Tensor): Second image.
        crop_border (int): Pixels removed on each side of H and W.
        input_order (str): 'HWC' or 'CHW' for arrays; tensors are always CHW.
        data_range (float | None): Peak value; None picks it from the dtype.

    Returns:
        tuple: (img, img2, data_range) with HWC arrays.
    """
    pair = []
    for arg in (img, img2):
        order = 'HWC' if isinstance(arg, torch.Tensor) else input_order
        pair.append(reorder_image(as_numpy_image(arg), input_order=order))
    img, img2 = pair
    if img.shape != img2.shape:
        raise ValueError(f'image shapes differ: {img.shape} and {img2.shape}')
    if data_range is None:
        data_range = default_data_range(img)
        if default_data_range(img2) != data_range:
            raise TypeError(f'images have different range conventions ({img.dtype} vs {img2.dtype}); convert both '
                            'to uint8 or both to float in [0, 1], or pass data_range')
    crop_border = int(crop_border)
    if crop_border < 0:
        raise ValueError(f'crop_border must be >= 0, got {crop_border}')
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    return img, img2, float(data_range)


def _to_255_scale(img, data_range):
    """Returns the image as float64 values on the [0, 255] scale."""
    return img.astype(np.float64) * (255. / data_range)


@METRIC_REGISTRY.register()
def calculate_psnr(img, img2, crop_border, input_order='HWC', test_y_channel=False, data_range=None, **kwargs):
    """Peak signal-to-noise ratio, ``10·log10(L² / MSE)`` in float64.

    Ref: https://en.wikipedia.org/wiki/Peak_signal-to-noise_ratio

    Args:
        img (ndarray | Tensor): Image, uint8 in [0, 255] or float in [0, 1] (tensors: CHW).
        img2 (ndarray | Tensor): Reference image of the same shape and range convention.
        crop_border (int): Pixels cropped from each side of H and W before the computation.
        input_order (str): 'HWC' or 'CHW' layout of array inputs. Default: 'HWC'.
        test_y_channel (bool): Compare only the Y channel of BGR images (BT.601, MATLAB). Default: False.
        data_range (float | None): Peak value L; None means 255 for uint8 and 1 for float input. Default: None.
        **kwargs: Ignored (option-file keys such as ``better``).

    Returns:
        float: PSNR in dB; ``inf`` for identical images.
    """
    img, img2, data_range = _prepare_pair(img, img2, crop_border, input_order, data_range)
    if test_y_channel:
        img = to_y_channel(_to_255_scale(img, data_range)).astype(np.float64)
        img2 = to_y_channel(_to_255_scale(img2, data_range)).astype(np.float64)
        data_range = 255.
    else:
        img, img2 = img.astype(np.float64), img2.astype(np.float64)
    mse = np.mean((img - img2)**2)
    if mse == 0:
        return float('inf')
    return float(10. * np.log10(data_range**2 / mse))


def _ssim_2d(img, img2, border_type=None):
    """SSIM of two single-channel float64 images on the [0, 255] scale (11×11 Gaussian window, sigma 1.5).

    Args:
        img (ndarray): (H, W) image.
        img2 (ndarray): (H, W) image.
        border_type (int | None): None computes the map on the "valid" region only (the MATLAB-faithful
            BasicSR SSIM: filtered maps cropped by 5 pixels); an OpenCV border type such as ``cv2.BORDER_REPLICATE``
            keeps every pixel with that border extension (EFNet's ``_ssim_cly``).

    Returns:
        float: Mean of the SSIM map.
    """
    c1 = (_K1 * 255)**2
    c2 = (_K2 * 255)**2
    taps = _gaussian_taps()
    window = np.outer(taps, taps)

    def blur(x):
        if border_type is None:
            return cv2.filter2D(x, -1, window)[_RADIUS:-_RADIUS, _RADIUS:-_RADIUS]
        return cv2.filter2D(x, -1, window, borderType=border_type)

    mu1, mu2 = blur(img), blur(img2)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = blur(img**2) - mu1_sq
    sigma2_sq = blur(img2**2) - mu2_sq
    sigma12 = blur(img * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(ssim_map.mean())


def _check_window_fits(shape):
    if shape[0] < _WINDOW or shape[1] < _WINDOW:
        raise ValueError(f'SSIM needs images of at least {_WINDOW}x{_WINDOW} pixels after cropping, got {shape[:2]}')


@METRIC_REGISTRY.register()
def calculate_ssim(img, img2, crop_border, input_order='HWC', test_y_channel=False, data_range=None, **kwargs):
    """Standard structural similarity (BasicSR's MATLAB-faithful SSIM).

    Per channel: 11×11 Gaussian window (sigma 1.5) via ``cv2.filter2D``, statistics kept on the valid region (a
    5-pixel border of the filtered maps is dropped), float64; the channel values are averaged. This is *not* the
    number EFNet/HINet papers report (see :func:`calculate_ssim_3d`).

    Ref: Wang et al., "Image quality assessment: From error visibility to structural similarity", TIP 2004.

    Args:
        img (ndarray | Tensor): Image, uint8 in [0, 255] or float in [0, 1] (tensors: CHW).
        img2 (ndarray | Tensor): Reference image of the same shape and range convention.
        crop_border (int): Pixels cropped from each side of H and W before the computation.
        input_order (str): 'HWC' or 'CHW' layout of array inputs. Default: 'HWC'.
        test_y_channel (bool): Compare only the Y channel of BGR images (BT.601, MATLAB). Default: False.
        data_range (float | None): Peak value L; None means 255 for uint8 and 1 for float input. Default: None.
        **kwargs: Ignored (option-file keys such as ``better``).

    Returns:
        float: SSIM, 1 for identical images.
    """
    img, img2, data_range = _prepare_pair(img, img2, crop_border, input_order, data_range)
    _check_window_fits(img.shape)
    img, img2 = _to_255_scale(img, data_range), _to_255_scale(img2, data_range)
    if test_y_channel:
        img = to_y_channel(img).astype(np.float64)
        img2 = to_y_channel(img2).astype(np.float64)
    return float(np.mean([_ssim_2d(img[..., c], img2[..., c]) for c in range(img.shape[2])]))


def _replicate_pad(x, dim, pad):
    """Extends ``x`` by ``pad`` copies of its first and last slice along ``dim``."""
    first = x.narrow(dim, 0, 1)
    last = x.narrow(dim, x.size(dim) - 1, 1)
    sizes = list(x.shape)
    sizes[dim] = pad
    return torch.cat([first.expand(sizes), x, last.expand(sizes)], dim=dim)


def _replicate_filter_matrix(length):
    """(length, length) matrix of the 11-tap Gaussian with replicate padding on an axis of the given length.

    Row ``o`` holds the weight of every input sample in output ``o``; taps falling outside the axis are added to the
    edge sample, which is what replicate padding does.
    """
    taps = _gaussian_taps()
    matrix = np.zeros((length, length))
    for out_index in range(length):
        for k, tap in enumerate(taps):
            matrix[out_index, min(max(out_index + k - _RADIUS, 0), length - 1)] += tap
    return matrix


def _gaussian_filter(x, dims, replicate):
    """Separable 11-tap Gaussian (sigma 1.5) along the given dimensions of a tensor.

    Args:
        x (Tensor): Input of any shape.
        dims (tuple[int]): Dimensions to filter.
        replicate (bool): True pads 5 replicated samples on both ends (output keeps the size); False keeps the
            valid part only (output shrinks by 10 per filtered dimension).

    Returns:
        Tensor: Filtered tensor, dtype and device of ``x``.
    """
    taps = [float(t) for t in _gaussian_taps()]
    for dim in dims:
        if replicate and x.size(dim) <= _WINDOW:
            # A short axis (the 3 colour channels of the 3-D SSIM) is cheaper as a small mixing matrix.
            matrix = torch.as_tensor(_replicate_filter_matrix(x.size(dim)), dtype=x.dtype, device=x.device)
            x = torch.tensordot(x, matrix, dims=([dim], [1])).movedim(-1, dim)
            continue
        if replicate:
            x = _replicate_pad(x, dim, _RADIUS)
        length = x.size(dim) - 2 * _RADIUS
        out = x.narrow(dim, 0, length) * taps[0]
        for k in range(1, _WINDOW):
            out.add_(x.narrow(dim, k, length), alpha=taps[k])
        x = out
    return x


def _ssim_map_pt(x, y, data_range, dims, replicate):
    """SSIM map of two tensors with a separable Gaussian window along ``dims``.

    Args:
        x (Tensor): First input.
        y (Tensor): Second input, same shape.
        data_range (float): Peak value L (C1 = (0.01 L)², C2 = (0.03 L)²).
        dims (tuple[int]): Dimensions the window spans.
        replicate (bool): Replicate padding (same-size map) or valid region (see :func:`_gaussian_filter`).

    Returns:
        Tensor: SSIM map.
    """
    c1 = (_K1 * data_range)**2
    c2 = (_K2 * data_range)**2
    mu1 = _gaussian_filter(x, dims, replicate)
    mu2 = _gaussian_filter(y, dims, replicate)
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = _gaussian_filter(x * x, dims, replicate) - mu1_sq
    sigma2_sq = _gaussian_filter(y * y, dims, replicate) - mu2_sq
    sigma12 = _gaussian_filter(x * y, dims, replicate) - mu1_mu2
    return ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))


def _ssim_3d_batch(x, y, data_range):
    """EFNet/HINet 3-D SSIM of (N, C, H, W) float32 batches: the window spans C, H and W with replicate padding.

    Args:
        x (Tensor): (N, C, H, W) float32 images.
        y (Tensor): (N, C, H, W) float32 images.
        data_range (float): Peak value L.

    Returns:
        Tensor: (N,) float64 per-image means of the SSIM map over C×H×W.
    """
    ssim_map = _ssim_map_pt(x, y, data_range, dims=(1, 2, 3), replicate=True)
    return ssim_map.to(torch.float64).mean(dim=(1, 2, 3))


@METRIC_REGISTRY.register()
def calculate_ssim_3d(img,
                      img2,
                      crop_border,
                      input_order='HWC',
                      test_y_channel=False,
                      data_range=None,
                      device=None,
                      **kwargs):
    """3-D SSIM as reported by EFNet and HINet (their ``calculate_ssim``).

    The H×W×3 image is treated as a volume: separable 11×11×11 Gaussian window (OpenCV's 11-tap kernel, sigma 1.5,
    on every axis), replicate padding of 5 on all three axes (the channel axis of length 3 is padded to 13),
    C1 = (0.01 L)², C2 = (0.03 L)², float32, SSIM map averaged over all H×W×C positions. Its values differ from
    :func:`calculate_ssim`; never compare the two. With ``test_y_channel`` the reference's Y path is used instead:
    2-D SSIM of the Y channel with replicate borders and no crop (float64).

    Args:
        img (ndarray | Tensor): Image, uint8 in [0, 255] or float in [0, 1] (tensors: CHW).
        img2 (ndarray | Tensor): Reference image of the same shape and range convention.
        crop_border (int): Pixels cropped from each side of H and W before the computation.
        input_order (str): 'HWC' or 'CHW' layout of array inputs. Default: 'HWC'.
        test_y_channel (bool): Y-channel 2-D SSIM of BGR images instead of the 3-D SSIM. Default: False.
        data_range (float | None): Peak value L; None means 255 for uint8 and 1 for float input. Default: None.
        device (str | torch.device | None): Where the 3-D filtering runs, e.g. 'cuda'. Default: None (CPU).
        **kwargs: Ignored (option-file keys such as ``better``).

    Returns:
        float: SSIM, 1 for identical images.
    """
    img, img2, data_range = _prepare_pair(img, img2, crop_border, input_order, data_range)
    if test_y_channel:
        img = to_y_channel(_to_255_scale(img, data_range)).astype(np.float64)
        img2 = to_y_channel(_to_255_scale(img2, data_range)).astype(np.float64)
        return _ssim_2d(img[..., 0], img2[..., 0], border_type=cv2.BORDER_REPLICATE)
    device = torch.device('cpu') if device is None else torch.device(device)
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
    y = torch.from_numpy(np.ascontiguousarray(img2, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
    with torch.no_grad():
        return float(_ssim_3d_batch(x, y, data_range)[0])


def _prepare_batch(img, img2, crop_border, test_y_channel):
    """Validates (N, C, H, W) batches, crops the border and optionally converts RGB to Y."""
    if img.shape != img2.shape:
        raise ValueError(f'image shapes differ: {tuple(img.shape)} and {tuple(img2.shape)}')
    if img.dim() != 4:
        raise ValueError(f'expected (N, C, H, W) tensors, got shape {tuple(img.shape)}')
    crop_border = int(crop_border)
    if crop_border < 0:
        raise ValueError(f'crop_border must be >= 0, got {crop_border}')
    if crop_border:
        img = img[:, :, crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[:, :, crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel:
        img = rgb2ycbcr_pt(img.to(torch.float64), y_only=True)
        img2 = rgb2ycbcr_pt(img2.to(torch.float64), y_only=True)
    return img, img2


@METRIC_REGISTRY.register()
def calculate_psnr_pt(img, img2, crop_border, test_y_channel=False, **kwargs):
    """PSNR of a batch of images in [0, 1] (data range 1), per image, float64.

    Args:
        img (Tensor): (N, C, H, W) images in [0, 1] (RGB when ``test_y_channel``).
        img2 (Tensor): Reference images, same shape.
        crop_border (int): Pixels cropped from each side of H and W.
        test_y_channel (bool): Compare only the Y channel (BT.601). Default: False.
        **kwargs: Ignored.

    Returns:
        Tensor: (N,) float64 PSNR values in dB; ``inf`` where the images are identical.
    """
    img, img2 = _prepare_batch(img, img2, crop_border, test_y_channel)
    mse = torch.mean((img.to(torch.float64) - img2.to(torch.float64))**2, dim=(1, 2, 3))
    return 10. * torch.log10(1. / mse)


@METRIC_REGISTRY.register()
def calculate_ssim_pt(img, img2, crop_border, test_y_channel=False, **kwargs):
    """Standard SSIM (as :func:`calculate_ssim`: per-channel 2-D, valid region) of a batch in [0, 1], float64.

    Args:
        img (Tensor): (N, C, H, W) images in [0, 1] (RGB when ``test_y_channel``).
        img2 (Tensor): Reference images, same shape.
        crop_border (int): Pixels cropped from each side of H and W.
        test_y_channel (bool): Compare only the Y channel (BT.601). Default: False.
        **kwargs: Ignored.

    Returns:
        Tensor: (N,) float64 SSIM values.
    """
    img, img2 = _prepare_batch(img, img2, crop_border, test_y_channel)
    _check_window_fits(img.shape[2:])
    ssim_map = _ssim_map_pt(img.to(torch.float64), img2.to(torch.float64), 1., dims=(2, 3), replicate=False)
    return ssim_map.mean(dim=(1, 2, 3))


@METRIC_REGISTRY.register()
def calculate_ssim_3d_pt(img, img2, crop_border, test_y_channel=False, **kwargs):
    """EFNet/HINet 3-D SSIM (as :func:`calculate_ssim_3d`) of a batch in [0, 1], on the tensors' device.

    Args:
        img (Tensor): (N, C, H, W) images in [0, 1] (RGB when ``test_y_channel``).
        img2 (Tensor): Reference images, same shape.
        crop_border (int): Pixels cropped from each side of H and W.
        test_y_channel (bool): 2-D SSIM of the Y channel with replicate borders (float64) instead. Default: False.
        **kwargs: Ignored.

    Returns:
        Tensor: (N,) float64 SSIM values.
    """
    img, img2 = _prepare_batch(img, img2, crop_border, test_y_channel)
    with torch.no_grad():
        if test_y_channel:
            ssim_map = _ssim_map_pt(img, img2, 1., dims=(2, 3), replicate=True)
            return ssim_map.mean(dim=(1, 2, 3))
        return _ssim_3d_batch(img.to(torch.float32), img2.to(torch.float32), 1.)
