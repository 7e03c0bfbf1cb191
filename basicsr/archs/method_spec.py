"""What inference needs to know about a network, declared by the network's class beside its ``io``.

A registered network class that can deblur recordings declares (all class-level):

- ``inference_spec(options) -> MethodSpec`` (classmethod): its event input (a registered representation with its
  parameters, see :class:`basicsr.events.event_input.EventInputSpec`), its image inputs and colour handling, its
  size multiple, for the constructor ``options`` (every argument present, defaults filled in);
- ``checkpoint_keys``: top-level state-dict names that identify its checkpoints (empty: no parameters);
- ``options_from_state_dict(state) -> dict`` (classmethod, when it has parameters): the constructor options the
  weights fix, read from the shapes;
- optionally ``options_from_config(config) -> dict`` (classmethod): options read from a ``config`` stored beside
  the weights, and ``checkpoint_help``: a sentence added to checkpoint-loading errors.

A network keeps the constructor arguments its declaration reads as attributes of the same name (EFNet's
``ev_chn``), so :func:`spec_of` finds the declaration of a built network. Inference (:mod:`basicsr.deblur`) calls a
network only as ``net(**inputs)`` through :mod:`basicsr.models.inference`, unless it declares the optional hooks
of a method that decides per run and works on raw events (EDI):

- ``inference_denoise``: event-filter options (:func:`basicsr.events.denoise.denoise_events`) applied when the user
  names none;
- ``plan_frames(names, load_frame, mode, window) -> list[record]``: a decision per frame taken before any frame is
  deblurred (EDI: its contrast threshold); ``load_frame(k)`` gives ``(batch, events, t_start, t_end)``;
- ``deblur_window(batch, events, t_start, t_end, record) -> (C, H, W) float array``: the frame from its declared
  inputs and raw events, in place of the forward;
- ``last_records() -> list[record] | None``: the records of the last forward, collected by validation;
- ``dataset_notice``: a line logged once per validated dataset (``{dataset}`` is replaced by its name);
- ``metrics_notice(metric_types) -> str``: a line logged once per model about its metric options;
- ``train_defaults``: defaults of ``train`` options its recipes rely on (EFNet: gradient clipping);
- ``returns_input``: the network is the identity by design (no "output equals input" warning).

A *record* says what the network decided for one frame: ``label()`` (panel caption), ``warning(name)`` (message,
``''`` when none), and on its class ``file_name``, ``title``, ``summarize(records)`` and
``write_csv(path, names, records)`` (see :class:`basicsr.archs.edi_threshold.ThresholdChoice`).

:func:`method_spec` and :func:`recognise_checkpoint` look these up through ``ARCH_REGISTRY`` (aliases included),
so code outside ``basicsr/archs`` never names a particular network.
"""
import inspect
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from basicsr.events.event_input import EventInputSpec
from basicsr.utils.option_check import accepted_arguments
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['ImageInput', 'MethodSpec', 'CheckpointMatch', 'network_options', 'method_spec', 'spec_of',
           'recognise_checkpoint', 'checkpoint_options', 'declaring_networks', 'build_image_inputs',
           'check_image_sizes']

IMAGE_SOURCES = ('image', 'aps')


@dataclass(frozen=True)
class ImageInput:
    """One image input of a network.

    Args:
        key (str): Batch key (a value of the network's ``io['inputs']``).
        channels (int | None): 1 (gray; colour converted with OpenCV's BGR->gray, gray kept) or 3 (colour; gray
            replicated); None keeps the image's channels. An alpha channel is always dropped. Default: None.
        source (str): ``'image'``, the frame to deblur, or ``'aps'``, the gray APS frame at the event resolution
            (a second frame, for networks that deblur an image of another camera). Default: ``'image'``.
        rgb (bool): Convert the image from the order it was read in (BGR for OpenCV and event_utils h5 frames) to
            RGB. False feeds it as read, as in training. Default: False.
        scale (int): Size of the image relative to the event sensor (3: exactly 3x in H and W). Default: 1.
    """

    key: str
    channels: int = None
    source: str = 'image'
    rgb: bool = False
    scale: int = 1

    def __post_init__(self):
        if self.channels not in (None, 1, 3):
            raise ValueError(f'ImageInput {self.key!r}: channels must be 1, 3 or None, got {self.channels!r}')
        if self.source not in IMAGE_SOURCES:
            raise ValueError(f'ImageInput {self.key!r}: source must be one of {IMAGE_SOURCES}, got {self.source!r}')
        if self.rgb and self.channels != 3:
            raise ValueError(f'ImageInput {self.key!r}: rgb=True needs channels=3')
        if not isinstance(self.scale, int) or self.scale < 1:
            raise ValueError(f'ImageInput {self.key!r}: scale must be a positive integer, got {self.scale!r}')


@dataclass(frozen=True)
class MethodSpec:
    """What inference needs to feed one configured network and to write its result.

    Args:
        name (str): Registered class name of the network (the canonical name, not an alias).
        events (EventInputSpec | None): Its event input; None for a network without events.
        images (tuple[ImageInput, ...]): Its image inputs.
        size_multiple (int | tuple[int, int]): H and W (at the event resolution) must be multiples of it; the
            inference wrapper pads and crops back.
        output_rgb (bool): The result is RGB (converted to BGR before writing with OpenCV); False: in the order
            the image was read. Default: False.
        variant (str): Short description of the configuration, e.g. ``'RGB'``; empty for none. Default: ``''``.
        checkpoint_keys (tuple[str, ...]): Top-level state-dict names of its checkpoints; empty for a network
            without parameters (then no checkpoint is loaded). Default: ().
        checkpoint_help (str): Sentence added to errors when its checkpoint cannot be loaded. Default: ``''``.
    """

    name: str
    events: EventInputSpec
    images: tuple
    size_multiple: object
    output_rgb: bool = False
    variant: str = ''
    checkpoint_keys: tuple = ()
    checkpoint_help: str = ''

    def __post_init__(self):
        object.__setattr__(self, 'images', tuple(self.images))
        object.__setattr__(self, 'checkpoint_keys', tuple(self.checkpoint_keys))
        if self.events is not None and not isinstance(self.events, EventInputSpec):
            raise TypeError(f'MethodSpec {self.name}: events must be an EventInputSpec or None')
        keys = [i.key for i in self.images]
        if self.events is not None:
            keys += [k for k in (self.events.key, self.events.mask_key) if k is not None]
        if len(set(keys)) != len(keys):
            raise ValueError(f'MethodSpec {self.name}: batch keys must be distinct, got {keys}')

    @property
    def needs_checkpoint(self):
        """bool: The network has parameters, so inference loads a checkpoint."""
        return bool(self.checkpoint_keys)

    @property
    def input_keys(self):
        """tuple[str, ...]: Every batch key the spec fills (images, events, mask)."""
        keys = [i.key for i in self.images]
        if self.events is not None:
            keys += [k for k in (self.events.key, self.events.mask_key) if k is not None]
        return tuple(keys)

    @property
    def description(self):
        """str: ``name`` with the variant, e.g. ``'LowLightEventDeblurNet (RGB)'``."""
        return f'{self.name} ({self.variant})' if self.variant else self.name


class CheckpointMatch(NamedTuple):
    """A recognised checkpoint: the network's registered name and the constructor options its weights fix."""

    name: str
    options: dict


def network_options(cls, options=None):
    """The complete constructor options of a network: ``options`` with the constructor's defaults filled in.

    Args:
        cls (type): Network class.
        options (dict | None): Options as in ``network_g`` (a ``type`` entry is ignored). Default: None.

    Returns:
        dict: Every constructor argument by name.

    Raises:
        ValueError: For an option the constructor does not take.
    """
    opts = {k: v for k, v in (options or {}).items() if k != 'type'}
    accepted, _ = accepted_arguments(cls)
    unknown = sorted(set(opts) - set(accepted))
    if unknown:
        raise ValueError(f'{cls.__name__} takes no option(s) {unknown}; expected some of {sorted(accepted)}')
    return {name: opts.get(name, default) for name, default in accepted.items()
            if name in opts or default is not inspect.Parameter.empty}


def method_spec(name, options=None):
    """The inference declaration of a registered network for given constructor options.

    Args:
        name (str): Registered name or alias (e.g. ``'DefaultModel'``), as ``ARCH_REGISTRY.get`` takes it.
        options (dict | None): Constructor options (``network_g`` without ``type``, or the options read from a
            checkpoint); missing ones take the constructor defaults. Default: None.

    Returns:
        MethodSpec: The declaration.

    Raises:
        KeyError: For an unregistered name (with the closest registered names).
        ValueError: For a network that declares no ``inference_spec``, or an option it does not take.
    """
    cls = ARCH_REGISTRY.get(name)
    declare = getattr(cls, 'inference_spec', None)
    if declare is None:
        raise ValueError(f'network {name!r} ({cls.__name__}) declares no inference_spec; networks usable for '
                         f'inference: {declaring_networks()}')
    return declare(network_options(cls, options))


def spec_of(net, name=None):
    """The inference declaration of a built network, from the constructor arguments it keeps as attributes.

    An object standing in for a network that carries its declaration as ``spec`` (an exported ONNX file run by
    ONNX Runtime, a network wrapped to run under autocast) gives that declaration.

    Args:
        net (torch.nn.Module): A registered network (an instance), or an object standing in for one that keeps
            the same attributes or carries its ``spec``.
        name (str | None): Registered name or alias of the network; None takes the class name of ``net``.
            Default: None.

    Returns:
        MethodSpec: Its declaration; arguments it does not keep take the constructor defaults.

    Raises:
        ValueError: For a network that declares no ``inference_spec``, or a carried ``spec`` of another network.
    """
    carried = getattr(net, 'spec', None)
    if isinstance(carried, MethodSpec):
        if name is not None and ARCH_REGISTRY.get(name).__name__ != carried.name:
            raise ValueError(f'the network is {carried.description}, not {name}')
        return carried
    cls = ARCH_REGISTRY.get(name or type(net).__name__)
    accepted, _ = accepted_arguments(cls)
    kept = {arg: getattr(net, arg) for arg in accepted if arg in vars(net)}
    return method_spec(cls.__name__, kept)


def declaring_networks():
    """Registered canonical network names that declare an ``inference_spec``, sorted.

    Returns:
        list[str]: Class names (aliases left out).
    """
    return sorted({cls.__name__ for _, cls in ARCH_REGISTRY if hasattr(cls, 'inference_spec')})


def recognise_checkpoint(state, config=None):
    """Tells which registered network a state dict belongs to, and the options its shapes fix.

    Every registered class with ``checkpoint_keys`` is scored by how many of them are top-level names of the
    state dict; the best wins if it has at least two of them (or all, when it declares fewer).

    Args:
        state (dict): State dict (``module.`` prefixes already removed).
        config (dict | None): ``config`` stored beside the weights, if any. Default: None.

    Returns:
        CheckpointMatch | None: ``(name, options)`` with the options of :func:`checkpoint_options`, or None for
        an unknown network.
    """
    tops = {k.split('.', 1)[0] for k in state}
    best, best_score = None, 0
    for cls in sorted({cls for _, cls in ARCH_REGISTRY if getattr(cls, 'checkpoint_keys', ())},
                      key=lambda c: c.__name__):
        score = sum(k in tops for k in cls.checkpoint_keys)
        if score > best_score and score >= min(2, len(cls.checkpoint_keys)):
            best, best_score = cls, score
    if best is None:
        return None
    return CheckpointMatch(best.__name__, checkpoint_options(best.__name__, state, config))


def checkpoint_options(name, state, config=None):
    """The constructor options a checkpoint of a given network fixes: from the stored ``config`` (when the class
    reads one), overridden by those read from the weights' shapes.

    Args:
        name (str): Registered name or alias of the network.
        state (dict): Its state dict.
        config (dict | None): ``config`` stored beside the weights, if any. Default: None.

    Returns:
        dict: Constructor options (only those the checkpoint determines).
    """
    cls = ARCH_REGISTRY.get(name)
    from_config = cls.options_from_config(config) if hasattr(cls, 'options_from_config') else {}
    return {**from_config, **cls.options_from_state_dict(state)}


def build_image_inputs(spec, image, aps=None):
    """Builds a network's image inputs from the frame to deblur (and the APS frame) as its declaration says.

    Args:
        spec (MethodSpec): The network's declaration.
        image (np.ndarray): Frame to deblur (H, W[, C]) as read: BGR colour or gray, uint8/uint16/float in [0, 1].
        aps (np.ndarray | None): Gray APS frame at the event resolution, for inputs with ``source='aps'``.
            Default: None.

    Returns:
        dict: Batch key -> float32 (C, H, W) array.

    Raises:
        ValueError: For a missing APS frame or a channel count that cannot be converted.
    """
    from basicsr.utils.img_util import match_channels, to_float_image

    frames = {'image': image, 'aps': aps}
    names = {'image': 'image', 'aps': 'APS frame'}
    batch = {}
    for inp in spec.images:
        frame = frames[inp.source]
        if frame is None:
            raise ValueError(f'{spec.description} also needs the gray APS frame at the event resolution (input '
                             f'{inp.key!r})')
        img = match_channels(to_float_image(frame), inp.channels, names[inp.source])
        if inp.rgb:
            img = img[:, :, ::-1]
        batch[inp.key] = np.ascontiguousarray(img.transpose(2, 0, 1))
    return batch


def check_image_sizes(spec, sensor_shape, image_shape, aps_shape=None, image_name='image', events_name='events'):
    """Checks the frame to deblur (and the APS frame) against the event sensor, as the declaration requires.

    Args:
        spec (MethodSpec): The network's declaration.
        sensor_shape (tuple[int, int]): Event sensor (H, W).
        image_shape (tuple): Shape of the frame to deblur, (H, W[, C]).
        aps_shape (tuple | None): Shape of the APS frame, for declarations with an ``aps`` input. Default: None.
        image_name (str): Named in errors. Default: ``'image'``.
        events_name (str): Named in errors. Default: ``'events'``.

    Raises:
        ValueError: Naming both sizes and the expected one, or the missing APS frame.
    """
    h, w = (int(v) for v in sensor_shape)
    for inp in sorted(spec.images, key=lambda i: i.source == 'aps'):  # the frame to deblur first
        if inp.source == 'aps':
            if aps_shape is None:
                raise ValueError(f'{spec.description} also needs the gray APS frame at the event resolution '
                                 f'({h}x{w})')
            ah, aw = tuple(aps_shape)[:2]
            if (ah, aw) != (h, w):
                raise ValueError(f'APS frame is {ah}x{aw}, but the event sensor of {events_name} is {h}x{w}; '
                                 'expected the same size')
            continue
        ih, iw = tuple(image_shape)[:2]
        s = inp.scale
        if s != 1 and (ih, iw) != (s * h, s * w):
            raise ValueError(f'{image_name}: image is {ih}x{iw}, but {spec.description} needs exactly {s}x the event '
                             f'sensor of {events_name} ({h}x{w}): {s * h}x{s * w}')
        if s == 1 and (ih, iw) != (h, w):
            raise ValueError(f'{image_name}: frame is {ih}x{iw}, but the event sensor of {events_name} is {h}x{w}; '
                             'expected the same size (crop or resize the frame, or give the right event file)')
