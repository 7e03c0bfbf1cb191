"""event_utils raw h5 files (``events/xs, ys, ts, ps`` plus frames): a streaming reader and an atomic writer.

The reader never loads the whole file to slice a window: window bounds are found by a binary search that reads
single timestamps until the range is one block long, then one block; only the window's events are then read. A
binary search is only right on sorted times, so on opening the reader checks every timestamp once (finite,
non-decreasing), chunk by chunk, before any window is trusted.
"""
import os

import numpy as np

from basicsr.events.stream import EventFormatError, EventStream, Frame, check_timestamps, to_canonical

__all__ = ['H5EventReader', 'write_event_h5', 'read_h5_events']

_EVENT_KEYS = ('xs', 'ys', 'ts', 'ps')
_BLOCK = 1 << 16
_CHECK_CHUNK = 1 << 22  # timestamps per chunk of the opening check: 32 MB of float64


def _h5py():
    import h5py
    try:  # registers the compression filters of compressed releases when the optional extra is installed
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass
    return h5py


class H5EventReader:
    """Reads an event_utils raw h5 file lazily.

    Example::

        with H5EventReader('seq.h5') as reader:
            window = reader.read_window(t0, t1)
            frame = reader.read_frame(3)

    Args:
        path (str | os.PathLike): The h5 file.
        validate (bool): Check every timestamp of the file once on opening (finite, non-decreasing) and validate
            every window read (coordinates, times, polarity). Default: True.

    Raises:
        EventFormatError: For a file that is not an event_utils h5 file, or (``validate``) a NaN, infinite or
            decreasing timestamp anywhere in ``events/ts``, naming the file and the first bad index.
    """

    def __init__(self, path, validate=True):
        self.path = os.fspath(path)
        self.validate = validate
        h5py = _h5py()
        try:
            self._file = h5py.File(self.path, 'r')
        except OSError as err:
            raise EventFormatError(f'{self.path}: cannot open as an HDF5 event file ({err}).') from err
        if 'events' not in self._file:
            keys = sorted(self._file.keys())
            self.close()
            raise EventFormatError(f'{self.path}: missing group "events" (expected event_utils layout with '
                                   f'events/xs, ys, ts, ps); found keys {keys}.')
        group = self._file['events']
        for key in _EVENT_KEYS:
            if key not in group:
                self.close()
                raise EventFormatError(f'{self.path}: missing dataset "events/{key}" (expected events/xs, ys, ts, '
                                       'ps).')
        self._ds = {key: group[key] for key in _EVENT_KEYS}
        self.num_events = int(self._ds['ts'].shape[0])
        for key in _EVENT_KEYS:
            if self._ds[key].shape != (self.num_events, ):
                shape = self._ds[key].shape
                self.close()
                raise EventFormatError(f'{self.path}: "events/{key}" has shape {shape}; expected '
                                       f'({self.num_events},) like events/ts.')
        self.height, self.width = self._sensor_size()
        if validate:
            try:
                self.check_timestamps()
            except BaseException:
                self.close()
                raise

    def check_timestamps(self, chunk_size=_CHECK_CHUNK):
        """Checks that all of ``events/ts`` is finite and non-decreasing, reading it in chunks.

        Args:
            chunk_size (int): Timestamps read at a time. Default: 4,194,304 (32 MB).

        Raises:
            EventFormatError: Naming the file and the first NaN, infinite or decreasing timestamp.
        """
        ts, previous = self._ds['ts'], None
        for i0 in range(0, self.num_events, int(chunk_size)):
            i1 = min(self.num_events, i0 + int(chunk_size))
            try:
                chunk = ts[i0:i1]
            except OSError as err:
                raise EventFormatError(f'{self.path}: cannot read events/ts[{i0}:{i1}] ({err}); a truncated file, or '
                                       'a compressed one that needs "pip install hdf5plugin".') from err
            previous = check_timestamps(chunk, f'{self.path} events/ts', offset=i0, previous=previous)

    def _sensor_size(self):
        res = self._file.attrs.get('sensor_resolution')
        if res is not None:
            res = np.asarray(res).ravel()
            if res.size != 2:
                raise EventFormatError(f'{self.path}: attribute "sensor_resolution" must be [H, W], got '
                                       f'{res.tolist()}.')
            return int(res[0]), int(res[1])
        if self.num_events == 0:
            raise EventFormatError(f'{self.path}: no "sensor_resolution" attribute and no events to infer it.')
        return int(self._ds['ys'][:].max()) + 1, int(self._ds['xs'][:].max()) + 1

    def close(self):
        """Closes the file (idempotent)."""
        f = getattr(self, '_file', None)
        if f is not None:
            f.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self):
        return self.num_events

    @property
    def attrs(self):
        """dict: The file attributes (``num_events``, ``t0``, ``sensor_resolution``, ...)."""
        return dict(self._file.attrs)

    def searchsorted(self, value, side='left'):
        """Binary search for a time in ``events/ts`` reading O(log N) values plus one block.

        Args:
            value (float): Time in seconds.
            side (str): ``'left'`` or ``'right'``, as ``np.searchsorted``. Default: ``'left'``.

        Returns:
            int: Insertion index.
        """
        ts = self._ds['ts']
        lo, hi = 0, self.num_events
        while hi - lo > _BLOCK:
            mid = (lo + hi) // 2
            v = ts[mid]
            if v < value or (side == 'right' and v == value):
                lo = mid + 1
            else:
                hi = mid
        return lo + int(np.searchsorted(ts[lo:hi], value, side=side))

    def read_slice(self, i0, i1):
        """Reads the events with indices ``[i0, i1)``.

        Args:
            i0 (int): First index.
            i1 (int): End index (exclusive).

        Returns:
            EventStream: The canonical, validated stream.
        """
        i0, i1 = max(0, int(i0)), min(self.num_events, int(i1))
        i1 = max(i0, i1)
        try:
            raw = [self._ds[key][i0:i1] for key in _EVENT_KEYS]
        except OSError as err:
            raise EventFormatError(f'{self.path}: cannot read events[{i0}:{i1}] ({err}); a truncated file, or a '
                                   'compressed one that needs "pip install hdf5plugin".') from err
        source = f'{self.path} events[{i0}:{i1}]'
        xs, ys, ts, ps = raw
        if not self.validate:
            return EventStream(xs.astype(np.uint16), ys.astype(np.uint16), ts.astype(np.float64, copy=False),
                               np.where(ps > 0, 1, -1).astype(np.int8), self.height, self.width)
        return EventStream(*to_canonical(xs, ys, ts, ps, self.height, self.width, source=source))

    def read_window(self, t_start, t_end, closed='left', allow_empty=True):
        """Reads only the events in a time window.

        Args:
            t_start (float): Window start in seconds (inclusive).
            t_end (float): Window end in seconds.
            closed (str): ``'left'`` for [t_start, t_end), ``'both'`` for [t_start, t_end]. Default: ``'left'``.
            allow_empty (bool): Return an empty stream instead of raising. Default: True.

        Returns:
            EventStream: The window.
        """
        if closed not in ('left', 'both'):
            raise ValueError(f"closed must be 'left' or 'both', got {closed!r}.")
        if not t_end >= t_start:
            raise EventFormatError(f'{self.path}: time window [{t_start}, {t_end}] ends before it starts.')
        i0 = self.searchsorted(t_start, 'left')
        i1 = self.searchsorted(t_end, 'right' if closed == 'both' else 'left')
        if i1 <= i0 and not allow_empty:
            raise EventFormatError(f'{self.path}: time window [{t_start}, {t_end}] holds no events.')
        return self.read_slice(i0, i1)

    def read_all(self):
        """Reads every event.

        Returns:
            EventStream: The whole stream.
        """
        return self.read_slice(0, self.num_events)

    def iter_chunks(self, chunk_size=1_000_000):
        """Yields consecutive chunks of at most ``chunk_size`` events.

        Args:
            chunk_size (int): Events per chunk. Default: 1,000,000.

        Yields:
            EventStream: One chunk.
        """
        for i0 in range(0, self.num_events, int(chunk_size)):
            yield self.read_slice(i0, i0 + int(chunk_size))

    def frame_names(self, group='images'):
        """Returns the sorted dataset names of a frame group (empty when absent).

        Args:
            group (str): ``'images'``, ``'sharp_images'`` or ``'flow'``. Default: ``'images'``.

        Returns:
            list[str]: Names such as ``image000000003``.
        """
        if group not in self._file:
            return []
        return sorted(self._file[group].keys())

    def num_frames(self, group='images'):
        """Returns the number of datasets in a frame group.

        Args:
            group (str): Group name. Default: ``'images'``.

        Returns:
            int: Count.
        """
        return len(self.frame_names(group))

    def frame_attrs(self, index, group='images'):
        """Returns the attributes of frame ``index`` without reading its pixels.

        Args:
            index (int): Zero-based index in sorted order.
            group (str): Group name. Default: ``'images'``.

        Returns:
            dict: Attributes (``timestamp``, ``exposure_start``, ``event_idx``, ...).
        """
        return dict(self._frame_ds(index, group).attrs)

    def _frame_ds(self, index, group):
        names = self.frame_names(group)
        if not names:
            raise EventFormatError(f'{self.path}: no group "{group}" with frames.')
        if not 0 <= index < len(names):
            raise EventFormatError(f'{self.path}: frame index {index} out of range for "{group}" ({len(names)} '
                                   'frames).')
        return self._file[group][names[index]]

    def read_frame(self, index, group='images'):
        """Reads one frame with its timestamp and exposure window.

        Args:
            index (int): Zero-based index in sorted order.
            group (str): ``'images'``, ``'sharp_images'`` or ``'flow'``. Default: ``'images'``.

        Returns:
            Frame: The frame (``exposure_start/end`` None when the file has no exposure attributes).
        """
        ds = self._frame_ds(index, group)
        attrs = dict(ds.attrs)
        if 'timestamp' not in attrs:
            raise EventFormatError(f'{self.path}: "{ds.name}" has no "timestamp" attribute.')
        start = attrs.pop('exposure_start', None)
        end = attrs.pop('exposure_end', None)
        return Frame(ds[()], float(attrs.pop('timestamp')), None if start is None else float(start),
                     None if end is None else float(end), attrs)


def read_h5_events(path, t_range=None, validate=True):
    """Reads the events of an event_utils h5 file (all, or one time window).

    Args:
        path (str | os.PathLike): The h5 file.
        t_range (tuple[float, float] | None): Window [t0, t1) to read; None reads all. Default: None.
        validate (bool): Validate the events. Default: True.

    Returns:
        EventStream: The events.
    """
    with H5EventReader(path, validate=validate) as reader:
        if t_range is None:
            return reader.read_all()
        return reader.read_window(*t_range)


def _frame_dataset(group, name, frame, image_type=None):
    image = np.asarray(frame.image)
    ds = group.create_dataset(name, data=image)
    ds.attrs['size'] = np.asarray(image.shape)
    ds.attrs['timestamp'] = float(frame.timestamp)
    if image_type is not None:
        ds.attrs['type'] = image_type
    if frame.exposure_start is not None and frame.exposure_end is not None:
        ds.attrs['exposure_start'] = float(frame.exposure_start)
        ds.attrs['exposure_end'] = float(frame.exposure_end)
        ds.attrs['exposure_time'] = float(frame.exposure_end - frame.exposure_start)
    for key, value in frame.attrs.items():
        if key not in ds.attrs:
            ds.attrs[key] = value
    return ds


def write_event_h5(path, stream, frames=(), sharp_frames=(), flows=(), source=None, compression=None):
    """Writes an event_utils raw h5 file atomically (temporary name in the same folder, then ``os.replace``).

    Events are stored as ``xs``/``ys`` int16, ``ts`` float64, ``ps`` bool; frames as ``images/image%09d`` with
    ``size``, ``timestamp``, ``type``, ``event_idx`` and, when known, ``exposure_start/end/time`` attributes.

    Args:
        path (str | os.PathLike): Output file.
        stream (EventStream): Events (validated).
        frames (list[Frame]): Blurry / APS frames. Default: none.
        sharp_frames (list[Frame]): Ground-truth frames. Default: none.
        flows (list[Frame]): Optical flow maps (float32) with timestamps. Default: none.
        source (str | None): Optional ``source`` file attribute. Default: None.
        compression (str | None): h5py compression for the event datasets (e.g. ``'gzip'``). Default: None.
    """
    h5py = _h5py()
    stream.validate('write_event_h5')
    if stream.width > 32768 or stream.height > 32768:
        raise EventFormatError(f'write_event_h5: sensor {stream.height}x{stream.width} does not fit int16 '
                               'coordinates.')
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f'.{os.path.basename(path)}.tmp{os.getpid()}')
    try:
        with h5py.File(tmp, 'w') as f:
            ev = f.create_group('events')
            chunks = (min(_BLOCK, len(stream)), ) if len(stream) else None
            kw = {'compression': compression, 'chunks': chunks} if compression else {}
            ev.create_dataset('xs', data=stream.x.astype(np.int16), **kw)
            ev.create_dataset('ys', data=stream.y.astype(np.int16), **kw)
            ev.create_dataset('ts', data=stream.t, **kw)
            ev.create_dataset('ps', data=stream.p > 0, **kw)
            for group_name, items, prefix in (('images', frames, 'image'), ('sharp_images', sharp_frames, 'image'),
                                              ('flow', flows, 'flow')):
                if not items:
                    continue
                group = f.create_group(group_name)
                for i, frame in enumerate(items):
                    image = np.asarray(frame.image)
                    image_type = None
                    if group_name != 'flow':
                        image_type = 'color_bgr' if image.ndim == 3 and image.shape[-1] == 3 else 'greyscale'
                    ds = _frame_dataset(group, f'{prefix}{i:09d}', frame, image_type)
                    if group_name != 'flow' and 'event_idx' not in ds.attrs:
                        ds.attrs['event_idx'] = int(np.searchsorted(stream.t, frame.timestamp, side='left')) - 1
                if group_name == 'images':
                    group.attrs['num_images'] = len(items)
            n = len(stream)
            f.attrs['num_events'] = n
            f.attrs['num_pos'] = int(np.count_nonzero(stream.p > 0))
            f.attrs['num_neg'] = n - int(f.attrs['num_pos'])
            f.attrs['t0'] = float(stream.t[0]) if n else 0.0
            f.attrs['tk'] = float(stream.t[-1]) if n else 0.0
            f.attrs['duration'] = float(f.attrs['tk'] - f.attrs['t0'])
            f.attrs['num_imgs'] = len(frames)
            f.attrs['num_flow'] = len(flows)
            f.attrs['sensor_resolution'] = np.asarray([stream.height, stream.width])
            if source is not None:
                f.attrs['source'] = source
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
