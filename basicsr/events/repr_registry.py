"""Representations by name, so option files can say ``event_repr: {type: scer, num_bins: 6}``."""
import copy

import numpy as np

from basicsr.events.representations import check_num_bins, normalize_maxabs, normalize_nonzero, scer, voxel_grid
from basicsr.events.stream import EventFormatError, EventStream
from basicsr.utils.registry import Registry

__all__ = ['EVENT_REPR_REGISTRY', 'build_representation', 'get_normalizer', 'VoxelGridRepr', 'SCERRepr']

EVENT_REPR_REGISTRY = Registry('event_repr')

_NORMALIZERS = {None: None, 'none': None, 'maxabs': normalize_maxabs, 'nonzero': normalize_nonzero}


def get_normalizer(name):
    """Returns the normalisation function of an ``event_repr.normalize`` value.

    Args:
        name (str | None): ``'maxabs'``, ``'nonzero'``, ``'none'`` or None.

    Returns:
        callable | None: ``rep -> normalised rep``, or None for no normalisation.

    Raises:
        EventFormatError: For an unknown name.
    """
    if name not in _NORMALIZERS:
        raise EventFormatError(f'event_repr.normalize must be one of {sorted(k for k in _NORMALIZERS if k)} or '
                               f'null, got {name!r}.')
    return _NORMALIZERS[name]


class _Representation:
    """Shared call logic: events in (stream or arrays), float32 (C, H, W) or (H, W, C) out."""

    def __init__(self, num_bins, normalize=None, layout='chw'):
        self.normalize = get_normalizer(normalize)
        if layout not in ('chw', 'hwc'):
            raise EventFormatError(f"event_repr.layout must be 'chw' or 'hwc', got {layout!r}.")
        self.num_bins = num_bins
        self.layout = layout

    def _compute(self, x, y, t, p, height, width, t_range):
        raise NotImplementedError

    def __call__(self, events, height=None, width=None, t_range=None):
        """Computes the representation.

        Args:
            events (EventStream | tuple): A stream, or ``(x, y, t, p)`` arrays (then ``height``/``width`` needed).
            height (int | None): Sensor height (default: the stream's). Default: None.
            width (int | None): Sensor width (default: the stream's). Default: None.
            t_range (tuple | None): Time window, for representations that take one. Default: None.

        Returns:
            np.ndarray: float32 (C, H, W), or (H, W, C) with ``layout='hwc'``.
        """
        if isinstance(events, EventStream):
            x, y, t, p = events.arrays()
            height = events.height if height is None else height
            width = events.width if width is None else width
        else:
            x, y, t, p = events
            if height is None or width is None:
                raise EventFormatError('event_repr: height and width are required with raw (x, y, t, p) arrays.')
        rep = self._compute(x, y, t, p, height, width, t_range)
        if self.normalize is not None:
            rep = self.normalize(rep)
        if self.layout == 'hwc':
            rep = np.ascontiguousarray(rep.transpose(1, 2, 0))
        return rep

    @property
    def num_channels(self):
        """int: Channels of the output."""
        return self.num_bins


@EVENT_REPR_REGISTRY.register(name='voxel_grid')
class VoxelGridRepr(_Representation):
    """Voxel grid (:func:`voxel_grid`) as a configured callable.

    Args:
        num_bins (int): Time bins. Default: 5.
        t_range (tuple | None): Fixed window (e.g. ``[0, 0.1]``); None spans first to last event. A ``t_range``
            given at call time wins. Default: None.
        normalize (str | None): ``'nonzero'``, ``'maxabs'`` or None. Default: None.
        layout (str): ``'chw'`` or ``'hwc'``. Default: ``'chw'``.
    """

    def __init__(self, num_bins=5, t_range=None, normalize=None, layout='chw'):
        super().__init__(check_num_bins(num_bins), normalize, layout)
        self.t_range = None if t_range is None else tuple(t_range)

    def _compute(self, x, y, t, p, height, width, t_range):
        return voxel_grid(x, y, t, p, self.num_bins, height, width, t_range=t_range or self.t_range)


@EVENT_REPR_REGISTRY.register(name='scer')
class SCERRepr(_Representation):
    """SCER (:func:`scer`) as a configured callable (``t_range`` at call time is ignored: SCER spans the events).

    Args:
        num_bins (int): Even channel count. Default: 6.
        keep_middle (bool): Add the zero middle channel. Default: False.
        closed_end (bool): Count events at the last timestamp. Default: True.
        normalize (str | None): ``'maxabs'``, ``'nonzero'`` or None. Default: None.
        layout (str): ``'chw'`` or ``'hwc'``. Default: ``'chw'``.
    """

    def __init__(self, num_bins=6, keep_middle=False, closed_end=True, normalize=None, layout='chw'):
        super().__init__(check_num_bins(num_bins, even=True), normalize, layout)
        self.keep_middle = bool(keep_middle)
        self.closed_end = bool(closed_end)

    @property
    def num_channels(self):
        """int: Channels of the output (``num_bins + 1`` with ``keep_middle``)."""
        return self.num_bins + int(self.keep_middle)

    def _compute(self, x, y, t, p, height, width, t_range):
        return scer(x, y, t, p, self.num_bins, height, width, keep_middle=self.keep_middle,
                    closed_end=self.closed_end)


EVENT_REPR_REGISTRY.register(VoxelGridRepr, name='voxel')
EVENT_REPR_REGISTRY.register(SCERRepr, name='SCER')


def build_representation(opt):
    """Builds a representation callable from an option dict (never mutated).

    Args:
        opt (dict): ``{'type': 'scer' | 'voxel_grid' | 'voxel' | 'SCER', **kwargs}``.

    Returns:
        callable: ``rep(events, height=None, width=None, t_range=None) -> np.ndarray``.
    """
    if not isinstance(opt, dict) or 'type' not in opt:
        raise EventFormatError(f'event_repr must be a dict with a "type" key, got {opt!r}.')
    opt = copy.deepcopy(opt)
    cls = EVENT_REPR_REGISTRY.get(opt.pop('type'))
    try:
        return cls(**opt)
    except TypeError as err:
        raise EventFormatError(f'event_repr {cls.__name__}: {err}.') from err
