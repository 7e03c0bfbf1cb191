"""One frame through a method: its declared inputs, the network call, the pictures of the result.

The network is only called as ``net(**inputs)`` through :mod:`basicsr.models.inference` (padding to the declared
size multiple, or tiles), so any callable with the network's ``io`` can stand in for it. A network that declares
the raw-event hook ``deblur_window`` (see :mod:`basicsr.archs.method_spec`) is given its declared inputs and the
window's events instead.
"""
import warnings

import numpy as np
import torch

from basicsr.archs.method_spec import build_image_inputs
from basicsr.events.event_input import build_event_input
from basicsr.events.visualize import event_frame
from basicsr.models.inference import forward_padded, forward_tiled
from basicsr.utils.img_util import make_panel, tensor2img, to_float_image
from basicsr.utils.inference_errors import InferenceError, InferenceWarning

__all__ = ['frame_inputs', 'network_inputs', 'run_network', 'deblur_window', 'needs_aps', 'image_scale']


def needs_aps(spec):
    """bool: The method takes the gray APS frame besides the image to deblur (an image of another camera)."""
    return any(inp.source == 'aps' for inp in spec.images)


def image_scale(spec):
    """int: Size of the image to deblur relative to the event sensor (1: the same pixel grid)."""
    return max([inp.scale for inp in spec.images if inp.source == 'image'] or [1])


def frame_inputs(spec, image, window, t_start, t_end, aps=None):
    """Builds a method's inputs for one frame as its declaration says.

    Args:
        spec (MethodSpec): The method's declaration.
        image (np.ndarray): Frame (H, W[, C]) as read: BGR colour or gray, uint8/uint16/float in [0, 1].
        window (EventStream): The events of the exposure window.
        t_start (float): Exposure start in seconds.
        t_end (float): Exposure end in seconds.
        aps (np.ndarray | None): Gray APS frame, for declarations with an ``aps`` input. Default: None.

    Returns:
        tuple[dict, np.ndarray | None]: Batch ``key -> float32 array (C, H, W)`` and the un-normalised event
        representation (None for a method without events).

    Raises:
        InferenceError: For a missing APS frame or a channel count that cannot be converted.
    """
    try:
        batch = build_image_inputs(spec, image, aps)
    except ValueError as err:
        raise InferenceError(str(err)) from None
    raw = None
    if spec.events is not None:
        arrays, raw = build_event_input(spec.events, window.x, window.y, window.t, window.p, t_start, t_end,
                                        window.height, window.width)
        batch.update(arrays)
    return batch, raw


def network_inputs(net, batch, device):
    """Maps a batch to the network's keyword arguments (``net.io['inputs']``) as (1, C, H, W) tensors.

    Args:
        net (torch.nn.Module): The network.
        batch (dict): Batch key -> (C, H, W) array, or None.
        device (torch.device | str): Target device.

    Returns:
        dict: Forward argument -> tensor or None.
    """
    inputs = {}
    for arg, key in net.io['inputs'].items():
        value = batch.get(key)
        inputs[arg] = None if value is None else torch.from_numpy(np.ascontiguousarray(value))[None].to(device)
    return inputs


def run_network(net, inputs, multiple, tile=None):
    """Calls ``net(**inputs)`` padded to the size multiple (or in tiles) and returns its result output.

    Args:
        net (torch.nn.Module): The network (anything with ``io`` that takes the inputs as keywords).
        inputs (dict): Forward argument -> (N, C, H, W) tensor or None.
        multiple (int | tuple[int, int]): Size multiple of the declaration.
        tile (int | None): Tile size; None runs the whole padded frame. Default: None.

    Returns:
        Tensor: The output named ``net.io['result']``.
    """
    if tile:
        outputs = forward_tiled(net, inputs, int(tile), multiple=multiple)
    else:
        outputs = forward_padded(net, inputs, multiple)
    if torch.is_tensor(outputs):
        outputs = [outputs]
    return outputs[net.io['outputs'].index(net.io['result'])]


def _device_of(net, device):
    if device is not None:
        return torch.device(device)
    parameters = getattr(net, 'parameters', None)  # a stand-in for the network may have none
    param = next(parameters(), None) if parameters is not None else None
    return param.device if param is not None else torch.device('cpu')


def _warn_sparse(window, name, min_pixels):
    """Warns when fewer than ``min_pixels`` pixels have events in the window."""
    pixels = np.unique(window.y.astype(np.int64) * window.width + window.x).size
    if pixels < min_pixels:
        warnings.warn(f'{name}: only {len(window)} events on {pixels} pixels in the exposure (fewer than '
                      f'{min_pixels} pixels): almost nothing to deblur with', InferenceWarning, stacklevel=3)


def _warn_unchanged(image, sharp, name, method):
    """Warns when the written result equals the input image."""
    before = np.round(np.clip(to_float_image(image), 0, 1) * 255).astype(np.uint8)
    before = before[:, :, 0] if before.shape[2] == 1 else before[:, :, :3]
    if before.shape == sharp.shape and np.array_equal(before, sharp):
        warnings.warn(f'{method} returned {name} unchanged (the output equals the blurry input)', InferenceWarning,
                      stacklevel=3)


def deblur_window(spec, net, image, window, t_start, t_end, aps=None, device=None, tile=None, use_mask=True,
                  record=None, name='image'):
    """Deblurs one frame from the (denoised) events of its checked exposure window.

    Args:
        spec (MethodSpec): The method's declaration.
        net (torch.nn.Module): The network.
        image (np.ndarray): Blurry frame as read.
        window (EventStream): Events of the exposure window.
        t_start (float): Exposure start (s).
        t_end (float): Exposure end (s).
        aps (np.ndarray | None): Gray APS frame, for declarations with an ``aps`` input. Default: None.
        device (str | torch.device | None): Device; None uses the network's. Default: None.
        tile (int | None): Tile size for tiled inference. Default: None.
        use_mask (bool): Feed the event mask, when the declaration has one. Default: True.
        record (object | None): What the network decided for this frame before the run (``plan_frames``), e.g.
            EDI's threshold. Default: None.
        name (str): Named in warnings. Default: ``'image'``.

    Returns:
        dict: See :func:`basicsr.deblur.run.deblur`.
    """
    device = _device_of(net, device)
    batch, rep = frame_inputs(spec, image, window, t_start, t_end, aps)
    _warn_sparse(window, name, getattr(net, 'min_pixels', 16))
    raw_path = getattr(net, 'deblur_window', None)
    if raw_path is not None:
        result = torch.from_numpy(raw_path(batch, window, t_start, t_end, record))
    else:
        if not use_mask and spec.events is not None and spec.events.mask_key is not None:
            batch[spec.events.mask_key] = None
        inputs = network_inputs(net, batch, device)
        with torch.inference_mode():
            result = run_network(net, inputs, spec.size_multiple, tile)[0].float().cpu()
    label = record.label() if record is not None else spec.name
    sharp = tensor2img(result, rgb2bgr=spec.output_rgb)
    _warn_unchanged(image, sharp, name, spec.name)
    picture = np.ascontiguousarray(event_frame(window.x, window.y, window.p, window.height, window.width)[:, :, ::-1])
    return {'sharp': sharp, 'sharp_float': result.numpy(), 'events': picture, 'representation': rep,
            'panel': make_panel([image, picture, sharp], ['blurry', 'events', label]), 'label': label,
            'record': record, 'threshold': record}
