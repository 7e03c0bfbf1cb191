"""Building blocks of the two-stage low-light event deblurring network (Zhou et al., IJCV 2023).

Re-implemented from ``spec/lowlight.md`` §2. Attribute names and ``nn.Sequential`` indices follow the reference so
that the released checkpoints load with ``strict=True``; parameter-free layers (norms, activations, pools) keep
their Sequential slots for that reason.

Speed (fp32, CPU, measured with ``torch.profiler`` on the APS model at 256×320; the layers keep their classes'
parameters, so checkpoints load unchanged):

- 1×1 convolutions (a third of the layers) are :class:`PointwiseConv2d`, one matrix product over the NCHW tensor;
  PyTorch sends fp32 1×1 convolutions to its im2col path (``_slow_conv2d_forward``) with a bias copy. They also
  take the parts of a channel concatenation separately, so the fusions and U-Net skips never build the
  concatenated tensor.
- Transposed convolutions are :class:`ConvTranspose2d`, run in channels-last (oneDNN's NCHW transposed
  convolution is 1.5–3× slower) and returned in NCHW, where instance norm is fastest.
- :class:`DenseBlock` writes its cells into one pre-allocated tensor instead of concatenating after each cell.
- Under ``torch.inference_mode()`` residual additions, ReLUs and the SE gate work in place.

Reduced precision (``torch.autocast``, bf16 on CPU, fp16 / bf16 on CUDA): convolutions and matrix products run in
the autocast dtype; instance-norm statistics and the attention softmax run in float32
(:func:`basicsr.archs.precision_ops.full_precision`), decided per operation by measurement (see
``LowLightEventDeblurNet``).
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.archs.precision_ops import full_precision

__all__ = [
    'make_norm', 'InstanceNorm2d', 'PointwiseConv2d', 'ConvTranspose2d', 'SelfAttentionFM', 'ChunkedSelfAttentionFM', 'DenseCell', 'DenseBlock', 'SEBlock', 'GlobalAvgPool',
    'ResBlock', 'AutoencoderBackbone', 'UnetDoubleConvBlock', 'AttentionBlock', 'AttentionUnetDownsamplingBlock',
    'AttentionUnetUpsamplingBlock', 'AttentionUnetBackbone', 'laplacian'
]

NORM_TYPES = ('instance', 'batch')


def check_norm_type(norm_type):
    """Validates a ``norm_type`` option.

    Args:
        norm_type (str): ``'instance'`` or ``'batch'``.

    Returns:
        bool: Whether convolutions followed by a norm keep their bias (True for instance norm).

    Raises:
        ValueError: For any other value.
    """
    if norm_type not in NORM_TYPES:
        raise ValueError(f'norm_type must be one of {NORM_TYPES}; got {norm_type!r}')
    return norm_type == 'instance'


def make_norm(norm_type, channels):
    """Creates the normalisation layer of the network.

    Args:
        norm_type (str): ``'instance'`` (``InstanceNorm2d`` with defaults: no affine, no running statistics, so no
            parameters or buffers) or ``'batch'`` (``BatchNorm2d``).
        channels (int): Number of channels.

    Returns:
        nn.Module: The norm layer.
    """
    check_norm_type(norm_type)
    if norm_type == 'instance':
        return InstanceNorm2d(channels)
    return nn.BatchNorm2d(channels)


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` whose statistics and output are float32 under autocast (same options and state)."""

    def forward(self, x):
        """Normalises every sample and channel over H×W.

        Args:
            x (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W); float32 under autocast.
        """
        return full_precision(super().forward, x)


def _pointwise_ok(x):
    return x.dim() == 4 and x.is_contiguous() and not torch.onnx.is_in_onnx_export()


class PointwiseConv2d(nn.Conv2d):
    """1×1 convolution computed as a matrix product over NCHW; ``forward(a, b, ...)`` convolves ``cat([a, b, ...])``.

    Same parameters as ``nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)``. Given several inputs,
    each is multiplied by its slice of the weight and the products are summed, which equals the convolution of the
    concatenation without building it. Channels-last inputs, and the ONNX export (a plain ``Conv`` node for the
    runtime to optimise), go through ``nn.Conv2d``.

    Args:
        in_channels (int): Input channels (of the concatenation).
        out_channels (int): Output channels.
        bias (bool): Whether the convolution has a bias. Default: True.
    """

    def __init__(self, in_channels, out_channels, bias=True):
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias)

    def forward(self, *parts):
        """Convolves the channel concatenation of ``parts``.

        Args:
            *parts (Tensor): (N, C_i, H, W) each, with ``sum(C_i) == in_channels``.

        Returns:
            Tensor: (N, out_channels, H, W).
        """
        if not all(_pointwise_ok(p) for p in parts):
            return super().forward(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
        n, _, h, w = parts[0].shape
        weight = self.weight.flatten(1)
        out, start = None, 0
        for p in parts:
            c = p.shape[1]
            w_p = weight[:, start:start + c].expand(n, -1, -1)
            start += c
            p = p.view(n, c, h * w)
            if out is None:
                out = torch.bmm(w_p, p) if self.bias is None else torch.baddbmm(self.bias[None, :, None], w_p, p)
            else:
                out = torch.baddbmm(out, w_p, p)
        if start != self.in_channels:
            raise ValueError(f'PointwiseConv2d: inputs have {start} channels in total; expected {self.in_channels}')
        return out.view(n, self.out_channels, h, w)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` computed in channels-last on the CPU, returned contiguous (NCHW); same parameters."""

    def forward(self, x):
        """Applies the transposed convolution.

        Args:
            x (Tensor): (N, C_in, H, W).

        Returns:
            Tensor: (N, C_out, H', W'), contiguous.
        """
        if x.device.type != 'cpu' or x.dim() != 4:
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


def _softmax_scores(q, k):
    return torch.softmax(torch.bmm(q, k), dim=-1)


def _add(x, y):
    """``x + y``, into ``x`` under ``torch.inference_mode()`` when the dtypes allow."""
    if torch.is_inference_mode_enabled() and x.dtype == torch.promote_types(x.dtype, y.dtype):
        return x.add_(y)
    return x + y


def laplacian(x):
    """Discrete Laplacian ``up + down + left + right - 4·centre`` with reflect padding (OpenCV BORDER_REFLECT_101).

    Equals ``cv2.Laplacian(img, ddepth, ksize=1)`` per channel.

    Args:
        x (Tensor): (N, C, H, W) with H, W >= 2.

    Returns:
        Tensor: (N, C, H, W) Laplacian of ``x``.
    """
    p = F.pad(x, (1, 1, 1, 1), mode='reflect')
    return p[:, :, :-2, 1:-1] + p[:, :, 2:, 1:-1] + p[:, :, 1:-1, :-2] + p[:, :, 1:-1, 2:] - 4 * x


class SelfAttentionFM(nn.Module):
    """Self-attention over the positions of a feature map, with sub-sampled keys and values (``Self_Attn_FM``).

    ``A = softmax(Q K)`` over the keys (no 1/sqrt(d) scaling), ``O = V Aᵀ``, ``y = gamma · out_conv(O) + x``.
    ``gamma`` starts at 0, so the block is the identity at initialisation.

    Args:
        in_dim (int): Channels C of the input.
        latent_dim (int): Channel reduction factor; Q, K, V have ``C // latent_dim`` channels. Default: 8.
        subsample (bool): Max-pool keys and values by 2 (4× fewer keys). Default: True.
    """

    def __init__(self, in_dim, latent_dim=8, subsample=True):
        super().__init__()
        c = in_dim // latent_dim
        if c < 1:
            raise ValueError(
                f'SelfAttentionFM needs in_dim >= latent_dim; got in_dim={in_dim}, latent_dim={latent_dim}')
        self.query_conv = PointwiseConv2d(in_dim, c)
        if subsample:
            self.key_conv = nn.Sequential(PointwiseConv2d(in_dim, c), nn.MaxPool2d(2))
            self.value_conv = nn.Sequential(PointwiseConv2d(in_dim, c), nn.MaxPool2d(2))
        else:
            self.key_conv = PointwiseConv2d(in_dim, c)
            self.value_conv = PointwiseConv2d(in_dim, c)
        self.out_conv = PointwiseConv2d(c, in_dim)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        """Applies the attention.

        Args:
            x (Tensor): (N, C, h, w).

        Returns:
            Tensor: (N, C, h, w).
        """
        n, _, h, w = x.shape
        q = self.query_conv(x).flatten(2).transpose(1, 2)  # (N, hw, c)
        k = self.key_conv(x).flatten(2)  # (N, c, m)
        attn = full_precision(_softmax_scores, q, k)  # (N, hw, m)
        out = torch.bmm(self.value_conv(x).flatten(2), attn.transpose(1, 2)).view(n, -1, h, w)
        return _add(self.gamma * self.out_conv(out), x)


class ChunkedSelfAttentionFM(nn.Module):
    """Self-attention applied independently in a grid of non-overlapping chunks (``Chuncked_Self_Attn_FM``).

    The map is split into ``grid[0]`` rows × ``grid[1]`` columns of (H/rows)×(W/cols) chunks that are batched
    through one shared :class:`SelfAttentionFM` and put back in place.

    Args:
        in_dim (int): Channels.
        latent_dim (int): Channel reduction factor of the attention. Default: 8.
        subsample (bool): Sub-sample keys and values. Default: True.
        grid (tuple[int, int]): Chunk rows and columns. Default: (8, 10).
    """

    def __init__(self, in_dim, latent_dim=8, subsample=True, grid=(8, 10)):
        super().__init__()
        self.grid = tuple(int(g) for g in grid)
        self.self_attn_fm = SelfAttentionFM(in_dim, latent_dim=latent_dim, subsample=subsample)

    def forward(self, x):
        """Applies the chunked attention.

        Args:
            x (Tensor): (N, C, H, W) with H divisible by ``grid[0]`` and W by ``grid[1]``.

        Returns:
            Tensor: (N, C, H, W).
        """
        n, c, h, w = x.shape
        gh, gw = self.grid
        if h % gh or w % gw:
            raise ValueError(f'chunked attention needs H % {gh} == 0 and W % {gw} == 0; got {h}x{w}')
        ch, cw = h // gh, w // gw
        chunks = x.reshape(n, c, gh, ch, gw, cw).permute(0, 2, 4, 1, 3, 5).reshape(n * gh * gw, c, ch, cw)
        out = self.self_attn_fm(chunks)
        return out.view(n, gh, gw, c, ch, cw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


class DenseCell(nn.Module):
    """One dense layer: ``cat([x, ReLU(conv3x3(x))])`` with a bias-free convolution.

    Args:
        in_channels (int): Input channels.
        growth_rate (int): Channels added by the cell.
    """

    def __init__(self, in_channels, growth_rate):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(in_channels, growth_rate, kernel_size=3, padding=1, bias=False), nn.ReLU(inplace=True))

    def forward(self, x):
        """Concatenates the input and the new features.

        Args:
            x (Tensor): (N, in_channels, H, W).

        Returns:
            Tensor: (N, in_channels + growth_rate, H, W).
        """
        return torch.cat([x, self.conv_block(x)], dim=1)


class DenseBlock(nn.Module):
    """Residual dense block: ``fusion(dense_cells(x)) + x`` (no normalisation, no biases).

    Args:
        in_channels (int): Input and output channels.
        growth_rate (int): Channels added per cell. Default: 32.
        n_blocks (int): Number of dense cells. Default: 3.
    """

    def __init__(self, in_channels, growth_rate=32, n_blocks=3):
        super().__init__()
        self.dense_cells = nn.Sequential(
            *[DenseCell(in_channels + i * growth_rate, growth_rate) for i in range(n_blocks)])
        self.fusion = PointwiseConv2d(in_channels + n_blocks * growth_rate, in_channels, bias=False)

    def forward(self, x):
        """Applies the block.

        Args:
            x (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W).
        """
        cells = [cell.conv_block for cell in self.dense_cells]
        if torch.is_grad_enabled() or x.dim() != 4:
            return self.fusion(self.dense_cells(x)) + x
        n, c, h, w = x.shape
        grown = [cell[0].out_channels for cell in cells]
        first = cells[0](x)
        feats = x.new_empty(n, c + sum(grown), h, w, dtype=first.dtype)
        feats[:, :c] = x
        end = c + grown[0]
        feats[:, c:end] = first
        for cell, g in zip(cells[1:], grown[1:]):
            feats[:, end:end + g] = cell(feats[:, :end])
            end += g
        return _add(self.fusion(feats), x)


class GlobalAvgPool(nn.Module):
    """Global average pooling over H and W to an (N, C) tensor (parameter-free slot 0 of the SE block)."""

    def forward(self, x):
        """Averages over space.

        Args:
            x (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, C).
        """
        return x.mean(dim=(2, 3))


class SEBlock(nn.Module):
    """Squeeze-and-excitation channel gate ``x · sigmoid(W2 ReLU(W1 avgpool(x)))``.

    Args:
        channels (int): Channels C.
        reduction (int): Hidden width is ``C // reduction``. Default: 8.
    """

    def __init__(self, channels, reduction=8):
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f'SEBlock needs channels >= reduction; got channels={channels}, reduction={reduction}')
        self.se = nn.Sequential(GlobalAvgPool(), nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x):
        """Re-weights the channels.

        Args:
            x (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W).
        """
        gate = self.se(x)[:, :, None, None]
        if torch.is_inference_mode_enabled() and x.dtype == torch.promote_types(x.dtype, gate.dtype):
            return x.mul_(gate)
        return x * gate


class ResBlock(nn.Module):
    """Bottleneck residual block ``x + [conv1x1, norm, ReLU, conv3x3, norm, ReLU, conv1x1, norm, ReLU](x)``.

    Args:
        channels (int): Channels.
        norm_type (str): ``'instance'`` or ``'batch'``. Default: ``'instance'``.
        use_dropout (bool): Append ``Dropout(0.5)`` to the branch. Default: False.
    """

    def __init__(self, channels, norm_type='instance', use_dropout=False):
        super().__init__()
        bias = check_norm_type(norm_type)
        layers = [
            PointwiseConv2d(channels, channels, bias=bias),
            make_norm(norm_type, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=bias),
            make_norm(norm_type, channels),
            nn.ReLU(inplace=True),
            PointwiseConv2d(channels, channels, bias=bias),
            make_norm(norm_type, channels),
            nn.ReLU(inplace=True)
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        """Applies the residual branch.

        Args:
            x (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W).
        """
        return _add(self.model(x), x)


class AutoencoderBackbone(nn.Module):
    """Stride-2 encoder, residual blocks, transposed-convolution decoder (backbone of the denoiser B_a).

    Layout of ``model``: conv7x7 in→ngf, norm, ReLU; ``n_downsampling`` × (conv3x3 stride 2 doubling the width,
    norm, ReLU); ``n_blocks`` × :class:`ResBlock`; ``n_downsampling`` × (transposed conv3x3 stride 2 halving the
    width, norm, ReLU). Output has ``ngf`` channels at the input resolution (H, W divisible by
    ``2 ** n_downsampling``).

    Args:
        input_nc (int): Input channels.
        ngf (int): Width of the first layer. Default: 64.
        n_downsampling (int): Number of stride-2 stages. Default: 2.
        n_blocks (int): Number of residual blocks. Default: 4.
        norm_type (str): ``'instance'`` or ``'batch'``. Default: ``'instance'``.
        use_dropout (bool): Dropout inside the residual blocks. Default: False.
    """

    def __init__(self, input_nc, ngf=64, n_downsampling=2, n_blocks=4, norm_type='instance', use_dropout=False):
        super().__init__()
        bias = check_norm_type(norm_type)
        layers = [
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=3, bias=bias),
            make_norm(norm_type, ngf),
            nn.ReLU(inplace=True)
        ]
        for i in range(n_downsampling):
            c = ngf * 2**i
            layers += [
                nn.Conv2d(c, 2 * c, kernel_size=3, stride=2, padding=1, bias=bias),
                make_norm(norm_type, 2 * c),
                nn.ReLU(inplace=True)
            ]
        c = ngf * 2**n_downsampling
        layers += [ResBlock(c, norm_type=norm_type, use_dropout=use_dropout) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            c = ngf * 2**(n_downsampling - i)
            layers += [
                ConvTranspose2d(c, c // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(norm_type, c // 2),
                nn.ReLU(inplace=True)
            ]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        """Runs the auto-encoder.

        Args:
            x (Tensor): (N, input_nc, H, W).

        Returns:
            Tensor: (N, ngf, H, W).
        """
        return self.model(x)


class UnetDoubleConvBlock(nn.Module):
    """U-Net convolution block in the ``res-bottleneck`` mode: ``act(p + bottleneck(p))`` with ``p = projection(x)``.

    ``bottleneck`` = conv1x1, norm, ReLU, conv3x3, norm, ReLU, conv1x1; ``out_block`` = norm, ReLU.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        norm_type (str): ``'instance'`` or ``'batch'``. Default: ``'instance'``.
        use_dropout (bool): Append ``Dropout(0.5)`` after the block. Default: False.
    """

    def __init__(self, in_channels, out_channels, norm_type='instance', use_dropout=False):
        super().__init__()
        bias = check_norm_type(norm_type)
        self.projection = PointwiseConv2d(in_channels, out_channels)
        self.bottleneck = nn.Sequential(
            PointwiseConv2d(out_channels, out_channels, bias=bias),
            make_norm(norm_type, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=bias),
            make_norm(norm_type, out_channels),
            nn.ReLU(inplace=True),
            PointwiseConv2d(out_channels, out_channels, bias=bias),
        )
        out = [make_norm(norm_type, out_channels), nn.ReLU(inplace=True)]
        if use_dropout:
            out.append(nn.Dropout(0.5))
        self.out_block = nn.Sequential(*out)

    def forward(self, *x):
        """Applies the block.

        Args:
            *x (Tensor): (N, in_channels, H, W), or parts of it along the channels (see :class:`PointwiseConv2d`).

        Returns:
            Tensor: (N, out_channels, H, W).
        """
        p = self.projection(*x)
        out = self.bottleneck(p)
        out = out.add_(p) if out.dtype == torch.promote_types(out.dtype, p.dtype) else out + p
        return self.out_block(out)


class AttentionBlock(nn.Module):
    """Additive attention gate on a skip connection: ``skip · sigmoid(IN(t(ReLU(Wx·skip + Wg·g))))``.

    The one-channel logit map is instance-normalised over H×W before the sigmoid.

    Args:
        x_channels (int): Channels of the skip feature.
        g_channels (int): Channels of the gating signal (same resolution as the skip).
        inter_channels (int): Width of the intermediate map.
        norm_type (str): ``'instance'`` or ``'batch'``. Default: ``'instance'``.
    """

    def __init__(self, x_channels, g_channels, inter_channels, norm_type='instance'):
        super().__init__()
        bias = check_norm_type(norm_type)
        self.x_block = nn.Sequential(
            PointwiseConv2d(x_channels, inter_channels, bias=bias), make_norm(norm_type, inter_channels))
        self.g_block = nn.Sequential(
            PointwiseConv2d(g_channels, inter_channels, bias=bias), make_norm(norm_type, inter_channels))
        self.t_block = nn.Sequential(
            PointwiseConv2d(inter_channels, 1, bias=bias), make_norm(norm_type, 1), nn.Sigmoid())

    def forward(self, x, g):
        """Gates the skip feature.

        Args:
            x (Tensor): Skip feature (N, x_channels, H, W).
            g (Tensor): Gating signal (N, g_channels, H, W).

        Returns:
            Tensor: Gated skip (N, x_channels, H, W).
        """
        alpha = self.t_block(torch.relu_(_add(self.x_block(x), self.g_block(g))))
        return x * alpha


class AttentionUnetDownsamplingBlock(nn.Module):
    """U-Net encoder stage: ``MaxPool2d(2)`` then :class:`UnetDoubleConvBlock` (``model`` = [[pool], block]).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        norm_type (str): ``'instance'`` or ``'batch'``. Default: ``'instance'``.
        use_dropout (bool): Dropout in the convolution block. Default: False.
    """

    def __init__(self, in_channels, out_channels, norm_type='instance', use_dropout=False):
        super().__init__()
        self.model = nn.Sequential(
            nn.Sequential(nn.MaxPool2d(2)),
            UnetDoubleConvBlock(in_channels, out_channels, norm_type=norm_type, use_dropout=use_dropout))

    def forward(self, x):
        """Halves the resolution and convolves.

        Args:
            x (Tensor): (N, in_channels, H, W).

        Returns:
            Tensor: (N, out_channels, H/2, W/2).
        """
        return self.model(x)


class AttentionUnetUpsamplingBlock(nn.Module):
    """U-Net decoder stage with an attention-gated skip connection.

    ``g = upsample(x)`` (transposed conv 4x4 stride 2, norm, ReLU); the skip is gated by :class:`AttentionBlock`
    with ``g``; output ``double_conv(cat([gated skip, g]))``.

    Args:
        in_channels (int): Channels of the decoder input C.
        skip_channels (int): Channels of the skip feature.
        out_channels (int): Output channels.
        norm_type (str): ``'instance'`` or ``'batch'``. Default: ``'instance'``.
        use_dropout (bool): Dropout in the convolution block. Default: False.
    """

    def __init__(self, in_channels, skip_channels, out_channels, norm_type='instance', use_dropout=False):
        super().__init__()
        bias = check_norm_type(norm_type)
        up = in_channels // 2
        self.upsample = nn.Sequential(
            ConvTranspose2d(in_channels, up, kernel_size=4, stride=2, padding=1, bias=bias),
            make_norm(norm_type, up), nn.ReLU(inplace=True))
        self.attention = AttentionBlock(skip_channels, up, skip_channels, norm_type=norm_type)
        self.double_conv = UnetDoubleConvBlock(
            skip_channels + up, out_channels, norm_type=norm_type, use_dropout=use_dropout)

    def forward(self, x, skip):
        """Up-samples, gates the skip and fuses.

        Args:
            x (Tensor): (N, in_channels, H, W).
            skip (Tensor): (N, skip_channels, 2H, 2W).

        Returns:
            Tensor: (N, out_channels, 2H, 2W).
        """
        g = self.upsample(x)
        return self.double_conv(self.attention(skip, g), g)


class AttentionUnetBackbone(nn.Module):
    """Attention U-Net with max-pool down-sampling and residual-bottleneck blocks (deblurring backbone B_b).

    Args:
        input_nc (int): Input channels; also the width of the first level.
        output_nc (int): Output channels; must equal ``input_nc`` (as in every configuration of the reference).
            Default: 64.
        n_downsampling (int): Number of levels below full resolution (H, W divisible by ``2 ** n``). Default: 3.
        norm_type (str): ``'instance'`` or ``'batch'``. Default: ``'instance'``.
        use_dropout (bool): Dropout in the convolution blocks. Default: False.
    """

    def __init__(self, input_nc, output_nc=64, n_downsampling=3, norm_type='instance', use_dropout=False):
        super().__init__()
        if output_nc != input_nc:
            raise ValueError(f'AttentionUnetBackbone: output_nc must equal input_nc; got {output_nc} vs {input_nc}')
        kw = dict(norm_type=norm_type, use_dropout=use_dropout)
        self.double_conv_block = UnetDoubleConvBlock(input_nc, input_nc, **kw)
        self.downsampling_blocks = nn.ModuleList([
            AttentionUnetDownsamplingBlock(input_nc * 2**i, input_nc * 2**(i + 1), **kw) for i in range(n_downsampling)
        ])
        self.upsampling_blocks = nn.ModuleList()
        for i in range(n_downsampling, 0, -1):
            c = input_nc * 2**i
            self.upsampling_blocks.append(AttentionUnetUpsamplingBlock(c, c // 2, c // 2, **kw))

    def forward(self, x):
        """Runs the U-Net.

        Args:
            x (Tensor): (N, input_nc, H, W).

        Returns:
            Tensor: (N, output_nc, H, W).
        """
        feats = [self.double_conv_block(x)]
        for block in self.downsampling_blocks:
            feats.append(block(feats[-1]))
        out = feats.pop()
        for block in self.upsampling_blocks:
            out = block(out, feats.pop())
        return out
