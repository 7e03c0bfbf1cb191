"""Event-based double integral (EDI, Pan et al., CVPR 2019): a sharp frame from a blurry frame and its events.

Model: an event camera fires when the log intensity changes by the contrast threshold ``c``, so the latent image
at time ``t`` is ``L(t) = L(t_ref) * exp(c * (E(t) - E(t_ref)))`` with ``E`` the signed event integral (sum of
polarities up to ``t``). The blurry frame is the mean of ``L`` over the exposure, hence

    ``L(t_ref) = B / mean_t exp(c * (E(t) - E(t_ref)))``.

Two ways to get ``E(t) - E(t_ref)``:

- From raw events (:func:`edi_deblur`): exactly. Per pixel ``E`` is a step function, so the exposure mean is the
  duration-weighted sum over its steps (no time sampling error).
- From an un-normalised SCER of B channels (:func:`scer_offsets`, :func:`edi_from_scer`): SCER holds
  ``E(tau_k) - E(t_mid)`` at the B + 1 bin boundaries ``tau_k`` (left channels ``-sum p`` over ``[tau_k, t_mid)``,
  right channels ``+sum p`` over ``[t_mid, tau_{k+1})``, 0 at the middle). The exposure mean is taken with the
  trapezoid rule over the boundaries; more bins are finer. SCER spans first to last event, which stands for the
  exposure (the two agree when events are dense).

The contrast threshold may be given or estimated. :func:`estimate_threshold` (the one to use on real recordings)
estimates one threshold jointly over several frames of a recording, with the motion-consistency energy below;
``edi_deblur(threshold=None)`` and :func:`edi_from_scer` estimate per frame with an image-prior energy
(:func:`search_threshold` minimises an energy over ``c``: a geometric grid, then golden-section refinement).
:data:`DEFAULT_THRESHOLD` is the stated fallback when no estimate is possible (callers warn and use it).

Motion-consistency energy (``energy='motion'``, default of :func:`estimate_threshold`, :func:`motion_residual`):
a data term, not a prior. If the scene translates by ``d`` pixels during the exposure,
``B(x) = int_0^1 L_start(x - s d) ds``, hence exactly ``d . grad B = L_start - L_end`` (linear intensities). The
same holds on each of K equal sub-intervals (``intervals``, default 2): its partial blur ``B_k`` (the latent's mean
over it, ``L_start`` times the sub-interval's mean event factor) and its end latents, with the motion ``d / K``. EDI
gives all of them for each ``c``; per 16x16 tile, one ``d`` is fitted by least squares to all sub-intervals'
changes against their partial blurs' gradients, and the share of the changes' ``sum of squares`` that no motion
explains is the energy (joint: the residuals and the totals are summed over frames first). A too small ``c`` leaves
the change between start and end too weak, a too large one or the wrong polarity adds changes no motion makes
(double edges), so the minimum is interior. With one interval the energy is flat near its minimum (a small ``c``
scales the change by about ``c`` times the event count, which the blur's gradient also explains), so the estimate
scatters from frame to frame; two sub-intervals must agree on one motion, which pins ``c`` down (on the simulated
recordings below 48 instead of 42 of 50 within 15 %; on pic2 the per-frame estimates 0.34-0.41 instead of
0.24-0.38). More sub-intervals hold fewer events each, and the quantisation remainder (below) pushes the estimate
up (three: 19 of 30 within 15 %, median +15 %). Per-pixel noise (background activity, threshold spread) raises
residual and total alike and barely moves it; hot pixels do, so events are best denoised first (``denoise=``,
:mod:`basicsr.events.denoise`).

Why not an image prior on real frames (the issue's failure): measured on the development recordings (below), every
gradient prior tried is lowest at no correction: the sharpness energy (power 0.6, 1; log or linear; at 1/2, 1/4,
1/8 resolution; on bright pixels only; after a 3x3 / 5x5 median of the latent or of the event integral), TV, and
the normalised sparsity L1/L2. Real scenes have texture finer than the blur (print, stripes), whose contrast blur
removes, so a gradient prior ranks the blurry frame best; denoising (BA filter, hot pixels) and a gamma 2.2
linearisation do not change this. Pan et al.'s edge term (correlation of the latent's gradient with the event frame
near t_ref) rises monotonically with ``c`` (events themselves make latent gradients where they fire).

Measured (development data, no held-out set looked at; ``motion``, tile 16, two sub-intervals unless said, exposure
events only; earlier figures with one interval, the previous default, in brackets):

- eSL-Net ``pic2`` (DAVIS346, 7 frames, 104 ms exposure, PNG read as linear): joint c = 0.357 (0.370 with
  ``{'ba_window': 0.01, 'hot_pixels': True}``) [0.322, 0.336]; per frame 0.338-0.410 denoised [0.235-0.375]. Result
  sharp, no double edges (checked as images at 0.370); with one interval the opposite polarity left a larger
  unexplained share (frame 13: 0.61 vs 0.53; frame 30: 0.55 vs 0.43).
- eSL-Net ``camerashake`` (DAVIS240C, 85 frames with events, window [0, 1] of the normalised time, not denoised):
  joint c = 0.244 [0.161]; per frame 0.06-0.97 and NaN (no interior minimum) on 17 frames [27], so a single frame is
  not reliable, the joint estimate is. Sharp without double edges at 0.244 (frames 14 and 70, the most events, seen
  as images; flat-area noise rises more than at the smaller c); one interval, opposite polarity: unexplained share
  0.47 vs 0.35 (frame 12). The stream has sensor-wide OFF bursts (APS readout) at 0.72 and 1.0; with one interval
  dropping them or ending the exposure at 0.715 moved the joint estimate to 0.154 and 0.127 (frames 10-30).
- Issue's reference: c = 0.25 deblurs both well; the estimates are near it.
- Linearity of the 8-bit APS PNGs (pic2, one interval, joint estimate and the unexplained share at it): as stored
  0.322 / 0.414; decoded with gamma 2.2 0.106 / 0.480 (worse: the frames are not gamma-encoded); black offset -5 DN
  0.350 / 0.425, +5 DN 0.294 / 0.406. So frames are read as linear; an offset of a few DN moves ``c`` by under 10 %.
- Simulated recordings with realistic noise (``tests/test_edi_threshold.py``: 5 frames of 48x64, BA 0.1-1 Hz, 4 %
  threshold spread, 3 hot pixels at 200 Hz, sensor running before the exposure, events denoised): design seeds
  0-49, 48 of 50 within 15 % (median +8 %) [42 of 50, median -2 %]; held out, run once after the design was
  frozen, seeds 1000-1039: 39 of 40 (median +7 %, worst 15.7 % low); the earlier held-out seeds 100-111: 11 of 12
  [8 of 12]. The sharpness energy gives no estimate on them. Without sensor noise (no BA, spread or hot pixels,
  seeds 0-29) the two-interval estimate is high, median +15 % [-5 %]: the pixels an edge reaches for the first time
  start at their reference level and undercount each change by up to one threshold (quantisation note below);
  noise events and the threshold spread randomise that remainder. When the sensor is reset at the exposure start
  (every pixel's reference level at the start intensity, unlike a running camera), the estimate comes out high
  for the same reason (one interval: +40 % at c = 0.25).

Image-prior energies (kept for comparison and for the SCER path):

What a single frame can tell about ``c`` without a motion model: for any ``c`` the latent explains the blurry frame
exactly, so ``c`` is identifiable only through a prior on the sharp image. Events quantise: a pixel whose log
intensity changes by
``Delta`` fires ``n = floor(Delta / c)`` events, so the event integral undercounts by the remainder
``Delta mod c`` and the reconstruction-optimal ``c`` of an edge is ``Delta / n``, above the sensor's threshold by
up to ``1 / n``. Total variation is blind to ramps versus steps (residual blur costs nothing, only overshoot does),
which is why the paper's TV term alone ends at the smallest ``c`` (``energy='tv'``, kept for comparison).

Per-frame default of :func:`edi_deblur` and :func:`edi_from_scer` (``energy='sharpness'``,
:func:`estimation_energy`): a sparse (hyper-Laplacian) prior on the log
latent, ``sum |grad log L|^0.6``, summed over the latent at the exposure start, middle and end
(``log L(t) = log L(t_mid) + c (E(t) - E(t_mid))``). The concave penalty makes a ramp cost more than a step, so
residual blur (``c`` too small) and overshoot (``c`` too large) both raise it; the log domain matches what events
measure and makes it independent of the image scale. Requiring all three frames to be sharp, not only the middle
one, is what makes it reliable: an edge crossing a pixel near mid-exposure is ambiguous in the middle frame but
settled at the start and the end, and the quantisation remainder falls on different pixels in each frame (the
middle frame alone, or ``power`` 0.5-0.7, measured worse). Only neighbour pairs touching a pixel with events
depend on ``c``, so the search evaluates just those (about 0.02 s per 48x64 frame, well under a second at 260x346).

No estimate (NaN, and the latent is the blurry frame) when fewer than ``min_pixels`` pixels have events, or when
the minimum lies at an end of ``c_range``: then the energy prefers no correction at all and a number would hide it.

Measured on noise-free simulated scenes (``tests/test_edi.py``: random rectangles 48x64, linear motion up to 10 px,
31 sub-frames), raw events: of seeds 0-7 at thresholds 0.1, 0.15, 0.2, seed 4 (0.13 px motion, at most 4 events)
gets no estimate; of the other 21, 17 are within 10 % of the true threshold, 19 within 15 %, all within 19 % (the
misses are too high, on scenes with few events per edge). Held out (seeds 100-139, same thresholds): 3 of 120 get
no estimate, 114 of the other 117 within 10 %, all within 14 %. The energy was chosen on seeds 0-7. The SCER path
searches the same energy on the bin boundaries: with 16 bins 17 of 21 and 111 of 117 within 10 %; with 6 bins
(EFNet's) 15 of 21 and 71 of 116, mostly too low (the trapezoid mean over 7 boundaries places each event up to half
a bin off). The previous default (normalised gradient sparsity of the middle latent) had 8 of 24 within 10 %.

Images are linear intensities (any positive scale); a colour image gets the same event factor in every channel.
"""
import dataclasses
import math

import numpy as np
import torch

from basicsr.events.denoise import check_denoise_options, denoise_events
from basicsr.events.stream import EventFormatError

__all__ = [
    'scer_offsets', 'trapezoid_weights', 'edi_latent', 'edi_from_scer', 'total_variation', 'estimation_energy',
    'ENERGIES', 'RAW_ENERGIES', 'motion_residual', 'search_threshold', 'event_steps', 'edi_deblur', 'check_threshold',
    'DEFAULT_THRESHOLD', 'DEFAULT_DENOISE', 'ThresholdEstimate', 'estimate_threshold'
]

# exp(c * dE) is clamped to exp(+-_MAX_EXPONENT): a brightness ratio beyond e^30 is no physical signal and this
# keeps float32 finite (and the denominator positive) whatever threshold the search tries.
_MAX_EXPONENT = 30.0
_GOLDEN = (math.sqrt(5) - 1) / 2
# log intensities are floored at this fraction of the frame's mean before the search takes logs (dark pixels)
_LOG_FLOOR = 1e-3
# a search result this close (relative) to an end of c_range is no interior minimum
_EDGE_TOL = 1e-3
# Fallback contrast threshold when no estimate is possible. Typical DAVIS bias settings give thresholds of about
# 0.2-0.3 log units; on the development recordings (eSL-Net pic2, DAVIS346, and camerashake, DAVIS240C) c = 0.25
# deblurs every frame well (issue 10; measured numbers in the module notes).
DEFAULT_THRESHOLD = 0.25
# Recommended event denoising before the threshold estimate (``estimate_threshold(denoise=DEFAULT_DENOISE)``,
# timestamps in seconds): a 10 ms background-activity window and hot-pixel removal. Not applied unless asked: the
# caller owns the events (basicsr/infer.py decides what EDI gets). Measured with the single-interval motion energy:
# on the noisy simulated recordings 19 of 24 estimates within 15 % instead of 18 (three frames), hot pixels
# otherwise dominate a tile's change; on the development recordings it moves the joint estimate by 4 % (pic2 0.322
# -> 0.336, camerashake 0.161 -> 0.154); with two sub-intervals (the default) pic2 0.357 -> 0.370.
DEFAULT_DENOISE = {'ba_window': 0.01, 'hot_pixels': True}


def check_threshold(threshold, name='threshold'):
    """Validates a contrast threshold: None (estimate) or a positive finite number.

    Args:
        threshold (float | None): The threshold.
        name (str): Argument name for the message. Default: ``'threshold'``.

    Returns:
        float | None: The threshold as float, or None.

    Raises:
        ValueError: Naming the argument and what was expected.
    """
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise ValueError(f'{name} must be a positive number or None (estimate it), got {threshold!r}')
    threshold = float(threshold)
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(f'{name} must be a positive finite number (log-intensity contrast) or None, got {threshold}')
    return threshold


def _check_c_range(c_range):
    try:
        lo, hi = (float(v) for v in c_range)
    except (TypeError, ValueError):
        raise ValueError(f'c_range must be a pair (c_min, c_max), got {c_range!r}') from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f'c_range must satisfy 0 < c_min < c_max, got {c_range!r}')
    return lo, hi


def scer_offsets(rep, keep_middle=False):
    """Event integral at the SCER bin boundaries relative to mid-window, ``E(tau_k) - E(t_mid)``, k = 0..B.

    Args:
        rep (Tensor): Un-normalised SCER (N, B, H, W) with B even (or (N, B + 1, H, W) with ``keep_middle``).
        keep_middle (bool): The input has the all-zero middle channel of the 7-channel variant. Default: False.

    Returns:
        Tensor: (N, B + 1, H, W); index ``B / 2`` is zero (``t_mid``), index 0 the window start, B its end.

    Raises:
        ValueError: Wrong rank or channel count.
    """
    if not torch.is_tensor(rep) or rep.dim() != 4:
        raise ValueError(f'event must be a tensor (N, C, H, W) holding an un-normalised SCER, got '
                         f'{tuple(rep.shape) if torch.is_tensor(rep) else type(rep).__name__}')
    ch = rep.shape[1]
    if keep_middle:
        if ch % 2 != 1 or ch < 3:
            raise ValueError(f'event: keep_middle SCER needs an odd channel count >= 3 (B + 1), got {ch}')
        half = ch // 2
        return torch.cat([rep[:, :half], torch.zeros_like(rep[:, :1]), rep[:, half + 1:]], dim=1)
    if ch % 2 != 0 or ch < 2:
        raise ValueError(f'event: SCER needs an even channel count B >= 2 (left and right halves), got {ch} channels; '
                         'a 7-channel keep_middle SCER needs keep_middle=True')
    half = ch // 2
    return torch.cat([rep[:, :half], torch.zeros_like(rep[:, :1]), rep[:, half:]], dim=1)


def trapezoid_weights(num_points, dtype=torch.float32, device=None):
    """Trapezoid weights of ``num_points`` equally spaced samples, summing to 1 (the mean over the interval).

    Args:
        num_points (int): Number of samples (>= 2).
        dtype (torch.dtype): Dtype. Default: float32.
        device (torch.device | None): Device. Default: None.

    Returns:
        Tensor: (num_points,) weights ``[0.5, 1, ..., 1, 0.5] / (num_points - 1)``.
    """
    if num_points < 2:
        raise ValueError(f'trapezoid_weights: need at least 2 samples, got {num_points}')
    w = torch.ones(num_points, dtype=dtype, device=device)
    w[0] = w[-1] = 0.5
    return w / (num_points - 1)


def _as_batch_threshold(c, n, ref):
    c = torch.as_tensor(c, dtype=ref.dtype, device=ref.device)
    if c.dim() == 0:
        c = c.expand(n)
    return c.reshape(n, 1, 1, 1)


def edi_latent(blurry, offsets, c, weights=None, eps=1e-6):
    """Latent frame at the reference time: ``B / sum_k w_k exp(c * offsets_k)``.

    Args:
        blurry (Tensor): (N, C, H, W) linear blurry image.
        offsets (Tensor): (N, K, H, W) event integral relative to the reference time at K sample times.
        c (float | Tensor): Contrast threshold, scalar or (N,).
        weights (Tensor | None): (K,) quadrature weights summing to 1. Default: trapezoid.
        eps (float): Floor of the denominator. Default: 1e-6.

    Returns:
        Tensor: (N, C, H, W) latent image (same event factor in every channel).
    """
    n, k = offsets.shape[:2]
    if weights is None:
        weights = trapezoid_weights(k, offsets.dtype, offsets.device)
    c = _as_batch_threshold(c, n, offsets)
    expo = torch.clamp(c * offsets, -_MAX_EXPONENT, _MAX_EXPONENT)
    denom = torch.einsum('nkhw,k->nhw', torch.exp(expo), weights.to(offsets)).unsqueeze(1)
    return blurry / denom.clamp_min(eps)


def _gradients(img):
    """Forward differences along x and y, flattened per sample: (N, M)."""
    parts = []
    if img.shape[-1] > 1:
        parts.append((img[..., :, 1:] - img[..., :, :-1]).flatten(1))
    if img.shape[-2] > 1:
        parts.append((img[..., 1:, :] - img[..., :-1, :]).flatten(1))
    if not parts:
        raise ValueError(f'threshold estimation needs an image of at least 2 pixels, got shape {tuple(img.shape)}')
    return torch.cat(parts, dim=1)


def total_variation(img):
    """Anisotropic total variation per sample, averaged over pixels and channels.

    Args:
        img (Tensor): (N, C, H, W).

    Returns:
        Tensor: (N,) mean of ``|dI/dx|`` and ``|dI/dy|`` over all differences.
    """
    return _gradients(img).abs().mean(dim=1)


ENERGIES = ('sharpness', 'tv')
# energies of the raw-event estimator: the motion-consistency energy needs the exact latent at the exposure ends
RAW_ENERGIES = ('motion', ) + ENERGIES


def _check_energy(energy, power, allowed=ENERGIES):
    if energy not in allowed:
        raise ValueError(f'energy must be one of {allowed}, got {energy!r}')
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not 0 < power <= 1:
        raise ValueError(f'power must be a number in (0, 1], got {power!r}')
    return energy, float(power)


def _neighbour_pairs(active):
    """Flat indices (a, b) of the horizontal and vertical neighbour pairs with at least one active pixel."""
    height, width = active.shape
    idx = torch.arange(height * width, device=active.device).reshape(height, width)
    first = torch.cat([idx[:, :-1].reshape(-1), idx[:-1, :].reshape(-1)])
    second = torch.cat([idx[:, 1:].reshape(-1), idx[1:, :].reshape(-1)])
    flat = active.reshape(-1)
    keep = flat[first] | flat[second]
    return first[keep], second[keep]


def _pair_energy(values, first, second, energy, power, num_pixels):
    """Energy of per-pixel log values (N, 3, P) (exposure start, middle, end) over neighbour pairs."""
    if energy == 'tv':
        return (values[:, 1, first] - values[:, 1, second]).abs().sum(1) / num_pixels
    return (values[:, :, first] - values[:, :, second]).abs().pow(power).sum((1, 2)) / num_pixels


def estimation_energy(log_frames, energy='sharpness', power=0.6):
    """The energy the threshold search minimises, of the log latent at exposure start, middle and end.

    ``'sharpness'``: ``sum_r sum |grad log L_r|^power / (H W)`` over the three frames, a sparse (hyper-Laplacian)
    gradient prior; ``'tv'``: the total variation of ``log L_middle``, the main term of the paper's energy. See the
    module notes for why the default is ``'sharpness'``. The search evaluates it only on neighbour pairs that touch
    a pixel with events (the other pairs do not depend on the threshold), which shifts it by a constant.

    Args:
        log_frames (Tensor): (N, 3, H, W) log intensity of the latent at exposure start, middle and end.
        energy (str): ``'sharpness'`` or ``'tv'``. Default: ``'sharpness'``.
        power (float): Exponent of ``'sharpness'``, in (0, 1]. Default: 0.6.

    Returns:
        Tensor: (N,) energies.
    """
    energy, power = _check_energy(energy, power)
    if log_frames.dim() != 4 or log_frames.shape[1] != 3:
        raise ValueError(f'log_frames must be (N, 3, H, W), got shape {tuple(log_frames.shape)}')
    height, width = log_frames.shape[-2:]
    first, second = _neighbour_pairs(torch.ones(height, width, dtype=torch.bool, device=log_frames.device))
    return _pair_energy(log_frames.flatten(2), first, second, energy, power, height * width)


def _energy_closure(gray, active, log_denominator, ends, energy, power):
    """The search energy of each sample as a function of the threshold, evaluated on the pixels near events.

    ``gray`` (N, 1, H, W), ``active`` (N, H, W) pixels with events, ``ends`` (N, 2, H, W) the event integral at
    exposure start and end relative to the reference time, ``log_denominator(c, pixels)`` (N, P) the log exposure
    mean of the event factor at flat pixel indices.

    Returns:
        Callable[[Tensor], Tensor] | None: ``energy_of(cs)`` mapping thresholds (N,) to energies (N,); None when no
        pixel has events.
    """
    _, _, height, width = gray.shape
    first, second = _neighbour_pairs(active.any(0))
    pixels = torch.unique(torch.cat([first, second]))
    if pixels.numel() == 0:
        return None
    lookup = torch.full((height * width, ), -1, dtype=torch.int64, device=gray.device)
    lookup[pixels] = torch.arange(pixels.numel(), device=gray.device)
    first, second = lookup[first], lookup[second]
    floor = (_LOG_FLOOR * gray.flatten(1).mean(1, keepdim=True)).clamp_min(torch.finfo(gray.dtype).tiny)
    log_b = torch.log(torch.maximum(gray.flatten(1), floor))[:, pixels]
    ends = ends.flatten(2)[:, :, pixels]

    # differences across each pair: at mid-exposure d(log B) - d(log denominator); at the start and end, plus c times
    # the difference of the event integral (each frame is log_mid + c * (E(t) - E(t_ref)))
    d_log_b = log_b[:, first] - log_b[:, second]
    d_ends = ends[:, :, first] - ends[:, :, second]

    def energy_of(cs):
        c = cs.to(gray.dtype).reshape(-1, 1)
        log_den = log_denominator(cs, pixels)
        d_mid = d_log_b - (log_den[:, first] - log_den[:, second])
        if energy == 'tv':
            return d_mid.abs().sum(1) / (height * width)
        total = d_mid.abs().pow(power).sum(1)
        for k in range(2):
            total = total + (d_mid + c * d_ends[:, k]).abs().pow(power).sum(1)
        return total / (height * width)

    return energy_of


def _interior_or_nan(c, c_range):
    """NaN where the search ended on an end of ``c_range`` (no interior minimum)."""
    lo, hi = _check_c_range(c_range)
    inside = (c > lo * (1 + _EDGE_TOL)) & (c < hi * (1 - _EDGE_TOL))
    return torch.where(inside, c, torch.full_like(c, math.nan))


def _estimate(gray, active, log_denominator, ends, energy, power, c_range, num_grid, num_iters, min_pixels):
    """Per-sample threshold search on the pixels near events; NaN for a sample with fewer than ``min_pixels``
    pixels with events (too little to tell thresholds apart; with no event every threshold fits equally) or whose
    minimum lies on an end of ``c_range`` (no interior minimum: the energy then prefers no correction at all).
    Arguments as in :func:`_energy_closure`.
    """
    n = gray.shape[0]
    energy_of = _energy_closure(gray, active, log_denominator, ends, energy, power)
    if energy_of is None:
        return torch.full((n, ), math.nan, dtype=torch.float64, device=gray.device)
    c = _interior_or_nan(search_threshold(energy_of, n, c_range, num_grid, num_iters, device=gray.device), c_range)
    enough = active.flatten(1).sum(1).to(c.device) >= min_pixels
    return torch.where(enough, c, torch.full_like(c, math.nan))


@torch.no_grad()
def search_threshold(energy, num, c_range=(0.05, 1.0), num_grid=16, num_iters=20, device=None, dtype=None):
    """Per-sample minimiser of ``energy(c)`` over ``c_range``: geometric grid, then golden-section refinement.

    The refinement brackets each sample's best grid point by its neighbours, so a grid fine enough to separate
    local minima finds the global one; golden-section then shrinks the bracket by 0.618 per iteration.

    Args:
        energy (Callable[[Tensor], Tensor]): Maps thresholds (num,) to energies (num,), one per sample.
        num (int): Number of samples.
        c_range (tuple[float, float]): Search interval (0 < c_min < c_max). Default: (0.05, 1.0).
        num_grid (int): Grid points (>= 3). Default: 16.
        num_iters (int): Golden-section iterations. Default: 20.
        device (torch.device | None): Device of the thresholds. Default: None.
        dtype (torch.dtype | None): Dtype of the thresholds. Default: float64.

    Returns:
        Tensor: (num,) thresholds.
    """
    lo, hi = _check_c_range(c_range)
    if num_grid < 3:
        raise ValueError(f'num_grid must be >= 3, got {num_grid}')
    dtype = dtype or torch.float64
    grid = torch.logspace(math.log10(lo), math.log10(hi), num_grid, dtype=dtype, device=device)
    values = torch.stack([energy(g.expand(num)) for g in grid], dim=1).to(dtype)  # (num, G)
    best = values.argmin(dim=1)
    a = grid[(best - 1).clamp_min(0)]
    b = grid[(best + 1).clamp_max(num_grid - 1)]
    x1 = b - _GOLDEN * (b - a)
    x2 = a + _GOLDEN * (b - a)
    f1, f2 = energy(x1).to(dtype), energy(x2).to(dtype)
    for _ in range(num_iters):
        left = f1 < f2  # the minimum lies in [a, x2]
        b = torch.where(left, x2, b)
        a = torch.where(left, a, x1)
        new_x1, new_x2 = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        probe = torch.where(left, new_x1, new_x2)
        f_probe = energy(probe).to(dtype)
        x1, x2, f1, f2 = (torch.where(left, new_x1, x2), torch.where(left, x1, new_x2),
                          torch.where(left, f_probe, f2), torch.where(left, f1, f_probe))
    cand = torch.stack([x1, x2, grid[best]], dim=1)
    cand_f = torch.stack([f1, f2, values.gather(1, best[:, None])[:, 0]], dim=1)
    return cand.gather(1, cand_f.argmin(dim=1, keepdim=True))[:, 0]


def edi_from_scer(blurry, rep, threshold=None, keep_middle=False, c_range=(0.05, 1.0), num_grid=16, num_iters=12,
                  energy='sharpness', power=0.6, min_pixels=16, eps=1e-6):
    """EDI latent frame at mid-window from an un-normalised SCER.

    Args:
        blurry (Tensor): (N, C, H, W) linear blurry image.
        rep (Tensor): (N, B, H, W) un-normalised SCER (raw polarity sums, ``norm_voxel: false``).
        threshold (float | None): Contrast threshold; None estimates it per sample. Default: None.
        keep_middle (bool): ``rep`` is the (B + 1)-channel variant. Default: False.
        c_range (tuple[float, float]): Search interval. Default: (0.05, 1.0).
        num_grid (int): Search grid points. Default: 16.
        num_iters (int): Golden-section iterations. Default: 12.
        energy (str): Search energy, see :func:`estimation_energy`. Default: ``'sharpness'``.
        power (float): Exponent of the ``'sharpness'`` energy. Default: 0.6.
        min_pixels (int): Fewest pixels with events for an estimate. Default: 16.
        eps (float): Floor of the denominator. Default: 1e-6.

    Returns:
        tuple[Tensor, Tensor]: Latent (N, C, H, W) and the thresholds used (N,), float64. An estimate is NaN for a
        sample with fewer than ``min_pixels`` pixels with events, whose latent is then the blurry frame (no
        correction).
    """
    threshold = check_threshold(threshold)
    energy, power = _check_energy(energy, power)
    if not torch.is_tensor(blurry) or blurry.dim() != 4:
        raise ValueError(f'x must be a tensor (N, C, H, W), got '
                         f'{tuple(blurry.shape) if torch.is_tensor(blurry) else type(blurry).__name__}')
    offsets = scer_offsets(rep, keep_middle).to(blurry.dtype)
    if offsets.shape[0] != blurry.shape[0] or offsets.shape[-2:] != blurry.shape[-2:]:
        raise ValueError(f'event {tuple(rep.shape)} and x {tuple(blurry.shape)} differ in batch or spatial size')
    n = blurry.shape[0]
    if threshold is None:
        weights = trapezoid_weights(offsets.shape[1], offsets.dtype, offsets.device)

        def log_denominator(cs, pixels):
            expo = cs.to(offsets.dtype).reshape(-1, 1, 1) * offsets.flatten(2)[:, :, pixels]
            expo = torch.exp(torch.clamp(expo, -_MAX_EXPONENT, _MAX_EXPONENT))
            return torch.log(torch.einsum('nkp,k->np', expo, weights).clamp_min(eps))

        c = _estimate(blurry.mean(1, keepdim=True), offsets.abs().amax(1) > 0, log_denominator,
                      offsets[:, [0, -1]], energy, power, c_range, num_grid, num_iters, min_pixels)
    else:
        c = torch.full((n, ), threshold, dtype=torch.float64, device=blurry.device)
    return edi_latent(blurry, offsets, torch.nan_to_num(c, nan=0.0).to(blurry.dtype), eps=eps), c


def event_steps(x, y, t, p, height, width, t_start, t_end, t_ref):
    """Per-pixel step-function description of ``E(t) - E(t_ref)`` over ``[t_start, t_end]``.

    ``E(t)`` counts the events before ``t``. Each pixel contributes one step from ``t_start`` to its first event
    and one step after each of its events (to its next event or ``t_end``); events outside the window are ignored.

    Args:
        x (np.ndarray): (N,) pixel columns.
        y (np.ndarray): (N,) pixel rows.
        t (np.ndarray): (N,) seconds.
        p (np.ndarray): (N,) polarities in {-1, +1}.
        height (int): Image height.
        width (int): Image width.
        t_start (float): Exposure start.
        t_end (float): Exposure end (> t_start).
        t_ref (float): Reference time within the exposure.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: Flat pixel index (S,), step value ``E - E(t_ref)`` (S,) and step
        duration as a fraction of the exposure (S,); per pixel the fractions sum to 1.
    """
    x, y, t, p = (np.asarray(a) for a in (x, y, t, p))
    n = t.shape[0]
    for name, arr in (('x', x), ('y', y), ('p', p)):
        if arr.shape != (n, ):
            raise EventFormatError(f'event arrays must be 1-D of equal length; "{name}" has shape {arr.shape}, "t" '
                                   f'has shape {t.shape}')
    t_start, t_end, t_ref = float(t_start), float(t_end), float(t_ref)
    if not t_end > t_start:
        raise ValueError(f't_end must be after t_start, got t_start={t_start}, t_end={t_end}')
    if not t_start <= t_ref <= t_end:
        raise ValueError(f't_ref={t_ref} must lie within the exposure [{t_start}, {t_end}]')
    keep = (t >= t_start) & (t <= t_end)
    x, y, t, p = x[keep], y[keep], t[keep].astype(np.float64), p[keep].astype(np.float64)
    if t.size and (x.min() < 0 or y.min() < 0 or x.max() >= width or y.max() >= height):
        raise EventFormatError(f'event coordinates fall outside the image ({height}x{width})')
    if t.size and not np.all((p == 1) | (p == -1)):
        raise EventFormatError('event polarities must be -1 or +1 (map {0, 1} with p = 2p - 1 first)')
    hw = height * width
    pix = y.astype(np.int64) * width + x.astype(np.int64)
    order = np.lexsort((t, pix))  # by pixel, then time
    pix, t, p = pix[order], t[order], p[order]
    e_ref = np.bincount(pix, weights=p * (t < t_ref), minlength=hw)
    cum = np.cumsum(p)
    counts = np.bincount(pix, minlength=hw)
    first = np.cumsum(counts) - counts  # index of each pixel's first event
    before = np.concatenate(([0.0], cum))[first]  # cumulative sum before the pixel's block
    value = cum - np.repeat(before, counts)
    is_last = np.ones(t.size, bool)
    is_last[:-1] = pix[1:] != pix[:-1]
    t_next = np.where(is_last, t_end, np.concatenate((t[1:], [t_end])))
    span = t_end - t_start
    first_t = np.full(hw, t_end)
    has = counts > 0
    first_t[has] = t[first[has]]
    all_pix = np.concatenate((np.arange(hw), pix))
    all_val = np.concatenate((np.zeros(hw), value)) - e_ref[all_pix]
    all_dur = np.concatenate((first_t - t_start, t_next - t)) / span
    return all_pix, all_val, all_dur


def _as_chw(blurry):
    """A numpy (H, W) / (H, W, C) or tensor (C, H, W) image as a float64 (C, H, W) tensor."""
    is_tensor = torch.is_tensor(blurry)
    img = blurry.detach().to(torch.float64) if is_tensor else torch.from_numpy(np.asarray(blurry, np.float64))
    if is_tensor:
        if img.dim() != 3:
            raise ValueError(f'blurry tensor must be (C, H, W), got shape {tuple(img.shape)}')
        return img
    if img.dim() == 2:
        return img[None]
    if img.dim() == 3:
        return img.permute(2, 0, 1)
    raise ValueError(f'blurry array must be (H, W) or (H, W, C), got shape {tuple(img.shape)}')


def _step_denominator(c, step_pix, step_val, step_dur, size, eps):
    """Exact exposure mean of ``exp(c * (E(t) - E(t_ref)))`` per pixel, (len(c), size), from event steps."""
    expo = torch.clamp(c.reshape(-1, 1).to(step_val) * step_val, -_MAX_EXPONENT, _MAX_EXPONENT)
    denom = torch.zeros(c.numel(), size, dtype=step_val.dtype, device=step_val.device)
    denom.index_add_(1, step_pix, torch.exp(expo) * step_dur)
    return denom.clamp_min(eps)


def _raw_energy(chw, steps, energy, power, eps):
    """Search energy of one frame from its event steps (:func:`event_steps`).

    Returns:
        tuple[Callable | None, int]: ``energy_of(cs)`` (see :func:`_energy_closure`, one sample) and the number of
        pixels with events.
    """
    pix, val, dur = steps
    height, width = chw.shape[-2:]
    hw = height * width
    # steps 0..hw-1 start the exposure of each pixel, the last step of a pixel ends it
    last = torch.arange(hw, device=pix.device).scatter_reduce(0, pix, torch.arange(pix.numel(), device=pix.device),
                                                               'amax')
    ends = torch.stack([val[:hw], val[last]]).reshape(1, 2, height, width)
    active = torch.zeros(hw, dtype=torch.bool, device=pix.device)
    active[pix[hw:]] = True
    subset = {}

    def log_denominator(cs, pixels):
        if not subset:  # the steps of the searched pixels, renumbered (the pixels are the same on every call)
            lookup = torch.full((hw, ), -1, dtype=torch.int64, device=pix.device)
            lookup[pixels] = torch.arange(pixels.numel(), device=pix.device)
            keep = lookup[pix] >= 0
            subset.update(pix=lookup[pix[keep]], val=val[keep], dur=dur[keep], size=pixels.numel())
        return torch.log(_step_denominator(cs, subset['pix'], subset['val'], subset['dur'], subset['size'], eps))

    energy_of = _energy_closure(chw.mean(0, keepdim=True)[None], active.reshape(1, height, width), log_denominator,
                                ends, energy, power)
    return energy_of, int(active.sum())


def _tile_sums(values, tile):
    """Sums over non-overlapping ``tile`` x ``tile`` tiles of (..., H, W), cropped to whole tiles: (..., T)."""
    height, width = values.shape[-2:]
    th, tw = height // tile, width // tile
    v = values[..., :th * tile, :tw * tile]
    return v.reshape(*v.shape[:-2], th, tile, tw, tile).sum((-3, -1)).reshape(*v.shape[:-2], th * tw)


def motion_residual(gray, diff, tile=16, ridge=1e-6):
    """Unexplained part of the latent's change over the exposure under locally linear motion, per sample.

    For a scene translating by ``d`` pixels during the exposure, ``B(x) = int_0^1 L_start(x - s d) ds``, hence
    ``d . grad B = L_start - L_end`` exactly. The same holds on each of K equal sub-intervals of the exposure, with
    its own partial blur ``B_k`` (the mean of the latent over it), its end latents and the motion ``d / K``. Per
    tile, one ``d`` is the least-squares fit of all the changes ``diff_k = L_k,start - L_k,end`` to the partial
    blurs' gradients (central differences); what is left over is the residual.

    Args:
        gray (np.ndarray): (H, W) linear blurry frame (K = 1), or (N, K, H, W) the partial blurs of K equal
            sub-intervals for N thresholds.
        diff (np.ndarray): (N, H, W) ``L_start - L_end`` for N thresholds (K = 1), or (N, K, H, W) the change over
            each sub-interval.
        tile (int): Tile size in pixels (one motion per tile). Default: 16.
        ridge (float): Relative ridge of the per-tile 2x2 normal equations (tiles without texture). Default: 1e-6.

    Returns:
        tuple[np.ndarray, np.ndarray]: (N,) residual sum of squares and (N,) total sum of squares of the changes
        over the tiles.
    """
    gray, diff = np.asarray(gray, np.float64), np.asarray(diff, np.float64)
    if gray.ndim == 2:
        gray, diff = gray[None, None], diff[:, None]
    tile = min(tile, *gray.shape[-2:])
    gy, gx = np.gradient(gray, axis=(-2, -1))
    gx, gy = gx / gray.shape[-3], gy / gray.shape[-3]  # each sub-interval moves by d / K

    def sums(values):
        return _tile_sums(values, tile).sum(-2)  # over tiles' pixels, then over sub-intervals

    sxx, sxy, syy = sums(gx * gx), sums(gx * gy), sums(gy * gy)
    lam = ridge * (sxx + syy)
    sxx, syy = sxx + lam, syy + lam
    det = sxx * syy - sxy * sxy
    bx, by, dd = sums(gx * diff), sums(gy * diff), sums(diff * diff)
    with np.errstate(divide='ignore', invalid='ignore'):
        explained = np.where(det > 0, (syy * bx * bx - 2 * sxy * bx * by + sxx * by * by) / det, 0.0)
    return np.maximum(dd - explained, 0).sum(-1), dd.sum(-1)


def _motion_parts(chw, x, y, t, p, t_start, t_end, tile, intervals, eps):
    """``parts(cs)`` -> (residual, total) tensors of :func:`motion_residual` over ``intervals`` equal sub-intervals
    for thresholds ``cs``, and the number of pixels with events. Numpy inside: these small element-wise passes are
    slower with torch's thread pool."""
    height, width = chw.shape[-2:]
    hw = height * width
    gray = chw.mean(0).cpu().numpy().reshape(-1)
    x, y, t, p = (np.asarray(a) for a in (x, y, t, p))
    t_start, t_end = float(t_start), float(t_end)
    bounds = t_start + (t_end - t_start) * np.arange(intervals + 1) / intervals
    pix = y.astype(np.int64) * width + x.astype(np.int64)
    inside = (t >= t_start) & (t <= t_end)
    # E(a_k) - E(t_start) at each sub-interval start a_k, and the events' steps within each sub-interval from a_k
    before = [np.bincount(pix, weights=p * (inside & (t < a)), minlength=hw) for a in bounds[:-1]]
    before.append(np.bincount(pix, weights=p * inside, minlength=hw))
    steps = [event_steps(x, y, t, p, height, width, a, b, a) for a, b in zip(bounds[:-1], bounds[1:])]
    num_active = int(np.unique(pix[inside]).size)

    def factor(c, values):
        return np.exp(np.clip(c * values, -_MAX_EXPONENT, _MAX_EXPONENT))

    def changes(c):
        # exposure mean of exp(c (E(t) - E(t_start))) over each sub-interval: latent = L_start times it
        means = [factor(c, e0) * np.bincount(s_pix, weights=factor(c, s_val) * s_dur, minlength=hw)
                 for e0, (s_pix, s_val, s_dur) in zip(before, steps)]
        l_start = gray / np.maximum(sum(means) / intervals, eps)
        ends = [l_start * factor(c, e0) for e0 in before]
        blurs = np.stack([l_start * m for m in means]).reshape(intervals, height, width)
        diffs = np.stack([a - b for a, b in zip(ends[:-1], ends[1:])]).reshape(intervals, height, width)
        return blurs, diffs

    def parts(cs):
        blurs, diffs = zip(*(changes(c) for c in cs.tolist()))
        res, tot = motion_residual(np.stack(blurs), np.stack(diffs), tile)
        return torch.from_numpy(res).to(cs), torch.from_numpy(tot).to(cs)

    return parts, num_active


def _frame_steps(chw, x, y, t, p, t_start, t_end, t_ref):
    height, width = chw.shape[-2:]
    return tuple(torch.from_numpy(a).to(chw.device)
                 for a in event_steps(x, y, t, p, height, width, t_start, t_end, t_ref))


def edi_deblur(blurry, x, y, t, p, t_start, t_end, threshold=None, t_ref=None, c_range=(0.05, 1.0), num_grid=16,
               num_iters=12, energy='sharpness', power=0.6, min_pixels=16, eps=1e-6):
    """EDI latent frame from a blurry image and its raw events, with the exact exposure mean of the event factor.

    Args:
        blurry (np.ndarray | Tensor): Linear blurry image (H, W), (H, W, C) numpy or (C, H, W) tensor.
        x (np.ndarray): (N,) pixel columns.
        y (np.ndarray): (N,) pixel rows.
        t (np.ndarray): (N,) seconds.
        p (np.ndarray): (N,) polarities in {-1, +1}.
        t_start (float): Exposure start.
        t_end (float): Exposure end.
        threshold (float | None): Contrast threshold; None estimates it from this frame alone (for a recording,
            estimate one threshold over many frames with :func:`estimate_threshold` and pass it). Default: None.
        t_ref (float | None): Time of the latent frame; None takes mid-exposure. Default: None.
        c_range (tuple[float, float]): Search interval. Default: (0.05, 1.0).
        num_grid (int): Search grid points. Default: 16.
        num_iters (int): Golden-section iterations. Default: 12.
        energy (str): Search energy, see :func:`estimation_energy`. Default: ``'sharpness'``.
        power (float): Exponent of the ``'sharpness'`` energy. Default: 0.6.
        min_pixels (int): Fewest pixels with events for an estimate. Default: 16.
        eps (float): Floor of the denominator. Default: 1e-6.

    Returns:
        tuple[np.ndarray | Tensor, float]: The latent image in the input's type and layout (float32 for numpy)
        and the threshold used. An estimate is NaN when fewer than ``min_pixels`` pixels have events or the energy
        has no interior minimum; the latent is then the blurry image (no correction).
    """
    threshold = check_threshold(threshold)
    energy, power = _check_energy(energy, power)
    chw = _as_chw(blurry)
    height, width = chw.shape[-2:]
    t_ref = 0.5 * (float(t_start) + float(t_end)) if t_ref is None else t_ref
    steps = _frame_steps(chw, x, y, t, p, t_start, t_end, t_ref)
    if threshold is None:
        energy_of, num_active = _raw_energy(chw, steps, energy, power, eps)
        c = math.nan
        if energy_of is not None and num_active >= min_pixels:
            c = float(_interior_or_nan(search_threshold(energy_of, 1, c_range, num_grid, num_iters), c_range)[0])
    else:
        c = threshold
    c_used = torch.tensor([0.0 if math.isnan(c) else c], dtype=torch.float64, device=chw.device)
    out = chw / _step_denominator(c_used, *steps, height * width, eps).reshape(1, height, width)
    if torch.is_tensor(blurry):
        return out.to(blurry.dtype), c
    out = out[0] if np.ndim(blurry) == 2 else out.permute(1, 2, 0)
    return out.numpy().astype(np.float32), c


@dataclasses.dataclass
class ThresholdEstimate:
    """Result of :func:`estimate_threshold`.

    Attributes:
        value (float): The joint threshold over all frames; NaN when there is none.
        per_frame (list[float]): Each frame's own estimate (NaN where that frame gives none), in input order.
        reason (str): Why ``value`` is NaN; ``''`` when there is an estimate.
    """
    value: float
    per_frame: list
    reason: str = ''


def estimate_threshold(samples, energy='motion', power=0.6, tile=16, intervals=2, denoise=None, c_range=(0.05, 1.0),
                       num_grid=16, num_iters=12, min_pixels=16, per_frame=True, eps=1e-6):
    """One contrast threshold for a recording, jointly over several of its frames.

    The threshold belongs to the sensor and its bias settings, not to a frame, so the joint estimate minimises one
    energy summed over the frames. Frames with fewer than ``min_pixels`` pixels with events are left out.

    Energies: ``'motion'`` (default) the share of the latent's change over each of ``intervals`` sub-intervals of
    the exposure that one locally linear motion does not explain (:func:`motion_residual`; joint: residuals and
    totals summed over frames, then divided); ``'sharpness'`` and ``'tv'`` the image priors of
    :func:`estimation_energy` (summed over frames), kept for comparison. See the module notes for why ``'motion'``
    is the default.

    Args:
        samples (Sequence[tuple]): Frames of one recording, each ``(blurry, x, y, t, p, t_start, t_end)``: blurry a
            linear image (H, W) or (H, W, C) numpy (or (C, H, W) tensor), the event arrays as in
            :func:`edi_deblur` (t float64 seconds, p in {-1, +1}) and the exposure in seconds. Frames may differ in
            size.
        energy (str): One of :data:`RAW_ENERGIES`. Default: ``'motion'``.
        power (float): Exponent of the ``'sharpness'`` energy. Default: 0.6.
        tile (int): Tile size of the ``'motion'`` energy, in pixels. Default: 16.
        intervals (int): Equal sub-intervals of the exposure whose changes the ``'motion'`` energy explains with one
            motion per tile (1: the whole exposure only). Default: 2.
        denoise (dict | None): Event denoising before the estimate (the deblurring itself is up to the caller),
            options of :func:`basicsr.events.denoise.denoise_events`, e.g. :data:`DEFAULT_DENOISE` (measured
            better); None uses the events as given (callers that denoise their windows already). Timestamps must be
            in seconds for the window to mean what it says. Default: None.
        c_range (tuple[float, float]): Search interval. Default: (0.05, 1.0).
        num_grid (int): Search grid points. Default: 16.
        num_iters (int): Golden-section iterations. Default: 12.
        min_pixels (int): Fewest pixels with events for a frame to count. Default: 16.
        per_frame (bool): Also estimate each frame alone (``per_frame`` of the result; NaN-filled when False).
            Default: True.
        eps (float): Floor of the denominator. Default: 1e-6.

    Returns:
        ThresholdEstimate: The joint value (NaN with a reason when there is none) and the per-frame values.
    """
    energy, power = _check_energy(energy, power, RAW_ENERGIES)
    lo, hi = _check_c_range(c_range)
    check_denoise_options(denoise, 'denoise')
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 2:
        raise ValueError(f'tile must be an integer >= 2, got {tile!r}')
    if isinstance(intervals, bool) or not isinstance(intervals, int) or intervals < 1:
        raise ValueError(f'intervals must be an integer >= 1, got {intervals!r}')
    frames, per = [], []
    for i, sample in enumerate(samples):
        try:
            blurry, x, y, t, p, t_start, t_end = sample
        except (TypeError, ValueError):
            raise ValueError(f'samples[{i}] must be a tuple (blurry, x, y, t, p, t_start, t_end)') from None
        chw = _as_chw(blurry)
        if denoise:
            x, y, t, p = denoise_events(x, y, t, p, *chw.shape[-2:], denoise)
        if energy == 'motion':
            parts, num_active = _motion_parts(chw, x, y, t, p, t_start, t_end, tile, intervals, eps)
        else:
            steps = _frame_steps(chw, x, y, t, p, t_start, t_end, 0.5 * (float(t_start) + float(t_end)))
            energy_of, num_active = _raw_energy(chw, steps, energy, power, eps)
            parts = None if energy_of is None else (lambda cs, f=energy_of: (f(cs), torch.ones_like(cs)))
        c = math.nan
        if parts is not None and num_active >= min_pixels:
            frames.append(parts)
            if per_frame:
                c = float(_interior_or_nan(search_threshold(lambda cs, f=parts: _ratio(*f(cs)), 1, c_range, num_grid,
                                                            num_iters), c_range)[0])
        per.append(c)
    if not frames:
        return ThresholdEstimate(math.nan, per, f'no frame has events in at least {min_pixels} pixels')

    def joint(cs):
        num, den = zip(*(f(cs) for f in frames))
        return _ratio(sum(num), sum(den))

    c = float(search_threshold(joint, 1, c_range, num_grid, num_iters)[0])
    if math.isnan(float(_interior_or_nan(torch.tensor([c]), c_range)[0])):
        end = 'lower' if c < math.sqrt(lo * hi) else 'upper'
        return ThresholdEstimate(math.nan, per, f'the {energy} energy has no interior minimum in c_range [{lo}, {hi}] '
                                 f'(it is lowest at the {end} end)')
    return ThresholdEstimate(c, per, '')


def _ratio(num, den):
    return num / den.clamp_min(torch.finfo(den.dtype).tiny)
