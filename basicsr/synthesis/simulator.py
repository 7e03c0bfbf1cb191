"""Vectorised DVS event simulator of the v2e family (spec lowlight.md §10.8).

The model, per pixel: a linear-to-log mapping of intensity, a two-stage photoreceptor low-pass whose cut-off grows
with intensity, a memorised log level ``L_old`` that emits an ON (OFF) event each time the filtered level rises
(falls) by the pixel's ON (OFF) threshold, a slow leak that drifts ``L_old`` down (leak ON events), and shot-noise
events whose rate is higher in the dark. Events of one frame step are spread over a shared grid of ``K`` sub-steps,
``K`` being the largest event count of any pixel in the step.

Every random number comes from one ``numpy.random.Generator`` handed to :meth:`DVSSimulator.reset`, so a sample
is reproducible from its seed whichever back end does the arithmetic. The numpy back end runs on the CPU; the
torch back end runs on any torch device (CPU or CUDA) and draws its random numbers from the same generator, so the
two back ends give the same events up to floating-point rounding.

Intensities are in digital numbers (0-255 for an 8-bit range; values above 255 are allowed). Differences from
the reference implementation (lowlight.md §13): OFF shot-noise events have polarity -1, and the generator is
explicit instead of the global RNG reseeded with 42.
"""

import math

import numpy as np

from basicsr.events.stream import EventStream

__all__ = ['DVSSimulator', 'lin_log']

_LIN_LOG_KNEE = 20.0
_SHOT_NOISE_F = 0.25


def lin_log(intensity, xp=np):
    """Linear-to-log mapping: ``I / 20 * ln 20`` below 20, ``ln I`` from 20 on (continuous at 20).

    Args:
        intensity (ndarray | Tensor): Intensity in digital numbers.
        xp (module): ``numpy`` or ``torch``.

    Returns:
        ndarray | Tensor: Log intensity, same type and dtype as the input.
    """
    lin = intensity * (math.log(_LIN_LOG_KNEE) / _LIN_LOG_KNEE)
    if xp is np:
        return np.where(intensity < _LIN_LOG_KNEE, lin, np.log(np.maximum(intensity, _LIN_LOG_KNEE)))
    return xp.where(intensity < _LIN_LOG_KNEE, lin, xp.log(xp.clamp(intensity, min=_LIN_LOG_KNEE)))


class _NumpyOps:
    """Array operations of the numpy back end (the torch twin has the same method names)."""

    xp = np

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def asarray(self, a):
        return np.asarray(a, dtype=self.dtype)

    def from_numpy(self, a):
        return a

    def to_numpy(self, a):
        return a

    def relu(self, a):
        return np.maximum(a, 0)

    def min1(self, a):
        return np.minimum(a, 1)

    def flatnonzero(self, mask):
        return np.flatnonzero(mask)

    def repeat(self, a, counts):
        return np.repeat(a, counts)

    def arange(self, n):
        return np.arange(n, dtype=np.int64)

    def cumsum(self, a):
        return np.cumsum(a)

    def to_int(self, a):
        return a.astype(np.int64)

    def to_float64(self, a):
        return a.astype(np.float64)

    def item_max(self, a):
        return float(a.max()) if a.size else 0.0

    def item_sum(self, a):
        return int(a.sum())

    def concat(self, arrays):
        return np.concatenate(arrays)

    def full(self, shape, value, dtype):
        return np.full(shape, value, dtype=dtype)

    def stable_argsort(self, a):
        return np.argsort(a, kind='stable')


class _TorchOps:
    """Array operations of the torch back end, on any device."""

    def __init__(self, dtype, device):
        import torch
        self.xp = torch
        self.torch = torch
        self.dtype = getattr(torch, np.dtype(dtype).name)
        self.device = torch.device(device if device is not None else 'cpu')

    def asarray(self, a):
        torch = self.torch
        if isinstance(a, torch.Tensor):
            return a.to(device=self.device, dtype=self.dtype)
        return torch.as_tensor(np.asarray(a), dtype=self.dtype, device=self.device)

    def from_numpy(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def to_numpy(self, a):
        return a.detach().cpu().numpy()

    def relu(self, a):
        return self.torch.clamp(a, min=0)

    def min1(self, a):
        return self.torch.clamp(a, max=1)

    def flatnonzero(self, mask):
        return self.torch.nonzero(mask.reshape(-1)).reshape(-1)

    def repeat(self, a, counts):
        return self.torch.repeat_interleave(a, counts)

    def arange(self, n):
        return self.torch.arange(n, dtype=self.torch.int64, device=self.device)

    def cumsum(self, a):
        return self.torch.cumsum(a, 0)

    def to_int(self, a):
        return a.to(self.torch.int64)

    def to_float64(self, a):
        return a.to(self.torch.float64)

    def item_max(self, a):
        return float(a.max().item()) if a.numel() else 0.0

    def item_sum(self, a):
        return int(a.sum().item())

    def concat(self, arrays):
        return self.torch.cat(arrays)

    def full(self, shape, value, dtype):
        return self.torch.full(shape, value, dtype=getattr(self.torch, np.dtype(dtype).name), device=self.device)

    def stable_argsort(self, a):
        return self.torch.sort(a, stable=True).indices


class DVSSimulator:
    """DVS event simulator (v2e family), vectorised over pixels and events.

    Usage: ``sim.reset(frame0, t0, rng)``, then ``sim.step(frame, t)`` per later frame; or ``sim.simulate(frames,
    times, rng)`` for a whole clip.

    Args:
        pos_thres (float): Nominal ON threshold (log units). Default: 0.3.
        neg_thres (float): Nominal OFF threshold (log units). Default: 0.3.
        sigma_thres (float): Std of the per-pixel threshold mismatch; 0 disables mismatch. Default: 0.03.
        cutoff_hz (float | None): Photoreceptor cut-off at full brightness (the cut-off scales with
            ``(I + 20) / 275``); ``None`` or 0 disables the low-pass. Default: 30.
        leak_rate_hz (float): Leak event rate per pixel; 0 disables leak (and the random leak phase). Default: 0.1.
        shot_noise_rate_hz (float): Shot-noise rate per pixel (ON + OFF, at zero luma); 0 disables. Default: 0.1.
        refractory_period_s (float): Minimum time between two signal events of a pixel; suppressed events keep
            their brightness change in the memorised level. 0 disables (the reference). Default: 0.
        shot_noise_every_step (bool): Draw shot noise in every frame step, even one without signal events
            (v2e-like). False reproduces the reference, where a static frame yields no noise (§13 #9).
            Default: False.
        min_thres (float): Lower clip of the per-pixel thresholds. Default: 0.01.
        shuffle (bool): Shuffle the events of one sub-step (they share a time stamp), as the reference does.
            Default: True.
        backend (str): ``'numpy'`` or ``'torch'``. Default: ``'numpy'``.
        device (str | torch.device | None): Torch device of the torch back end. Default: CPU.
        dtype (str): Floating type of the pixel state. Default: ``'float32'``.
    """

    def __init__(self, pos_thres=0.3, neg_thres=0.3, sigma_thres=0.03, cutoff_hz=30.0, leak_rate_hz=0.1,
                 shot_noise_rate_hz=0.1, refractory_period_s=0.0, shot_noise_every_step=False, min_thres=0.01,
                 shuffle=True, backend='numpy', device=None, dtype='float32'):
        for key, value in (('pos_thres', pos_thres), ('neg_thres', neg_thres)):
            if not value > 0:
                raise ValueError(f'DVSSimulator: {key} must be > 0, got {value}')
        for key, value in (('sigma_thres', sigma_thres), ('leak_rate_hz', leak_rate_hz),
                           ('shot_noise_rate_hz', shot_noise_rate_hz), ('refractory_period_s', refractory_period_s)):
            if value < 0:
                raise ValueError(f'DVSSimulator: {key} must be >= 0, got {value}')
        if backend == 'numpy':
            self.ops = _NumpyOps(dtype)
        elif backend == 'torch':
            self.ops = _TorchOps(dtype, device)
        else:
            raise ValueError(f"DVSSimulator: backend must be 'numpy' or 'torch', got {backend!r}")
        self.pos_thres = float(pos_thres)
        self.neg_thres = float(neg_thres)
        self.sigma_thres = float(sigma_thres)
        self.cutoff_hz = float(cutoff_hz) if cutoff_hz else 0.0
        self.leak_rate_hz = float(leak_rate_hz)
        self.shot_noise_rate_hz = float(shot_noise_rate_hz)
        self.refractory_period_s = float(refractory_period_s)
        self.shot_noise_every_step = bool(shot_noise_every_step)
        self.min_thres = float(min_thres)
        self.shuffle = bool(shuffle)
        self.backend = backend
        self.rng = None
        self.counts = {}

    def reset(self, frame, t, rng):
        """Start a new clip at ``frame`` (time ``t``), drawing the per-pixel state from ``rng``.

        Draw order: leak phase map (if leak > 0), ON threshold map, OFF threshold map (if mismatch > 0).

        Args:
            frame (ndarray | Tensor): (H, W) intensity in digital numbers.
            t (float): Time of the frame in seconds.
            rng (numpy.random.Generator): The sample's generator; later steps draw from it too.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f'DVSSimulator.reset: rng must be a numpy.random.Generator, got {type(rng).__name__}')
        ops = self.ops
        frame = ops.asarray(frame)
        if frame.ndim != 2:
            raise ValueError(f'DVSSimulator.reset: frame must be (H, W), got shape {tuple(frame.shape)}')
        self.rng = rng
        self.shape = tuple(frame.shape)
        self.t = float(t)
        log_frame = lin_log(frame, ops.xp)
        self.l_old = log_frame
        if self.leak_rate_hz > 0:
            self.l_old = log_frame - ops.asarray(rng.uniform(0, self.pos_thres, size=self.shape))
        self.l1 = log_frame
        self.llp = log_frame
        if self.sigma_thres > 0:
            on = rng.normal(self.pos_thres, self.sigma_thres, size=self.shape)
            off = rng.normal(self.neg_thres, self.sigma_thres, size=self.shape)
            self.thres_on = ops.asarray(np.maximum(on, self.min_thres))
            self.thres_off = ops.asarray(np.maximum(off, self.min_thres))
        else:
            self.thres_on = ops.asarray(np.full(self.shape, max(self.pos_thres, self.min_thres)))
            self.thres_off = ops.asarray(np.full(self.shape, max(self.neg_thres, self.min_thres)))
        if self.refractory_period_s > 0:
            self.t_last = ops.full(self.shape, -np.inf, np.float64)
        self.counts = {'on': 0, 'off': 0, 'noise_on': 0, 'noise_off': 0, 'steps': 0, 'noise_substeps': 0}

    def step(self, frame, t):
        """Advance to ``frame`` at time ``t`` and return the events of the interval.

        Args:
            frame (ndarray | Tensor): (H, W) intensity in digital numbers.
            t (float): Time of the frame in seconds, later than the previous frame.

        Returns:
            dict: ``x``, ``y`` (int64), ``t`` (float64), ``p`` (int8 ±1) arrays of the back end, sorted by time.
        """
        if self.rng is None:
            raise RuntimeError('DVSSimulator.step: call reset(frame0, t0, rng) first')
        ops = self.ops
        xp = ops.xp
        frame = ops.asarray(frame)
        if tuple(frame.shape) != self.shape:
            raise ValueError(f'DVSSimulator.step: frame shape {tuple(frame.shape)} differs from {self.shape}')
        t = float(t)
        dt = t - self.t
        if not dt > 0:
            raise ValueError(f'DVSSimulator.step: time {t} is not after the previous frame time {self.t}')
        log_frame = lin_log(frame, xp)
        if self.cutoff_hz > 0:
            luma = (frame + _LIN_LOG_KNEE) / 275.0
            eps = ops.min1(ops.relu(luma * (dt * 2 * math.pi * self.cutoff_hz)))
            self.l1 = (1 - eps) * self.l1 + eps * log_frame
            self.llp = (1 - eps) * self.llp + eps * self.l1
        else:
            self.l1 = log_frame
            self.llp = log_frame
        if self.leak_rate_hz > 0:
            self.l_old = self.l_old - dt * self.leak_rate_hz * self.pos_thres
        diff = self.llp - self.l_old
        n_on = xp.floor(ops.relu(diff) / self.thres_on)
        n_off = xp.floor(ops.relu(-diff) / self.thres_off)
        num_sub = int(max(ops.item_max(n_on), ops.item_max(n_off)))
        parts = []
        if num_sub > 0:
            if self.refractory_period_s > 0:
                parts += self._emit_refractory(n_on, n_off, num_sub, dt)
            else:
                self.l_old = self.l_old + n_on * self.thres_on - n_off * self.thres_off
                parts.append(self._emit(n_on, 1))
                parts.append(self._emit(n_off, -1))
        noise_sub = num_sub if num_sub > 0 else int(self.shot_noise_every_step)
        if self.shot_noise_rate_hz > 0 and noise_sub > 0:
            parts += self._shot_noise(frame, noise_sub, dt)
        self.counts['steps'] += 1
        events = self._assemble(parts, t, max(num_sub, noise_sub))
        self.t = t
        return events

    def _emit(self, counts, polarity):
        """Signal events of one polarity: pixel ``i`` fires in sub-steps 1..counts[i]."""
        ops = self.ops
        flat = counts.reshape(-1)
        pix = ops.flatnonzero(flat > 0)
        per_pix = ops.to_int(flat[pix])
        total = ops.item_sum(per_pix)
        self.counts['on' if polarity > 0 else 'off'] += total
        starts = ops.cumsum(per_pix) - per_pix
        sub = ops.arange(total) - ops.repeat(starts, per_pix) + 1
        return ops.repeat(pix, per_pix), sub, polarity

    def _emit_refractory(self, n_on, n_off, num_sub, dt):
        """Signal events with a refractory period: sub-step by sub-step, blocked events stay in ``diff``."""
        ops = self.ops
        done_on = n_on * 0
        done_off = n_off * 0
        parts = []
        for j in range(1, num_sub + 1):
            t_j = self.t + dt * j / num_sub
            free = (t_j - self.t_last) >= self.refractory_period_s
            fire_on = (n_on >= j) & free
            fire_off = (n_off >= j) & free
            fired = fire_on | fire_off
            self.t_last = ops.xp.where(fired, ops.full(self.shape, t_j, np.float64), self.t_last)
            done_on = done_on + fire_on
            done_off = done_off + fire_off
            for mask, polarity in ((fire_on, 1), (fire_off, -1)):
                pix = ops.flatnonzero(mask)
                sub = ops.full((pix.shape[0], ), j, np.int64)
                parts.append((pix, sub, polarity))
                self.counts['on' if polarity > 0 else 'off'] += int(pix.shape[0])
        self.l_old = self.l_old + done_on * self.thres_on - done_off * self.thres_off
        return parts

    def _shot_noise(self, frame, num_sub, dt):
        """Shot-noise events in each of ``num_sub`` sub-steps: per pixel and sub-step, ON with probability q and
        OFF with probability q (mutually exclusive), q = r(luma) * (dt / num_sub) * pos_thres / thres_on.

        Cells (sub-step, pixel) are sampled sparsely: candidates with probability 2 q_max, then thinned with one
        uniform each, which has exactly the distribution of one uniform per cell.
        """
        ops = self.ops
        rng = self.rng
        luma = (frame + _LIN_LOG_KNEE) / 275.0
        rate = ops.relu(((_SHOT_NOISE_F - 1) * luma + 1) * (self.shot_noise_rate_hz / 2))
        q = (rate * (dt / num_sub * self.pos_thres) / self.thres_on).reshape(-1)
        q_max = ops.item_max(q)
        if q_max <= 0:
            return []
        num_pix = int(q.shape[0])
        num_cells = num_pix * num_sub
        self.counts['noise_substeps'] += num_sub
        if q_max < 0.05:
            num_cand = int(rng.binomial(num_cells, 2 * q_max))
            cells = rng.choice(num_cells, size=num_cand, replace=False) if num_cand else np.zeros(0, np.int64)
            u = ops.asarray(rng.random(num_cand) * (2 * q_max))
            cells = ops.from_numpy(cells.astype(np.int64))
            q_cell = q[cells % num_pix]
            cells_on = cells[u < q_cell]
            cells_off = cells[(u >= q_cell) & (u < 2 * q_cell)]
        else:
            u = ops.asarray(rng.random((num_sub, num_pix)))
            cells_on = ops.flatnonzero(u > 1 - q)
            cells_off = ops.flatnonzero(u < q)
        pix_on, pix_off = cells_on % num_pix, cells_off % num_pix
        n_on = int(pix_on.shape[0])
        n_off = int(pix_off.shape[0])
        self.counts['noise_on'] += n_on
        self.counts['noise_off'] += n_off
        l_old = self.l_old.reshape(-1)
        thres_on = self.thres_on.reshape(-1)
        thres_off = self.thres_off.reshape(-1)
        # a pixel can fire several noise events in one step: accumulate with index-add, not fancy assignment
        delta = l_old * 0
        if self.backend == 'numpy':
            np.add.at(delta, pix_on, thres_on[pix_on])
            np.subtract.at(delta, pix_off, thres_off[pix_off])
        else:
            delta.index_add_(0, pix_on, thres_on[pix_on])
            delta.index_add_(0, pix_off, -thres_off[pix_off])
        self.l_old = (l_old + delta).reshape(self.shape)
        return [(pix_on, cells_on // num_pix + 1, 1), (pix_off, cells_off // num_pix + 1, -1)]

    def _assemble(self, parts, t_new, num_sub):
        """Concatenate the parts of one step, shuffle within a time stamp, sort by sub-step, attach times."""
        ops = self.ops
        width = self.shape[1]
        if not parts:
            return self._empty()
        pix = ops.concat([part[0] for part in parts])
        sub = ops.concat([part[1] for part in parts])
        pol = ops.concat([ops.full((part[0].shape[0], ), part[2], np.int8) for part in parts])
        num = int(pix.shape[0])
        if num == 0:
            return self._empty()
        if self.shuffle:
            perm = ops.from_numpy(self.rng.permutation(num))
            pix, sub, pol = pix[perm], sub[perm], pol[perm]
        order = ops.stable_argsort(sub)
        pix, sub, pol = pix[order], sub[order], pol[order]
        # the last sub-step lands exactly on the frame time (no rounding past it)
        t = ops.xp.where(sub == num_sub, t_new, self.t + ops.to_float64(sub) * ((t_new - self.t) / num_sub))
        return {'x': pix % width, 'y': pix // width, 't': t, 'p': pol}

    def _empty(self):
        ops = self.ops
        return {'x': ops.arange(0), 'y': ops.arange(0), 't': ops.full((0, ), 0, np.float64),
                'p': ops.full((0, ), 0, np.int8)}

    def simulate(self, frames, times, rng):
        """Simulate a whole clip.

        Args:
            frames (Sequence | ndarray | Tensor): (T, H, W) intensities in digital numbers, T >= 2.
            times (Sequence[float]): T increasing frame times in seconds.
            rng (numpy.random.Generator): The sample's generator.

        Returns:
            EventStream: Canonical events (x, y uint16; t float64; p int8), sorted by time, with the sensor size.
            ``stream.to_array(np.float32)`` gives the low-light generator's (N, 4) rows ``[t, x, y, p]``.
        """
        if len(frames) != len(times) or len(frames) < 2:
            raise ValueError(f'DVSSimulator.simulate: need T >= 2 frames and as many times, got {len(frames)} '
                             f'frames and {len(times)} times')
        self.reset(frames[0], times[0], rng)
        steps = [self.step(frame, t) for frame, t in zip(frames[1:], times[1:])]
        ops = self.ops
        out = {key: ops.to_numpy(ops.concat([s[key] for s in steps])) for key in ('x', 'y', 't', 'p')}
        return EventStream(out['x'].astype(np.uint16), out['y'].astype(np.uint16), out['t'].astype(np.float64),
                           out['p'].astype(np.int8), self.shape[0], self.shape[1])
