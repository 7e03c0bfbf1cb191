"""Fixed-duration time windows of an event stream, read chunk by chunk from a file (for event-only recordings).

Window ``k`` is ``[t_start + k * duration, t_start + (k + 1) * duration)`` (computed by multiplication, so long
recordings do not drift); windows without events are yielded too, so window ``k`` always starts at the same time.
"""
import math

import numpy as np

from basicsr.events.stream import EventFormatError, concatenate_streams

__all__ = ['iter_event_chunks', 'slice_windows', 'iter_event_windows']


def iter_event_chunks(path, chunk_size=1_000_000, **read_kwargs):
    """Yields the events of a file as consecutive sorted chunks, reading lazily where the format allows.

    ``.h5`` files are read ``chunk_size`` events at a time and ``.aedat4`` files packet by packet; the other formats
    of :func:`basicsr.events.read_events` are read whole and yielded as one chunk.

    Args:
        path (str | os.PathLike): Event file.
        chunk_size (int): Events per chunk of an h5 file. Default: 1,000,000.
        **read_kwargs: Passed to the reader (e.g. ``height``, ``width``, ``time_scale`` for text files,
            ``event_stream_id`` for AEDAT4).

    Yields:
        EventStream: One chunk.
    """
    from basicsr.events.event_files import _readable_ext, read_events

    ext = _readable_ext(path)
    if ext in ('.h5', '.hdf5'):
        from basicsr.events.h5_io import H5EventReader
        with H5EventReader(path, **read_kwargs) as reader:
            yield from reader.iter_chunks(chunk_size)
    elif ext == '.aedat4':
        from basicsr.events.aedat_io import iter_aedat4_events
        yield from iter_aedat4_events(path, **read_kwargs)
    else:
        yield read_events(path, **read_kwargs)


def slice_windows(chunks, duration, t_start=None, t_end=None):
    """Cuts consecutive sorted chunks of events into windows of fixed duration, holding one window at a time.

    Args:
        chunks (Iterable[EventStream]): Sorted chunks of one sensor, in time order.
        duration (float): Window length in seconds (> 0).
        t_start (float | None): Start of the first window; None takes the first event's time. Default: None.
        t_end (float | None): Stop here (the last window ends at ``t_end``, possibly shorter); None ends with the
            window holding the last event. Default: None.

    Yields:
        tuple[float, float, EventStream]: ``(w0, w1, events)`` with the events of ``[w0, w1)``.

    Raises:
        EventFormatError: For a non-positive duration, ``t_end <= t_start`` or chunks out of time order.
    """
    duration = float(duration)
    if not (math.isfinite(duration) and duration > 0):
        raise EventFormatError(f'slice_windows: duration must be a positive number of seconds, got {duration}.')
    if t_start is not None and t_end is not None and not t_end > t_start:
        raise EventFormatError(f'slice_windows: t_end {t_end} must be after t_start {t_start}.')
    pending, k = None, 0

    def bounds(k):
        w1 = t_start + (k + 1) * duration
        return t_start + k * duration, w1 if t_end is None else min(w1, t_end)

    for chunk in chunks:
        pending = chunk if pending is None else concatenate_streams([pending, chunk])
        if t_start is None:
            if len(pending) == 0:
                continue
            t_start = float(pending.t[0])
        while len(pending):
            w0, w1 = bounds(k)
            if t_end is not None and w0 >= t_end:
                return
            if pending.t[-1] < w1:  # later chunks may still hold events of this window
                pending = pending[int(np.searchsorted(pending.t, w0, side='left')):]
                break
            i0, i1 = (int(np.searchsorted(pending.t, w, side='left')) for w in (w0, w1))
            yield w0, w1, pending[i0:i1]
            pending, k = pending[i1:], k + 1
    if pending is None or t_start is None:
        return
    while True:
        w0, w1 = bounds(k)
        if (t_end is None and len(pending) == 0) or (t_end is not None and w0 >= t_end):
            return
        i0, i1 = (int(np.searchsorted(pending.t, w, side='left')) for w in (w0, w1))
        yield w0, w1, pending[i0:i1]
        pending, k = pending[i1:], k + 1


def iter_event_windows(path, duration, t_start=None, t_end=None, **read_kwargs):
    """Yields the fixed-duration windows of an event file, reading it chunk by chunk (see :func:`slice_windows`).

    Args:
        path (str | os.PathLike): Event file (any format of :func:`basicsr.events.read_events`).
        duration (float): Window length in seconds.
        t_start (float | None): Start of the first window; None: the first event. Default: None.
        t_end (float | None): End of the last window; None: after the last event. Default: None.
        **read_kwargs: Passed to the reader (see :func:`iter_event_chunks`).

    Yields:
        tuple[float, float, EventStream]: ``(w0, w1, events)``.
    """
    yield from slice_windows(iter_event_chunks(path, **read_kwargs), duration, t_start, t_end)
