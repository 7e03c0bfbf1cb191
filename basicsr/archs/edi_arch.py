"""EDI (Pan et al., CVPR 2019): the event-based double integral as a registered, parameter-free network.

The "BHA" baseline row of EFNet's tables (``spec/efnet.md`` §8). The maths lives in :mod:`basicsr.events.edi`;
this module wires it to the restoration model so option files and ``basicsr/test.py`` evaluate it like a network.
"""
from torch import nn

from basicsr.events.edi import ENERGIES, check_threshold, edi_from_scer
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['EDI']


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

    After each forward, ``last_threshold`` holds the thresholds used, a (N,) tensor; an estimate is NaN for a frame
    with too few events to tell thresholds apart (fewer than ``min_pixels`` pixels with events), whose output is then
    the blurry frame (no correction).

    Args:
        threshold (float | None): Contrast threshold (log intensity per event); None estimates it per frame.
            Default: None.
        c_range (tuple[float, float]): Search interval of the estimate. Default: (0.05, 1.0).
        num_grid (int): Geometric grid points of the search. Default: 16.
        num_iters (int): Golden-section iterations of the search. Default: 12.
        energy (str): Search energy: ``'sharpness'`` (default) or ``'tv'`` (see
            :func:`basicsr.events.edi.estimation_energy`).
        power (float): Exponent of the ``'sharpness'`` energy, in (0, 1]. Default: 0.6.
        min_pixels (int): Fewest pixels with events for an estimate. Default: 16.
        keep_middle (bool): The event input is the (B + 1)-channel SCER with a zero middle channel. Default: False.
        gamma (float): Exponent mapping the input image to linear intensity. Default: 1.
        eps (float): Floor of the denominator and of the image before ``** gamma``. Default: 1e-6.
    """

    io = {'inputs': {'x': 'frame', 'event': 'voxel'}, 'outputs': ['out'], 'result': 'out', 'gt': 'frame_gt'}
    size_multiple = 1

    def __init__(self, threshold=None, c_range=(0.05, 1.0), num_grid=16, num_iters=12, energy='sharpness', power=0.6,
                 min_pixels=16, keep_middle=False, gamma=1.0, eps=1e-6):
        super().__init__()
        self.threshold = check_threshold(threshold, 'EDI: threshold')
        lo, hi = (float(v) for v in c_range)
        if not 0 < lo < hi:
            raise ValueError(f'EDI: c_range must satisfy 0 < c_min < c_max, got {c_range!r}')
        if energy not in ENERGIES:
            raise ValueError(f'EDI: energy must be one of {ENERGIES}, got {energy!r}')
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
        self.power = float(power)
        self.min_pixels = int(min_pixels)
        self.keep_middle = bool(keep_middle)
        self.gamma = float(gamma)
        self.eps = float(eps)
        self.last_threshold = None

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
        linear = x.clamp_min(self.eps) ** self.gamma if self.gamma != 1 else x
        out, c = edi_from_scer(linear, event, self.threshold, self.keep_middle, self.c_range, self.num_grid,
                               self.num_iters, self.energy, self.power, self.min_pixels, self.eps)
        self.last_threshold = c.detach()
        if self.gamma != 1:
            out = out.clamp_min(0) ** (1 / self.gamma)
        return out

    def extra_repr(self):
        """Returns the settings shown by ``print(net)``."""
        threshold = 'estimated' if self.threshold is None else self.threshold
        return (f'threshold={threshold}, c_range={self.c_range}, energy={self.energy}, gamma={self.gamma}, '
                f'keep_middle={self.keep_middle}')

