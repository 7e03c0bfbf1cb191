"""HighREV (NTIRE 2025) event chunks: ``event/SEQ_%05d_%02d.npz`` with keys x, y, timestamp, polarity.

In these files **key ``x`` holds the row and key ``y`` the column**; polarity is {0, 1}. The events of one blurry
frame are all its chunks sorted by name, the last chunk dropped (outside the exposure), concatenated.
"""
import glob
import os
import zipfile

import numpy as np

from basicsr.events.stream import EventFormatError, EventStream

__all__ = [
    'HIGHREV_SIZE', 'highrev_chunk_paths', 'read_highrev_chunk', 'read_highrev_events', 'write_highrev_chunk',
    'read_voxel_npz', 'write_voxel_npz'
]

HIGHREV_SIZE = (1224, 1632)
_KEYS = ('x', 'y', 'timestamp', 'polarity')


def _load_chunk(path):
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _KEYS if k not in data.files]
            if missing:
                raise EventFormatError(f'{path}: missing key(s) {missing}; a HighREV event chunk has keys '
                                       f'{list(_KEYS)} (found {sorted(data.files)}).')
            return {k: np.asarray(data[k]).reshape(-1) for k in _KEYS}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise EventFormatError(f'{path}: not a readable .npz event chunk ({err}).') from err


def highrev_chunk_paths(event_dir, stem):
    """Returns the sorted chunk files ``<event_dir>/<stem>_*.npz`` of one blurry frame.

    Args:
        event_dir (str | os.PathLike): The ``event`` folder of a split.
        stem (str): Frame name, e.g. ``'SEQ_00012'``.

    Returns:
        list[str]: Sorted paths (may be empty).
    """
    return sorted(glob.glob(os.path.join(glob.escape(os.fspath(event_dir)), f'{glob.escape(stem)}_*.npz')))


def read_highrev_chunk(path, height=HIGHREV_SIZE[0], width=HIGHREV_SIZE[1], time_scale=1.0, sort=False):
    """Reads one HighREV chunk file (column from key ``y``, row from key ``x``).

    Args:
        path (str | os.PathLike): The ``.npz`` chunk.
        height (int | None): Sensor height. Default: 1224.
        width (int | None): Sensor width. Default: 1632.
        time_scale (float): Multiplier turning ``timestamp`` into seconds (units are undocumented). Default: 1.0.
        sort (bool): Stable-sort unsorted events instead of raising. Default: False.

    Returns:
        EventStream: The events.
    """
    data = _load_chunk(path)
    t = data['timestamp'].astype(np.float64) * time_scale
    return EventStream.from_arrays(data['y'], data['x'], t, data['polarity'], height, width, source=os.fspath(path),
                                   sort=sort)


def read_highrev_events(paths, height=HIGHREV_SIZE[0], width=HIGHREV_SIZE[1], time_scale=1.0, drop_last=True,
                        sort=False):
    """Reads the events of one HighREV blurry frame from its chunk files.

    Args:
        paths (list[str]): Chunk files (sorted here by name).
        height (int | None): Sensor height. Default: 1224.
        width (int | None): Sensor width. Default: 1632.
        time_scale (float): Multiplier to seconds. Default: 1.0.
        drop_last (bool): Drop the last chunk (outside the exposure), as the reference does. Default: True.
        sort (bool): Stable-sort the concatenated events instead of raising when unsorted. Default: False.

    Returns:
        EventStream: The concatenated events.
    """
    paths = sorted(os.fspath(p) for p in paths)
    if not paths:
        raise EventFormatError('read_highrev_events: no chunk files given.')
    used = paths[:-1] if drop_last else paths
    if not used:
        raise EventFormatError(f'read_highrev_events: only one chunk ({paths[0]}) and drop_last=True leaves no '
                               'events.')
    chunks = [_load_chunk(p) for p in used]
    cat = {k: np.concatenate([c[k] for c in chunks]) for k in _KEYS}
    source = f'{used[0]} (+{len(used) - 1} chunks)' if len(used) > 1 else used[0]
    t = cat['timestamp'].astype(np.float64) * time_scale
    return EventStream.from_arrays(cat['y'], cat['x'], t, cat['polarity'], height, width, source=source, sort=sort)


def write_highrev_chunk(path, stream, time_scale=1.0):
    """Writes one chunk in the HighREV layout (swapped keys, (N, 1) arrays, polarity 0/1), atomically.

    Args:
        path (str | os.PathLike): Output ``.npz`` file.
        stream (EventStream): Events.
        time_scale (float): The reader's ``time_scale``; timestamps are written as ``t / time_scale``. Default: 1.0.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f'.{os.path.basename(path)}.tmp{os.getpid()}.npz')
    try:
        np.savez(tmp, x=stream.y.astype(np.int64)[:, None], y=stream.x.astype(np.int64)[:, None],
                 timestamp=(stream.t / time_scale)[:, None], polarity=(stream.p > 0).astype(np.int64)[:, None])
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_voxel_npz(path, key='voxel'):
    """Reads a pre-computed HighREV voxel grid ``<voxel_root>/SEQ_%05d.npz`` (float32 (H, W, C), channel-last).

    Args:
        path (str | os.PathLike): The ``.npz`` file.
        key (str): Array name. Default: ``'voxel'``.

    Returns:
        np.ndarray: float32 (H, W, C) as stored.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if key not in data.files:
                raise EventFormatError(f'{path}: missing key "{key}" (found {sorted(data.files)}); a HighREV voxel '
                                       'file holds "voxel" float32 (H, W, C).')
            voxel = np.asarray(data[key])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise EventFormatError(f'{path}: not a readable .npz voxel file ({err}).') from err
    if voxel.ndim != 3:
        raise EventFormatError(f'{path}: "{key}" has shape {voxel.shape}; expected (H, W, C).')
    return voxel.astype(np.float32, copy=False)


def write_voxel_npz(path, voxel, key='voxel'):
    """Writes a voxel grid in the HighREV layout (float32 (H, W, C)), atomically.

    Args:
        path (str | os.PathLike): Output ``.npz`` file.
        voxel (np.ndarray): (H, W, C) array (transpose a (C, H, W) grid first).
        key (str): Array name. Default: ``'voxel'``.
    """
    voxel = np.asarray(voxel, np.float32)
    if voxel.ndim != 3:
        raise EventFormatError(f'write_voxel_npz: voxel must be (H, W, C), got shape {voxel.shape}.')
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f'.{os.path.basename(path)}.tmp{os.getpid()}.npz')
    try:
        np.savez(tmp, **{key: voxel})
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
