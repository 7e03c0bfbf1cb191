"""One entry point per direction: ``read_events`` / ``write_events`` pick the format from the file extension."""
import os

from basicsr.events.stream import EventFormatError

__all__ = ['read_events', 'write_events', 'EVENT_FILE_FORMATS']

EVENT_FILE_FORMATS = {
    '.h5': 'event_utils raw h5', '.hdf5': 'event_utils raw h5', '.txt': 'text t x y p', '.csv': 'text t x y p',
    '.npy': 'numpy (N, 4) [t, x, y, p]', '.npz': 'HighREV chunk', '.aedat4': 'AEDAT4 (needs pip install aedat)'
}


def _ext(path):
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in EVENT_FILE_FORMATS:
        raise EventFormatError(f'{os.fspath(path)}: unknown event file extension "{ext}"; expected one of '
                               f'{sorted(EVENT_FILE_FORMATS)}.')
    return ext


def _readable_ext(path):
    """The extension of an existing event file of a known format (raises otherwise)."""
    ext = _ext(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{os.fspath(path)}: no such event file.')
    return ext


def read_events(path, **kwargs):
    """Reads an event file into an :class:`EventStream`, choosing the reader by extension.

    ``.h5/.hdf5`` -> :func:`read_h5_events` (``t_range``, ``validate``); ``.txt/.csv`` -> :func:`read_text_events`
    (``time_scale``, ``height``, ``width``); ``.npy`` -> :func:`read_npy_events`; ``.npz`` ->
    :func:`read_highrev_chunk` (one chunk; use :func:`read_highrev_events` for a frame); ``.aedat4`` ->
    :func:`read_aedat4` (events only here).

    Args:
        path (str | os.PathLike): Event file.
        **kwargs: Passed to the reader.

    Returns:
        EventStream: The events.
    """
    ext = _readable_ext(path)
    if ext in ('.h5', '.hdf5'):
        from basicsr.events.h5_io import read_h5_events
        return read_h5_events(path, **kwargs)
    if ext in ('.txt', '.csv'):
        from basicsr.events.text_io import read_text_events
        return read_text_events(path, **kwargs)
    if ext == '.npy':
        from basicsr.events.text_io import read_npy_events
        return read_npy_events(path, **kwargs)
    if ext == '.npz':
        from basicsr.events.npz_io import read_highrev_chunk
        return read_highrev_chunk(path, **kwargs)
    from basicsr.events.aedat_io import read_aedat4
    return read_aedat4(path, read_frames=False, **kwargs)[0]


def write_events(path, stream, **kwargs):
    """Writes an :class:`EventStream`, choosing the writer by extension (h5, txt/csv, npy, npz), atomically.

    Args:
        path (str | os.PathLike): Output file.
        stream (EventStream): Events.
        **kwargs: Passed to the writer (e.g. ``frames`` for h5).
    """
    ext = _ext(path)
    if ext in ('.h5', '.hdf5'):
        from basicsr.events.h5_io import write_event_h5
        return write_event_h5(path, stream, **kwargs)
    if ext in ('.txt', '.csv'):
        from basicsr.events.text_io import write_text_events
        return write_text_events(path, stream, **kwargs)
    if ext == '.npy':
        from basicsr.events.text_io import write_npy_events
        return write_npy_events(path, stream, **kwargs)
    if ext == '.npz':
        from basicsr.events.npz_io import write_highrev_chunk
        return write_highrev_chunk(path, stream, **kwargs)
    raise EventFormatError(f'{os.fspath(path)}: writing AEDAT4 is not supported; write .h5, .txt, .npy or .npz.')
