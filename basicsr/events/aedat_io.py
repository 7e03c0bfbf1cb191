"""AEDAT4 recordings (DAVIS346 etc.) through the optional ``aedat`` package (``pip install aedat``).

Events and APS frames share one clock: microseconds in the file, float64 seconds here. Each APS frame keeps its
exposure window ``[exposure_begin_t, exposure_end_t]``, the SCER window for real data.
"""
import importlib
import os

import numpy as np

from basicsr.events.stream import EventFormatError, EventStream, Frame

__all__ = ['read_aedat4', 'iter_aedat4_events']


def _import_aedat():
    try:
        return importlib.import_module('aedat')
    except ImportError as err:
        raise ImportError('Reading AEDAT4 files needs the optional "aedat" package: pip install aedat') from err


def _stream_ids(decoder, path):
    try:
        streams = decoder.id_to_stream()
    except Exception as err:  # the decoder raises its own exception types on foreign files
        raise EventFormatError(f'{path}: cannot read the AEDAT4 stream table ({err}).') from err
    events = {sid: s for sid, s in streams.items() if s.get('type') == 'events'}
    frames = {sid: s for sid, s in streams.items() if s.get('type') == 'frame'}
    return events, frames


def read_aedat4(path, event_stream_id=None, frame_stream_id=None, read_frames=True, sort=False):
    """Reads the events and APS frames of an AEDAT4 file.

    Args:
        path (str | os.PathLike): The ``.aedat4`` file.
        event_stream_id (int | None): Event stream to read; None takes the only/first one. Default: None.
        frame_stream_id (int | None): Frame stream to read; None takes the first one if any. Default: None.
        read_frames (bool): Collect APS frames. Default: True.
        sort (bool): Stable-sort events instead of raising when packets are out of order. Default: False.

    Returns:
        tuple[EventStream, list[Frame]]: The events and the frames (``timestamp`` = frame ``t``, exposure window
        from ``exposure_begin_t`` / ``exposure_end_t``; pixel format and offsets in ``Frame.attrs``).

    Raises:
        ImportError: When ``aedat`` is not installed (message names ``pip install aedat``).
        EventFormatError: For a file without an event stream or with unexpected packets.
    """
    path = os.fspath(path)
    decoder, frame_streams, event_stream_id, (height, width) = _open_decoder(path, event_stream_id)
    if frame_stream_id is None and frame_streams:
        frame_stream_id = sorted(frame_streams)[0]
    chunks, frames = [], []
    for packet in decoder:
        sid = packet.get('stream_id')
        if 'events' in packet and sid == event_stream_id:
            chunks.append(packet['events'])
        elif 'frame' in packet and read_frames and sid == frame_stream_id:
            frames.append(_to_frame(packet['frame'], path))
    del decoder
    if chunks:
        stream = _to_stream(np.concatenate(chunks), height, width, path, sort)
    else:
        stream = EventStream.empty(height, width)
    return stream, frames


def iter_aedat4_events(path, event_stream_id=None):
    """Yields the events of an AEDAT4 file packet by packet, never holding more than one packet (for long
    event-only recordings).

    Args:
        path (str | os.PathLike): The ``.aedat4`` file.
        event_stream_id (int | None): Event stream to read; None takes the only/first one. Default: None.

    Yields:
        EventStream: The events of one packet, validated; times in seconds.

    Raises:
        ImportError: When ``aedat`` is not installed.
        EventFormatError: For a file without an event stream, bad packets, or a packet that starts before the
            previous one ends (read such a file whole with ``read_aedat4(path, sort=True)``).
    """
    path = os.fspath(path)
    decoder, _, event_stream_id, (height, width) = _open_decoder(path, event_stream_id)
    last = None
    for packet in decoder:
        if 'events' not in packet or packet.get('stream_id') != event_stream_id:
            continue
        stream = _to_stream(packet['events'], height, width, path, sort=False)
        if len(stream) == 0:
            continue
        if last is not None and stream.t[0] < last:
            raise EventFormatError(f'{path}: an event packet starts at {stream.t[0]} s, before the previous one ends '
                                   f'({last} s); read the file whole with read_aedat4(path, sort=True).')
        last = float(stream.t[-1])
        yield stream


def _open_decoder(path, event_stream_id):
    """The decoder, frame streams, chosen event stream id and its sensor (H, W) of an AEDAT4 file."""
    aedat = _import_aedat()
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such AEDAT4 file.')
    try:
        decoder = aedat.Decoder(path)
    except Exception as err:
        raise EventFormatError(f'{path}: not a readable AEDAT4 file ({err}).') from err
    event_streams, frame_streams = _stream_ids(decoder, path)
    if not event_streams:
        raise EventFormatError(f'{path}: no stream of type "events" in the AEDAT4 file.')
    if event_stream_id is None:
        event_stream_id = sorted(event_streams)[0]
    elif event_stream_id not in event_streams:
        raise EventFormatError(f'{path}: event_stream_id {event_stream_id} is not an event stream (found '
                               f'{sorted(event_streams)}).')
    info = event_streams[event_stream_id]
    return decoder, frame_streams, event_stream_id, (int(info['height']), int(info['width']))


def _to_stream(ev, height, width, path, sort):
    """The canonical stream of AEDAT4 event records (``t`` in µs, ``x``, ``y``, ``on``)."""
    try:
        t, x, y, on = ev['t'], ev['x'], ev['y'], ev['on']
    except (ValueError, KeyError, IndexError) as err:
        raise EventFormatError(f'{path}: event packets lack fields t, x, y, on ({err}).') from err
    return EventStream.from_arrays(x, y, t.astype(np.float64) * 1e-6, np.asarray(on, dtype=bool), height, width,
                                   source=path, sort=sort)


def _to_frame(frame, path):
    try:
        pixels = np.asarray(frame['pixels'])
        t = frame['t']
        begin, end = frame['exposure_begin_t'], frame['exposure_end_t']
    except KeyError as err:
        raise EventFormatError(f'{path}: frame packet lacks key {err}.') from err
    attrs = {k: frame[k] for k in ('format', 'offset_x', 'offset_y', 'begin_t', 'end_t') if k in frame}
    return Frame(pixels, float(t) * 1e-6, float(begin) * 1e-6, float(end) * 1e-6, attrs)
