"""Pictures of events as uint8 RGB arrays (H, W, 3), ready for TensorBoard (``dataformats='HWC'``) or, after
``[..., ::-1]``, for ``cv2.imwrite``; and the visualisation video of an event-only recording (BGR frames)."""
import numpy as np

from basicsr.events.stream import EventFormatError

__all__ = ['event_frame', 'representation_strip', 'flow_to_color', 'flow_wheel', 'event_video_frames',
           'write_event_video']

_RED = np.array([220, 30, 30], np.float32)
_BLUE = np.array([30, 60, 220], np.float32)


def _as_rgb(image, height, width):
    img = np.asarray(image)
    if img.shape[:2] != (height, width):
        raise EventFormatError(f'event_frame: image is {img.shape[:2]} but the events are {height}x{width}.')
    if img.dtype != np.uint8:
        img = np.clip(np.asarray(img, np.float32) * (255 if img.max() <= 1 else 1), 0, 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return img.astype(np.float32)


def event_frame(x, y, p, height, width, image=None, alpha=1.0):
    """Draws events: pixels with net positive polarity red, net negative blue, on white or over an image.

    Args:
        x (np.ndarray): (N,) pixel columns.
        y (np.ndarray): (N,) pixel rows.
        p (np.ndarray): (N,) polarities in {-1, +1}.
        height (int): Sensor height.
        width (int): Sensor width.
        image (np.ndarray | None): Background (H, W) or (H, W, 3) RGB, uint8 or float in [0, 1]. Default: white.
        alpha (float): Opacity of the event colours over the background. Default: 1.0.

    Returns:
        np.ndarray: uint8 (H, W, 3) RGB.
    """
    x, y, p = np.asarray(x), np.asarray(y), np.asarray(p)
    if len(x) and (x.max() >= width or y.max() >= height or x.min() < 0 or y.min() < 0):
        raise EventFormatError(f'event_frame: events outside the {height}x{width} sensor.')
    net = np.bincount(y.astype(np.intp) * width + x.astype(np.intp), weights=p.astype(np.float64),
                      minlength=height * width).reshape(height, width)
    canvas = np.full((height, width, 3), 255, np.float32) if image is None else _as_rgb(image, height, width)
    for sel, colour in ((net > 0, _RED), (net < 0, _BLUE)):
        canvas[sel] = (1 - alpha) * canvas[sel] + alpha * colour
    return canvas.round().astype(np.uint8)


def _diverging(values, scale):
    """Maps values in [-scale, scale] to blue-white-red."""
    v = np.clip(values / scale, -1, 1)[..., None] if scale > 0 else np.zeros(values.shape + (1, ), np.float32)
    white = np.full(3, 255, np.float32)
    return np.where(v >= 0, white + v * (_RED - white), white - v * (_BLUE - white))


def representation_strip(rep, channel_axis=0, gap=2, scale=None):
    """Lays out the channels of a voxel grid / SCER side by side, blue (negative) - white - red (positive).

    Args:
        rep (np.ndarray): (C, H, W), or (H, W, C) with ``channel_axis=-1``.
        channel_axis (int): 0 or -1. Default: 0.
        gap (int): Grey pixels between channels. Default: 2.
        scale (float | None): Value mapped to full colour; None uses max |rep| over all channels. Default: None.

    Returns:
        np.ndarray: uint8 (H, C * W + (C - 1) * gap, 3) RGB.
    """
    rep = np.asarray(rep, np.float32)
    if rep.ndim != 3:
        raise EventFormatError(f'representation_strip: rep must be 3-D, got shape {rep.shape}.')
    if channel_axis not in (0, -1, 2):
        raise EventFormatError(f'representation_strip: channel_axis must be 0 or -1, got {channel_axis}.')
    if channel_axis != 0:
        rep = np.moveaxis(rep, -1, 0)
    c, h, w = rep.shape
    scale = float(np.abs(rep).max()) if scale is None else float(scale)
    strip = np.full((h, c * w + (c - 1) * gap, 3), 128, np.float32)
    for k in range(c):
        strip[:, k * (w + gap):k * (w + gap) + w] = _diverging(rep[k], scale)
    return strip.round().astype(np.uint8)


def _color_wheel():
    """The Middlebury colour wheel (Baker et al.): 55 hues from red through yellow, green, cyan, blue, magenta."""
    segments = ((15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)), (4, (0, 255, 0), (0, 255, 255)),
                (11, (0, 255, 255), (0, 0, 255)), (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0)))
    rows = []
    for n, start, end in segments:
        f = (np.arange(n) / n)[:, None]
        rows.append(np.asarray(start, np.float32) * (1 - f) + np.asarray(end, np.float32) * f)
    return np.concatenate(rows) / 255.0


def flow_to_color(flow, max_flow=None):
    """Colours optical flow: hue = direction, saturation = magnitude (Middlebury convention).

    Args:
        flow (np.ndarray): (H, W, 2) with (u, v) = (dx, dy) in pixels, or (2, H, W).
        max_flow (float | None): Magnitude mapped to full saturation; None uses the largest. Default: None.

    Returns:
        np.ndarray: uint8 (H, W, 3) RGB.
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim == 3 and flow.shape[0] == 2 and flow.shape[-1] != 2:
        flow = flow.transpose(1, 2, 0)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise EventFormatError(f'flow_to_color: flow must be (H, W, 2) or (2, H, W), got shape {flow.shape}.')
    u, v = np.nan_to_num(flow[..., 0]), np.nan_to_num(flow[..., 1])
    mag = np.sqrt(u * u + v * v)
    max_flow = float(mag.max()) if max_flow is None else float(max_flow)
    if max_flow > 0:
        u, v, mag = u / max_flow, v / max_flow, mag / max_flow
    wheel = _color_wheel()
    n = len(wheel)
    angle = np.arctan2(-v, -u) / np.pi
    pos = (angle + 1) / 2 * (n - 1)
    k0 = np.floor(pos).astype(np.int64)
    k1 = (k0 + 1) % n
    f = (pos - k0)[..., None]
    col = (1 - f) * wheel[k0] + f * wheel[k1]
    sat = np.clip(mag, 0, 1)[..., None]
    col = 1 - sat * (1 - col)
    col[mag > 1] *= 0.75
    return (col * 255).round().astype(np.uint8)


def flow_wheel(size=128):
    """The colour key of :func:`flow_to_color`: a disc whose colour at offset (dx, dy) from the centre is the
    colour of that flow vector (full saturation at the rim).

    Args:
        size (int): Side of the square image. Default: 128.

    Returns:
        np.ndarray: uint8 (size, size, 3) RGB; outside the disc white.
    """
    r = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    flow = np.stack([(xx - r) / r, (yy - r) / r], axis=-1)
    img = flow_to_color(flow, max_flow=1.0)
    img[np.hypot(flow[..., 0], flow[..., 1]) > 1] = 255
    return img


def event_video_frames(windows):
    """Pictures of consecutive event windows (see :func:`basicsr.events.windows.slice_windows`), each captioned
    with its start, in seconds from the start of the first window (recordings often count from 1970), and its
    event count.

    Args:
        windows (Iterable[tuple[float, float, EventStream]]): ``(w0, w1, events)`` windows.

    Yields:
        np.ndarray: uint8 (H + 18, W, 3) BGR frame: :func:`event_frame` of the window under its caption.
    """
    from basicsr.utils.img_util import make_panel

    origin = None
    for w0, _, ev in windows:
        origin = w0 if origin is None else origin
        picture = event_frame(ev.x, ev.y, ev.p, ev.height, ev.width)[:, :, ::-1]
        yield make_panel([picture], [f'{w0 - origin:.3f} s  {len(ev)} events'])


def write_event_video(events_path, video_path, duration=0.033, fps=None, t_start=None, t_end=None, **read_kwargs):
    """Writes the visualisation video of an event file (e.g. an AEDAT4 recording without frames): one frame per
    window of ``duration`` seconds, read window by window, written to a temporary name and renamed at the end.

    Args:
        events_path (str | os.PathLike): Event file (any format of :func:`basicsr.events.read_events`; h5 and
            AEDAT4 are streamed).
        video_path (str | os.PathLike): Output ``.mp4`` file.
        duration (float): Window length in seconds. Default: 0.033.
        fps (float | None): Frame rate; None plays in real time (``1 / duration``). Default: None.
        t_start (float | None): Start of the first window; None: the first event. Default: None.
        t_end (float | None): End of the last window; None: after the last event. Default: None.
        **read_kwargs: Passed to the reader (e.g. ``height``, ``width``, ``time_scale`` for text files).

    Returns:
        dict: ``path`` of the video, ``frames`` written, ``events`` drawn, ``t_start`` and ``t_end`` of the windows.

    Raises:
        EventFormatError: For a file without events in the chosen span, or bad events.
        ValueError: For a bad path or frame rate (see :class:`basicsr.utils.video.Mp4Writer`).
    """
    from basicsr.events.windows import iter_event_windows
    from basicsr.utils.video import Mp4Writer

    fps = 1.0 / float(duration) if fps is None else fps
    windows = iter_event_windows(events_path, duration, t_start, t_end, **read_kwargs)
    counted = {'events': 0, 't_start': None, 't_end': None}

    def count(windows):
        for w0, w1, ev in windows:
            counted['t_start'] = w0 if counted['t_start'] is None else counted['t_start']
            counted['t_end'], counted['events'] = w1, counted['events'] + len(ev)
            yield w0, w1, ev

    with Mp4Writer(video_path, fps) as video:
        for frame in event_video_frames(count(windows)):
            video.add(frame)
        if counted['events'] == 0:
            raise EventFormatError(f'{events_path}: no events to show between {t_start} and {t_end} s (None: the '
                                   'first / last event); expected a span on the clock of the events.')
    return {'path': video.path, 'frames': video.frames, **counted}
