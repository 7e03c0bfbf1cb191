"""EFNet: event-based fusion for motion deblurring with cross-modal attention (Sun et al., ECCV 2022).

Two image U-Nets and an event encoder (``spec/efnet.md`` §1–§4). The event input is SCER (computed by
``basicsr.events.scer``); stage 1 fuses it at every level with **EICA**; **SAM** passes the stage-1 result to
stage 2, whose encoder receives the stage-1 features through **EMGC** when an event mask is given. The blocks are in
:mod:`basicsr.archs.efnet_blocks`.
"""
import re

import torch
from torch import nn

from basicsr.archs.efnet_blocks import SAM, UNetConvBlock, UNetEVConvBlock, UNetUpBlock, conv3x3
from basicsr.archs.method_spec import ImageInput, MethodSpec
from basicsr.events.event_input import EventInputSpec
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['EFNet']


@ARCH_REGISTRY.register()
class EFNet(nn.Module):
    """EFNet, state dict key-for-key equal to the released checkpoints (183 tensors, 8,466,445 parameters).

    Forward: ``forward(x, event, mask=None) -> [out_1, out_2]``; ``out_2`` is the prediction, ``out_1`` the
    stage-1 prediction used by the loss. H and W must be multiples of ``size_multiple = 2**(depth-1)`` (4 for the
    default depth 3; the class attribute holds the default, each instance holds its own value); the network does
    not pad, padding belongs to the model wrapper (``basicsr.models.inference``).

    Training note: without a mask the EMGC convolutions (``down_path_2.{i}.emgc_*``) are not used and receive no
    gradient. The restoration model is expected to add ``0 * sum(p.sum() for p in net.parameters())`` to the loss
    in that case so every parameter gets a (zero) gradient, which lets DistributedDataParallel run without
    ``find_unused_parameters`` (``tests/test_efnet_arch.py`` checks that this term covers every parameter).

    Args:
        in_chn (int): Image channels of input and output. Default: 3.
        ev_chn (int): Event channels: 6 for SCER, 7 for the ``keep_middle`` variant. Default: 6.
        wf (int): Width at full resolution; level i has ``2**i * wf`` channels. Default: 64.
        depth (int): Encoder levels (``depth - 1`` down-samplings). Default: 3.
        fuse_before_downsample (bool): EICA on the pre-down-sampling feature; only True is supported (the only
            checkpoint-compatible mode). Default: True.
        relu_slope (float): LeakyReLU slope of the conv blocks. Default: 0.2.
        num_heads (list[int]): EICA heads per level, at least ``depth`` entries. Default: [1, 2, 4].
    """

    io = {'inputs': {'x': 'frame', 'event': 'voxel', 'mask': 'mask'}, 'outputs': ['out_1', 'out_2'],
          'result': 'out_2', 'gt': 'frame_gt'}
    size_multiple = 4
    checkpoint_keys = ('conv_ev1', 'down_path_ev', 'down_path_1', 'sam12')
    # EFNet's (HINet's) recipes clip the gradient norm at 0.01 unless the option file says otherwise.
    train_defaults = {'use_grad_clip': True, 'grad_clip_norm': 0.01}

    @staticmethod
    def metrics_notice(metric_types):
        """The notice validation logs about the metric options: EFNet's papers report the 3-D SSIM.

        Args:
            metric_types (set[str]): The ``type`` of every configured metric.

        Returns:
            str: The notice, or ``''`` when ``calculate_ssim_3d`` is configured or no SSIM is.
        """
        if 'calculate_ssim' in metric_types and 'calculate_ssim_3d' not in metric_types:
            return ('Notice: calculate_ssim is the standard (2-D) SSIM; the SSIM in EFNet\'s papers is the 3-D '
                    'variant, calculate_ssim_3d. Add it to val.metrics to compare with published numbers.')
        return ''

    @classmethod
    def inference_spec(cls, options):
        """Inference declaration (``spec/efnet.md`` §5): SCER of the window's events, max-abs normalised on the
        full frame, plus the event mask of the un-normalised SCER; the frame fed in the channel order it was read
        in (BGR for OpenCV-read files and event_utils h5 frames), as in training.

        Args:
            options (dict): Complete constructor options (see :func:`basicsr.archs.method_spec.network_options`).

        Returns:
            MethodSpec: The declaration.
        """
        ev_chn = int(options['ev_chn'])
        scer = {'type': 'scer', 'num_bins': ev_chn - ev_chn % 2, 'keep_middle': bool(ev_chn % 2),
                'normalize': 'maxabs'}
        return MethodSpec(name=cls.__name__, events=EventInputSpec(scer, key='voxel', mask_key='mask'),
                          images=(ImageInput('frame', channels=int(options['in_chn'])), ),
                          size_multiple=2**(int(options['depth']) - 1), checkpoint_keys=cls.checkpoint_keys)

    @classmethod
    def options_from_state_dict(cls, state):
        """Reads the constructor options the weights fix (``wf``, ``in_chn``, ``ev_chn``, ``depth``) from shapes.

        Args:
            state (dict): State dict of an EFNet (values with a ``shape``).

        Returns:
            dict: The options found (only those the shapes determine).
        """
        opts = {}
        if 'conv_01.weight' in state:
            opts['wf'], opts['in_chn'] = int(state['conv_01.weight'].shape[0]), int(state['conv_01.weight'].shape[1])
        if 'conv_ev1.weight' in state:
            opts['ev_chn'] = int(state['conv_ev1.weight'].shape[1])
        levels = {int(m.group(1)) for k in state for m in [re.match(r'down_path_1\.(\d+)\.', k)] if m}
        if levels:
            opts['depth'] = max(levels) + 1
        return opts

    def __init__(self, in_chn=3, ev_chn=6, wf=64, depth=3, fuse_before_downsample=True, relu_slope=0.2,
                 num_heads=(1, 2, 4)):
        super().__init__()
        if not fuse_before_downsample:
            raise ValueError('EFNet: fuse_before_downsample=False is not supported (in the reference code it makes '
                             'the last encoder level return None); use True, the mode of the released checkpoints')
        if depth < 1:
            raise ValueError(f'EFNet: depth must be >= 1, got {depth}')
        num_heads = list(num_heads)
        if len(num_heads) < depth:
            raise ValueError(f'EFNet: num_heads needs at least depth={depth} entries, got {num_heads}')
        self.in_chn = in_chn
        self.ev_chn = ev_chn
        self.depth = depth
        self.size_multiple = 2**(depth - 1)

        self.down_path_1 = nn.ModuleList()
        self.down_path_2 = nn.ModuleList()
        self.conv_01 = conv3x3(in_chn, wf)
        self.conv_02 = conv3x3(in_chn, wf)
        self.down_path_ev = nn.ModuleList()
        self.conv_ev1 = conv3x3(ev_chn, wf)

        prev = wf
        for i in range(depth):
            downsample = i + 1 < depth
            width = 2**i * wf
            self.down_path_1.append(UNetConvBlock(prev, width, downsample, relu_slope, num_heads=num_heads[i]))
            self.down_path_2.append(UNetConvBlock(prev, width, downsample, relu_slope, use_emgc=downsample))
            self.down_path_ev.append(UNetEVConvBlock(prev, width, downsample, relu_slope))
            prev = width

        self.up_path_1 = nn.ModuleList()
        self.up_path_2 = nn.ModuleList()
        self.skip_conv_1 = nn.ModuleList()
        self.skip_conv_2 = nn.ModuleList()
        for i in reversed(range(depth - 1)):
            width = 2**i * wf
            self.up_path_1.append(UNetUpBlock(prev, width, relu_slope))
            self.up_path_2.append(UNetUpBlock(prev, width, relu_slope))
            self.skip_conv_1.append(conv3x3(width, width))
            self.skip_conv_2.append(conv3x3(width, width))
            prev = width
        self.sam12 = SAM(prev, in_chn)
        self.cat12 = nn.Conv2d(prev * 2, prev, kernel_size=1)
        self.last = conv3x3(prev, in_chn)

    def _check_inputs(self, x, event, mask):
        if x.dim() != 4 or x.shape[1] != self.in_chn:
            raise ValueError(f'EFNet: x must be (N, {self.in_chn}, H, W), got {tuple(x.shape)}')
        n, _, h, w = x.shape
        if event.dim() != 4 or event.shape[0] != n or event.shape[2:] != x.shape[2:]:
            raise ValueError(f'EFNet: event must be (N, ev_chn, H, W) matching x {tuple(x.shape)}, '
                             f'got {tuple(event.shape)}')
        if event.shape[1] != self.ev_chn:
            hint = (' SCER has 6 channels; its keep_middle variant adds an all-zero middle channel (7); the released '
                    'checkpoints use 6.')
            if event.shape[1] == 7 and self.ev_chn == 6:
                hint = (' A 7-channel SCER is the keep_middle variant (an all-zero middle channel between the left '
                        'and right halves, written by the reference GoPro script); the released checkpoints use 6 '
                        'channels: recompute with scer(..., keep_middle=False) or drop the middle channel (index 3).')
            raise ValueError(f'EFNet: event has {event.shape[1]} channels but the network was built with '
                             f'ev_chn={self.ev_chn}.{hint}')
        if mask is not None and (mask.dim() != 4 or mask.shape[0] != n or mask.shape[1] != 1
                                 or mask.shape[2:] != x.shape[2:]):
            raise ValueError(f'EFNet: mask must be (N, 1, H, W) matching x {tuple(x.shape)}, got {tuple(mask.shape)}')
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f'EFNet: H and W must be multiples of {m} (2**(depth-1)), got {h}x{w}; pad the inputs '
                             f'(e.g. basicsr.models.inference.forward_padded) and crop the outputs')

    def forward(self, x, event, mask=None):
        """Deblurs ``x`` with the help of ``event``.

        Args:
            x (Tensor): Blurry image (N, in_chn, H, W) in [0, 1].
            event (Tensor): Normalised event tensor (N, ev_chn, H, W), e.g. SCER.
            mask (Tensor | None): Event mask (N, 1, H, W) in {0, 1}; enables EMGC. Default: None.

        Returns:
            list[Tensor]: ``[out_1, out_2]``, stage-1 and final predictions, each (N, in_chn, H, W).
        """
        self._check_inputs(x, event, mask)
        # Each stage is a method so its temporaries die on return; names that would keep full-resolution features
        # alive until the end of forward are deleted once used (lower peak memory, same result).
        ev = self._encode_events(event)
        encs, decs, sam_feature, out_1 = self._stage_1(x, ev)
        del ev
        # Nearest down-sampling by 2**i keeps the rows/columns whose index is a multiple of 2**i.
        masks = None if mask is None else [mask[..., ::2**i, ::2**i] for i in range(self.depth - 1)]
        x2 = self.cat12(torch.cat([self.conv_02(x), sam_feature], dim=1))
        del sam_feature
        x2, blocks = self._stage_2_encoder(x2, encs, decs, masks)
        del encs, decs, masks
        out_2 = self._stage_2_decoder(x2, blocks, x)
        return [out_1, out_2]

    def _encode_events(self, event):
        """Event encoder: fusion features per level, full resolution first."""
        ev = []
        e = self.conv_ev1(event)
        for i, down in enumerate(self.down_path_ev):
            if i < self.depth - 1:
                e, e_fuse = down(e)
                ev.append(e_fuse)
            else:
                ev.append(down(e))
        return ev

    def _stage_1(self, image, ev):
        """Stage-1 U-Net with EICA (empties ``ev`` once fused); returns encoder and decoder features (deepest
        decoder first) and the SAM outputs."""
        encs = []
        x1 = self.conv_01(image)
        for i, down in enumerate(self.down_path_1):
            if i < self.depth - 1:
                x1, x1_full = down(x1, event_filter=ev[i])
                encs.append(x1_full)
            else:
                x1 = down(x1, event_filter=ev[i])
        ev.clear()
        decs = []
        for up, skip_conv, enc in zip(self.up_path_1, self.skip_conv_1, reversed(encs)):
            x1 = up(x1, skip_conv(enc))
            decs.append(x1)
        sam_feature, out_1 = self.sam12(x1, image)
        return encs, decs, sam_feature, out_1

    def _stage_2_encoder(self, x2, encs, decs, masks):
        """Stage-2 encoder; EMGC receives the stage-1 features of each level when masks are given."""
        blocks = []
        for i, down in enumerate(self.down_path_2):
            if i < self.depth - 1:
                level_mask = None if masks is None else masks[i]
                x2, x2_full = down(x2, encs[i], decs[-i - 1], mask=level_mask)
                blocks.append(x2_full)
            else:
                x2 = down(x2)
        return x2, blocks

    def _stage_2_decoder(self, x2, blocks, image):
        """Stage-2 decoder; consumes ``blocks`` (popped, deepest first) and adds the global residual."""
        for up, skip_conv in zip(self.up_path_2, self.skip_conv_2):
            x2 = up(x2, skip_conv(blocks.pop()))
        return self.last(x2) + image
