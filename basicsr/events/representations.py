"""Event representations: voxel grid, SCER, event mask and the two normalisations.

All take numpy arrays (x, y integer pixel coordinates, t seconds, p in {-1, +1}) and return float32 arrays of
shape (C, H, W). Accumulation is one ``np.bincount`` per time bin over a flat pixel index: for time-sorted events
each bin is a contiguous slice, so every histogram has only H*W cells and stays in cache.
"""
import numpy as np

from basicsr.events.stream import EventFormatError

__all__ = ['voxel_grid', 'scer', 'event_mask', 'normalize_nonzero', 'normalize_maxabs', 'check_num_bins']


def check_num_bins(num_bins, name='num_bins', even=False):
    """Validates a bin count.

    Args:
        num_bins (int): The requested number of bins.
        name (str): Argument name used in the message. Default: ``'num_bins'``.
        even (bool): Require an even count (SCER). Default: False.

    Returns:
        int: The count.

    Raises:
        EventFormatError: Naming the argument and what was expected.
    """
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)):
        raise EventFormatError(f'{name} must be an integer, got {num_bins!r}.')
    if even and (num_bins < 2 or num_bins % 2):
        raise EventFormatError(f'{name} must be an even integer >= 2 (SCER splits the window into two equal '
                               f'halves), got {num_bins}.')
    if num_bins < 1:
        raise EventFormatError(f'{name} must be >= 1, got {num_bins}.')
    return int(num_bins)


def _check_size(height, width):
    for name, v in (('height', height), ('width', width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise EventFormatError(f'{name} must be a positive integer, got {v!r}.')
    return int(height), int(width)


def _check_events(x, y, t, p, height, width):
    """Checks shapes and the coordinate range; returns the arrays (float coordinates cast to intp)."""
    x, y, t, p = np.asarray(x), np.asarray(y), np.asarray(t), np.asarray(p)
    n = t.shape[0] if t.ndim == 1 else -1
    for name, arr in (('x', x), ('y', y), ('t', t), ('p', p)):
        if arr.ndim != 1 or arr.shape[0] != n:
            raise EventFormatError(f'Event arrays must be 1-D of equal length; "{name}" has shape {arr.shape}, "t" '
                                   f'has shape {t.shape}.')
        if arr.dtype.kind not in 'iuf' and not (name == 'p' and arr.dtype.kind == 'b'):
            raise EventFormatError(f'"{name}" must be numeric, got dtype {arr.dtype}.')
    if n == 0:
        return x, y, t, p
    if not (np.isfinite(t[0]) and np.isfinite(t[-1]) and np.isfinite(t).all()):
        bad = int(np.flatnonzero(~np.isfinite(t))[0])
        raise EventFormatError(f't[{bad}] = {t[bad]}: timestamps must be finite seconds.')
    for name, arr, size, label in (('x', x, width, 'width'), ('y', y, height, 'height')):
        lo, hi = (0 if arr.dtype.kind == 'u' else arr.min()), arr.max()
        if not (lo >= 0 and hi < size):
            bad = int(np.flatnonzero(~((arr >= 0) & (arr < size)))[0])
            raise EventFormatError(f'{name}[{bad}] = {arr[bad]} is outside the sensor ({label} {size}; expected '
                                   f'0 <= {name} < {size}).')
    if x.dtype.kind == 'f' or y.dtype.kind == 'f':
        x, y = x.astype(np.intp), y.astype(np.intp)
    p_lo, p_hi = p.min(), p.max()
    if p_lo < -1 or p_hi > 1:
        bad = int(np.flatnonzero((p < -1) | (p > 1))[0])
        raise EventFormatError(f'p[{bad}] = {p[bad]}: polarity must be -1/+1 (or 0/1, with 0 read as -1).')
    if p_lo >= 0 and (p == 0).any():
        p = np.where(p > 0, 1, -1).astype(np.int8)  # {0, 1} polarity: 0 means OFF, as in the reference
    return x, y, t, p


def _is_sorted(t):
    return t.shape[0] < 2 or not (t[1:] < t[:-1]).any()


class _Workspace:
    """Reusable per-call scratch buffers for one slice of events: flat pixel index and two float64 rows.

    Working slice by slice (at most ``_CHUNK`` events) avoids page-faulting fresh multi-megabyte arrays, which
    costs as much as the histograms themselves; the element-wise steps run on ``_STEP``-event pieces so that each
    piece stays in cache from one step to the next.
    """

    def __init__(self, size):
        self.xy = np.empty(size, np.intp)
        self.w0 = np.empty(size, np.float64)
        self.w1 = np.empty(size, np.float64)

    def load(self, x, y, p, width, i0, i1, t=None, t_ref=0.0, clip=None):
        """Fills ``xy = y * W + x``, ``w0 = p`` and, with ``t``, ``w1 = p * (t - t_ref)`` for events [i0, i1).

        Args:
            x, y, p (np.ndarray): Event arrays.
            width (int): Sensor width.
            i0 (int): First event.
            i1 (int): End event (exclusive).
            t (np.ndarray | None): Times, for ``w1``. Default: None.
            t_ref (float): Reference time of ``w1``. Default: 0.
            clip (tuple | None): Bounds applied to ``t - t_ref`` before the product. Default: None.

        Returns:
            int: Number of events loaded.
        """
        m = i1 - i0
        for a in range(0, m, _STEP):
            b = min(a + _STEP, m)
            xy, w0 = self.xy[a:b], self.w0[a:b]
            np.copyto(xy, y[i0 + a:i0 + b], casting='unsafe')
            xy *= width
            np.add(xy, x[i0 + a:i0 + b], out=xy, casting='unsafe')
            np.copyto(w0, p[i0 + a:i0 + b], casting='unsafe')
            if t is not None:
                w1 = self.w1[a:b]
                np.subtract(t[i0 + a:i0 + b], t_ref, out=w1, dtype=np.float64)
                if clip is not None:
                    np.clip(w1, clip[0], clip[1], out=w1)
                w1 *= w0
        return m


_STEP = 1 << 15
_CHUNK = 1 << 18


def _chunks(i0, i1):
    return ((a, min(a + _CHUNK, i1)) for a in range(i0, i1, _CHUNK))


def _time_bounds(t, t0, scale, num_edges):
    """Indices of the first event with ``(t - t0) * scale >= k`` for k = 1 .. num_edges (t sorted)."""
    if num_edges <= 0:
        return np.zeros(0, np.intp)
    edges = t0 + np.arange(1, num_edges + 1) / scale
    return np.searchsorted(t, edges, side='left')


def voxel_grid(x, y, t, p, num_bins, height, width, t_range=None):
    """Voxel grid with linear-in-time (bilinear) splatting.

    Bin positions are ``tau = (num_bins - 1) * (t - t0) / (t1 - t0)``; each event adds ``p * (1 - frac(tau))``
    to bin ``floor(tau)`` and ``p * frac(tau)`` to the next one. ``t_range=None`` takes ``(t0, t1)`` as the first
    and last event (by position; a zero span is replaced by 1): the E2VID / HighREV grid. A fixed window, e.g.
    ``(0, 0.1)`` with 13 bins, gives the low-light pipeline's grid. Events outside a fixed window by more than
    1e-6 of its span are rejected (slice the stream first); those within that tolerance (float32 rounding of the
    window end) fall into the end bin, as in the reference. Times are used in float64 relative to ``t0``.

    Args:
        x (np.ndarray): (N,) integer pixel columns.
        y (np.ndarray): (N,) integer pixel rows.
        t (np.ndarray): (N,) seconds (float64; float32 accepted and promoted).
        p (np.ndarray): (N,) polarities in {-1, +1} ({0, 1} accepted: 0 is read as -1).
        num_bins (int): Number of time bins B >= 1.
        height (int): Sensor height H.
        width (int): Sensor width W.
        t_range (tuple[float, float] | None): Fixed window ``(t0, t1)``. Default: None (first to last event).

    Returns:
        np.ndarray: float32 (B, H, W); the signed mass ``sum`` equals ``sum(p)``.
    """
    num_bins = check_num_bins(num_bins)
    height, width = _check_size(height, width)
    x, y, t, p = _check_events(x, y, t, p, height, width)
    hw = height * width
    n = t.shape[0]
    out = np.zeros((num_bins, hw), np.float32)
    if n == 0:
        return out.reshape(num_bins, height, width)
    if t_range is None:
        t0, t1 = float(t[0]), float(t[-1])
    else:
        try:
            t0, t1 = (float(v) for v in t_range)
        except (TypeError, ValueError):
            raise EventFormatError(f't_range must be None or a pair (t0, t1) of seconds, got {t_range!r}.') from None
        if not t1 > t0:
            raise EventFormatError(f't_range must satisfy t0 < t1, got {t_range!r}.')
    span = t1 - t0
    if span == 0:
        span = 1.0
    scale = (num_bins - 1) / span
    is_sorted = _is_sorted(t)
    clamp = False
    if t_range is not None:
        tol = 1e-6 * span
        lo, hi = (float(t[0]), float(t[-1])) if is_sorted else (float(t.min()), float(t.max()))
        if lo < t0 - tol or hi > t1 + tol:
            bad = int(np.flatnonzero((t < t0 - tol) | (t > t1 + tol))[0])
            raise EventFormatError(f't[{bad}] = {t[bad]!r} is outside t_range {tuple(t_range)}; slice the events to '
                                   'the window first.')
        clamp = lo < t0 or hi > t1
    if num_bins == 1 or not is_sorted:
        return _voxel_grid_unsorted(x, y, t, p, num_bins, height, width, t0, scale)
    # Bin k takes the contiguous slice with tau in [k, k+1): those events add p to bin k and move p * (tau - k)
    # from bin k to bin k + 1. The split is continuous at integer tau, so which side of a boundary an event
    # lands on changes nothing but rounding.
    bounds = np.concatenate(([0], _time_bounds(t, t0, scale, num_bins - 2), [n]))
    work = _Workspace(min(_CHUNK, n))
    carry = np.zeros(hw, np.float64)
    for k in range(num_bins - 1):
        whole = np.zeros(hw, np.float64)
        upper = np.zeros(hw, np.float64)
        # p * (tau - k) = p * (t - t_k) * scale with t_k the time of integer position k; scale applied per pixel.
        t_k = t0 + k / scale
        clip = (-k / scale, (num_bins - 1 - k) / scale) if clamp else None
        for i0, i1 in _chunks(bounds[k], bounds[k + 1]):
            m = work.load(x, y, p, width, i0, i1, t=t, t_ref=t_k, clip=clip)
            whole += np.bincount(work.xy[:m], weights=work.w0[:m], minlength=hw)
            upper += np.bincount(work.xy[:m], weights=work.w1[:m], minlength=hw)
        upper *= scale
        whole -= upper
        whole += carry
        out[k] = whole
        carry = upper
    out[num_bins - 1] = carry
    return out.reshape(num_bins, height, width)


def _voxel_grid_unsorted(x, y, t, p, num_bins, height, width, t0, scale):
    """Voxel grid for unsorted events: one flat (bin, pixel) index for both halves of the split."""
    hw = height * width
    tau = np.subtract(t, t0, dtype=np.float64)
    tau *= scale
    np.clip(tau, 0, num_bins - 1, out=tau)
    pf = p.astype(np.float64)
    idx = np.multiply(y, width, dtype=np.intp)
    np.add(idx, x, out=idx, dtype=np.intp, casting='unsafe')
    if num_bins == 1:
        return np.bincount(idx, weights=pf, minlength=hw).astype(np.float32).reshape(1, height, width)
    lower = np.minimum(tau.astype(np.intp), num_bins - 2)
    frac = tau - lower
    frac *= pf
    lower *= hw
    idx += lower
    whole = np.bincount(idx, weights=pf, minlength=num_bins * hw)
    upper = np.bincount(idx, weights=frac, minlength=num_bins * hw)
    grid = whole - upper
    grid[hw:] += upper[:-hw]
    return grid.astype(np.float32).reshape(num_bins, height, width)


def scer(x, y, t, p, num_bins, height, width, keep_middle=False, closed_end=True):
    """Symmetric Cumulative Event Representation (EFNet).

    With ``dt = t[-1] - t[0]`` and ``tm = t[0] + dt / 2``, left channel ``k < B/2`` is ``-sum(p)`` over
    ``[t0 + k dt/B, tm)`` and right channel ``k >= B/2`` is ``+sum(p)`` over ``[tm, t0 + (k+1) dt/B)``, the last
    interval closed so every event counts. Boundaries are found with ``searchsorted(side='left')`` on times
    relative to ``t[0]`` in float64. Nearest pixel, no clipping. Events must be sorted by time. An empty window
    gives zeros.

    Args:
        x (np.ndarray): (N,) integer pixel columns.
        y (np.ndarray): (N,) integer pixel rows.
        t (np.ndarray): (N,) sorted seconds.
        p (np.ndarray): (N,) polarities in {-1, +1} ({0, 1} accepted: 0 is read as -1).
        num_bins (int): Even number of channels B (6 for EFNet).
        height (int): Sensor height H.
        width (int): Sensor width W.
        keep_middle (bool): Insert an all-zero channel between the halves (B + 1 channels). Default: False.
        closed_end (bool): Count the events at ``t == t[-1]`` in the last channel (the project's rule). False
            reproduces the original EFNet scripts, whose half-open last interval drops them. Default: True.

    Returns:
        np.ndarray: float32 (B, H, W), or (B + 1, H, W) with ``keep_middle``.
    """
    num_bins = check_num_bins(num_bins, even=True)
    height, width = _check_size(height, width)
    x, y, t, p = _check_events(x, y, t, p, height, width)
    hw = height * width
    n = t.shape[0]
    half = num_bins // 2
    out = np.zeros((num_bins + int(bool(keep_middle)), hw), np.float32)
    if n == 0:
        return out.reshape(-1, height, width)
    if not _is_sorted(t):
        bad = int(np.flatnonzero(t[1:] < t[:-1])[0])
        raise EventFormatError(f'scer: events must be sorted by time; t[{bad + 1}] < t[{bad}].')
    t_start = t[0]
    dt = float(t[-1] - t_start)
    edges = np.arange(1, num_bins) * (dt / num_bins)
    edges[half - 1] = dt / 2
    # searchsorted on relative times without materialising t - t[0]: compare against t[0] + edge, checked below.
    cut = np.searchsorted(t, t_start + edges, side='left')
    for j, e in enumerate(edges):
        cut[j] = _fix_cut(t, t_start, e, cut[j])
    end = n if closed_end else _fix_cut(t, t_start, dt, int(np.searchsorted(t, t[-1], side='left')))
    bounds = np.minimum(np.concatenate(([0], cut, [end])), end)
    work = _Workspace(min(_CHUNK, n))
    bins = []
    for k in range(num_bins):
        acc = np.zeros(hw, np.float64)
        for i0, i1 in _chunks(bounds[k], bounds[k + 1]):
            m = work.load(x, y, p, width, i0, i1)
            acc += np.bincount(work.xy[:m], weights=work.w0[:m], minlength=hw)
        bins.append(acc)
    right0 = half + int(bool(keep_middle))
    acc = np.zeros(hw, np.float64)
    for k in range(half - 1, -1, -1):
        acc -= bins[k]
        out[k] = acc
    acc = np.zeros(hw, np.float64)
    for k in range(half, num_bins):
        acc += bins[k]
        out[right0 + k - half] = acc
    return out.reshape(-1, height, width)


def _fix_cut(t, t_start, edge, idx):
    """Returns ``searchsorted(t - t_start, edge, 'left')`` exactly, given ``idx`` found against ``t_start + edge``.

    The two comparisons can only disagree for events within a few ulps of the boundary, so only that
    neighbourhood is re-examined on relative times (subtracting a constant keeps the order).
    """
    bound = t_start + edge
    margin = 4 * np.spacing(max(abs(bound), abs(float(t_start)), abs(float(t[-1]))))
    lo = int(np.searchsorted(t, bound - margin, side='left'))
    hi = int(np.searchsorted(t, bound + margin, side='right'))
    if hi <= lo:
        return int(idx)
    rel = np.subtract(t[lo:hi], t_start, dtype=np.float64)
    return lo + int(np.searchsorted(rel, edge, side='left'))


def event_mask(rep, channel_axis=0):
    """Event mask: OR over channels of ``rep != 0``, then a 3x3 morphological closing.

    The closing uses OpenCV's neutral border (outside pixels never dilate and never erode the mask).

    Args:
        rep (np.ndarray): Representation (C, H, W) (or (H, W, C) with ``channel_axis=-1``; (H, W) accepted).
        channel_axis (int): Axis of the channels. Default: 0.

    Returns:
        np.ndarray: uint8 (H, W) in {0, 1}.
    """
    rep = np.asarray(rep)
    if rep.ndim == 3:
        mask = np.any(rep != 0, axis=channel_axis)
    elif rep.ndim == 2:
        mask = rep != 0
    else:
        raise EventFormatError(f'event_mask: rep must be (C, H, W), (H, W, C) or (H, W), got shape {rep.shape}.')
    return _erode3(_dilate3(mask)).astype(np.uint8)


def _dilate3(m):
    out = m.copy()
    out[1:, :] |= m[:-1, :]
    out[:-1, :] |= m[1:, :]
    rows = out.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def _erode3(m):
    out = m.copy()
    out[1:, :] &= m[:-1, :]
    out[:-1, :] &= m[1:, :]
    rows = out.copy()
    out[:, 1:] &= rows[:, :-1]
    out[:, :-1] &= rows[:, 1:]
    return out


def normalize_nonzero(rep):
    """Standardises the non-zero entries (E2VID / low-light ``normalize_events``); zeros stay zero.

    ``mean = sum(v) / nnz``, ``std = sqrt(sum(v^2) / nnz - mean^2)``; non-zero ``v`` becomes ``(v - mean) / std``.
    Statistics are taken over the whole array, so the layout ((C, H, W) or (H, W, C)) does not matter. All-zero
    input, or a zero std, returns the input unchanged (as float32) instead of NaN.

    Args:
        rep (np.ndarray): Any-shape representation.

    Returns:
        np.ndarray: float32 array of the same shape.
    """
    rep = np.asarray(rep)
    nonzero = rep != 0
    nnz = int(np.count_nonzero(nonzero))
    if nnz == 0:
        return rep.astype(np.float32)
    v64 = rep.astype(np.float64, copy=False)
    mean = v64.sum() / nnz
    var = np.square(v64).sum() / nnz - mean * mean
    std = np.sqrt(var) if var > 0 else 0.0
    if std == 0:
        return rep.astype(np.float32)
    out = (v64 - mean) / std
    out *= nonzero
    return out.astype(np.float32)


def normalize_maxabs(rep):
    """Divides by ``max(|min v|, |max v|)`` (EFNet ``norm_voxel``), mapping into [-1, 1]; all-zero stays zero.

    Args:
        rep (np.ndarray): Any-shape representation (per frame: call it on one sample, not on a batch).

    Returns:
        np.ndarray: float32 array of the same shape.
    """
    rep = np.asarray(rep)
    if rep.size == 0:
        return rep.astype(np.float32)
    scale = max(abs(float(rep.min())), abs(float(rep.max())))
    if scale == 0 or not np.isfinite(scale):
        if not np.isfinite(scale):
            raise EventFormatError('normalize_maxabs: the representation holds NaN or infinite values.')
        return np.zeros(rep.shape, np.float32)
    return (rep / scale).astype(np.float32)
