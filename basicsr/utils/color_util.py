# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/utils/color_util.py (Apache-2.0)
"""ITU-R BT.601 colour conversions (MATLAB ``rgb2ycbcr`` convention) for numpy images and torch batches."""
import numpy as np
import torch

__all__ = ['bgr2ycbcr', 'rgb2ycbcr', 'rgb2ycbcr_pt']

# Rows: Y, Cb, Cr; columns: R, G, B. Applied to [0, 1] values, they give Y in [16, 235] and Cb/Cr in [16, 240].
_RGB_TO_YCBCR = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])


def _to_unit_float(img):
    """Converts a uint8 image to float32 in [0, 1]; float images are returned as float32 unchanged.

    Args:
        img (ndarray): uint8 image in [0, 255] or float image in [0, 1].

    Returns:
        ndarray: float32 image in [0, 1].
    """
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.
    if img.dtype in (np.float32, np.float64):
        return img.astype(np.float32)
    raise TypeError(f'image dtype must be uint8, float32 or float64, got {img.dtype}')


def _from_ycbcr_scale(img, dst_type):
    """Converts a result in [0, 255] back to the input type: rounded uint8, or float in [0, 1].

    Args:
        img (ndarray): Converted image with values in [0, 255].
        dst_type (np.dtype): dtype of the original input.

    Returns:
        ndarray: Image of type ``dst_type``.
    """
    if dst_type == np.uint8:
        return img.round().clip(0, 255).astype(np.uint8)
    return (img / 255.).astype(dst_type)


def _rgb_order_to_ycbcr(img, y_only, channel_index):
    """Shared body of :func:`rgb2ycbcr` and :func:`bgr2ycbcr`.

    Args:
        img (ndarray): HWC image, uint8 in [0, 255] or float in [0, 1].
        y_only (bool): Return only the Y channel (HW).
        channel_index (list[int]): Positions of R, G, B in the last axis.

    Returns:
        ndarray: YCbCr (HWC) or Y (HW) image with the input's type and range.
    """
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'expected an HxWx3 colour image, got shape {img.shape}')
    in_type = img.dtype
    unit = _to_unit_float(img)
    weights = _RGB_TO_YCBCR[:, channel_index]
    if y_only:
        out = np.dot(unit, weights[0]) + _YCBCR_OFFSET[0]
    else:
        out = np.dot(unit, weights.T) + _YCBCR_OFFSET
    return _from_ycbcr_scale(out, in_type)


def rgb2ycbcr(img, y_only=False):
    """Converts an RGB image to YCbCr like MATLAB's ``rgb2ycbcr``.

    Args:
        img (ndarray): HWC RGB image, uint8 in [0, 255] or float32/float64 in [0, 1].
        y_only (bool): Return only the Y channel. Default: False.

    Returns:
        ndarray: YCbCr image (HWC) or Y image (HW), same type and range convention as the input (uint8 results are
        rounded).
    """
    return _rgb_order_to_ycbcr(img, y_only, [0, 1, 2])


def bgr2ycbcr(img, y_only=False):
    """Converts a BGR image (OpenCV order) to YCbCr like MATLAB's ``rgb2ycbcr``.

    Args:
        img (ndarray): HWC BGR image, uint8 in [0, 255] or float32/float64 in [0, 1].
        y_only (bool): Return only the Y channel. Default: False.

    Returns:
        ndarray: YCbCr image (HWC, channels Y, Cb, Cr) or Y image (HW), same type and range convention as the input
        (uint8 results are rounded).
    """
    return _rgb_order_to_ycbcr(img, y_only, [2, 1, 0])


def rgb2ycbcr_pt(img, y_only=False):
    """Converts a batch of RGB images to YCbCr like MATLAB's ``rgb2ycbcr``.

    Args:
        img (Tensor): (N, 3, H, W) RGB images in [0, 1], floating point.
        y_only (bool): Return only the Y channel. Default: False.

    Returns:
        Tensor: (N, 3, H, W) YCbCr or (N, 1, H, W) Y images in [0, 1], dtype and device of the input.
    """
    if img.dim() != 4 or img.size(1) != 3:
        raise ValueError(f'expected an (N, 3, H, W) RGB tensor, got shape {tuple(img.shape)}')
    weights = torch.as_tensor(_RGB_TO_YCBCR, dtype=img.dtype, device=img.device)
    offset = torch.as_tensor(_YCBCR_OFFSET, dtype=img.dtype, device=img.device)
    if y_only:
        weights, offset = weights[:1], offset[:1]
    out = torch.einsum('nchw,kc->nkhw', img, weights) + offset.view(1, -1, 1, 1)
    return out / 255.
