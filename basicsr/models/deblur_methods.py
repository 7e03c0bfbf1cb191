"""The deblurring methods usable from ``basicsr/infer.py``: network building, checkpoint recognition, inputs.

Per method, the event representation built from the raw events of the exposure window:

- ``EFNet``: SCER with ``ev_chn`` channels (6; 7 = ``keep_middle``) over the window's events, max-abs normalised on
  the full frame, plus the event mask of the un-normalised SCER (``spec/efnet.md`` §5). The frame is fed in the
  channel order it was read in: BGR for OpenCV-read PNG/JPG and for event_utils h5 frames, as in training.
- ``LowLightEventDeblurNet``: a voxel grid with ``n_ev`` (13) bins spread over the fixed exposure window
  ``[t_start, t_end]``, standardised over its non-zero entries (``spec/lowlight.md`` §9.2-9.3). ``B`` is the gray
  APS frame; ``Bi`` is ``B`` (APS model) or the RGB image at exactly 3x (RGB model, converted BGR->RGB).
  Inputs and output are linear intensities; no gamma is applied.
- ``EDI``: no representation: ``basicsr/infer.py`` gives the raw events of the window to
  :meth:`basicsr.archs.edi_arch.EDI.deblur_events` (exact exposure integral), with a threshold chosen by
  :mod:`basicsr.models.edi_threshold`. :func:`method_batch` builds the raw 6-channel SCER only for the network's
  SCER forward (the dataset path's approximation) and for the returned representation.
"""
import re

import cv2
import numpy as np
import torch

from basicsr.events import event_mask, normalize_maxabs, normalize_nonzero, scer, voxel_grid
from basicsr.models.base_model import CheckpointError, load_checkpoint, select_state_dict
from basicsr.utils.img_util import to_float_image

__all__ = ['METHODS', 'InferenceError', 'InferenceWarning', 'recognise_state_dict', 'options_from_state_dict',
           'load_method', 'method_batch', 'network_inputs', 'check_frame_size', 'canonical_method', 'to_float_image']

METHODS = ('EFNet', 'LowLightEventDeblurNet', 'EDI')

# Key prefixes that identify a checkpoint's network (first component of the state-dict keys).
_SIGNATURES = {
    'EFNet': ('conv_ev1', 'down_path_ev', 'down_path_1', 'sam12'),
    'LowLightEventDeblurNet': ('E_feature_extraction', 'B_edge_feature_extraction', 'Bi_denoise', 'fuse2'),
}
_ALIASES = {'DefaultModel': 'LowLightEventDeblurNet'}


class InferenceError(ValueError):
    """Bad input to inference (file, exposure window, frame size, checkpoint); the message says what was expected."""


class InferenceWarning(UserWarning):
    """Inference ran but a result deserves attention (a frame left unchanged, a frame with almost no events)."""


def canonical_method(name):
    """Returns the method name used in this module (``DefaultModel`` -> ``LowLightEventDeblurNet``).

    Args:
        name (str): Method or network type.

    Returns:
        str: One of :data:`METHODS`.

    Raises:
        InferenceError: For an unknown method.
    """
    name = _ALIASES.get(name, name)
    if name not in METHODS:
        raise InferenceError(f'unknown method {name!r}; expected one of {list(METHODS)}')
    return name


def recognise_state_dict(state):
    """Tells which network a state dict belongs to from its key prefixes.

    Args:
        state (dict): State dict (``module.`` prefixes already removed).

    Returns:
        tuple[str | None, str]: ``(method or None, description)``, e.g. ``('LowLightEventDeblurNet', 'RGB')``.
    """
    tops = {k.split('.', 1)[0] for k in state}
    scores = {name: sum(p in tops for p in sig) for name, sig in _SIGNATURES.items()}
    best = max(scores, key=scores.get)
    if scores[best] < 2:
        return None, 'unknown network'
    if best == 'LowLightEventDeblurNet':
        return best, 'RGB' if 'up' in tops else 'APS'
    return best, ''


def _describe(method, variant):
    return f'{method} ({variant})' if variant else method


def options_from_state_dict(method, state):
    """Reads the constructor options that the weights fix (widths, channels, mode) from their shapes.

    Args:
        method (str): ``'EFNet'`` or ``'LowLightEventDeblurNet'``.
        state (dict): State dict of that network.

    Returns:
        dict: Constructor options (only those the shapes determine).
    """
    opts = {}
    if method == 'EFNet':
        if 'conv_01.weight' in state:
            opts['wf'], opts['in_chn'] = int(state['conv_01.weight'].shape[0]), int(state['conv_01.weight'].shape[1])
        if 'conv_ev1.weight' in state:
            opts['ev_chn'] = int(state['conv_ev1.weight'].shape[1])
        levels = {int(m.group(1)) for k in state for m in [re.match(r'down_path_1\.(\d+)\.', k)] if m}
        if levels:
            opts['depth'] = max(levels) + 1
    elif method == 'LowLightEventDeblurNet':
        if 'fuse2.0.weight' in state:
            opts['init_dim'] = int(state['fuse2.0.weight'].shape[0])
        if 'E_feature_extraction.0.weight' in state:
            opts['n_ev'] = int(state['E_feature_extraction.0.weight'].shape[1])
        if 'out_block.0.weight' in state:
            opts['out_channels'] = int(state['out_block.0.weight'].shape[0])
        opts['rgb'] = any(k.startswith('up.') for k in state)
        if any(k.endswith('running_mean') for k in state):
            opts['norm_type'] = 'batch'
    return opts


def load_method(method, checkpoint=None, net_opt=None, device='cpu', param_key='params'):
    """Builds a method's network and loads its weights (strictly), checking the checkpoint is of that method.

    Options not given in ``net_opt`` but fixed by the weights (EFNet ``wf``, ``in_chn``, ``ev_chn``, ``depth``;
    low-light ``init_dim``, ``n_ev``, ``rgb``, ``out_channels``, and ``grid`` from the ``config`` stored by
    ``scripts/convert_checkpoint.py``) are read from the checkpoint.

    Args:
        method (str): ``'EFNet'``, ``'LowLightEventDeblurNet'`` (alias ``'DefaultModel'``) or ``'EDI'``.
        checkpoint (str | None): ``.pth`` file (``{'params': state_dict}`` or a bare state dict); required for the
            learned methods, refused for EDI (no parameters).
        net_opt (dict | None): Constructor options (``type`` is ignored if equal to the method). Default: None.
        device (str | torch.device): Device of the network. Default: ``'cpu'``.
        param_key (str): Checkpoint entry holding the weights. Default: ``'params'``.

    Returns:
        torch.nn.Module: The network in eval mode on ``device``.

    Raises:
        InferenceError: For a missing checkpoint, one of another method or an unknown network, or weights that do
            not fit the options.
    """
    from basicsr.archs import build_network

    method = canonical_method(method)
    opts = dict(net_opt or {})
    given_type = opts.pop('type', None)
    if given_type is not None and canonical_method(given_type) != method:
        raise InferenceError(f'network options name type {given_type!r} but method {method!r} was requested')
    if method == 'EDI':
        if checkpoint:
            raise InferenceError(f'EDI has no parameters, but checkpoint {checkpoint} was given; drop --checkpoint '
                                 '(or choose the method the checkpoint belongs to)')
        try:
            net = build_network({'type': 'EDI', **opts})
        except (TypeError, ValueError) as err:
            raise InferenceError(f'EDI options {opts}: {err}') from None
        return net.to(device).eval()
    if not checkpoint:
        raise InferenceError(f'method {method} needs a checkpoint (.pth with its trained weights); pass --checkpoint')
    try:
        ckpt = load_checkpoint(checkpoint)
        state = select_state_dict(ckpt, param_key, checkpoint)
    except CheckpointError as err:
        hint = ''
        if method == 'LowLightEventDeblurNet':
            hint = (' The reference low-light checkpoints (final.pth, final_rgb.pth) must be converted first: '
                    'python scripts/convert_checkpoint.py final.pth lowlight_aps.pth')
        raise InferenceError(f'{err}{hint}') from None
    found, variant = recognise_state_dict(state)
    if found is None:
        keys = sorted({k.split('.', 1)[0] for k in state})[:8]
        raise InferenceError(f'checkpoint {checkpoint} does not look like an EFNet or LowLightEventDeblurNet '
                             f'checkpoint (top-level keys {keys}); expected the weights of {method}')
    if found != method:
        raise InferenceError(f'checkpoint {checkpoint} looks like a {_describe(found, variant)} checkpoint, but '
                             f'method {method} was requested; expected {method} weights (keys such as '
                             f'{list(_SIGNATURES[method][:2])}), or choose --method {found}')
    from_ckpt = options_from_state_dict(method, state)
    config = ckpt.get('config') if isinstance(ckpt.get('config'), dict) else {}
    stored_args = (config.get('model') or {}).get('args') if isinstance(config.get('model'), dict) else None
    if method == 'LowLightEventDeblurNet' and isinstance(stored_args, dict):
        from_ckpt = {**{k: v for k, v in stored_args.items() if k == 'grid'}, **from_ckpt}
    if method == 'LowLightEventDeblurNet' and 'rgb' in opts and bool(opts['rgb']) != from_ckpt['rgb']:
        raise InferenceError(f'checkpoint {checkpoint} is a LowLightEventDeblurNet ({variant}) checkpoint, but '
                             f'rgb={opts["rgb"]} was requested; expected rgb={from_ckpt["rgb"]} for these weights')
    merged = {**from_ckpt, **opts}
    try:
        net = build_network({'type': method, **merged})
    except (TypeError, ValueError) as err:
        raise InferenceError(f'cannot build {method} with options {merged}: {err}') from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise InferenceError(f'checkpoint {checkpoint} does not fit {method} with options {merged}: '
                             f'{str(err).splitlines()[0]} ... check the network options') from None
    return net.to(device).eval()


def _channels(img, channels, name):
    """(H, W, C) float image with ``channels`` channels: gray replicated, colour converted to gray, alpha dropped."""
    if img.shape[2] == 4:
        img = img[:, :, :3]
    if img.shape[2] == channels:
        return img
    if channels == 3 and img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if channels == 1 and img.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY)[:, :, None]
    raise InferenceError(f'{name}: image has {img.shape[2]} channels; expected {channels} (or 1/3/4 to convert)')


def _chw(img):
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def check_frame_size(image_shape, sensor_shape, rgb=False, aps_shape=None, image_name='image',
                     events_name='events'):
    """Checks a frame size against the event sensor.

    Args:
        image_shape (tuple): Shape of the image to deblur, (H, W[, C]).
        sensor_shape (tuple[int, int]): Event sensor (H, W).
        rgb (bool): RGB low-light model: the image must be exactly 3x the sensor, plus a gray APS frame at 1x.
            Default: False.
        aps_shape (tuple | None): Shape of the APS frame of the RGB model. Default: None.
        image_name (str): Named in errors. Default: ``'image'``.
        events_name (str): Named in errors. Default: ``'events'``.

    Raises:
        InferenceError: Naming both sizes and the expected one.
    """
    h, w = sensor_shape
    ih, iw = tuple(image_shape)[:2]
    if rgb:
        if (ih, iw) != (3 * h, 3 * w):
            raise InferenceError(f'{image_name}: RGB image is {ih}x{iw}, but the RGB low-light model needs exactly 3x '
                                 f'the event sensor of {events_name} ({h}x{w}): {3 * h}x{3 * w}')
        if aps_shape is None:
            raise InferenceError('the RGB low-light model also needs the gray APS frame at the event resolution '
                                 f'({h}x{w}): pass --aps, or --frame to take it from the event file')
        ah, aw = tuple(aps_shape)[:2]
        if (ah, aw) != (h, w):
            raise InferenceError(f'APS frame is {ah}x{aw}, but the event sensor of {events_name} is {h}x{w}; '
                                 'expected the same size')
    elif (ih, iw) != (h, w):
        raise InferenceError(f'{image_name}: frame is {ih}x{iw}, but the event sensor of {events_name} is {h}x{w}; '
                             'expected the same size (crop or resize the frame, or give the right event file)')


def method_batch(method, net, image, window, t_start, t_end, aps=None):
    """Builds the network's inputs for one frame, keyed by the batch keys of ``net.io['inputs']``.

    Args:
        method (str): Method name.
        net (torch.nn.Module): The network.
        image (np.ndarray): Frame (H, W[, C]) as read: BGR colour or gray, uint8/uint16/float in [0, 1]; the RGB
            image at 3x for the RGB low-light model.
        window (EventStream): The (non-empty) events of the exposure window.
        t_start (float): Exposure start in seconds.
        t_end (float): Exposure end in seconds.
        aps (np.ndarray | None): Gray APS frame for the RGB low-light model. Default: None.

    Returns:
        tuple[dict, np.ndarray]: Batch ``key -> float32 array (C, H, W)`` and the un-normalised representation.
    """
    h, w = window.height, window.width
    ev = (window.x, window.y, window.t, window.p)
    img = to_float_image(image)
    if method == 'EFNet':
        channels = net.ev_chn
        raw = scer(*ev, channels - channels % 2, h, w, keep_middle=bool(channels % 2))
        batch = {'frame': _chw(_channels(img, net.in_chn, 'frame')), 'voxel': normalize_maxabs(raw),
                 'mask': event_mask(raw)[None].astype(np.float32)}
        return batch, raw
    if method == 'EDI':
        raw = scer(*ev, 6, h, w, keep_middle=bool(getattr(net, 'keep_middle', False)))
        return {'frame': _chw(img[:, :, :3] if img.shape[2] == 4 else img), 'voxel': raw}, raw
    raw = voxel_grid(*ev, net.n_ev, h, w, t_range=(t_start, t_end))
    if net.rgb:
        gray = _chw(_channels(to_float_image(aps), 1, 'APS frame'))
        bi = _chw(np.ascontiguousarray(_channels(img, 3, 'RGB image')[:, :, ::-1]))
    else:
        gray = bi = _chw(_channels(img, 1, 'APS frame'))
    return {'E': normalize_nonzero(raw), 'B': gray, 'Bi': bi}, raw


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
