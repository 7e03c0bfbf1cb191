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

The contrast threshold may be given or estimated per frame (:func:`search_threshold`) by minimising an energy of
the latent image over ``c``: a geometric grid, then golden-section refinement, vectorised over the batch. The paper
minimises the latent image's total variation (plus an edge term, not implemented here); offered as
``energy='tv'``, but on textured scenes residual blur lowers the total variation, so it ends at the smallest ``c``
tried (measured on simulated scenes). The default ``energy='sparsity'`` (:func:`sparsity_energy`) uses the
normalised gradient sparsity ``|grad L|_1 / |grad L|_2``, which grows with residual blur, plus a term that keeps
the frame's mean intensity (a too large ``c`` darkens the moving regions).

Event quantisation biases any estimate: the event integral undercounts each log change by up to one threshold, so
the best ``c`` for the reconstruction exceeds the sensor's threshold when a pixel sees few events; the estimate is
close to the true value when each moving edge fires many events (high contrast or a small threshold).

Images are linear intensities (any positive scale); a colour image gets the same event factor in every channel.
"""
import math

import numpy as np
import torch

from basicsr.events.stream import EventFormatError

__all__ = [
    'scer_offsets', 'trapezoid_weights', 'edi_latent', 'edi_from_scer', 'total_variation', 'sparsity_energy',
    'threshold_energy', 'ENERGIES', 'search_threshold', 'event_steps', 'edi_deblur', 'check_threshold'
]

# exp(c * dE) is clamped to exp(+-_MAX_EXPONENT): a brightness ratio beyond e^30 is no physical signal and this
# keeps float32 finite (and the denominator positive) whatever threshold the search tries.
_MAX_EXPONENT = 30.0
_GOLDEN = (math.sqrt(5) - 1) / 2


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


def sparsity_energy(latent, blurry, mean_weight=10.0):
    """Threshold-search energy: normalised gradient sparsity plus a brightness-conservation term.

    ``E = ||grad L||_1 / (||grad L||_2 sqrt(M)) + mean_weight * |log(mean L / mean B)|`` per sample (M gradient
    entries). The first term (Krishnan et al., CVPR 2011) is scale-free and grows with residual blur (threshold too
    small); the second grows when a threshold too large darkens the moving regions (``mean exp(c dE)`` grows with
    ``c``), since motion blur keeps the mean intensity of the frame.

    Args:
        latent (Tensor): (N, C, H, W) candidate latent images.
        blurry (Tensor): (N, C, H, W) blurry images (broadcastable).
        mean_weight (float): Weight of the brightness term. Default: 10.

    Returns:
        Tensor: (N,) energies.
    """
    grad = _gradients(latent)
    tiny = torch.finfo(grad.dtype).tiny
    sparsity = grad.abs().sum(1) / (grad.norm(dim=1) * math.sqrt(grad.shape[1])).clamp_min(tiny)
    if not mean_weight:
        return sparsity
    ratio = latent.flatten(1).mean(1) / blurry.flatten(1).mean(1).expand(latent.shape[0]).clamp_min(tiny)
    return sparsity + mean_weight * torch.log(ratio.clamp_min(tiny)).abs()


ENERGIES = ('sparsity', 'tv')


def threshold_energy(name, mean_weight=10.0):
    """Returns the energy ``f(latent, blurry) -> (N,)`` minimised by the threshold search.

    Args:
        name (str): ``'sparsity'`` (:func:`sparsity_energy`, the default of the project) or ``'tv'`` (the total
            variation of the latent image, the main term of the paper's energy; on textured scenes it is smallest
            for the blurriest latent, so the search then ends at ``c_min``).
        mean_weight (float): Weight of the brightness term of ``'sparsity'``. Default: 10.

    Returns:
        Callable[[Tensor, Tensor], Tensor]: The energy.
    """
    if name == 'sparsity':
        return lambda latent, blurry: sparsity_energy(latent, blurry, mean_weight)
    if name == 'tv':
        return lambda latent, blurry: total_variation(latent)
    raise ValueError(f'energy must be one of {ENERGIES}, got {name!r}')


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


def edi_from_scer(blurry, rep, threshold=None, keep_middle=False, c_range=(0.05, 1.0), num_grid=16, num_iters=20,
                  energy='sparsity', mean_weight=10.0, eps=1e-6):
    """EDI latent frame at mid-window from an un-normalised SCER.

    Args:
        blurry (Tensor): (N, C, H, W) linear blurry image.
        rep (Tensor): (N, B, H, W) un-normalised SCER (raw polarity sums, ``norm_voxel: false``).
        threshold (float | None): Contrast threshold; None estimates it per sample. Default: None.
        keep_middle (bool): ``rep`` is the (B + 1)-channel variant. Default: False.
        c_range (tuple[float, float]): Search interval. Default: (0.05, 1.0).
        num_grid (int): Search grid points. Default: 16.
        num_iters (int): Golden-section iterations. Default: 20.
        energy (str): Search energy, see :func:`threshold_energy`. Default: ``'sparsity'``.
        mean_weight (float): Brightness term weight of the ``'sparsity'`` energy. Default: 10.
        eps (float): Floor of the denominator. Default: 1e-6.

    Returns:
        tuple[Tensor, Tensor]: Latent (N, C, H, W) and the thresholds used (N,).
    """
    threshold = check_threshold(threshold)
    energy_fn = threshold_energy(energy, mean_weight)
    if not torch.is_tensor(blurry) or blurry.dim() != 4:
        raise ValueError(f'x must be a tensor (N, C, H, W), got '
                         f'{tuple(blurry.shape) if torch.is_tensor(blurry) else type(blurry).__name__}')
    offsets = scer_offsets(rep, keep_middle).to(blurry.dtype)
    if offsets.shape[0] != blurry.shape[0] or offsets.shape[-2:] != blurry.shape[-2:]:
        raise ValueError(f'event {tuple(rep.shape)} and x {tuple(blurry.shape)} differ in batch or spatial size')
    n = blurry.shape[0]
    if threshold is None:
        c = search_threshold(lambda cs: energy_fn(edi_latent(blurry, offsets, cs.to(blurry.dtype), eps=eps), blurry),
                             n, c_range, num_grid, num_iters, device=blurry.device)
    else:
        c = torch.full((n, ), threshold, dtype=torch.float64, device=blurry.device)
    return edi_latent(blurry, offsets, c.to(blurry.dtype), eps=eps), c


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


def edi_deblur(blurry, x, y, t, p, t_start, t_end, threshold=None, t_ref=None, c_range=(0.05, 1.0), num_grid=16,
               num_iters=20, energy='sparsity', mean_weight=10.0, eps=1e-6):
    """EDI latent frame from a blurry image and its raw events, with the exact exposure mean of the event factor.

    Args:
        blurry (np.ndarray | Tensor): Linear blurry image (H, W), (H, W, C) numpy or (C, H, W) tensor.
        x (np.ndarray): (N,) pixel columns.
        y (np.ndarray): (N,) pixel rows.
        t (np.ndarray): (N,) seconds.
        p (np.ndarray): (N,) polarities in {-1, +1}.
        t_start (float): Exposure start.
        t_end (float): Exposure end.
        threshold (float | None): Contrast threshold; None estimates it. Default: None.
        t_ref (float | None): Time of the latent frame; None takes mid-exposure. Default: None.
        c_range (tuple[float, float]): Search interval. Default: (0.05, 1.0).
        num_grid (int): Search grid points. Default: 16.
        num_iters (int): Golden-section iterations. Default: 20.
        energy (str): Search energy, see :func:`threshold_energy`. Default: ``'sparsity'``.
        mean_weight (float): Brightness term weight of the ``'sparsity'`` energy. Default: 10.
        eps (float): Floor of the denominator. Default: 1e-6.

    Returns:
        tuple[np.ndarray | Tensor, float]: The latent image in the input's type and layout (float32 for numpy)
        and the threshold used.
    """
    threshold = check_threshold(threshold)
    energy_fn = threshold_energy(energy, mean_weight)
    is_tensor = torch.is_tensor(blurry)
    img = blurry.detach().to(torch.float64) if is_tensor else torch.from_numpy(np.asarray(blurry, np.float64))
    if is_tensor:
        if img.dim() != 3:
            raise ValueError(f'blurry tensor must be (C, H, W), got shape {tuple(img.shape)}')
        chw = img
    elif img.dim() == 2:
        chw = img[None]
    elif img.dim() == 3:
        chw = img.permute(2, 0, 1)
    else:
        raise ValueError(f'blurry array must be (H, W) or (H, W, C), got shape {tuple(img.shape)}')
    height, width = chw.shape[-2:]
    t_ref = 0.5 * (float(t_start) + float(t_end)) if t_ref is None else t_ref
    pix, val, dur = (torch.from_numpy(a).to(chw.device)
                     for a in event_steps(x, y, t, p, height, width, t_start, t_end, t_ref))

    def latent(c):
        expo = torch.clamp(c.reshape(-1, 1).to(val) * val, -_MAX_EXPONENT, _MAX_EXPONENT)
        denom = torch.zeros(c.numel(), height * width, dtype=val.dtype, device=val.device)
        denom.index_add_(1, pix, torch.exp(expo) * dur)
        return chw[None] / denom.clamp_min(eps).reshape(-1, 1, height, width)

    if threshold is None:
        c = float(search_threshold(lambda cs: energy_fn(latent(cs), chw[None]), 1, c_range, num_grid, num_iters)[0])
    else:
        c = threshold
    out = latent(torch.tensor([c], dtype=torch.float64))[0]
    if is_tensor:
        return out.to(blurry.dtype), c
    out = out[0] if np.ndim(blurry) == 2 else out.permute(1, 2, 0)
    return out.numpy().astype(np.float32), c
