"""EDI contrast threshold on scenes with realistic sensor noise: the joint estimator, its fallback, exact vs SCER.

A recording: five 48x64 frames of random rectangles, each moving linearly by up to 10 px over a 50 ms exposure,
simulated from one exposure before to one after (so each pixel's reference level is left where the previous edge
put it, as in a running camera, not reset at the exposure start), with background activity 0.1-1 Hz per pixel
(shot noise, every sub-step), leak events 0.1 Hz, a per-pixel threshold spread of 4 % and three hot pixels at 200 Hz.
"""
import numpy as np
import pytest
import torch

from basicsr.events import scer
from basicsr.events.augment import add_hot_pixel_events
from basicsr.events.edi import (DEFAULT_DENOISE, DEFAULT_THRESHOLD, edi_deblur, edi_from_scer, estimate_threshold,
                               motion_residual)
from basicsr.synthesis.blur_synthesis import linear_trajectory
from basicsr.synthesis.motion import warp_subframes
from basicsr.synthesis.simulator import DVSSimulator
from edi_scenes import rectangles

H, W, T, EXPOSURE = 48, 64, 31, (0.0, 0.05)
THRESHOLDS = (0.15, 0.25, 0.35)
DENOISE = DEFAULT_DENOISE
# Design seeds 0-7 chose the energy, the tile, the denoising and five frames per recording, seeds 0-49 the two
# sub-intervals (threshold cycling through THRESHOLDS); the claim is checked on seeds 1000-1039, run once after the
# design was frozen, never tuned on.
HELD_OUT = range(1000, 1040)


def noisy_frame(rng, threshold, ba_rate):
    """(blurry, x, y, t, p, t_start, t_end) of one frame; the sensor runs from one exposure before to one after."""
    n = 3 * T - 2
    traj = linear_trajectory(rng.uniform(-10, 10, size=2) * (n - 1) / (T - 1), n)
    frames = np.stack(list(warp_subframes(rectangles(rng), traj)))
    span = EXPOSURE[1] - EXPOSURE[0]
    sim = DVSSimulator(pos_thres=threshold, neg_thres=threshold, sigma_thres=0.04 * threshold, cutoff_hz=0,
                       leak_rate_hz=0.1, shot_noise_rate_hz=ba_rate, shot_noise_every_step=True)
    ev = sim.simulate(255 * frames, np.linspace(EXPOSURE[0] - span, EXPOSURE[1] + span, n), rng)
    ev = add_hot_pixel_events(ev, rng, 3, 200.0, EXPOSURE)
    keep = (ev.t >= EXPOSURE[0]) & (ev.t <= EXPOSURE[1])
    return frames[T - 1:2 * T - 1].mean(0), ev.x[keep], ev.y[keep], ev.t[keep], ev.p[keep], *EXPOSURE


def recording(seed, threshold, num_frames=5):
    rng = np.random.default_rng(seed)
    ba_rate = rng.uniform(0.1, 1.0)
    return [noisy_frame(rng, threshold, ba_rate) for _ in range(num_frames)]


def test_joint_threshold_on_held_out_noisy_recordings():
    """Joint estimate over each recording's five frames, events denoised first, motion energy on two sub-intervals
    (the default). The issue asks for at least 90 % of held-out recordings within 15 % of the true threshold.
    Measured on the design seeds 0-49: 48 of 50 within 15 % (median error +8 %; one interval, the previous default:
    42 of 50, median -2 %). Held out, measured once after the design was frozen: seeds 1000-1039, 39 of 40 (median
    +7 %, worst -15.7 % at seed 1022); the earlier held-out seeds 100-111: 11 of 12 (one interval: 8 of 12)."""
    errors = {}
    for seed in HELD_OUT:
        c = THRESHOLDS[seed % len(THRESHOLDS)]
        est = estimate_threshold(recording(seed, c), denoise=DENOISE, per_frame=False)
        assert est.reason == '' and len(est.per_frame) == 5
        errors[(seed, c)] = abs(est.value / c - 1)
    within = sum(e <= 0.15 for e in errors.values()) / len(errors)
    assert within >= 0.9, sorted((k, round(v, 3)) for k, v in errors.items())


def test_the_image_prior_energy_fails_on_noisy_recordings_where_motion_succeeds():
    """What the issue reports on real frames, reproduced: the sharpness energy is lowest at no correction."""
    rec = recording(0, 0.25, 3)
    old = estimate_threshold(rec, energy='sharpness', denoise=DENOISE, per_frame=False)
    assert np.isnan(old.value) and 'lower end' in old.reason
    assert estimate_threshold(rec, denoise=DENOISE).value == pytest.approx(0.25, rel=0.15)


def test_a_frame_without_enough_events_gives_nan_with_a_reason():
    blur, x, y, t, p, t0, t1 = recording(1, 0.25, 1)[0]
    est = estimate_threshold([(blur, x[:5], y[:5], t[:5], p[:5], t0, t1)])
    assert np.isnan(est.value) and np.isnan(est.per_frame[0])
    assert 'no frame has events in at least 16 pixels' in est.reason
    # such a frame is left out of a joint estimate; the others still give one
    joint = estimate_threshold([(blur, x[:5], y[:5], t[:5], p[:5], t0, t1), (blur, x, y, t, p, t0, t1)])
    assert np.isnan(joint.per_frame[0]) and np.isfinite(joint.value) and joint.reason == ''
    assert 0 < DEFAULT_THRESHOLD <= 2


def test_bad_options_are_rejected():
    rec = recording(1, 0.25, 1)[:1]
    with pytest.raises(ValueError, match='energy'):
        estimate_threshold(rec, energy='nope')
    with pytest.raises(ValueError, match='tile'):
        estimate_threshold(rec, tile=1)
    with pytest.raises(ValueError, match='intervals'):
        estimate_threshold(rec, intervals=0)
    with pytest.raises(ValueError, match='denoise'):
        estimate_threshold(rec, denoise={'window': 1})
    with pytest.raises(ValueError, match=r'samples\[0\]'):
        estimate_threshold([(1, 2)])


def test_exact_integral_equals_the_scer_path_in_the_limit_of_many_bins():
    """The trapezoid mean over B SCER bins places each event up to half a bin off, so the error of the event factor
    shrinks like 1 / B: with 512 bins the latent agrees with the exact step integral to 0.5 % of the image mean
    (and 8x finer bins cut the error by at least 4x)."""
    blur, x, y, t, p, *_ = recording(2, 0.25, 1)[0]
    keep = (x >= 0)
    t0, t1 = t[keep].min(), t[keep].max()  # SCER spans first to last event
    exact, _ = edi_deblur(blur, x, y, t, p, t0, t1, threshold=0.25)
    errors = {}
    for bins in (64, 512):
        rep = torch.from_numpy(scer(x, y, t, p, bins, H, W))[None]
        out, _ = edi_from_scer(torch.from_numpy(blur)[None, None].double(), rep.double(), threshold=0.25)
        errors[bins] = np.abs(out[0, 0].numpy() - exact).mean()
    assert errors[512] < 0.005 * exact.mean(), errors
    assert errors[512] < errors[64] / 4, errors


def test_motion_residual_vanishes_for_a_translation_on_every_sub_interval():
    """A smooth scene translating by d: each sub-interval's change is explained by its partial blur (residual under
    1 % of the total, finite differences on a smooth image), the same with one interval; changes that do not belong
    to their sub-intervals (halves swapped) are not."""
    yy, xx = np.mgrid[0:48, 0:64].astype(np.float64)

    def scene(s):  # the latent at exposure fraction s, moved by s * (3, -2) pixels
        u, v = xx - 3 * s, yy + 2 * s
        return 1 + 0.5 * np.sin(u / 4) * np.cos(v / 5) + 0.3 * np.exp(-((u - 30) ** 2 + (v - 20) ** 2) / 60)

    for k in (1, 2):
        bounds = np.linspace(0, 1, k + 1)
        blurs = np.stack([np.mean([scene(s) for s in np.linspace(a, b, 201)], 0) for a, b in zip(bounds, bounds[1:])])
        diffs = np.stack([scene(a) - scene(b) for a, b in zip(bounds, bounds[1:])])
        res, tot = motion_residual(blurs[None], diffs[None], tile=16)
        assert res[0] < 0.01 * tot[0], (k, res, tot)
    swapped, tot = motion_residual(blurs[None], diffs[None, ::-1], tile=16)
    assert swapped[0] > 0.1 * tot[0], (swapped, tot)  # measured 0.27 of the total, 1000x the true residual
    # (H, W) and (N, H, W): the single-interval form
    res1, tot1 = motion_residual(np.mean([scene(s) for s in np.linspace(0, 1, 201)], 0), (scene(0) - scene(1))[None])
    assert res1[0] < 0.01 * tot1[0]
