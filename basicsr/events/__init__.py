"""Event maths: the canonical stream, readers/writers, representations, augmentation and pictures.

Also a method's event input (:mod:`basicsr.events.event_input`: which registered representation, built from a
window's events) and a recording's frames with their exposure windows (:mod:`basicsr.events.recording`, read by
inference).

This package is the single home of event computations; datasets, scripts and tests import from here. Importing it
loads numpy only (h5py and the optional ``aedat`` package are imported by the readers that need them).
``basicsr.events.edi`` (torch) is used by its full name. Data synthesis (camera motion, blur, the DVS simulator,
low-light noise) lives in :mod:`basicsr.synthesis`, which imports from here, never the reverse; the old names
(``basicsr.events.DVSSimulator``, ``basicsr.events.simulator`` ...) still work for one release with a
DeprecationWarning.
"""
import importlib
import warnings

from basicsr.events.aedat_io import iter_aedat4_events, read_aedat4
from basicsr.events.augment import (add_hot_pixel_events, add_hot_pixels, add_voxel_noise, augment_events,
                                    hflip_events, hflip_rep, reverse_time_events, reverse_time_rep, rot90_events,
                                    rot90_rep, vflip_events, vflip_rep)
from basicsr.events.denoise import background_activity_mask, check_denoise_options, denoise_events, hot_pixel_mask
from basicsr.events.efnet_h5 import EFNetH5Writer, efnet_frame, efnet_mask, write_efnet_h5
from basicsr.events.event_files import EVENT_FILE_FORMATS, read_events, write_events
from basicsr.events.event_input import EventInputSpec, build_event_input
from basicsr.events.h5_io import H5EventReader, read_h5_events, write_event_h5
from basicsr.events.npz_io import (HIGHREV_SIZE, highrev_chunk_paths, read_highrev_chunk, read_highrev_events,
                                   read_voxel_npz, write_highrev_chunk, write_voxel_npz)
from basicsr.events.repr_registry import (EVENT_REPR_REGISTRY, SCERRepr, VoxelGridRepr, build_representation,
                                         get_normalizer)
from basicsr.events.representations import (check_num_bins, event_mask, normalize_maxabs, normalize_nonzero, scer,
                                            voxel_grid)
from basicsr.events.stream import (EventFormatError, EventStream, Frame, check_timestamps, concatenate_streams,
                                   to_canonical, validate_events)
from basicsr.events.text_io import read_npy_events, read_text_events, write_npy_events, write_text_events
from basicsr.events.visualize import (event_frame, event_video_frames, flow_to_color, flow_wheel, representation_strip,
                                      write_event_video)
from basicsr.events.windows import iter_event_chunks, iter_event_windows, slice_windows

__all__ = [
    'EFNetH5Writer', 'efnet_frame', 'efnet_mask', 'write_efnet_h5',
    'EventStream', 'Frame', 'EventFormatError', 'to_canonical', 'validate_events', 'concatenate_streams',
    'check_timestamps',
    'voxel_grid', 'scer', 'event_mask', 'normalize_nonzero', 'normalize_maxabs', 'check_num_bins',
    'EVENT_REPR_REGISTRY', 'build_representation', 'get_normalizer', 'VoxelGridRepr', 'SCERRepr',
    'EventInputSpec', 'build_event_input', 'read_events', 'write_events',
    'EVENT_FILE_FORMATS', 'H5EventReader', 'read_h5_events', 'write_event_h5', 'read_text_events',
    'write_text_events', 'read_npy_events', 'write_npy_events', 'HIGHREV_SIZE', 'highrev_chunk_paths',
    'read_highrev_chunk', 'read_highrev_events', 'write_highrev_chunk', 'read_voxel_npz', 'write_voxel_npz',
    'read_aedat4', 'iter_aedat4_events', 'iter_event_chunks', 'slice_windows', 'iter_event_windows',
    'event_video_frames', 'write_event_video', 'hflip_events',
    'vflip_events', 'rot90_events', 'reverse_time_events', 'hflip_rep', 'vflip_rep', 'rot90_rep', 'reverse_time_rep',
    'add_hot_pixels', 'add_voxel_noise', 'add_hot_pixel_events', 'augment_events', 'event_frame',
    'representation_strip', 'flow_to_color', 'flow_wheel', 'background_activity_mask', 'hot_pixel_mask',
    'denoise_events', 'check_denoise_options'
]

# Names that moved to basicsr.synthesis: name -> new module. Resolved lazily so importing basicsr.events never
# imports basicsr.synthesis (which imports basicsr.events).
_MOVED = {'DVSSimulator': 'basicsr.synthesis.simulator'}


def __getattr__(name):
    """Resolves the names moved to :mod:`basicsr.synthesis`, with a DeprecationWarning naming the new place.

    Args:
        name (str): Attribute looked up on the package.

    Returns:
        The object from its new module.

    Raises:
        AttributeError: For any other name.
    """
    if name not in _MOVED:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    warnings.warn(f'basicsr.events.{name} moved to {_MOVED[name]}.{name}; import it from there '
                  '(the old name goes in the next release)', DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(_MOVED[name]), name)
