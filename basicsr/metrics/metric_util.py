# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/metrics/metric_util.py (Apache-2.0)
"""Layout, range and colour helpers shared by the image metrics."""
import numpy as np
import torch

from basicsr.utils.color_util import bgr2ycbcr

__all__ = ['reorder_image', 'to_y_channel', 'bgr2ycbcr', 'as_numpy_image', 'default_data_range']


def reorder_image(img, input_order='HWC'):
    """Brings an image to HWC layout; a 2-D image gets a trailing channel axis.

    Args:
        img (ndarray): Image of shape (H, W), (H, W, C) or (C, H, W).
        input_order (str): 'HWC' or 'CHW', the layout of a 3-D ``img``. Default: 'HWC'.

    Returns:
        ndarray: (H, W, C) view of the image.
    """
    if input_order not in ('HWC', 'CHW'):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    if img.ndim == 2:
        return img[..., None]
    if img.ndim != 3:
        raise ValueError(f'expected a 2-D or 3-D image, got shape {img.shape}')
    if input_order == 'CHW':
        return img.transpose(1, 2, 0)
    return img


def to_y_channel(img):
    """Returns the Y channel (BT.601, MATLAB convention) of a BGR image on the [0, 255] scale.

    Args:
        img (ndarray): (H, W, 3) BGR or (H, W, 1) image with values in [0, 255] (any numeric dtype).

    Returns:
        ndarray: float32 (H, W, 1) image in [0, 255], not rounded. One-channel input is returned as float32.
    """
    img = img.astype(np.float32) / 255.
    if img.ndim == 3 and img.shape[2] == 3:
        img = bgr2ycbcr(img, y_only=True)[..., None]
    return img * 255.


def as_numpy_image(img):
    """Turns a (1, C, H, W) or (C, H, W) tensor into an (H, W, C) array; arrays pass through unchanged.

    Lets the metrics be called on network outputs directly (``val.use_image: false``), as the EFNet code allows.

    Args:
        img (ndarray | Tensor): Image array, or image tensor in CHW layout with an optional batch axis of size 1.

    Returns:
        ndarray: The array; tensors come back in HWC layout, on the CPU.
    """
    if isinstance(img, np.ndarray):
        return img
    if not isinstance(img, torch.Tensor):
        raise TypeError(f'expected a numpy array or torch tensor, got {type(img).__name__}')
    if img.dim() == 4:
        if img.size(0) != 1:
            raise ValueError(f'a 4-D image tensor must hold one image, got shape {tuple(img.shape)}')
        img = img[0]
    if img.dim() != 3:
        raise ValueError(f'expected a (C, H, W) image tensor, got shape {tuple(img.shape)}')
    return img.detach().cpu().numpy().transpose(1, 2, 0)


def default_data_range(img):
    """Peak value L of the image's type: 255 for uint8, 1 for floating point (never guessed from the content).

    Args:
        img (ndarray): Image.

    Returns:
        float: 255.0 or 1.0.
    """
    if img.dtype == np.uint8:
        return 255.
    if np.issubdtype(img.dtype, np.floating):
        return 1.
    raise TypeError(f'image dtype must be uint8 (range 255) or floating point (range 1), got {img.dtype}; '
                    'pass data_range explicitly for other types')
