"""Simulated recordings for the EDI inference tests: blurry frames of moving rectangles and their events."""
import numpy as np

from basicsr.events import EventStream, Frame, concatenate_streams
from basicsr.synthesis.blur_synthesis import event_blur_sample, linear_trajectory
from basicsr.synthesis.simulator import DVSSimulator

H, W, SUBFRAMES = 48, 64, 31
EXPOSURE, PERIOD = 0.01, 0.02  # each frame's exposure (s) and the frame period


def rectangles(rng, height=H, width=W):
    """Piecewise-constant scene of random rectangles in [0.15, 0.95] (above the simulator's linear range)."""
    img = np.full((height, width), rng.uniform(0.15, 0.95), np.float32)
    for _ in range(8):
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(4, height // 2), rng.integers(4, width // 2)
        img[y0:y0 + h, x0:x0 + w] = rng.uniform(0.15, 0.95)
    return img


def _edge_events(t0, t1):
    """One event at each end of the exposure (a corner pixel), so the events span every exposure exactly."""
    return EventStream.from_arrays([0, 0], [0, 0], [t0, t1], [1, -1], H, W)


def simulate_frames(num, threshold=0.2, seed=0, min_shift=4.0):
    """Frames of one simulated recording: frame ``k`` is exposed over ``[k PERIOD, k PERIOD + EXPOSURE]``.

    Args:
        num (int): Number of frames.
        threshold (float): Contrast threshold of the noise-free simulator. Default: 0.2.
        seed (int): Seed. Default: 0.
        min_shift (float): Smallest motion (px) over an exposure, so every frame is blurred. Default: 4.

    Returns:
        list[dict]: Per frame ``blur`` (float32 (H, W) linear), ``image`` (its uint8 PNG), ``sharp``, ``events``
        (EventStream of the exposure), ``t_start``, ``t_end``.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(num):
        t0 = k * PERIOD
        shift = rng.uniform(min_shift, 10, size=2) * rng.choice([-1, 1], size=2)
        sim = DVSSimulator(pos_thres=threshold, neg_thres=threshold, sigma_thres=0, cutoff_hz=0, leak_rate_hz=0,
                           shot_noise_rate_hz=0, shuffle=False)
        sample = event_blur_sample(rectangles(rng), linear_trajectory(shift, SUBFRAMES), rng,
                                   exposure=(t0, t0 + EXPOSURE), simulator=sim)
        ev = sample['events']
        edges = _edge_events(t0, t0 + EXPOSURE)
        events = EventStream.from_arrays(np.concatenate([edges.x, ev.x]), np.concatenate([edges.y, ev.y]),
                                         np.concatenate([edges.t, ev.t]), np.concatenate([edges.p, ev.p]), H, W,
                                         sort=True)
        image = np.round(np.clip(sample['blur'], 0, 1) * 255).astype(np.uint8)
        frames.append({'blur': sample['blur'], 'image': image, 'sharp': sample['sharp'], 'events': events,
                       't_start': t0, 't_end': t0 + EXPOSURE})
    return frames


def recording_stream(frames):
    """All frames' events as one stream."""
    return concatenate_streams([f['events'] for f in frames])


def h5_frames(frames):
    """The frames as :class:`~basicsr.events.Frame` objects for ``write_event_h5``."""
    return [Frame(f['image'], 0.5 * (f['t_start'] + f['t_end']), f['t_start'], f['t_end']) for f in frames]
