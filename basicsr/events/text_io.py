"""Plain-text (``t x y p`` per line) and numpy ``.npy`` (N x 4 ``[t, x, y, p]``) event files."""
import os

import numpy as np

from basicsr.events.stream import EventFormatError, EventStream

__all__ = ['read_text_events', 'write_text_events', 'read_npy_events', 'write_npy_events']


def _atomic_tmp(path):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return path, os.path.join(folder, f'.{os.path.basename(path)}.tmp{os.getpid()}')


def _split_header(lines, path):
    """Returns (height, width, first data line index) from an optional ``W H`` first data line."""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        fields = stripped.split()
        if len(fields) == 2:
            try:
                width, height = int(fields[0]), int(fields[1])
            except ValueError:
                raise EventFormatError(f'{path}: line {i + 1} "{stripped}" is neither a "W H" header nor an event '
                                       '"t x y p".') from None
            return height, width, i + 1
        return None, None, i
    return None, None, len(lines)


def read_text_events(path, time_scale=1.0, height=None, width=None, sort=False):
    """Reads a text file of events, one ``t x y p`` per line.

    Lines starting with ``#`` are comments; an optional first line of exactly two integers ``W H`` gives the
    sensor size (E2VID / rpg convention). Polarity may be 0/1 or -1/+1 (0 -> -1).

    Args:
        path (str | os.PathLike): Text file.
        time_scale (float): Multiplier turning the file's time unit into seconds (1e-6 for microseconds).
            Default: 1.0.
        height (int | None): Sensor height; overrides the header; None uses the header or infers it. Default: None.
        width (int | None): Sensor width, as ``height``. Default: None.
        sort (bool): Stable-sort unsorted events instead of raising. Default: False.

    Returns:
        EventStream: The events.
    """
    path = os.fspath(path)
    try:
        with open(path, 'r', encoding='utf-8') as f:
            lines = f.readlines()
    except UnicodeDecodeError as err:
        raise EventFormatError(f'{path}: not a text event file ({err}).') from err
    head_h, head_w, start = _split_header(lines, path)
    height = head_h if height is None else height
    width = head_w if width is None else width
    body = [ln for ln in lines[start:] if ln.strip() and not ln.lstrip().startswith('#')]
    if body:
        try:
            data = np.loadtxt(body, dtype=np.float64, ndmin=2)
        except ValueError as err:
            raise EventFormatError(f'{path}: cannot parse events as "t x y p" lines ({err}).') from err
        if data.shape[1] != 4:
            raise EventFormatError(f'{path}: expected 4 columns "t x y p" per line, got {data.shape[1]}.')
    else:
        data = np.zeros((0, 4))
    if time_scale != 1.0:
        data[:, 0] *= time_scale
    return EventStream.from_array(data, height, width, source=path, sort=sort)


def write_text_events(path, stream, header=True):
    """Writes events as text lines ``t x y p`` (t with ``%.9f``, p as 0/1), atomically.

    Args:
        path (str | os.PathLike): Output file.
        stream (EventStream): Events.
        header (bool): Write the ``W H`` first line. Default: True.
    """
    path, tmp = _atomic_tmp(path)
    try:
        with open(tmp, 'w', encoding='utf-8') as f:
            if header:
                f.write(f'{stream.width} {stream.height}\n')
            if len(stream):
                table = np.empty(len(stream), dtype=[('t', 'f8'), ('x', 'i4'), ('y', 'i4'), ('p', 'i4')])
                table['t'], table['x'], table['y'], table['p'] = stream.t, stream.x, stream.y, stream.p > 0
                np.savetxt(f, table, fmt=['%.9f', '%d', '%d', '%d'])
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_npy_events(path, height=None, width=None, time_scale=1.0, sort=False, mmap=False):
    """Reads an ``.npy`` (N, 4) array with rows ``[t, x, y, p]`` (e.g. the low-light ``others/events``).

    Args:
        path (str | os.PathLike): The ``.npy`` file.
        height (int | None): Sensor height; None infers ``max(y) + 1``. Default: None.
        width (int | None): Sensor width; None infers ``max(x) + 1``. Default: None.
        time_scale (float): Multiplier to seconds. Default: 1.0.
        sort (bool): Stable-sort unsorted events instead of raising. Default: False.
        mmap (bool): Memory-map the file instead of reading it at once. Default: False.

    Returns:
        EventStream: The events.
    """
    path = os.fspath(path)
    try:
        data = np.load(path, mmap_mode='r' if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise EventFormatError(f'{path}: not a readable .npy event array ({err}).') from err
    if data.ndim != 2 or data.shape[1] != 4:
        raise EventFormatError(f'{path}: expected an (N, 4) array of [t, x, y, p], got shape {data.shape}.')
    t = data[:, 0].astype(np.float64)
    if time_scale != 1.0:
        t *= time_scale
    return EventStream.from_arrays(data[:, 1], data[:, 2], t, data[:, 3], height, width, source=path, sort=sort)


def write_npy_events(path, stream, dtype=np.float64):
    """Writes an (N, 4) ``[t, x, y, p]`` array (p in {-1, +1}) atomically.

    Args:
        path (str | os.PathLike): Output ``.npy`` file.
        stream (EventStream): Events.
        dtype (np.dtype): Array dtype (float32 matches the low-light data, float64 keeps times exact).
            Default: float64.
    """
    path, tmp = _atomic_tmp(path)
    try:
        with open(tmp, 'wb') as f:
            np.save(f, stream.to_array(dtype))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
