# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/data/transforms.py (Apache-2.0)
"""Paired spatial transforms applied identically to any number of aligned arrays.

Every function here works on numpy arrays and torch tensors whose **last two axes are H and W** (CHW or HW
layout): a blurry frame, its sharp target, an event representation and an event mask are cropped, flipped and
transposed with the same random draw.

Time-reversal consistency: these transforms are purely spatial. They never touch the leading (channel) axis, so
the temporal bins of an event representation keep their order and their polarity. A spatial flip or transpose of
frame and events together is a valid sample of the same physical scene and needs no change of the time axis;
reversing time would instead require reversing the bin order *and* negating polarities, which is not done here.
"""
import random

import numpy as np
import torch

__all__ = ['paired_random_crop', 'augment']


def _randint(rng, low, high):
    """Inclusive random integer in [low, high] from ``rng`` (None = Python's global ``random``)."""
    if rng is None:
        return random.randint(low, high)
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high + 1))
    if isinstance(rng, np.random.RandomState):
        return int(rng.randint(low, high + 1))
    return rng.randint(low, high)


def _random(rng):
    """Uniform float in [0, 1) from ``rng`` (None = Python's global ``random``)."""
    if rng is None:
        return random.random()
    return float(rng.random()) if isinstance(rng, np.random.Generator) else rng.random()


def _as_list(arrays):
    if isinstance(arrays, (list, tuple)):
        return list(arrays), False
    return [arrays], True


def _hw(arr, index):
    if not (isinstance(arr, np.ndarray) or torch.is_tensor(arr)):
        raise TypeError(f'array {index}: numpy array or torch tensor expected, got {type(arr).__name__}')
    if arr.ndim < 2:
        raise ValueError(f'array {index}: needs at least 2 dimensions (..., H, W), got shape {tuple(arr.shape)}')
    return int(arr.shape[-2]), int(arr.shape[-1])


def paired_random_crop(arrays, crop_size, scales=None, rng=None):
    """Crops aligned arrays at the same (scaled) random window.

    Args:
        arrays (np.ndarray | torch.Tensor | list): Array(s) with H, W as the last two axes.
        crop_size (int | tuple[int, int]): Crop (h, w) in units of scale 1.
        scales (list[int] | None): Integer resolution factor of each array relative to scale 1 (e.g. ``[1, 3]``
            for events at 1x and an RGB frame at 3x); the window of array i is ``scales[i]`` times larger.
            Default: None (all 1).
        rng (random.Random | np.random.Generator | np.random.RandomState | None): Random source; None uses
            Python's global ``random`` (seeded per worker by the data loader). Default: None.

    Returns:
        list | np.ndarray | torch.Tensor: Cropped array(s), same container as the input.

    Raises:
        ValueError: If the arrays are not aligned (naming the array index and sizes) or the crop does not fit.
    """
    arrays, single = _as_list(arrays)
    if not arrays:
        raise ValueError('paired_random_crop: no arrays given')
    crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, (int, np.integer)) else tuple(crop_size)
    crop_h, crop_w = int(crop_h), int(crop_w)
    if crop_h <= 0 or crop_w <= 0:
        raise ValueError(f'paired_random_crop: crop_size must be positive, got {crop_size}')
    scales = [1] * len(arrays) if scales is None else list(scales)
    if len(scales) != len(arrays):
        raise ValueError(f'paired_random_crop: {len(arrays)} arrays but {len(scales)} scales')
    sizes = [_hw(arr, i) for i, arr in enumerate(arrays)]
    base = []
    for i, ((h, w), s) in enumerate(zip(sizes, scales)):
        if int(s) != s or s <= 0 or h % s or w % s:
            raise ValueError(f'paired_random_crop: array {i} of size {h}x{w} is not divisible by its scale {s}')
        base.append((h // int(s), w // int(s)))
    if any(b != base[0] for b in base):
        desc = ', '.join(f'array {i}: {h}x{w} (scale {s})' for i, ((h, w), s) in enumerate(zip(sizes, scales)))
        raise ValueError(f'paired_random_crop: arrays are not aligned; {desc}')
    base_h, base_w = base[0]
    if crop_h > base_h or crop_w > base_w:
        raise ValueError(f'paired_random_crop: crop {crop_h}x{crop_w} does not fit array 0 of size '
                         f'{sizes[0][0]}x{sizes[0][1]} (scale {scales[0]}, {base_h}x{base_w} at scale 1)')
    top = _randint(rng, 0, base_h - crop_h)
    left = _randint(rng, 0, base_w - crop_w)
    out = []
    for arr, s in zip(arrays, scales):
        s = int(s)
        out.append(arr[..., top * s:(top + crop_h) * s, left * s:(left + crop_w) * s])
    return out[0] if single else out


def _apply(arr, hflip, vflip, transpose):
    if torch.is_tensor(arr):
        if hflip:
            arr = arr.flip(-1)
        if vflip:
            arr = arr.flip(-2)
        if transpose:
            arr = arr.transpose(-1, -2)
        return arr.contiguous()
    if hflip:
        arr = arr[..., ::-1]
    if vflip:
        arr = arr[..., ::-1, :]
    if transpose:
        arr = np.swapaxes(arr, -1, -2)
    return np.ascontiguousarray(arr)


def augment(arrays, hflip=True, vflip=True, rotation=True, rng=None, flip_mode='independent', return_status=False):
    """Random flips and transpose applied identically to aligned arrays.

    With ``flip_mode='independent'`` the horizontal flip (W axis), the vertical flip (H axis) and the transpose
    of H and W (together: the 90-degree rotation family) are each drawn with probability 0.5 when enabled.
    ``flip_mode='joint'`` reproduces EFNet's ``RandomFlip``: one draw flips both axes together (a 180-degree
    rotation) with probability 0.5 when ``hflip`` or ``vflip`` is enabled; ``rotation`` is still honoured.

    Args:
        arrays (np.ndarray | torch.Tensor | list): Array(s) with H, W as the last two axes.
        hflip (bool): Enable horizontal flips. Default: True.
        vflip (bool): Enable vertical flips. Default: True.
        rotation (bool): Enable the H/W transpose. Default: True.
        rng (random.Random | np.random.Generator | np.random.RandomState | None): Random source; None uses
            Python's global ``random``. Default: None.
        flip_mode (str): ``'independent'`` or ``'joint'``. Default: ``'independent'``.
        return_status (bool): Also return ``(hflip, vflip, transpose)`` as drawn. Default: False.

    Returns:
        list | np.ndarray | torch.Tensor: Transformed array(s), same container as the input (plus the status
        tuple when ``return_status``).

    Raises:
        ValueError: For an unknown ``flip_mode`` or arrays whose H:W aspect ratios differ (naming the array index
            and sizes). Arrays at different integer scales (1x events, 3x RGB) are allowed.
    """
    arrays, single = _as_list(arrays)
    sizes = [_hw(arr, i) for i, arr in enumerate(arrays)]
    for i, (h, w) in enumerate(sizes):
        if h * sizes[0][1] != w * sizes[0][0]:
            raise ValueError(f'augment: array {i} has size {h}x{w} but array 0 has {sizes[0][0]}x{sizes[0][1]}; '
                             'arrays must be aligned (same size, or the same aspect ratio at another scale)')
    if flip_mode == 'independent':
        do_h = hflip and _random(rng) < 0.5
        do_v = vflip and _random(rng) < 0.5
    elif flip_mode == 'joint':
        do_h = do_v = (hflip or vflip) and _random(rng) < 0.5
    else:
        raise ValueError(f"augment: flip_mode must be 'independent' or 'joint', got {flip_mode!r}")
    do_t = rotation and _random(rng) < 0.5
    out = [_apply(arr, do_h, do_v, do_t) for arr in arrays]
    result = out[0] if single else out
    return (result, (bool(do_h), bool(do_v), bool(do_t))) if return_status else result
