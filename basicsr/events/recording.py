"""A recording's events and frames, and the exposure windows cut from it (what inference reads).

:func:`open_events` opens any event file of :func:`basicsr.events.read_events` (several ``.npz`` chunks of one
recording allowed) as an :class:`EventSource`: its sensor size, its frames (:class:`FrameInfo`, pixels read on
demand) and the events of any window, read lazily from h5 files. The checks of an exposure window against the events
(:func:`check_exposure`, :func:`check_window`) and the choice of frames and their windows (:func:`select_frames`,
:func:`frame_exposure`) raise :class:`~basicsr.utils.inference_errors.InferenceError` naming the file and what was
expected. Uses nothing of the package but ``basicsr.events`` and ``basicsr.utils``.
"""
import os
import os.path as osp
from dataclasses import dataclass

import numpy as np

from basicsr.events.stream import EventFormatError
from basicsr.utils.inference_errors import InferenceError

__all__ = ['COVERAGE_TOLERANCE', 'FrameInfo', 'EventSource', 'open_events', 'check_exposure', 'check_window',
           'check_coverage', 'empty_window_error', 'frame_exposure', 'select_frames']

# Events may stop this fraction of the exposure short of either end before they count as not covering it.
COVERAGE_TOLERANCE = 0.05


def _text_has_size(path):
    try:
        with open(path, 'r', encoding='utf-8') as f:
            for line in f:
                stripped = line.strip()
                if stripped and not stripped.startswith('#'):
                    return len(stripped.split()) == 2
    except (OSError, UnicodeDecodeError):
        return False
    return False


def _frame_image(frame):
    image = np.asarray(frame.image)
    if frame.attrs.get('format') in ('RGB', 'RGBA') and image.ndim == 3:
        image = np.ascontiguousarray(image[:, :, 2::-1])
    return image


@dataclass
class FrameInfo:
    """A frame of an event file, described without its pixels.

    Args:
        index (int): Zero-based index in the file.
        shape (tuple): Pixel array shape.
        timestamp (float): Frame time (s).
        exposure (tuple[float, float] | None): Exposure window (s) from the file, if stored.
    """
    index: int
    shape: tuple
    timestamp: float
    exposure: tuple = None


class EventSource:
    """Events (and frames) of one recording, read lazily where the format allows (h5 windows).

    Args:
        paths (list[str]): The event file (several ``.npz`` chunks allowed).
        sensor_size (tuple[int, int] | None): Sensor (H, W) for files that do not store it. Default: None.
        fallback_size (tuple[int, int] | None): Size assumed when neither the file nor ``sensor_size`` gives one
            (the frame size). Default: None.
        time_scale (float): Multiplier to seconds for ``.txt``/``.npy``/``.npz``. Default: 1.0.
    """

    def __init__(self, paths, sensor_size=None, fallback_size=None, time_scale=1.0):
        paths = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        if not paths:
            raise InferenceError('--events: no event file given')
        for p in paths:
            if not osp.isfile(p):
                raise InferenceError(f'--events: event file not found: {p}')
        exts = {osp.splitext(p)[1].lower() for p in paths}
        if len(paths) > 1 and exts != {'.npz'}:
            raise InferenceError(f'--events: several files are only accepted as .npz chunks of one recording, got '
                                 f'{paths}')
        self.paths, self.name = paths, paths[0] if len(paths) == 1 else f'{paths[0]} (+{len(paths) - 1} chunks)'
        self.ext = exts.pop()
        self._reader, self._stream, self._frames = None, None, []
        if self.ext in ('.h5', '.hdf5'):
            from basicsr.events.h5_io import H5EventReader
            self._reader = H5EventReader(paths[0])
            self.height, self.width = self._reader.height, self._reader.width
            try:
                self.frames = [self._h5_info(i) for i in range(self._reader.num_frames('images'))]
            except BaseException:
                self.close()
                raise
            return
        if self.ext == '.aedat4':
            from basicsr.events.aedat_io import read_aedat4
            self._stream, self._frames = read_aedat4(paths[0])
            self.frames = [FrameInfo(i, np.asarray(f.image).shape, f.timestamp, f.exposure)
                           for i, f in enumerate(self._frames)]
        else:
            self._stream = self._read_plain(sensor_size, fallback_size, time_scale)
            self.frames = []
        self.height, self.width = self._stream.height, self._stream.width

    @classmethod
    def from_stream(cls, stream, name='events'):
        """Wraps events already in memory (no frames).

        Args:
            stream (EventStream): The events, with the sensor size.
            name (str): Named in messages. Default: ``'events'``.

        Returns:
            EventSource: The source.
        """
        source = cls.__new__(cls)
        source.paths, source.name, source.ext = [], name, ''
        source._reader, source._stream, source._frames, source.frames = None, stream, [], []
        source.height, source.width = stream.height, stream.width
        return source

    def _read_plain(self, sensor_size, fallback_size, time_scale):
        from basicsr.events.event_files import read_events
        from basicsr.events.npz_io import read_highrev_events
        has_size = self.ext in ('.txt', '.csv') and _text_has_size(self.paths[0])
        size = sensor_size if sensor_size is not None else (None if has_size else fallback_size)
        h, w = (None, None) if size is None else (int(size[0]), int(size[1]))
        try:
            if self.ext == '.npz':
                return read_highrev_events(self.paths, h, w, time_scale=time_scale, drop_last=False)
            return read_events(self.paths[0], height=h, width=w, time_scale=time_scale)
        except EventFormatError as err:
            if size is not None and sensor_size is None and 'outside the sensor' in str(err):
                raise InferenceError(f'{err} The file {self.name} stores no sensor size, so the frame size {h}x{w} '
                                     'was assumed: expected events inside the frame (or pass --sensor-size H W).'
                                     ) from None
            raise

    def _h5_info(self, index):
        attrs = self._reader.frame_attrs(index)
        shape = tuple(int(v) for v in np.asarray(attrs['size']).ravel()) if 'size' in attrs else None
        if shape is None:
            shape = np.asarray(self._reader.read_frame(index).image).shape
        exposure = None
        if 'exposure_start' in attrs and 'exposure_end' in attrs:
            exposure = (float(attrs['exposure_start']), float(attrs['exposure_end']))
        if 'timestamp' not in attrs:
            raise InferenceError(f'{self.name}: frame {index} has no "timestamp" attribute')
        return FrameInfo(index, shape, float(attrs['timestamp']), exposure)

    @property
    def shape(self):
        """tuple[int, int]: Sensor (H, W)."""
        return (self.height, self.width)

    def frame_image(self, index):
        """Reads the pixels of frame ``index`` (colour in BGR order).

        Args:
            index (int): Frame index.

        Returns:
            np.ndarray: The frame.
        """
        if self._reader is not None:
            return _frame_image(self._reader.read_frame(index))
        return _frame_image(self._frames[index])

    def count(self, t_start, t_end):
        """Number of events in ``[t_start, t_end]``.

        Args:
            t_start (float): Window start (s).
            t_end (float): Window end (s).

        Returns:
            int: Event count.
        """
        if self._reader is not None:
            return self._reader.searchsorted(t_end, 'right') - self._reader.searchsorted(t_start, 'left')
        i0, i1 = self._stream.index_range(t_start, t_end, closed='both')
        return i1 - i0

    def window(self, t_start, t_end):
        """Events in ``[t_start, t_end]``.

        Args:
            t_start (float): Window start (s).
            t_end (float): Window end (s).

        Returns:
            EventStream: The window.
        """
        if self._reader is not None:
            return self._reader.read_window(t_start, t_end, closed='both')
        return self._stream.window(t_start, t_end, closed='both', allow_empty=True)

    def time_range(self):
        """Times of the first and last event.

        Returns:
            tuple[float, float] | None: ``(t_first, t_last)`` in seconds; None without events.
        """
        if self._reader is not None:
            n = self._reader.num_events
            return None if n == 0 else (float(self._reader.read_slice(0, 1).t[0]),
                                        float(self._reader.read_slice(n - 1, n).t[0]))
        s = self._stream
        return None if len(s) == 0 else (float(s.t[0]), float(s.t[-1]))

    def span(self):
        """str: The time span of the events, for messages."""
        span = self.time_range()
        return 'no events' if span is None else f'[{span[0]}, {span[1]}] s'

    def close(self):
        """Closes an open h5 file (idempotent)."""
        if self._reader is not None:
            self._reader.close()


def open_events(paths, sensor_size=None, fallback_size=None, time_scale=1.0):
    """Opens an event file (see :class:`EventSource`).

    Args:
        paths (str | list[str]): Event file, or several ``.npz`` chunks.
        sensor_size (tuple[int, int] | None): Sensor (H, W) for files that do not store it. Default: None.
        fallback_size (tuple[int, int] | None): Size assumed otherwise (the frame size). Default: None.
        time_scale (float): Multiplier to seconds for text/npy/npz. Default: 1.0.

    Returns:
        EventSource: The opened source.
    """
    return EventSource(paths, sensor_size, fallback_size, time_scale)


def check_exposure(t_start, t_end, what):
    """Checks an exposure window: two finite numbers with ``t0 < t1``.

    Args:
        t_start (float): Window start (s).
        t_end (float): Window end (s).
        what (str): The frame named in errors.

    Returns:
        tuple[float, float]: The window as floats.

    Raises:
        InferenceError: For values that are not numbers or not increasing.
    """
    try:
        t_start, t_end = float(t_start), float(t_end)
    except (TypeError, ValueError):
        raise InferenceError(f'{what}: exposure window must be two numbers t0 t1 (s), got {t_start!r}, '
                             f'{t_end!r}') from None
    if not (np.isfinite(t_start) and np.isfinite(t_end) and t_end > t_start):
        raise InferenceError(f'{what}: exposure window [{t_start}, {t_end}] must satisfy t0 < t1 (seconds)')
    return t_start, t_end


def empty_window_error(t_start, t_end, what, events_name, span):
    """The error of an exposure window without events.

    Args:
        t_start (float): Window start (s).
        t_end (float): Window end (s).
        what (str): The frame named in the message.
        events_name (str): The event file named in the message.
        span (str): The events' time span (:meth:`EventSource.span`).

    Returns:
        InferenceError: The error, to raise.
    """
    return InferenceError(f'{what}: the exposure window [{t_start}, {t_end}] s holds no events of {events_name} '
                          f'(events span {span}); expected a window on the clock of the events (check the units, '
                          '--time-scale, and --exposure)')


def check_coverage(t_start, t_end, time_range, what, events_name):
    """Raises when the events start after or end before the exposure (beyond :data:`COVERAGE_TOLERANCE`).

    Args:
        t_start (float): Exposure start (s).
        t_end (float): Exposure end (s).
        time_range (tuple[float, float]): Times of the first and last event.
        what (str): The frame named in errors.
        events_name (str): The event file named in errors.

    Raises:
        InferenceError: Naming both spans.
    """
    t_first, t_last = time_range
    slack = COVERAGE_TOLERANCE * (t_end - t_start)
    if t_first > t_start + slack or t_last < t_end - slack:
        raise InferenceError(f'{what}: the events of {events_name} span [{t_first}, {t_last}] s and do not cover '
                             f'the exposure [{t_start}, {t_end}] s; expected events over the whole exposure (a '
                             'recording cut short, or an exposure window on another clock: check --exposure and '
                             '--time-scale)')


def check_window(source, t_start, t_end, what):
    """The checks of an exposure window against the events (any method): not empty, covered by the events.

    Args:
        source (EventSource): The events.
        t_start (float): Exposure start (s).
        t_end (float): Exposure end (s).
        what (str): The frame named in errors.

    Raises:
        InferenceError: For a window without events or events that do not cover it.
    """
    if source.count(t_start, t_end) == 0:
        raise empty_window_error(t_start, t_end, what, source.name, source.span())
    check_coverage(t_start, t_end, source.time_range(), what, source.name)


def frame_exposure(source, info, exposure_time):
    """The exposure window of a frame of the file: stored, else ``exposure_time`` centred on its timestamp.

    Args:
        source (EventSource): The recording.
        info (FrameInfo): The frame.
        exposure_time (float | None): Window length (s) for frames without a stored exposure.

    Returns:
        tuple[float, float]: ``(t_start, t_end)`` in seconds.

    Raises:
        InferenceError: For a frame without a stored window when ``exposure_time`` is None.
    """
    if info.exposure is not None:
        return info.exposure
    if exposure_time is not None:
        half = float(exposure_time) / 2
        return info.timestamp - half, info.timestamp + half
    raise InferenceError(f'{source.name}: frame {info.index} has no exposure window (exposure_start/exposure_end '
                         'attributes); expected them in the file, or pass --exposure t0 t1 or --exposure-time T '
                         '(window centred on the frame timestamp)')


def select_frames(source, frames):
    """The frames of a recording to deblur.

    Args:
        source (EventSource): The recording.
        frames (list[int] | None): Frame indices; None takes all.

    Returns:
        list[FrameInfo]: The chosen frames.

    Raises:
        InferenceError: For a file without frames or an index out of range.
    """
    if not source.frames:
        raise InferenceError(f'{source.name} holds no frames ({source.ext} events only): deblurring needs a blurry '
                             'frame, so pass --image with it and --exposure t0 t1; --video without --method writes '
                             'the visualisation video of the events')
    if frames is None:
        return list(source.frames)
    chosen = []
    for k in frames:
        if not isinstance(k, (int, np.integer)) or not 0 <= k < len(source.frames):
            raise InferenceError(f'--frame {k}: {source.name} has {len(source.frames)} frames; expected an index '
                                 f'in 0..{len(source.frames) - 1}')
        chosen.append(source.frames[int(k)])
    return chosen
