"""Two-stage low-light event deblurring network of "Deblurring Low-Light Images with Events" (Zhou et al., IJCV 2023).

Re-implemented from ``spec/lowlight.md`` (§1–§4, §13); the state dict matches the released ``final.pth`` /
``final_rgb.pth`` key for key. Registered as ``LowLightEventDeblurNet`` and, for configs of the reference code, as
``DefaultModel``.
"""
import math

import torch
from torch import nn

from basicsr.archs.lowlight_blocks import (AttentionUnetBackbone, AutoencoderBackbone, ChunkedSelfAttentionFM,
                                           ConvTranspose2d, DenseBlock, InstanceNorm2d, PointwiseConv2d, SEBlock,
                                           check_norm_type, laplacian, make_norm)
from basicsr.archs.method_spec import ImageInput, MethodSpec
from basicsr.archs.precision_ops import full_precision
from basicsr.events.event_input import EventInputSpec
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['LowLightEventDeblurNet']

GAMMA = 2.2


def _to_gamma(x):
    return x.clamp(min=0).pow(1 / GAMMA)


def _from_gamma(residual, x_gamma):
    return torch.clamp(residual + x_gamma, 0, 1).pow(GAMMA)


def _add_residual(residual, x):
    return torch.clamp(residual + x, 0, 1)


def _feature_branch(in_channels, channels, grid):
    """Stage-1 encoder: conv7x7, instance norm, ReLU, chunked self-attention, residual dense block.

    Used for the event encoder E_a (input: voxel grid) and the edge encoder E_b (input: Laplacian of B). The norm
    is always instance norm, whatever ``norm_type`` says (as in the reference).

    Args:
        in_channels (int): Input channels.
        channels (int): Feature channels (``init_dim // 4``).
        grid (tuple[int, int]): Chunk grid of the attention.

    Returns:
        nn.Sequential: The branch (slots 0–4).
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, kernel_size=7, padding=3), InstanceNorm2d(channels), nn.ReLU(inplace=True),
        ChunkedSelfAttentionFM(channels, latent_dim=8, subsample=True, grid=grid),
        DenseBlock(channels, growth_rate=32, n_blocks=3))


@ARCH_REGISTRY.register()
class LowLightEventDeblurNet(nn.Module):
    """Event-guided deblurring of noisy low-light frames in two stages (reference class ``DefaultModel``).

    Stage one turns the events and the edges of the blurry APS frame into motion clues M, supervised through a
    bi-directional flow head; stage two denoises the blurry image and reconstructs the sharp one guided by M.
    Blocks (paper name → attribute):

    - E_b, edge encoder on the Laplacian L(B) of the blurry APS → ``B_edge_feature_extraction``;
    - E_a, event encoder on the voxel grid E → ``E_feature_extraction``;
    - F_a, fusion (1x1 conv + SE) of [edge, event] features → motion clues M → ``fuse1``;
    - D, flow decoder M → F (4 channels: start→middle x, y, middle→end x, y, in APS pixels) → ``flow_block``;
    - γ / B_a, denoiser working in gamma space (``Bi ** (1/2.2)``) with a residual → Bi_clean → ``Bi_denoise``;
    - E_c, image encoder on Bi_clean → ``Bi_feature_extraction``;
    - ↑, motion-clue up-sampling to the 3× RGB resolution (RGB mode only) → ``up``;
    - F_b, fusion (1x1 conv + SE) of [image feature, M] → ``fuse2``;
    - B_b, attention U-Net deblurring backbone and residual output head → S → ``backbone``, ``out_block``.

    The flow head: the reference ends ``flow_block`` with a ReLU, so its flow is never negative although the flow
    targets are signed. ``flow_relu=True`` (default) keeps that head, reproducing the reference outputs and the
    behaviour the released weights were trained with; ``flow_relu=False`` gives a signed (linear) head for new
    training. The ReLU has no parameters, so both settings load the same checkpoints with ``strict=True``, and S
    and Bi_clean do not depend on it (nothing downstream consumes F).

    Reduced precision (``torch.autocast``): convolutions and matrix products run in the autocast dtype; the
    instance norms (statistics and output), the attention scores and softmax, the gamma pair ``Bi ** (1/2.2)`` /
    ``** 2.2`` and the final residual add and clamp run in float32 (:mod:`basicsr.archs.precision_ops`). Measured
    with bf16 autocast on CPU on a briefly trained init_dim-32 network (120 iterations on the synthetic maker's
    output, 4 held-out 96×120 samples): S is 64.2 dB PSNR from float32 (ΔPSNR to ground truth −0.004 dB, ΔSSIM
    −0.0002); with the instance norms in bf16 62.7 dB; the attention, gamma pair and residual in bf16 made no
    measurable difference on these weights (they are kept in float32 as cheap insurance: the gamma pair and the
    residual are float32 anyway by type promotion, Bi being float32). Everything in bf16: 62.7 dB.

    Other differences from the reference: negative ``Bi`` values are clamped to 0 before the gamma power (the
    reference returns NaN for them); inputs of the wrong channel count or size raise a ValueError naming what was
    expected. The network does not pad: H, W of E and B must be multiples of ``size_multiple`` ((8, 40) for the
    default grid); ``basicsr.models.inference`` pads and crops back. Weights are PyTorch's default initialisation
    until :meth:`init_weights` is called (the reference trainer applies that initialisation before training).

    Args:
        init_dim (int): Base width (64 in every released model); multiple of 8, at least 32. Default: 64.
        n_ev (int): Number of voxel-grid bins of E. Default: 13.
        grid (tuple[int, int]): Rows and columns of the chunked self-attention grid. Default: (8, 10).
        norm_type (str): ``'instance'`` (all checkpoints) or ``'batch'`` (convolutions followed by a norm then have
            no bias; the stage-1 branches always use instance norm). Default: ``'instance'``.
        use_dropout (bool): ``Dropout(0.5)`` inside residual and U-Net blocks. Default: False.
        rgb (bool): Hybrid RGB mode: Bi is RGB at exactly 3× the event resolution. Default: False.
        flow_relu (bool): End the flow head with a ReLU as the reference does (non-negative flow); False gives a
            signed flow head. Default: True.
        out_channels (int): Channels of the output head. 1 (reference and released weights: in RGB mode the one
            residual channel is added to R, G and B) or, in RGB mode, 3 for new training. Default: 1.

    Attributes:
        io (dict): How the restoration model wires the network (inputs by batch key, named outputs).
        size_multiple (tuple[int, int]): Multiple of (H, W) required at event / APS resolution.
    """

    io = {'inputs': {'E': 'E', 'B': 'B', 'Bi': 'Bi'}, 'outputs': ['F', 'Bi_clean', 'S'], 'result': 'S', 'gt': 'S'}
    size_multiple = (8, 40)
    prefers_channels_last = False  # NHWC measured no faster on CPU (benchmarks/bench_inference.py)
    checkpoint_keys = ('E_feature_extraction', 'B_edge_feature_extraction', 'Bi_denoise', 'fuse2')
    checkpoint_help = ('The reference low-light checkpoints (final.pth, final_rgb.pth) must be converted first: '
                       'python scripts/convert_checkpoint.py final.pth lowlight_aps.pth')

    @classmethod
    def inference_spec(cls, options):
        """Inference declaration (``spec/lowlight.md`` §9.2-9.3): a voxel grid with ``n_ev`` bins spread over the
        fixed exposure window ``[t_start, t_end]``, standardised over its non-zero entries. ``B`` is the gray APS
        frame; ``Bi`` is ``B`` (APS model) or the RGB image at exactly 3x (RGB model, converted BGR->RGB, with the
        APS frame as a second input). Inputs and output are linear intensities; no gamma is applied.

        Args:
            options (dict): Complete constructor options (see :func:`basicsr.archs.method_spec.network_options`).

        Returns:
            MethodSpec: The declaration.
        """
        rgb = bool(options['rgb'])
        voxel = EventInputSpec({'type': 'voxel_grid', 'num_bins': int(options['n_ev']), 'normalize': 'nonzero'},
                               key='E', fixed_window=True)
        if rgb:
            images = (ImageInput('B', channels=1, source='aps'), ImageInput('Bi', channels=3, rgb=True, scale=3))
        else:
            images = (ImageInput('B', channels=1), ImageInput('Bi', channels=1))
        grid = tuple(int(g) for g in options['grid'])
        return MethodSpec(name=cls.__name__, events=voxel, images=images,
                          size_multiple=(math.lcm(8, grid[0]), math.lcm(8, grid[1])), output_rgb=rgb,
                          variant='RGB' if rgb else 'APS', checkpoint_keys=cls.checkpoint_keys,
                          checkpoint_help=cls.checkpoint_help)

    @classmethod
    def options_from_config(cls, config):
        """Reads ``grid`` from the reference ``config`` that ``scripts/convert_checkpoint.py`` stores beside the
        weights (the shapes do not fix it).

        Args:
            config (dict | None): ``checkpoint['config']``; anything else gives no options.

        Returns:
            dict: ``{'grid': ...}`` when the config names it, else empty.
        """
        model = config.get('model') if isinstance(config, dict) else None
        args = model.get('args') if isinstance(model, dict) else None
        return {'grid': args['grid']} if isinstance(args, dict) and 'grid' in args else {}

    @classmethod
    def options_from_state_dict(cls, state):
        """Reads the constructor options the weights fix (``init_dim``, ``n_ev``, ``out_channels``, ``rgb``,
        ``norm_type`` when batch norm) from the state dict.

        Args:
            state (dict): State dict of the network (values with a ``shape``).

        Returns:
            dict: The options found (only those the weights determine).
        """
        opts = {}
        if 'fuse2.0.weight' in state:
            opts['init_dim'] = int(state['fuse2.0.weight'].shape[0])
        if 'E_feature_extraction.0.weight' in state:
            opts['n_ev'] = int(state['E_feature_extraction.0.weight'].shape[1])
        if 'out_block.0.weight' in state:
            opts['out_channels'] = int(state['out_block.0.weight'].shape[0])
        opts['rgb'] = any(k.startswith('up.') for k in state)
        if any(k.endswith('running_mean') for k in state):
            opts['norm_type'] = 'batch'
        return opts

    def __init__(self,
                 init_dim=64,
                 n_ev=13,
                 grid=(8, 10),
                 norm_type='instance',
                 use_dropout=False,
                 rgb=False,
                 flow_relu=True,
                 out_channels=1):
        super().__init__()
        if not isinstance(init_dim, int) or init_dim < 32 or init_dim % 8:
            raise ValueError(f'init_dim must be an integer multiple of 8 and at least 32; got {init_dim!r}')
        if not isinstance(n_ev, int) or n_ev < 1:
            raise ValueError(f'n_ev must be a positive integer (voxel-grid bins); got {n_ev!r}')
        if len(tuple(grid)) != 2 or any(int(g) < 1 for g in grid):
            raise ValueError(f'grid must be two positive integers (rows, columns); got {grid!r}')
        bias = check_norm_type(norm_type)
        c_in = 3 if rgb else 1
        if out_channels not in (1, c_in):
            raise ValueError(f'out_channels must be 1 or {c_in} (rgb={rgb}); got {out_channels!r}')
        self.init_dim, self.n_ev, self.rgb, self.flow_relu = init_dim, n_ev, bool(rgb), bool(flow_relu)
        self.grid = tuple(int(g) for g in grid)
        self.in_channels = c_in
        self.size_multiple = (math.lcm(8, self.grid[0]), math.lcm(8, self.grid[1]))
        self.input_scale = {'E': 1, 'B': 1, 'Bi': 3 if rgb else 1}
        d = init_dim
        kw = dict(norm_type=norm_type, use_dropout=use_dropout)

        self.B_edge_feature_extraction = _feature_branch(1, d // 4, self.grid)
        self.E_feature_extraction = _feature_branch(n_ev, d // 4, self.grid)
        self.fuse1 = nn.Sequential(PointwiseConv2d(d // 2, d // 2), SEBlock(d // 2, reduction=8))
        self.flow_block = nn.Sequential(
            PointwiseConv2d(d // 2, d // 2, bias=bias), make_norm(norm_type, d // 2), nn.ReLU(inplace=True),
            nn.Conv2d(d // 2, d // 4, kernel_size=3, padding=1, bias=bias), make_norm(norm_type, d // 4),
            nn.ReLU(inplace=True),
            PointwiseConv2d(d // 4, d // 8, bias=bias), make_norm(norm_type, d // 8), nn.ReLU(inplace=True),
            PointwiseConv2d(d // 8, 4),
            nn.ReLU() if flow_relu else nn.Identity())
        self.Bi_denoise = nn.Sequential(
            AutoencoderBackbone(c_in, ngf=d, n_downsampling=2, n_blocks=4, **kw), PointwiseConv2d(d, c_in),
            nn.Tanh())
        self.Bi_feature_extraction = nn.Sequential(
            nn.Conv2d(c_in, d // 2, kernel_size=7, padding=3, bias=bias), make_norm(norm_type, d // 2),
            nn.ReLU(inplace=True))
        if rgb:
            self.up = nn.Sequential(
                ConvTranspose2d(d // 2, d // 2, kernel_size=3, stride=3, padding=1, output_padding=2, bias=bias),
                make_norm(norm_type, d // 2), nn.ReLU(inplace=True))
        self.fuse2 = nn.Sequential(PointwiseConv2d(d, d), SEBlock(d, reduction=8))
        self.backbone = AttentionUnetBackbone(d, output_nc=d, n_downsampling=3, **kw)
        self.out_block = nn.Sequential(PointwiseConv2d(d, out_channels), nn.Tanh())

    def init_weights(self, std=0.02):
        """Initialises the weights as the reference trainer does before training (spec §2.12).

        Conv2d / ConvTranspose2d weights ~ N(0, std), biases 0; Linear weights Xavier-uniform, biases 0; BatchNorm
        weights ~ N(1, std), biases 0; the attention ``gamma`` parameters are left untouched (0 when fresh).
        Uses the global torch RNG (seed it for reproducibility).

        Args:
            std (float): Standard deviation of the normal initialisations. Default: 0.02.

        Returns:
            LowLightEventDeblurNet: ``self``.
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, std)
                nn.init.zeros_(m.bias)
        return self

    def check_inputs(self, E, B, Bi):
        """Validates the shapes of the inputs.

        Args:
            E (Tensor): Event voxel grid (N, n_ev, h, w).
            B (Tensor): Blurry APS (N, 1, h, w).
            Bi (Tensor): Blurry image (N, 1, h, w), or (N, 3, 3h, 3w) in RGB mode.

        Raises:
            ValueError: Naming the input, its shape and what was expected.
        """
        for name, t in (('E', E), ('B', B), ('Bi', Bi)):
            if not torch.is_tensor(t) or t.dim() != 4:
                shape = tuple(t.shape) if torch.is_tensor(t) else type(t).__name__
                raise ValueError(f'LowLightEventDeblurNet: input {name} must be a 4-D tensor (N, C, H, W); got {shape}')
        dtype = next(self.parameters()).dtype
        for name, t in (('E', E), ('B', B), ('Bi', Bi)):
            if t.dtype != dtype and not torch.is_autocast_enabled(t.device.type):
                raise ValueError(f'LowLightEventDeblurNet: input {name} has dtype {t.dtype}; expected {dtype} (the '
                                 'dtype of the network weights)')
        n, _, h, w = E.shape
        if E.shape[1] != self.n_ev:
            raise ValueError(f'LowLightEventDeblurNet: input E (event voxel grid) must have n_ev={self.n_ev} channels; '
                             f'got shape {tuple(E.shape)}')
        if tuple(B.shape) != (n, 1, h, w):
            raise ValueError(f'LowLightEventDeblurNet: input B (blurry APS) must have shape {(n, 1, h, w)} (one '
                             f'channel, the size and batch of E); got {tuple(B.shape)}')
        scale = self.input_scale['Bi']
        expected = (n, self.in_channels, scale * h, scale * w)
        if tuple(Bi.shape) != expected:
            what = 'RGB at exactly 3x the event resolution' if self.rgb else 'the same gray frame as B'
            raise ValueError(f'LowLightEventDeblurNet(rgb={self.rgb}): input Bi must be {what}, shape {expected}; '
                             f'got {tuple(Bi.shape)}')
        mh, mw = self.size_multiple
        if h % mh or w % mw:
            raise ValueError(f'LowLightEventDeblurNet: the event/APS size must be a multiple of {mh}x{mw} '
                             f'(chunked attention grid {self.grid[0]}x{self.grid[1]} and three 2x poolings); got '
                             f'{h}x{w}. Pad the inputs and crop the outputs back, e.g. with '
                             'basicsr.models.inference.forward_padded.')

    def forward(self, E, B, Bi):
        """Runs both stages.

        Args:
            E (Tensor): Event voxel grid (N, n_ev, h, w), normalised per sample.
            B (Tensor): Noisy blurry APS (N, 1, h, w), linear, in [0, 1].
            Bi (Tensor): Blurry image to deblur, linear, in [0, 1]: the same tensor as B in APS mode; RGB
                (N, 3, 3h, 3w) in RGB mode.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``F`` bi-directional flow (N, 4, h, w); ``Bi_clean`` denoised blurry
            image (linear, shape of Bi); ``S`` sharp image (linear, in [0, 1], shape of Bi).
        """
        self.check_inputs(E, B, Bi)
        edge = self.B_edge_feature_extraction(laplacian(B))
        ev = self.E_feature_extraction(E)
        motion = self.fuse1[1](self.fuse1[0](edge, ev))  # fuse1 of cat([edge, ev]), without the concatenation
        flow = self.flow_block(motion)
        if self.rgb:
            motion = self.up(motion)
        bi_g = full_precision(_to_gamma, Bi)
        bi_clean = full_precision(_from_gamma, self.Bi_denoise(bi_g), bi_g)
        feat = self.Bi_feature_extraction(bi_clean)
        z = self.fuse2[1](self.fuse2[0](feat, motion))
        sharp = full_precision(_add_residual, self.out_block(self.backbone(z)), bi_clean)
        return flow, bi_clean, sharp


ARCH_REGISTRY.register(LowLightEventDeblurNet, name='DefaultModel')
