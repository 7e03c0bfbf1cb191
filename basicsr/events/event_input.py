"""The event input of a method: which registered representation, under which batch keys, and how it is built.

A network declares its event input as an :class:`EventInputSpec` (see ``basicsr.archs.method_spec``);
:func:`build_event_input` turns the events of one exposure window into the network's event arrays.
"""
from dataclasses import dataclass

import numpy as np

from basicsr.events.repr_registry import build_representation, get_normalizer
from basicsr.events.representations import event_mask
from basicsr.events.stream import EventFormatError

__all__ = ['EventInputSpec', 'build_event_input']


@dataclass(frozen=True)
class EventInputSpec:
    """How a method's event input is computed from raw events.

    Args:
        representation (Mapping): Registered representation with its parameters, in the form of the ``event_repr``
            option, e.g. ``{'type': 'scer', 'num_bins': 6, 'normalize': 'maxabs'}`` (copied; treat as read-only,
            :attr:`event_repr` gives a copy to modify). ``normalize`` is applied after the mask is taken from the
            un-normalised representation.
        key (str): Batch key receiving the (normalised) representation. Default: ``'voxel'``.
        mask_key (str | None): Batch key receiving the event mask of the un-normalised representation
            (:func:`basicsr.events.event_mask`, (1, H, W) float32 in {0, 1}); None for no mask. Default: None.
        fixed_window (bool): The representation spans the exposure window ``[t_start, t_end]`` (voxel grid of the
            low-light network); False lets it span the window's events (SCER). Default: False.
    """

    representation: dict
    key: str = 'voxel'
    mask_key: str = None
    fixed_window: bool = False

    def __post_init__(self):
        rep = dict(self.representation)
        if 'type' not in rep:
            raise EventFormatError(f'EventInputSpec: representation needs a "type" key, got {rep!r}')
        get_normalizer(rep.get('normalize'))
        object.__setattr__(self, 'representation', rep)

    def __hash__(self):
        return hash((tuple(sorted((k, repr(v)) for k, v in self.representation.items())), self.key, self.mask_key,
                     self.fixed_window))

    @property
    def event_repr(self):
        """dict: The representation as a mutable ``event_repr`` option (a copy), normalisation included."""
        return dict(self.representation)

    @property
    def normalize(self):
        """str | None: The normalisation applied after the mask (``'maxabs'``, ``'nonzero'`` or None)."""
        return self.representation.get('normalize')

    @property
    def num_channels(self):
        """int: Channels of the representation."""
        return self.build_raw().num_channels

    def build_raw(self):
        """Builds the representation callable without its normalisation.

        Returns:
            callable: ``rep(events, height, width, t_range=None) -> np.ndarray`` (see
            :func:`basicsr.events.build_representation`).
        """
        return build_representation({k: v for k, v in self.representation.items() if k != 'normalize'})


def build_event_input(spec, x, y, t, p, t_start, t_end, height, width):
    """Builds a method's event arrays from the events of one exposure window.

    Args:
        spec (EventInputSpec): The method's event input (``method_spec(...).events``).
        x (np.ndarray): (N,) pixel columns of the window's events.
        y (np.ndarray): (N,) pixel rows.
        t (np.ndarray): (N,) sorted seconds.
        p (np.ndarray): (N,) polarities.
        t_start (float): Exposure start in seconds (used when ``spec.fixed_window``).
        t_end (float): Exposure end in seconds (used when ``spec.fixed_window``).
        height (int): Sensor height.
        width (int): Sensor width.

    Returns:
        tuple[dict, np.ndarray]: ``{spec.key: representation (C, H, W)[, spec.mask_key: mask (1, H, W)]}`` as
        float32 arrays, and the un-normalised representation.
    """
    if not isinstance(spec, EventInputSpec):
        raise TypeError(f'build_event_input: spec must be an EventInputSpec, got {type(spec).__name__}')
    rep = spec.build_raw()
    t_range = (t_start, t_end) if spec.fixed_window else None
    raw = rep((x, y, t, p), height, width, t_range=t_range)
    normalize = get_normalizer(spec.normalize)
    arrays = {spec.key: raw if normalize is None else normalize(raw)}
    if spec.mask_key is not None:
        arrays[spec.mask_key] = event_mask(raw)[None].astype(np.float32)
    return arrays, raw
