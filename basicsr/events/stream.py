"""The canonical in-memory event stream, its validation and time-window slicing.

Canonical form (``spec/formats.md``): ``x``, ``y`` uint16 pixel column / row, ``t`` float64 seconds (absolute, as in
the source), ``p`` int8 in {-1, +1}, sorted by ``t`` (non-decreasing), together with the sensor size (H, W).
"""
from dataclasses import dataclass, field

import numpy as np

__all__ = ['EventFormatError', 'EventStream', 'Frame', 'validate_events', 'to_canonical', 'concatenate_streams',
           'check_timestamps']


class EventFormatError(ValueError):
    """Raised when events, an event file or a representation request do not have the expected form."""


def _where(source):
    return f' in {source}' if source else ''


def _first_bad(mask):
    return int(np.flatnonzero(mask)[0])


def _num_finite(t):
    """Length of the finite prefix of ``t``."""
    finite = np.isfinite(t)
    return len(t) if finite.all() else _first_bad(~finite)


def _nonfinite_error(t, index, source, offset=0):
    return EventFormatError(f'Events{_where(source)}: timestamp {offset + index} is {t[index]} (NaN or infinite); '
                            'expected finite seconds.')


def check_timestamps(t, source=None, offset=0, previous=None, hint=''):
    """Checks that timestamps are finite and non-decreasing, vectorised; chunk by chunk for files larger than memory.

    The single check every reader relies on before it trusts a time window (``H5EventReader`` runs it over the
    whole file once when it opens it, the in-memory readers through :meth:`EventStream.validate`).

    Args:
        t (np.ndarray): Timestamps, the whole stream or one chunk of it.
        source (str | None): File (and dataset) named in error messages. Default: None.
        offset (int): Index of ``t[0]`` in the whole stream, for the index in messages. Default: 0.
        previous (float | None): Last timestamp of the previous chunk (None for the first). Default: None.
        hint (str): Appended to the message about unsorted timestamps. Default: ``''``.

    Returns:
        float | None: The last timestamp, to pass as ``previous`` with the next chunk (``previous`` when ``t`` is
        empty).

    Raises:
        EventFormatError: Naming the source and the first bad index (a NaN or infinite time, or the first index
            where the time decreases).
    """
    t = np.asarray(t)
    if len(t) == 0:
        return previous
    num_finite = _num_finite(t)
    head = t[:num_finite]  # the finite prefix: a decrease in it comes before the first NaN
    if previous is not None and num_finite and head[0] < previous:
        raise EventFormatError(f'Events{_where(source)}: timestamps are not sorted: t[{offset}] = {float(head[0])!r} '
                               f'< t[{offset - 1}] = {previous!r}{hint}.')
    unsorted = head[1:] < head[:-1]
    if unsorted.any():
        bad = _first_bad(unsorted)
        raise EventFormatError(f'Events{_where(source)}: timestamps are not sorted: t[{offset + bad + 1}] = '
                               f'{float(head[bad + 1])!r} < t[{offset + bad}] = {float(head[bad])!r}{hint}.')
    if num_finite < len(t):
        raise _nonfinite_error(t, num_finite, source, offset)
    return t[-1].item()


def to_canonical(x, y, t, p, height=None, width=None, source=None, sort=False):
    """Converts raw event arrays to the canonical dtypes and validates them.

    Polarity given as {0, 1} or bool is mapped to {-1, +1} (0 -> -1); ``x``/``y`` may be any integer type (or
    float holding integers, e.g. an N x 4 float array). When ``height`` / ``width`` are None the sensor size is
    inferred as ``max + 1`` of the coordinates.

    Args:
        x (array-like): Pixel columns, shape (N,) or (N, 1).
        y (array-like): Pixel rows, same length.
        t (array-like): Timestamps in seconds.
        p (array-like): Polarities in {-1, +1}, {0, 1} or bool.
        height (int | None): Sensor height. Default: None (inferred).
        width (int | None): Sensor width. Default: None (inferred).
        source (str | None): File or key named in error messages. Default: None.
        sort (bool): Stable-sort by time instead of rejecting unsorted events. Default: False.

    Returns:
        tuple: ``(x uint16, y uint16, t float64, p int8, height, width)``.

    Raises:
        EventFormatError: Naming the source and the problem (lengths, NaN, unsorted, coordinates, polarity).
    """
    arrays = {}
    for name, arr in (('x', x), ('y', y), ('t', t), ('p', p)):
        arr = np.asarray(arr)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise EventFormatError(f'Events{_where(source)}: "{name}" must be 1-D (N,) or (N, 1), got shape '
                                   f'{arr.shape}.')
        arrays[name] = arr
    x, y, t, p = arrays['x'], arrays['y'], arrays['t'], arrays['p']
    n = len(t)
    for name, arr in (('x', x), ('y', y), ('p', p)):
        if len(arr) != n:
            raise EventFormatError(f'Events{_where(source)}: "{name}" has {len(arr)} entries but "t" has {n}.')
    t = np.ascontiguousarray(t, dtype=np.float64)
    if sort and n and (t[1:] < t[:-1]).any():
        num_finite = _num_finite(t)
        if num_finite < n:
            raise _nonfinite_error(t, num_finite, source)
        order = np.argsort(t, kind='stable')
        t, x, y, p = t[order], x[order], y[order], p[order]
    x = _coords(x, 'x', source)
    y = _coords(y, 'y', source)
    p = _polarity(p, source)
    if height is None:
        height = int(y.max()) + 1 if n else 0
    if width is None:
        width = int(x.max()) + 1 if n else 0
    stream = EventStream(x, y, t, p, int(height), int(width))
    stream.validate(source)
    return x, y, t, p, int(height), int(width)


def _coords(arr, name, source):
    if arr.dtype == np.uint16:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind == 'f':
        if len(arr) and not np.isfinite(arr).all():
            raise EventFormatError(f'Events{_where(source)}: "{name}" holds NaN or infinite values.')
        if len(arr) and (arr != np.floor(arr)).any():
            bad = _first_bad(arr != np.floor(arr))
            raise EventFormatError(f'Events{_where(source)}: "{name}"[{bad}] = {arr[bad]} is not an integer pixel '
                                   'coordinate.')
    elif arr.dtype.kind not in 'iu':
        raise EventFormatError(f'Events{_where(source)}: "{name}" must hold integers, got dtype {arr.dtype}.')
    if len(arr):
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > 65535:
            bad = _first_bad((arr < 0) | (arr > 65535))
            raise EventFormatError(f'Events{_where(source)}: "{name}"[{bad}] = {arr[bad]} is outside the sensor '
                                   '(expected 0 <= value < size).')
    return arr.astype(np.uint16)


def _polarity(p, source):
    if p.dtype == np.bool_:
        return np.where(p, 1, -1).astype(np.int8)
    if len(p) == 0:
        return p.astype(np.int8)
    lo, hi = p.min(), p.max()
    if lo >= 0 and hi <= 1 and np.all((p == 0) | (p == 1)):
        return (p.astype(np.int8) * 2 - 1).astype(np.int8)
    if not np.all((p == -1) | (p == 1)):
        bad = _first_bad((p != -1) & (p != 1))
        raise EventFormatError(f'Events{_where(source)}: polarity p[{bad}] = {p[bad]}; expected {{-1, +1}} or '
                               '{0, 1}.')
    return p.astype(np.int8)


@dataclass
class Frame:
    """An image that travels with an event stream (APS frame, blurry or sharp frame).

    Args:
        image (np.ndarray): The pixels as stored (uint8/uint16, (H, W) or (H, W, C)).
        timestamp (float): Frame time in seconds, on the clock of the events.
        exposure_start (float | None): Start of the exposure in seconds. Default: None.
        exposure_end (float | None): End of the exposure in seconds. Default: None.
        attrs (dict): Further attributes from the file (e.g. ``event_idx``, ``type``). Default: empty.
    """
    image: np.ndarray
    timestamp: float
    exposure_start: float = None
    exposure_end: float = None
    attrs: dict = field(default_factory=dict)

    @property
    def exposure(self):
        """tuple | None: ``(exposure_start, exposure_end)`` when both are known."""
        if self.exposure_start is None or self.exposure_end is None:
            return None
        return (self.exposure_start, self.exposure_end)


@dataclass(eq=False)
class EventStream:
    """Events in the canonical form, sorted by time, with the sensor size.

    Construction is cheap and does not copy; use :meth:`from_arrays` to convert and validate raw arrays.

    Args:
        x (np.ndarray): uint16 (N,) pixel columns, 0 ... width - 1.
        y (np.ndarray): uint16 (N,) pixel rows, 0 ... height - 1.
        t (np.ndarray): float64 (N,) seconds, non-decreasing.
        p (np.ndarray): int8 (N,) polarities in {-1, +1}.
        height (int): Sensor height H.
        width (int): Sensor width W.
    """
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray
    height: int
    width: int

    @classmethod
    def from_arrays(cls, x, y, t, p, height=None, width=None, source=None, sort=False):
        """Converts and validates raw arrays (see :func:`to_canonical`).

        Args:
            x, y, t, p (array-like): Event fields (polarity {0, 1} accepted).
            height (int | None): Sensor height; None infers ``max(y) + 1``. Default: None.
            width (int | None): Sensor width; None infers ``max(x) + 1``. Default: None.
            source (str | None): Named in error messages. Default: None.
            sort (bool): Stable-sort unsorted input instead of raising. Default: False.

        Returns:
            EventStream: The canonical stream.
        """
        return cls(*to_canonical(x, y, t, p, height, width, source=source, sort=sort))

    @classmethod
    def from_array(cls, events, height=None, width=None, source=None, sort=False):
        """Builds a stream from an (N, 4) array with rows ``[t, x, y, p]``.

        Args:
            events (np.ndarray): (N, 4) array.
            height (int | None): Sensor height. Default: None (inferred).
            width (int | None): Sensor width. Default: None (inferred).
            source (str | None): Named in error messages. Default: None.
            sort (bool): Stable-sort unsorted input instead of raising. Default: False.

        Returns:
            EventStream: The canonical stream.
        """
        events = np.asarray(events)
        if events.ndim != 2 or events.shape[1] != 4:
            raise EventFormatError(f'Events{_where(source)}: expected an (N, 4) array of [t, x, y, p], got shape '
                                   f'{events.shape}.')
        return cls.from_arrays(events[:, 1], events[:, 2], events[:, 0], events[:, 3], height, width, source, sort)

    @classmethod
    def empty(cls, height, width):
        """Returns a stream without events.

        Args:
            height (int): Sensor height.
            width (int): Sensor width.

        Returns:
            EventStream: Zero events.
        """
        return cls(np.zeros(0, np.uint16), np.zeros(0, np.uint16), np.zeros(0, np.float64), np.zeros(0, np.int8),
                   int(height), int(width))

    def validate(self, source=None):
        """Checks dtypes, lengths, finite sorted times, coordinates inside the sensor and polarity values.

        Args:
            source (str | None): Named in error messages. Default: None.

        Returns:
            EventStream: ``self``, for chaining.

        Raises:
            EventFormatError: Naming the first problem found.
        """
        where = _where(source)
        expected = {'x': np.uint16, 'y': np.uint16, 't': np.float64, 'p': np.int8}
        for name, dtype in expected.items():
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 1:
                got = getattr(arr, 'dtype', type(arr).__name__)
                raise EventFormatError(f'Events{where}: "{name}" must be a 1-D {np.dtype(dtype).name} array, got '
                                       f'{got}; use EventStream.from_arrays to convert.')
        n = len(self.t)
        for name in 'xyp':
            if len(getattr(self, name)) != n:
                raise EventFormatError(f'Events{where}: "{name}" has {len(getattr(self, name))} entries but "t" has '
                                       f'{n}.')
        if self.height <= 0 or self.width <= 0:
            if n:
                raise EventFormatError(f'Events{where}: sensor size must be positive, got height={self.height}, '
                                       f'width={self.width}.')
        if n == 0:
            return self
        check_timestamps(self.t, source, hint=' (pass sort=True to sort them)')
        for name, size, label in (('x', self.width, 'width'), ('y', self.height, 'height')):
            arr = getattr(self, name)
            if int(arr.max()) >= size:
                bad = _first_bad(arr >= size)
                raise EventFormatError(f'Events{where}: {name}[{bad}] = {arr[bad]} is outside the sensor '
                                       f'({label} {size}; expected 0 <= {name} < {size}).')
        if not np.all(np.abs(self.p) == 1):
            bad = _first_bad(np.abs(self.p) != 1)
            raise EventFormatError(f'Events{where}: polarity p[{bad}] = {self.p[bad]}; expected -1 or +1.')
        return self

    def __len__(self):
        return len(self.t)

    @property
    def shape(self):
        """tuple: Sensor size ``(height, width)``."""
        return (self.height, self.width)

    @property
    def t_first(self):
        """float: Time of the first event (raises on an empty stream)."""
        self._require_events('t_first')
        return float(self.t[0])

    @property
    def t_last(self):
        """float: Time of the last event (raises on an empty stream)."""
        self._require_events('t_last')
        return float(self.t[-1])

    @property
    def duration(self):
        """float: ``t_last - t_first``; 0 for fewer than two events."""
        return float(self.t[-1] - self.t[0]) if len(self) else 0.0

    def _require_events(self, what):
        if len(self) == 0:
            raise EventFormatError(f'{what}: the event stream is empty.')

    def index_range(self, t_start, t_end, closed='left'):
        """Returns the index range of the events in a time window (binary search, no copy).

        Args:
            t_start (float): Window start in seconds (inclusive).
            t_end (float): Window end in seconds.
            closed (str): ``'left'`` for [t_start, t_end), ``'both'`` for [t_start, t_end]. Default: ``'left'``.

        Returns:
            tuple[int, int]: ``(i0, i1)`` such that ``t[i0:i1]`` is the window.
        """
        if closed not in ('left', 'both'):
            raise ValueError(f"closed must be 'left' or 'both', got {closed!r}.")
        if not t_end >= t_start:
            raise EventFormatError(f'Time window [{t_start}, {t_end}]: t_end must not be before t_start.')
        i0 = int(np.searchsorted(self.t, t_start, side='left'))
        i1 = int(np.searchsorted(self.t, t_end, side='right' if closed == 'both' else 'left'))
        return i0, max(i0, i1)

    def window(self, t_start, t_end, closed='left', allow_empty=False):
        """Returns the events of a time window as views of this stream (no copy).

        Args:
            t_start (float): Window start in seconds (inclusive).
            t_end (float): Window end in seconds.
            closed (str): ``'left'`` for [t_start, t_end), ``'both'`` for [t_start, t_end]. Default: ``'left'``.
            allow_empty (bool): Return an empty stream instead of raising. Default: False.

        Returns:
            EventStream: The window, sharing memory with this stream.

        Raises:
            EventFormatError: If the window holds no events and ``allow_empty`` is False.
        """
        i0, i1 = self.index_range(t_start, t_end, closed)
        if i1 == i0 and not allow_empty:
            span = f'[{self.t[0]}, {self.t[-1]}]' if len(self) else 'empty'
            raise EventFormatError(f'Time window [{t_start}, {t_end}] holds no events (stream spans {span}); pass '
                                   'allow_empty=True to accept an empty window.')
        return self[i0:i1]

    def __getitem__(self, index):
        if not isinstance(index, slice):
            raise TypeError('EventStream supports slicing by index ranges only (stream[i0:i1]); use window() for '
                            'time windows.')
        return EventStream(self.x[index], self.y[index], self.t[index], self.p[index], self.height, self.width)

    def to_array(self, dtype=np.float64):
        """Returns an (N, 4) array with rows ``[t, x, y, p]``.

        Args:
            dtype (np.dtype): Output dtype. Default: float64.

        Returns:
            np.ndarray: (N, 4) array.
        """
        out = np.empty((len(self), 4), dtype=dtype)
        out[:, 0], out[:, 1], out[:, 2], out[:, 3] = self.t, self.x, self.y, self.p
        return out

    def arrays(self):
        """Returns ``(x, y, t, p)``, the arguments the representations take.

        Returns:
            tuple: The four field arrays.
        """
        return self.x, self.y, self.t, self.p

    def copy(self):
        """Returns a deep copy (own memory).

        Returns:
            EventStream: The copy.
        """
        return EventStream(self.x.copy(), self.y.copy(), self.t.copy(), self.p.copy(), self.height, self.width)

    def __repr__(self):
        span = f', t=[{self.t[0]:.6f}, {self.t[-1]:.6f}] s' if len(self) else ''
        return f'EventStream({len(self)} events, {self.height}x{self.width}{span})'


def validate_events(x, y, t, p, height, width, source=None):
    """Validates canonical event arrays without converting them.

    Args:
        x, y (np.ndarray): uint16 pixel columns and rows.
        t (np.ndarray): float64 sorted seconds.
        p (np.ndarray): int8 polarities in {-1, +1}.
        height (int): Sensor height.
        width (int): Sensor width.
        source (str | None): Named in error messages. Default: None.

    Returns:
        EventStream: A stream over the same arrays.

    Raises:
        EventFormatError: Naming the first problem found.
    """
    return EventStream(x, y, t, p, int(height), int(width)).validate(source)


def concatenate_streams(streams):
    """Concatenates streams of the same sensor, in order (the result must stay sorted).

    Args:
        streams (list[EventStream]): Streams to join, at least one.

    Returns:
        EventStream: The joined, validated stream.
    """
    if not streams:
        raise EventFormatError('concatenate_streams: expected at least one stream.')
    sizes = {(s.height, s.width) for s in streams}
    if len(sizes) != 1:
        raise EventFormatError(f'concatenate_streams: sensor sizes differ: {sorted(sizes)}.')
    h, w = sizes.pop()
    out = EventStream(*(np.concatenate([getattr(s, k) for s in streams]) for k in 'xytp'), h, w)
    return out.validate('concatenate_streams')
