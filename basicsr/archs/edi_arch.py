"""EDI (Pan et al., CVPR 2019): the event-based double integral as a registered, parameter-free network.

The "BHA" baseline row of EFNet's tables (``spec/efnet.md`` §8). The maths lives in :mod:`basicsr.events.edi`;
this module wires it to the restoration model so option files and ``basicsr/test.py`` evaluate it like a network,
and gives ``basicsr/infer.py`` the exact raw-event path (:meth:`EDI.deblur_events`) with the same settings.
"""
import numpy as np
import torch
from torch import nn

from basicsr.archs.edi_threshold import (MAX_THRESHOLD, ThresholdChoice, check_plausible_threshold,
                                         choose_thresholds)
from basicsr.archs.method_spec import ImageInput, MethodSpec
from basicsr.events.edi import (DEFAULT_DENOISE, DEFAULT_THRESHOLD, ENERGIES, RAW_ENERGIES, edi_deblur,
                                edi_from_scer, edi_latent, scer_offsets)
from basicsr.events.event_input import EventInputSpec
from basicsr.utils.inference_errors import InferenceError
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['EDI', 'MAX_THRESHOLD', 'check_plausible_threshold']

@ARCH_REGISTRY.register()
class EDI(nn.Module):
    """Event-based double integral: the sharp frame at mid-exposure from the blurry frame and an un-normalised SCER.

    ``forward(x, event) -> out`` with ``out = x / mean_t exp(c (E(t) - E(t_mid)))`` per sample, the mean taken with
    the trapezoid rule over the B + 1 SCER bin boundaries (see :func:`basicsr.events.edi.edi_from_scer`). The event
    input must be raw polarity sums (dataset option ``norm_voxel: false``): after max-abs normalisation the counts
    lose their scale and the threshold no longer means a log-intensity step. The image is taken as linear intensity
    after ``x ** gamma`` (``gamma = 1``: already linear, as in the synthetic dataset; about 2.2 for sRGB frames)
    and the result is mapped back with ``1 / gamma``. A colour image gets the same event factor in every channel.

    The network has no parameters: it is for testing and inference only (``ImageEventRestorationModel`` with
    ``is_train: false``). Tests that train or back-propagate through every registered network skip it (there is
    no parameter to receive a gradient); its output is differentiable in ``x`` for a fixed threshold.

    After each forward, ``last_threshold`` holds the thresholds used, a (N,) tensor, and ``last_sources`` /
    ``last_reasons`` where each came from: ``'given'``, ``'per-frame'`` (estimated from the frame's SCER) or
    ``'fallback'``. A frame without an estimate (fewer than ``min_pixels`` pixels with events, or no interior
    minimum of the search energy) is deblurred with :data:`basicsr.events.edi.DEFAULT_THRESHOLD`, never returned
    unchanged; the caller reports it (``basicsr/test.py`` logs it with the frame name).

    The SCER holds the event integral only at the B + 1 bin boundaries, so this path approximates the exposure mean
    (trapezoid rule). With the raw events, :meth:`deblur_events` integrates exactly (``basicsr/infer.py`` does).

    Args:
        threshold (float | None): Contrast threshold (log intensity per event), in (0, 2]; None estimates it per
            frame. Default: None.
        c_range (tuple[float, float]): Search interval of the estimate. Default: (0.05, 1.0).
        num_grid (int): Geometric grid points of the search. Default: 16.
        num_iters (int): Golden-section iterations of the search. Default: 12.
        energy (str | None): Search energy. None takes each path's default: ``'motion'`` for raw events
            (:func:`basicsr.events.edi.estimate_threshold`, ``basicsr/infer.py``), ``'sharpness'`` for the SCER
            (:func:`basicsr.events.edi.edi_from_scer`, datasets). ``'sharpness'`` and ``'tv'`` work on both;
            ``'motion'`` needs raw events. Default: None.
        power (float): Exponent of the ``'sharpness'`` energy, in (0, 1]. Default: 0.6.
        tile (int): Tile size (pixels) of the ``'motion'`` energy. Default: 16.
        min_pixels (int): Fewest pixels with events for an estimate. Default: 16.
        keep_middle (bool): The event input is the (B + 1)-channel SCER with a zero middle channel. Default: False.
        gamma (float): Exponent mapping the input image to linear intensity. Default: 1.
        eps (float): Floor of the denominator and of the image before ``** gamma``. Default: 1e-6.
    """

    io = {'inputs': {'x': 'frame', 'event': 'voxel'}, 'outputs': ['out'], 'result': 'out', 'gt': 'frame_gt'}
    size_multiple = 1
    checkpoint_keys = ()  # no parameters: inference loads no checkpoint
    # Event filter inference applies when the user names none (the measured recommendation of basicsr.events.edi).
    inference_denoise = DEFAULT_DENOISE
    dataset_notice = ('EDI on {dataset}: the dataset gives the events as a SCER, not raw events, so the exposure '
                      'integral is approximated with the trapezoid rule over its bin boundaries (basicsr/infer.py '
                      'integrates raw events exactly)')

    @classmethod
    def inference_spec(cls, options):
        """Inference declaration: the raw (un-normalised) 6-channel SCER of the window's events (7 with
        ``keep_middle``), the frame as read with its own channels; no parameters, so no checkpoint. The SCER is the
        returned representation; the result itself comes from the raw events (:meth:`deblur_window`).

        Args:
            options (dict): Complete constructor options (see :func:`basicsr.archs.method_spec.network_options`).

        Returns:
            MethodSpec: The declaration.
        """
        scer = {'type': 'scer', 'num_bins': 6, 'keep_middle': bool(options['keep_middle'])}
        return MethodSpec(name=cls.__name__, events=EventInputSpec(scer, key='voxel'), images=(ImageInput('frame'), ),
                          size_multiple=cls.size_multiple)

    def __init__(self, threshold=None, c_range=(0.05, 1.0), num_grid=16, num_iters=12, energy=None, power=0.6,
                 min_pixels=16, keep_middle=False, gamma=1.0, eps=1e-6, tile=16):
        super().__init__()
        self.threshold = check_plausible_threshold(threshold, 'EDI: threshold')
        lo, hi = (float(v) for v in c_range)
        if not 0 < lo < hi:
            raise ValueError(f'EDI: c_range must satisfy 0 < c_min < c_max, got {c_range!r}')
        if energy is not None and energy not in RAW_ENERGIES:
            raise ValueError(f'EDI: energy must be None (each path\'s default) or one of {RAW_ENERGIES}, got '
                             f'{energy!r}')
        if isinstance(tile, bool) or not isinstance(tile, int) or tile < 2:
            raise ValueError(f'EDI: tile must be an integer >= 2, got {tile!r}')
        if isinstance(power, bool) or not isinstance(power, (int, float)) or not 0 < power <= 1:
            raise ValueError(f'EDI: power must be a number in (0, 1], got {power!r}')
        if int(min_pixels) < 1:
            raise ValueError(f'EDI: min_pixels must be >= 1, got {min_pixels}')
        if not gamma > 0:
            raise ValueError(f'EDI: gamma must be > 0, got {gamma}')
        if int(num_grid) < 3 or int(num_iters) < 0:
            raise ValueError(f'EDI: need num_grid >= 3 and num_iters >= 0, got {num_grid}, {num_iters}')
        self.c_range = (lo, hi)
        self.num_grid = int(num_grid)
        self.num_iters = int(num_iters)
        self.energy = energy
        self.tile = tile
        self.power = float(power)
        self.min_pixels = int(min_pixels)
        self.keep_middle = bool(keep_middle)
        self.gamma = float(gamma)
        self.eps = float(eps)
        self.last_threshold = None
        self.last_sources = []
        self.last_reasons = []

    def forward(self, x, event):
        """Deblurs a batch.

        Args:
            x (Tensor): (N, C, H, W) blurry frames, intensities >= 0 (e.g. [0, 1]).
            event (Tensor): (N, B, H, W) un-normalised SCER of the exposure, B even (B + 1 with ``keep_middle``).

        Returns:
            Tensor: (N, C, H, W) latent frames at mid-exposure (not clamped).
        """
        if x.dim() != 4 or event.dim() != 4:
            raise ValueError(f'EDI: x and event must be (N, C, H, W), got shapes {tuple(x.shape)} and '
                             f'{tuple(event.shape)}')
        energy = self.energy or 'sharpness'
        if energy not in ENERGIES:
            raise ValueError(f'EDI: energy {energy!r} needs raw events (basicsr/infer.py); the SCER of a dataset takes '
                             f'one of {ENERGIES} (or energy: ~)')
        linear = self.linearize(x)
        out, c = edi_from_scer(linear, event, self.threshold, self.keep_middle, self.c_range, self.num_grid,
                               self.num_iters, energy, self.power, self.min_pixels, self.eps)
        c = c.detach().clone()
        missing = torch.isnan(c)
        self.last_sources = ['given' if self.threshold is not None else 'per-frame'] * len(c)
        self.last_reasons = [''] * len(c)
        if missing.any():
            offsets = scer_offsets(event[missing], self.keep_middle).to(linear.dtype)
            out = out.clone()
            out[missing] = edi_latent(linear[missing], offsets, DEFAULT_THRESHOLD, eps=self.eps)
            c[missing] = DEFAULT_THRESHOLD
            active = (event.abs().amax(1) > 0).flatten(1).sum(1)
            for k in torch.nonzero(missing).flatten().tolist():
                self.last_sources[k] = 'fallback'
                self.last_reasons[k] = (f'only {int(active[k])} pixels with events, fewer than {self.min_pixels}'
                                        if active[k] < self.min_pixels else
                                        f'the {energy} energy of the SCER has no interior minimum in c_range '
                                        f'{list(self.c_range)}')
        self.last_threshold = c
        return self.delinearize(out)

    def linearize(self, image):
        """Maps an image to linear intensity, ``image ** gamma`` (floored at ``eps`` when ``gamma != 1``).

        Args:
            image (Tensor | np.ndarray): Intensities >= 0 (e.g. [0, 1]).

        Returns:
            Tensor | np.ndarray: Linear intensities, same type.
        """
        if self.gamma == 1:
            return image
        if torch.is_tensor(image):
            return image.clamp_min(self.eps) ** self.gamma
        return np.maximum(image, self.eps) ** self.gamma

    def delinearize(self, image):
        """Inverse of :meth:`linearize`: ``image ** (1 / gamma)`` (negative values clamped to 0).

        Args:
            image (Tensor | np.ndarray): Linear intensities.

        Returns:
            Tensor | np.ndarray: Display intensities, same type.
        """
        if self.gamma == 1:
            return image
        if torch.is_tensor(image):
            return image.clamp_min(0) ** (1 / self.gamma)
        return np.maximum(image, 0) ** (1 / self.gamma)

    def estimate_options(self):
        """The estimation settings of this network, as keyword options of
        :func:`basicsr.events.edi.estimate_threshold`.

        Returns:
            dict: ``c_range``, ``num_grid``, ``num_iters``, ``power``, ``tile``, ``min_pixels`` and ``energy`` when
            one is set (else the estimator's default).
        """
        options = {'c_range': self.c_range, 'num_grid': self.num_grid, 'num_iters': self.num_iters,
                   'power': self.power, 'tile': self.tile, 'min_pixels': self.min_pixels}
        if self.energy is not None:
            options['energy'] = self.energy
        return options

    def deblur_events(self, image, x, y, t, p, t_start, t_end, threshold):
        """The latent frame at mid-exposure from raw events, with the exact exposure integral
        (:func:`basicsr.events.edi.edi_deblur`) and this network's ``gamma``.

        Args:
            image (np.ndarray): Blurry frame (H, W) or (H, W, C), float intensities >= 0 (e.g. [0, 1]).
            x (np.ndarray): (N,) pixel columns.
            y (np.ndarray): (N,) pixel rows.
            t (np.ndarray): (N,) seconds.
            p (np.ndarray): (N,) polarities in {-1, +1}.
            t_start (float): Exposure start (s).
            t_end (float): Exposure end (s).
            threshold (float): Contrast threshold to use (see :mod:`basicsr.models.edi_threshold` for choosing it).

        Returns:
            np.ndarray: float32 latent frame, same layout as ``image``, not clamped.
        """
        threshold = check_plausible_threshold(threshold, 'EDI: threshold')
        if threshold is None:
            raise ValueError('EDI.deblur_events needs a threshold (choose one with basicsr.models.edi_threshold)')
        out, _ = edi_deblur(self.linearize(np.asarray(image, np.float64)), x, y, t, p, t_start, t_end,
                            threshold=threshold, eps=self.eps)
        return np.asarray(self.delinearize(out), np.float32)

    def plan_frames(self, names, load_frame, mode='joint', window=0):
        """Inference hook: the contrast threshold of every frame of a run, chosen before any is deblurred.

        Args:
            names (list[str]): Frame names in recording order.
            load_frame (Callable[[int], tuple]): Frame index -> ``(batch, window, t_start, t_end)``: the frame's
                inputs as declared (``batch['frame']`` float (C, H, W)) and its (denoised) ``EventStream``. Only
                the frames an estimate uses are loaded.
            mode (str): ``'joint'`` or ``'per-frame'`` (see :func:`basicsr.archs.edi_threshold.choose_thresholds`).
                Default: ``'joint'``.
            window (int): Joint mode: frames per estimate, 0 = all. Default: 0.

        Returns:
            list[ThresholdChoice]: One record per frame.

        Raises:
            InferenceError: For a bad mode or window, or a threshold that cannot be used.
        """
        def load_sample(k):
            batch, events, t_start, t_end = load_frame(k)
            image = self.linearize(batch['frame'].transpose(1, 2, 0))
            return (image, events.x, events.y, events.t, events.p, t_start, t_end)

        try:
            return choose_thresholds(names, load_sample, self.threshold, mode, window, self.estimate_options())
        except ValueError as err:
            raise InferenceError(f'EDI threshold: {err}') from None

    def deblur_window(self, batch, events, t_start, t_end, record):
        """Inference hook: one frame from the raw events of its exposure (:meth:`deblur_events`), in place of the
        SCER forward.

        Args:
            batch (dict): The frame's inputs as declared: ``frame`` float (C, H, W) in [0, 1].
            events (EventStream): The (denoised) events of the exposure window.
            t_start (float): Exposure start (s).
            t_end (float): Exposure end (s).
            record (ThresholdChoice): The frame's threshold from :meth:`plan_frames`.

        Returns:
            np.ndarray: float32 (C, H, W) latent frame, not clamped.
        """
        latent = self.deblur_events(batch['frame'].transpose(1, 2, 0), events.x, events.y, events.t, events.p,
                                    t_start, t_end, record.value)
        return np.ascontiguousarray(latent.transpose(2, 0, 1))

    def last_records(self):
        """Validation hook: the threshold used for each sample of the last forward.

        Returns:
            list[ThresholdChoice] | None: One record per sample; None before the first forward.
        """
        if self.last_threshold is None:
            return None
        return [ThresholdChoice(float(c), source, reason)
                for c, source, reason in zip(self.last_threshold, self.last_sources, self.last_reasons)]

    def extra_repr(self):
        """Returns the settings shown by ``print(net)``."""
        threshold = 'estimated per frame' if self.threshold is None else self.threshold
        energy = self.energy or 'default (motion for raw events, sharpness for the SCER)'
        return (f'threshold={threshold}, c_range={self.c_range}, energy={energy}, gamma={self.gamma}, '
                f'keep_middle={self.keep_middle}')

