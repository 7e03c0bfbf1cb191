"""Event-deblurring samples from a sharp image: camera motion, blur by averaging, events from the DVS simulator.

The sharp image is treated as linear intensity in [0, 1]. Sub-frames follow a camera trajectory (see
:mod:`basicsr.synthesis.motion`); the blurry frame is their mean, the ground truth is the middle sub-frame (EFNet's
GoPro convention) and the events are those the DVS simulator emits on the sub-frames' luminance over the exposure.
"""
import math

import numpy as np

from basicsr.synthesis.motion import base_trajectory, warp_subframes
from basicsr.synthesis.simulator import DVSSimulator

__all__ = ['linear_trajectory', 'arc_trajectory', 'luminance', 'event_blur_sample']

_LUMA_BGR = np.array([0.114, 0.587, 0.299], dtype=np.float32)


def linear_trajectory(shift, num_subframes):
    """Uniform straight camera motion as a one-patch trajectory.

    Args:
        shift (tuple[float, float]): Total content displacement (dx, dy) in pixels over the exposure.
        num_subframes (int): Number of sub-frames.

    Returns:
        np.ndarray: complex128 (1, 1, S) trajectory (x = real part, y = imaginary part pointing up).
    """
    k = np.linspace(0.0, 1.0, num_subframes)
    return (k * complex(shift[0], -shift[1])).reshape(1, 1, -1)


def arc_trajectory(rng, length, num_subframes):
    """A random circular-arc camera motion of about ``length`` pixels (the low-light generator's model).

    Args:
        rng (numpy.random.Generator): Random generator.
        length (float): Approximate arc length in pixels (> 1).
        num_subframes (int): Number of sub-frames.

    Returns:
        np.ndarray: complex128 (1, 1, S) trajectory.
    """
    canvas = max(length / 0.7, 8.0)
    traj, _ = base_trajectory(rng, canvas=canvas, samples=num_subframes, downsampling=1)
    return traj.reshape(1, 1, -1)


def luminance(frames_bgr):
    """Luma of BGR (or gray) frames.

    Args:
        frames_bgr (np.ndarray): (..., H, W, 3) BGR or (..., H, W) gray.

    Returns:
        np.ndarray: float32 (..., H, W).
    """
    frames_bgr = np.asarray(frames_bgr, dtype=np.float32)
    if frames_bgr.shape[-1] == 3:
        return frames_bgr @ _LUMA_BGR
    return frames_bgr


def event_blur_sample(sharp, traj, rng, exposure=(0.0, 0.01), dn_scale=255.0, simulator=None):
    """Blurry frame, sharp middle frame and events of ``sharp`` moving along ``traj`` during the exposure.

    Args:
        sharp (np.ndarray): (H, W, 3) BGR or (H, W) linear image in [0, 1].
        traj (np.ndarray): complex (rows, cols, S) trajectory (see :mod:`basicsr.synthesis.motion`), S >= 2.
        rng (numpy.random.Generator): Generator of the sample (simulator state and noise).
        exposure (tuple[float, float]): Exposure start and end in seconds. Default: (0, 0.01).
        dn_scale (float): Digital numbers of intensity 1 for the simulator (the sensor sees a scaled copy of the
            image, so the event log-changes and the blur share one linear domain). Keep image values above
            ``20 / dn_scale`` to stay in the logarithmic range. Default: 255.
        simulator (DVSSimulator | None): Simulator to use; None is noise-free with threshold 0.2. Default: None.

    Returns:
        dict: ``blur`` and ``sharp`` (float32 like the input), ``events`` (:class:`~basicsr.events.EventStream`),
        ``exposure``.
    """
    num = traj.shape[-1]
    if num < 2:
        raise ValueError(f'event_blur_sample: the trajectory needs at least 2 sub-frames, got {num}')
    t0, t1 = exposure
    if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
        raise ValueError(f'event_blur_sample: exposure must be (start, end) with end > start, got {exposure}')
    frames = np.stack(list(warp_subframes(np.asarray(sharp, dtype=np.float32), traj)))
    intensity = dn_scale * np.clip(luminance(frames), 0.0, None)
    if simulator is None:
        simulator = DVSSimulator(pos_thres=0.2, neg_thres=0.2, sigma_thres=0, cutoff_hz=0, leak_rate_hz=0,
                                 shot_noise_rate_hz=0, shuffle=False)
    events = simulator.simulate(intensity, np.linspace(t0, t1, num), rng)
    return {'blur': frames.mean(axis=0), 'sharp': frames[num // 2], 'events': events, 'exposure': (t0, t1)}
