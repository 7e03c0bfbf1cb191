"""Inference helpers of the restoration model: pad to a size multiple, crop back, tiled inference.

Pure functions without model state. Inputs are a dict ``name -> tensor (N, C, H, W) or None`` as passed to
``net(**inputs)``. The first non-None input defines the *reference size* (h, w); every other input must have a size
that is an integer multiple k of it per axis (e.g. an RGB image at 3× the event resolution) and is padded and tiled
k times as much. Outputs are mapped back through their own size ratio to the (padded) reference.
"""
import math
from collections import namedtuple
from contextlib import nullcontext

import torch
from torch.nn import functional as F

__all__ = ['PadInfo', 'reference_size', 'input_scales', 'pad_inputs', 'crop_outputs', 'forward_padded',
           'tile_starts', 'forward_tiled']

PadInfo = namedtuple('PadInfo', ['height', 'width', 'padded_height', 'padded_width'])
PadInfo.__doc__ = 'Reference size before (height, width) and after (padded_height, padded_width) padding.'


def _pair(value, name):
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v >= 1 for v in value):
        raise ValueError(f'{name} must be a positive int or a pair (h, w) of positive ints, got {value!r}')
    return value


def _check_inputs(inputs):
    if not isinstance(inputs, dict):
        raise TypeError(f'inputs must be a dict name -> tensor or None, got {type(inputs).__name__}')
    for name, tensor in inputs.items():
        if tensor is None:
            continue
        if not torch.is_tensor(tensor) or tensor.dim() != 4:
            shape = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
            raise ValueError(f'input "{name}" must be a (N, C, H, W) tensor or None, got {shape}')


def reference_size(inputs):
    """Returns the reference size: H, W of the first non-None input.

    Args:
        inputs (dict[str, Tensor | None]): Network inputs.

    Returns:
        tuple[int, int]: (h, w).
    """
    _check_inputs(inputs)
    for tensor in inputs.values():
        if tensor is not None:
            return tuple(tensor.shape[-2:])
    raise ValueError(f'inputs hold no tensor (keys {sorted(inputs)}); at least one must be non-None')


def input_scales(inputs):
    """Returns the integer size ratio (kh, kw) of every non-None input to the reference size.

    Args:
        inputs (dict[str, Tensor | None]): Network inputs.

    Returns:
        dict[str, tuple[int, int]]: Ratio per input name (None inputs are left out).

    Raises:
        ValueError: Naming the input whose H or W is not an integer multiple of the reference size.
    """
    h, w = reference_size(inputs)
    scales = {}
    for name, tensor in inputs.items():
        if tensor is None:
            continue
        th, tw = tensor.shape[-2:]
        if th % h or tw % w:
            raise ValueError(f'input "{name}" has size {th}x{tw}, not an integer multiple of the reference size '
                             f'{h}x{w} (H, W of the first input)')
        scales[name] = (th // h, tw // w)
    return scales


def _pad_tensor(tensor, pad_h, pad_w):
    if pad_h == 0 and pad_w == 0:
        return tensor
    dtype = tensor.dtype
    work = tensor if dtype.is_floating_point else tensor.float()
    h, w = tensor.shape[-2:]
    mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
    out = F.pad(work, (0, pad_w, 0, pad_h), mode=mode)
    return out if out.dtype == dtype else out.to(dtype)


def pad_inputs(inputs, multiple):
    """Pads every input at the bottom and right so the reference size becomes a multiple of ``multiple``.

    An input at k× the reference size is padded by k× the amount. Reflect padding; replicate where a tensor is too
    small to reflect (padding not smaller than its size).

    Args:
        inputs (dict[str, Tensor | None]): Network inputs; None values pass through.
        multiple (int | tuple[int, int]): Required multiple of the reference H and W.

    Returns:
        tuple[dict[str, Tensor | None], PadInfo]: Padded inputs (same keys, same order) and the sizes needed by
        :func:`crop_outputs`.
    """
    mh, mw = _pair(multiple, 'multiple')
    h, w = reference_size(inputs)
    scales = input_scales(inputs)
    pad_h, pad_w = (-h) % mh, (-w) % mw
    padded = {}
    for name, tensor in inputs.items():
        if tensor is None:
            padded[name] = None
        else:
            kh, kw = scales[name]
            padded[name] = _pad_tensor(tensor, pad_h * kh, pad_w * kw)
    return padded, PadInfo(h, w, h + pad_h, w + pad_w)


def _crop_length(out_len, size, padded, name, axis):
    if (out_len * size) % padded:
        raise ValueError(f'output {name} has {axis} {out_len}, not a whole multiple or fraction of the padded '
                         f'reference {axis} {padded}; cannot crop it back')
    return out_len * size // padded


def crop_outputs(outputs, info):
    """Crops outputs back to the unpadded size, each according to its own size ratio to the padded reference.

    Args:
        outputs (Tensor | list[Tensor] | tuple[Tensor]): Network output(s), (N, C, H', W') each.
        info (PadInfo): Returned by :func:`pad_inputs`.

    Returns:
        list[Tensor]: Cropped outputs, in order.
    """
    outputs = [outputs] if torch.is_tensor(outputs) else list(outputs)
    cropped = []
    for index, out in enumerate(outputs):
        if not torch.is_tensor(out) or out.dim() < 2:
            raise ValueError(f'output {index} must be a tensor with H, W as the last two axes, got {type(out)}')
        oh, ow = out.shape[-2:]
        ch = _crop_length(oh, info.height, info.padded_height, index, 'height')
        cw = _crop_length(ow, info.width, info.padded_width, index, 'width')
        cropped.append(out[..., :ch, :cw])
    return cropped


def _grad_context(inference):
    return torch.inference_mode() if inference else nullcontext()


def _use_channels_last(channels_last, net, inputs):
    if channels_last is not None:
        return bool(channels_last)
    if not getattr(net, 'prefers_channels_last', True):
        return False
    return all(t.device.type == 'cpu' for t in inputs.values() if t is not None)


def _to_channels_last(inputs):
    return {k: (t.contiguous(memory_format=torch.channels_last) if t is not None and t.is_floating_point() else t)
            for k, t in inputs.items()}


def forward_padded(net, inputs, multiple, inference=True, channels_last=None):
    """Pads the inputs to ``multiple``, runs ``net(**inputs)`` and crops the outputs back.

    Args:
        net (Callable): The network (called with the inputs as keyword arguments).
        inputs (dict[str, Tensor | None]): Network inputs.
        multiple (int | tuple[int, int]): Size multiple the network needs (its ``size_multiple``).
        inference (bool): Run under ``torch.inference_mode()`` (no autograd bookkeeping; the outputs cannot be used
            in a backward pass). False keeps the caller's grad mode. Default: True.
        channels_last (bool | None): Feed the network ``channels_last`` inputs (convolutions then run in NHWC;
            EFNet on CPU measured 1.1-1.4x faster, outputs equal to ~1e-7). None: on when every input is on the
            CPU, unless the network sets ``prefers_channels_last = False`` (the low-light network, measured no
            faster). The outputs are returned contiguous either way. Default: None.

    Returns:
        list[Tensor]: The outputs cropped back (a single-tensor output gives a one-element list).
    """
    with _grad_context(inference):
        padded, info = pad_inputs(inputs, multiple)
        if _use_channels_last(channels_last, net, padded):
            padded = _to_channels_last(padded)
        return [out.contiguous() for out in crop_outputs(net(**padded), info)]


def tile_starts(length, crop):
    """Start offsets of the tiles along one axis (``spec/efnet.md`` §9).

    ``num = ceil(length / crop)`` tiles with stride ``ceil((length - crop) / (num - 1))``; the last tile is aligned
    to the border. A crop not smaller than the length gives one tile starting at 0.

    Args:
        length (int): Size of the axis.
        crop (int): Tile size along the axis.

    Returns:
        list[int]: Increasing start offsets; the last one is ``length - crop`` when there are several.
    """
    if crop >= length:
        return [0]
    num = math.ceil(length / crop)
    stride = math.ceil((length - crop) / (num - 1))
    starts, pos = [], 0
    while True:
        if pos + crop >= length:
            starts.append(length - crop)
            return starts
        starts.append(pos)
        pos += stride


def _output_scale(out_len, tile_len, index, axis):
    if out_len % tile_len:
        raise ValueError(f'tiled inference: output {index} has tile {axis} {out_len}, not an integer multiple of the '
                         f'input tile {axis} {tile_len}')
    return out_len // tile_len


def forward_tiled(net, inputs, crop_size, multiple=1, max_minibatch=1, inference=True, channels_last=None):
    """Runs the network on overlapping tiles and averages the overlapping predictions.

    Every input (image, events and mask alike) is cut on the same grid, scaled by its size ratio to the reference;
    tiles are padded to ``multiple`` where needed and ``max_minibatch`` tiles are stacked along the batch axis per
    forward. Outputs are placed back through their own size ratio to the tile and averaged where tiles overlap.

    Args:
        net (Callable): The network, called as ``net(**inputs)``; returns a tensor or a list/tuple of tensors.
        inputs (dict[str, Tensor | None]): Network inputs.
        crop_size (int | tuple[int, int]): Tile size (h, w) in reference pixels; clipped to the frame size.
        multiple (int | tuple[int, int]): Size multiple the network needs. Default: 1.
        max_minibatch (int): Tiles per forward pass. Default: 1.
        inference (bool): Run under ``torch.inference_mode()``. Default: True.
        channels_last (bool | None): As in :func:`forward_padded`. Default: None.

    Returns:
        list[Tensor]: Full-size outputs, in the network's output order.
    """
    crop_h, crop_w = _pair(crop_size, 'crop_size')
    if not isinstance(max_minibatch, int) or max_minibatch < 1:
        raise ValueError(f'max_minibatch must be a positive int, got {max_minibatch!r}')
    h, w = reference_size(inputs)
    scales = input_scales(inputs)
    tile_h, tile_w = min(crop_h, h), min(crop_w, w)
    tiles = [(i, j) for i in tile_starts(h, tile_h) for j in tile_starts(w, tile_w)]

    with _grad_context(inference):
        sums, counts, out_scales = None, None, None
        for first in range(0, len(tiles), max_minibatch):
            chunk = tiles[first:first + max_minibatch]
            batch = {}
            for name, tensor in inputs.items():
                if tensor is None:
                    batch[name] = None
                    continue
                kh, kw = scales[name]
                parts = [tensor[..., kh * i:kh * (i + tile_h), kw * j:kw * (j + tile_w)] for i, j in chunk]
                batch[name] = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
            outputs = forward_padded(net, batch, multiple, inference=inference, channels_last=channels_last)
            if sums is None:
                out_scales = [(_output_scale(o.shape[-2], tile_h, k, 'height'),
                               _output_scale(o.shape[-1], tile_w, k, 'width')) for k, o in enumerate(outputs)]
                sums = [o.new_zeros(o.shape[0] // len(chunk), *o.shape[1:-2], h * sh, w * sw)
                        for o, (sh, sw) in zip(outputs, out_scales)]
                counts = [o.new_zeros(h * sh, w * sw) for o, (sh, sw) in zip(outputs, out_scales)]
            for out, acc, count, (sh, sw) in zip(outputs, sums, counts, out_scales):
                per_tile = out.shape[0] // len(chunk)
                for t, (i, j) in enumerate(chunk):
                    rows = slice(sh * i, sh * (i + tile_h))
                    cols = slice(sw * j, sw * (j + tile_w))
                    acc[..., rows, cols] += out[t * per_tile:(t + 1) * per_tile]
                    count[rows, cols] += 1
        return [acc / count for acc, count in zip(sums, counts)]
