"""Building blocks of the two-stage low-light event deblurring network (Zhou et al., IJCV 2023).

Re-implemented from ``spec/lowlight.md`` §2. Attribute names and ``nn.Sequential`` indices follow the reference so
that the released checkpoints load with ``strict=True``; parameter-free layers (norms, activations, pools) keep
their Sequential slots for that reason.
"""
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    'make_norm', 'SelfAttentionFM', 'ChunkedSelfAttentionFM', 'DenseCell', 'DenseBlock', 'SEBlock', 'GlobalAvgPool',
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
        return nn.InstanceNorm2d(channels)
    return nn.BatchNorm2d(channels)


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
        self.query_conv = nn.Conv2d(in_dim, c, kernel_size=1)
        if subsample:
            self.key_conv = nn.Sequential(nn.Conv2d(in_dim, c, kernel_size=1), nn.MaxPool2d(2))
            self.value_conv = nn.Sequential(nn.Conv2d(in_dim, c, kernel_size=1), nn.MaxPool2d(2))
        else:
            self.key_conv = nn.Conv2d(in_dim, c, kernel_size=1)
            self.value_conv = nn.Conv2d(in_dim, c, kernel_size=1)
        self.out_conv = nn.Conv2d(c, in_dim, kernel_size=1)
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
        v = self.value_conv(x).flatten(2)  # (N, c, m)
        attn = torch.softmax(torch.bmm(q, k), dim=-1)  # (N, hw, m)
        out = torch.bmm(v, attn.transpose(1, 2)).view(n, -1, h, w)
        return self.gamma * self.out_conv(out) + x


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
        self.fusion = nn.Conv2d(in_channels + n_blocks * growth_rate, in_channels, kernel_size=1, bias=False)

    def forward(self, x):
        """Applies the block.

        Args:
            x (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W).
        """
        return self.fusion(self.dense_cells(x)) + x


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
        return x * self.se(x)[:, :, None, None]


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
            nn.Conv2d(channels, channels, kernel_size=1, bias=bias),
            make_norm(norm_type, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=bias),
            make_norm(norm_type, channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=1, bias=bias),
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
        return x + self.model(x)


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
                nn.ConvTranspose2d(c, c // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=bias),
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
        self.projection = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, kernel_size=1, bias=bias),
            make_norm(norm_type, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=bias),
            make_norm(norm_type, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=1, bias=bias),
        )
        out = [make_norm(norm_type, out_channels), nn.ReLU(inplace=True)]
        if use_dropout:
            out.append(nn.Dropout(0.5))
        self.out_block = nn.Sequential(*out)

    def forward(self, x):
        """Applies the block.

        Args:
            x (Tensor): (N, in_channels, H, W).

        Returns:
            Tensor: (N, out_channels, H, W).
        """
        p = self.projection(x)
        return self.out_block(p + self.bottleneck(p))


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
            nn.Conv2d(x_channels, inter_channels, kernel_size=1, bias=bias), make_norm(norm_type, inter_channels))
        self.g_block = nn.Sequential(
            nn.Conv2d(g_channels, inter_channels, kernel_size=1, bias=bias), make_norm(norm_type, inter_channels))
        self.t_block = nn.Sequential(
            nn.Conv2d(inter_channels, 1, kernel_size=1, bias=bias), make_norm(norm_type, 1), nn.Sigmoid())

    def forward(self, x, g):
        """Gates the skip feature.

        Args:
            x (Tensor): Skip feature (N, x_channels, H, W).
            g (Tensor): Gating signal (N, g_channels, H, W).

        Returns:
            Tensor: Gated skip (N, x_channels, H, W).
        """
        alpha = self.t_block(torch.relu(self.x_block(x) + self.g_block(g)))
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
            nn.ConvTranspose2d(in_channels, up, kernel_size=4, stride=2, padding=1, bias=bias),
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
        return self.double_conv(torch.cat([self.attention(skip, g), g], dim=1))


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
