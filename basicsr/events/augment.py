"""Augmentation of event streams and representations, consistent with the image it comes with.

Geometry follows numpy on the image's (H, W) axes: ``hflip`` = ``np.flip(img, -1)`` (columns),
``vflip`` = ``np.flip(img, -2)`` (rows), ``rot90(k)`` = ``np.rot90(img, k, axes=(-2, -1))`` (counter-clockwise).
Applying a transform to the stream and then computing the representation gives the same array as computing the
representation and transforming it (tested).

Time reversal mirrors times about the window centre (``t -> t0 + t1 - t``) and negates polarities (a brightness
increase played backwards is a decrease). For a voxel grid this reverses the bins and negates them. For SCER it
only reverses the channel order: the left half is negated by definition, so the mirrored right half of the
reversed stream (negated polarities) lands negated-twice in the left half, i.e. ``S'_k = S_{B-1-k}`` exactly
(events exactly on an interval boundary may move by one interval, since intervals are half-open; the closed last
interval of ``scer(closed_end=True)`` keeps the first and last events symmetric, the reference's open one does not).
"""
import numpy as np

from basicsr.events.stream import EventFormatError, EventStream

__all__ = [
    'hflip_events', 'vflip_events', 'rot90_events', 'reverse_time_events', 'hflip_rep', 'vflip_rep', 'rot90_rep',
    'reverse_time_rep', 'add_hot_pixels', 'add_voxel_noise', 'add_hot_pixel_events', 'augment_events'
]


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f'rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng)}.')
    return rng


def hflip_events(stream):
    """Mirrors columns: ``x -> W - 1 - x``.

    Args:
        stream (EventStream): Events.

    Returns:
        EventStream: New stream (times and polarities shared).
    """
    return EventStream((stream.width - 1 - stream.x.astype(np.int32)).astype(np.uint16), stream.y, stream.t,
                       stream.p, stream.height, stream.width)


def vflip_events(stream):
    """Mirrors rows: ``y -> H - 1 - y``.

    Args:
        stream (EventStream): Events.

    Returns:
        EventStream: New stream.
    """
    return EventStream(stream.x, (stream.height - 1 - stream.y.astype(np.int32)).astype(np.uint16), stream.t,
                       stream.p, stream.height, stream.width)


def rot90_events(stream, k=1):
    """Rotates by ``k`` quarter turns counter-clockwise, like ``np.rot90(img, k)``; odd k swaps H and W.

    Args:
        stream (EventStream): Events.
        k (int): Number of quarter turns. Default: 1.

    Returns:
        EventStream: New stream.
    """
    k = int(k) % 4
    x, y, h, w = stream.x, stream.y, stream.height, stream.width
    for _ in range(k):
        # np.rot90: out[i, j] = in[j, W - 1 - i], so (y, x) -> (W - 1 - x, y), new size (W, H).
        x, y, h, w = y, (w - 1 - x.astype(np.int32)).astype(np.uint16), w, h
    return EventStream(x, y, stream.t, stream.p, h, w)


def reverse_time_events(stream, t_range=None):
    """Plays the stream backwards: ``t -> t0 + t1 - t``, polarity negated, order reversed (stays sorted).

    Args:
        stream (EventStream): Events.
        t_range (tuple | None): Window ``(t0, t1)`` to mirror in; None uses the first and last event. Default: None.

    Returns:
        EventStream: New stream.
    """
    if len(stream) == 0:
        return stream
    t0, t1 = (stream.t[0], stream.t[-1]) if t_range is None else t_range
    t = (t0 + t1) - stream.t[::-1]
    return EventStream(stream.x[::-1].copy(), stream.y[::-1].copy(), np.ascontiguousarray(t),
                       (-stream.p[::-1]).astype(np.int8), stream.height, stream.width)


def _spatial_axes(channel_axis, ndim):
    if ndim == 2:
        return -2, -1
    if channel_axis in (0, -3):
        return -2, -1
    if channel_axis in (-1, 2):
        return -3, -2
    raise EventFormatError(f'channel_axis must be 0 (C, H, W) or -1 (H, W, C), got {channel_axis}.')


def hflip_rep(rep, channel_axis=0):
    """Flips a representation's columns.

    Args:
        rep (np.ndarray): (C, H, W), (H, W, C) with ``channel_axis=-1``, or (H, W).
        channel_axis (int): 0 or -1. Default: 0.

    Returns:
        np.ndarray: Flipped copy.
    """
    return np.flip(rep, _spatial_axes(channel_axis, rep.ndim)[1]).copy()


def vflip_rep(rep, channel_axis=0):
    """Flips a representation's rows.

    Args:
        rep (np.ndarray): (C, H, W), (H, W, C) with ``channel_axis=-1``, or (H, W).
        channel_axis (int): 0 or -1. Default: 0.

    Returns:
        np.ndarray: Flipped copy.
    """
    return np.flip(rep, _spatial_axes(channel_axis, rep.ndim)[0]).copy()


def rot90_rep(rep, k=1, channel_axis=0):
    """Rotates a representation by ``k`` counter-clockwise quarter turns (as :func:`rot90_events`).

    Args:
        rep (np.ndarray): (C, H, W), (H, W, C) with ``channel_axis=-1``, or (H, W).
        k (int): Quarter turns. Default: 1.
        channel_axis (int): 0 or -1. Default: 0.

    Returns:
        np.ndarray: Rotated copy.
    """
    return np.rot90(rep, k, axes=_spatial_axes(channel_axis, rep.ndim)).copy()


def reverse_time_rep(rep, kind, channel_axis=0):
    """Applies time reversal to a computed representation (see the module docstring).

    Args:
        rep (np.ndarray): (C, H, W) or (H, W, C).
        kind (str): ``'voxel_grid'`` (bins reversed and negated) or ``'scer'`` (channels reversed; the zero middle
            channel of the 7-channel form stays in the middle).
        channel_axis (int): 0 or -1. Default: 0.

    Returns:
        np.ndarray: The representation of the time-reversed events.
    """
    if rep.ndim != 3:
        raise EventFormatError(f'reverse_time_rep: rep must be 3-D, got shape {rep.shape}.')
    _spatial_axes(channel_axis, rep.ndim)
    flipped = np.flip(rep, channel_axis).copy()
    if kind in ('voxel_grid', 'voxel'):
        return np.negative(flipped, out=flipped)
    if kind in ('scer', 'SCER'):
        return flipped
    raise EventFormatError(f"reverse_time_rep: kind must be 'voxel_grid' or 'scer', got {kind!r}.")


def add_hot_pixels(rep, rng, hot_pixel_range=20, hot_pixel_fraction=2e-5, channel_axis=0):
    """EFNet hot pixels: ``int(fraction * H * W)`` random pixels (repeats allowed), each set in all channels to
    one random integer in ``[-hot_pixel_range, hot_pixel_range]``.

    Args:
        rep (np.ndarray): (C, H, W) or (H, W, C) representation (not modified).
        rng (np.random.Generator): Random source.
        hot_pixel_range (int): Largest magnitude. Default: 20.
        hot_pixel_fraction (float): Pixels per sensor pixel. Default: 2e-5.
        channel_axis (int): 0 or -1. Default: 0.

    Returns:
        np.ndarray: float32 copy with hot pixels.
    """
    rng = _check_rng(rng)
    out = np.array(rep, dtype=np.float32)
    view = out if channel_axis == 0 else np.moveaxis(out, -1, 0)
    _, h, w = view.shape
    n = int(hot_pixel_fraction * h * w)
    if n:
        ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
        values = rng.integers(-hot_pixel_range, hot_pixel_range + 1, n).astype(np.float32)
        view[:, ys, xs] = values
    return out


def add_voxel_noise(rep, rng, noise_std=1.0, noise_fraction=0.05):
    """EFNet Gaussian noise: N(0, noise_std^2) added to each element independently with probability
    ``noise_fraction`` (all channels, the zero middle one included).

    Args:
        rep (np.ndarray): Representation of any shape (not modified).
        rng (np.random.Generator): Random source.
        noise_std (float): Standard deviation. Default: 1.0.
        noise_fraction (float): Probability per element. Default: 0.05.

    Returns:
        np.ndarray: float32 noisy copy.
    """
    rng = _check_rng(rng)
    if not 0 <= noise_fraction <= 1:
        raise EventFormatError(f'noise_fraction must be in [0, 1], got {noise_fraction}.')
    out = np.array(rep, dtype=np.float32)
    hit = rng.random(out.shape) < noise_fraction
    out[hit] += (noise_std * rng.standard_normal(int(hit.sum()))).astype(np.float32)
    return out


def add_hot_pixel_events(stream, rng, num_pixels, rate, t_range=None):
    """Adds events from hot pixels firing at a constant rate with random polarity (stream-level noise).

    Args:
        stream (EventStream): Events.
        rng (np.random.Generator): Random source.
        num_pixels (int): Number of hot pixels.
        rate (float): Events per second per hot pixel.
        t_range (tuple | None): Window to fill; None uses the stream's first to last event. Default: None.

    Returns:
        EventStream: The merged, sorted stream.
    """
    rng = _check_rng(rng)
    if t_range is None:
        t0, t1 = (stream.t_first, stream.t_last) if len(stream) else (0.0, 0.0)
    else:
        t0, t1 = t_range
    count = rng.poisson(rate * (t1 - t0), size=int(num_pixels))
    total = int(count.sum())
    px = np.repeat(rng.integers(0, stream.width, int(num_pixels)), count).astype(np.uint16)
    py = np.repeat(rng.integers(0, stream.height, int(num_pixels)), count).astype(np.uint16)
    t = rng.uniform(t0, t1, total)
    p = np.where(rng.random(total) < 0.5, -1, 1).astype(np.int8)
    allt = np.concatenate([stream.t, t])
    order = np.argsort(allt, kind='stable')
    return EventStream(np.concatenate([stream.x, px])[order], np.concatenate([stream.y, py])[order], allt[order],
                       np.concatenate([stream.p, p])[order], stream.height, stream.width)


def augment_events(stream, rng, hflip=True, vflip=True, rotation=False, time_reversal=False):
    """Draws random flips / rotation / time reversal and applies them to a stream.

    Args:
        stream (EventStream): Events.
        rng (np.random.Generator): Random source (one draw per enabled transform, in the order listed).
        hflip (bool): Horizontal flip with probability 0.5. Default: True.
        vflip (bool): Vertical flip with probability 0.5. Default: True.
        rotation (bool): ``rot90`` with probability 0.5. Default: False.
        time_reversal (bool): Time reversal with probability 0.5. Default: False.

    Returns:
        tuple[EventStream, dict]: The stream and the applied transforms (``hflip``, ``vflip``, ``rot90``,
        ``time_reversal`` booleans) to apply to the image with the same meaning.
    """
    rng = _check_rng(rng)
    done = {'hflip': bool(hflip and rng.random() < 0.5), 'vflip': bool(vflip and rng.random() < 0.5),
            'rot90': bool(rotation and rng.random() < 0.5), 'time_reversal': bool(time_reversal and rng.random() < 0.5)}
    if done['hflip']:
        stream = hflip_events(stream)
    if done['vflip']:
        stream = vflip_events(stream)
    if done['rot90']:
        stream = rot90_events(stream)
    if done['time_reversal']:
        stream = reverse_time_events(stream)
    return stream, done
