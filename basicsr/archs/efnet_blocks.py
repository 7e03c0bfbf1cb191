"""Building blocks of EFNet (Sun et al., ECCV 2022), see ``spec/efnet.md`` §2.

Paper names and where they live here:

- **EICA** (event-image cross-modal attention): :class:`EventImageChannelAttention`, applied inside the stage-1
  encoder blocks (:class:`UNetConvBlock` with ``num_heads``).
- **EMGC** (event mask gated connection): the ``emgc_*`` convolutions of the stage-2 encoder blocks
  (:class:`UNetConvBlock` with ``use_emgc=True``).
- **SAM** (supervised attention module, from MPRNet): :class:`SAM`, the bridge from stage 1 to stage 2.
- **SCER** (symmetric cumulative event representation) is the event input; it is computed in
  ``basicsr.events``, never by the network. The event encoder is :class:`UNetEVConvBlock`.

Attribute names follow the released checkpoints so that they load with ``strict=True``; this module registers
nothing (only ``*_arch.py`` files hold registered networks).

Reduced precision (``torch.autocast``): convolutions, linear layers and matrix products run in the autocast dtype;
the layer norms and the EICA channel attention (L2 normalisation, scaled scores, softmax) run in float32
(:func:`basicsr.archs.precision_ops.full_precision`). Measured on the demo's trained EFNet (wf=16, 12 demo test
frames, bf16 autocast on CPU): output 70.6 dB PSNR from float32 with both in float32 (ΔPSNR to ground truth
+0.0001 dB); attention in bf16 70.3 dB; layer norms in bf16 70.6 dB (no measurable cost: kept in float32 as
cheap insurance for other weights).
"""
import torch
from torch import nn
from torch.nn import functional as F

from basicsr.archs.precision_ops import full_precision

__all__ = [
    'WithBiasLayerNorm', 'ChannelLayerNorm', 'MutualAttention', 'Mlp', 'EventImageChannelAttention', 'UNetConvBlock',
    'UNetEVConvBlock', 'UNetUpBlock', 'SAM'
]


def conv3x3(in_chn, out_chn, bias=True):
    """3×3 convolution with 'same' padding.

    Args:
        in_chn (int): Input channels.
        out_chn (int): Output channels.
        bias (bool): Whether the convolution has a bias. Default: True.

    Returns:
        nn.Conv2d: The layer.
    """
    return nn.Conv2d(in_chn, out_chn, kernel_size=3, padding=1, bias=bias)


def conv_down(in_chn, out_chn):
    """Strided 4×4 convolution that halves H and W (no bias, as in the released checkpoints).

    Args:
        in_chn (int): Input channels.
        out_chn (int): Output channels.

    Returns:
        nn.Conv2d: The layer.
    """
    return nn.Conv2d(in_chn, out_chn, kernel_size=4, stride=2, padding=1, bias=False)


def _conv_pair(block, x):
    """``LReLU(conv_2(LReLU(conv_1(x)))) + identity(x)``, in place under ``torch.inference_mode()``.

    Args:
        block (nn.Module): Has ``conv_1``, ``conv_2``, ``identity`` and ``relu_slope``.
        x (Tensor): Input (N, C_in, H, W).

    Returns:
        Tensor: (N, C_out, H, W).
    """
    if torch.is_inference_mode_enabled():
        out = F.leaky_relu_(block.conv_1(x), block.relu_slope)
        out = F.leaky_relu_(block.conv_2(out), block.relu_slope)
        out += block.identity(x)
        return out
    out = F.leaky_relu(block.conv_1(x), block.relu_slope)
    out = F.leaky_relu(block.conv_2(out), block.relu_slope)
    return out + block.identity(x)


def _layer_norm(x, weight, bias):
    return F.layer_norm(x, weight.shape, weight, bias, 1e-5)  # a static shape: the ONNX export keeps H, W dynamic


def _channel_attention(q, k, temperature):
    """``softmax((normalize(q) @ normalize(k)ᵀ) · temperature)`` over the last axis (q, k: (N, heads, c, hw))."""
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    return torch.softmax((q @ k.transpose(-2, -1)) * temperature, dim=-1)


class WithBiasLayerNorm(nn.Module):
    """Layer norm over the last axis with a learnt scale and shift (biased variance, eps 1e-5).

    Args:
        dim (int): Size of the normalised (last) axis.
    """

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        """Normalises the last axis.

        Args:
            x (Tensor): (..., dim).

        Returns:
            Tensor: Same shape as ``x``.
        """
        return full_precision(_layer_norm, x, self.weight, self.bias)


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channels of an NCHW tensor at every pixel (the ``LayerNorm`` wrapper of EICA).

    The parameters live in ``body`` (keys ``body.weight`` / ``body.bias``).

    Args:
        dim (int): Number of channels.
    """

    def __init__(self, dim):
        super().__init__()
        self.body = WithBiasLayerNorm(dim)

    def forward(self, x):
        """Normalises the channel axis.

        Args:
            x (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W).
        """
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MutualAttention(nn.Module):
    """Cross-modal channel attention of EICA: queries from the image, keys and values from the events.

    Attention is over channels (a (C/heads)×(C/heads) map per head), with L2-normalised queries and keys along
    the spatial axis and a learnt per-head temperature instead of a 1/√d factor.

    Args:
        dim (int): Channels C of both inputs.
        num_heads (int): Number of heads; must divide ``dim``.
        bias (bool): Whether the 1×1 projections have a bias (False in EFNet). Default: False.
    """

    def __init__(self, dim, num_heads, bias=False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'EICA attention: num_heads={num_heads} must divide the channel count {dim}')
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.q = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.k = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.v = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, image, event):
        """Attends from image features to event features.

        Args:
            image (Tensor): Normalised image feature (N, C, H, W).
            event (Tensor): Normalised event feature (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W), before the residual connection.
        """
        if image.shape != event.shape:
            raise ValueError(f'EICA needs image and event features of equal shape; got {tuple(image.shape)} '
                             f'and {tuple(event.shape)}')
        n, c, h, w = image.shape
        heads = self.num_heads
        q = self.q(image).reshape(n, heads, c // heads, h * w)
        k = self.k(event).reshape(n, heads, c // heads, h * w)
        attn = full_precision(_channel_attention, q, k, self.temperature)
        del q, k  # the (C/heads)x(C/heads) map is all that is left of them; V is made only now (lower peak memory)
        out = attn @ self.v(event).reshape(n, heads, c // heads, h * w)
        return self.project_out(out.reshape(n, c, h, w))


class Mlp(nn.Module):
    """Token feed-forward network: Linear(C→hC), exact GELU, Linear(hC→C).

    Args:
        dim (int): Token width C.
        hidden_dim (int): Hidden width hC.
    """

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        """Applies the MLP to the last axis.

        Args:
            x (Tensor): (..., C).

        Returns:
            Tensor: (..., C).
        """
        return self.fc2(F.gelu(self.fc1(x)))


class EventImageChannelAttention(nn.Module):
    """EICA — event-image cross-modal attention block (paper §3.2), a transformer block with channel attention.

    ``F = image + Attn(LN(image), LN(event))`` then ``F = F + MLP(LN(F))`` over pixel tokens. The event feature is
    only read. Attribute names (``norm1_image``, ``norm1_event``, ``attn``, ``norm2``, ``ffn``) match the
    checkpoints' ``image_event_transformer.*`` keys.

    Under ``torch.inference_mode()`` the MLP runs in place on bands of about ``ffn_chunk_tokens`` tokens, which
    bounds its hidden activations without changing the result beyond float rounding.

    Args:
        dim (int): Channels C.
        num_heads (int): Attention heads.
        ffn_expansion_factor (int): Hidden width of the MLP in multiples of C. Default: 4.
        bias (bool): Bias of the attention projections. Default: False.
    """

    ffn_chunk_tokens = 65536

    def __init__(self, dim, num_heads, ffn_expansion_factor=4, bias=False):
        super().__init__()
        self.norm1_image = ChannelLayerNorm(dim)
        self.norm1_event = ChannelLayerNorm(dim)
        self.attn = MutualAttention(dim, num_heads, bias)
        self.norm2 = WithBiasLayerNorm(dim)
        self.ffn = Mlp(dim, int(dim * ffn_expansion_factor))

    def forward(self, image, event):
        """Fuses the event feature into the image feature.

        Args:
            image (Tensor): Image feature (N, C, H, W).
            event (Tensor): Event feature (N, C, H, W).

        Returns:
            Tensor: Fused feature (N, C, H, W).
        """
        fused = image + self.attn(self.norm1_image(image), self.norm1_event(event))
        tokens = fused.permute(0, 2, 3, 1)
        if not torch.is_inference_mode_enabled():
            tokens = tokens + self.ffn(self.norm2(tokens))
            return tokens.permute(0, 3, 1, 2)
        # Inference: the MLP is per token, so run it on bands of rows in place; the (N, H, W, 4C) hidden tensor
        # never exists whole (about 1 GB per image at 720x1280 on level 0).
        rows = max(1, self.ffn_chunk_tokens // max(1, tokens.shape[0] * tokens.shape[2]))
        for start in range(0, tokens.shape[1], rows):
            band = tokens[:, start:start + rows]
            band += self.ffn(self.norm2(band))
        return fused


class UNetConvBlock(nn.Module):
    """Encoder block of the two image U-Nets: two 3×3 convs with LeakyReLU plus a 1×1 identity path.

    In stage 1 it carries an EICA module (``num_heads`` set) that fuses the event feature of the same level; in
    stage 2 (``use_emgc``) it carries the four **EMGC** convolutions: the stage-1 encoder feature ``enc`` and
    decoder feature ``dec`` enter through an ungated conv each plus a conv gated by the event mask M:
    ``y + emgc_enc(enc) + emgc_enc_mask((1−M)·enc) + emgc_dec(dec) + emgc_dec_mask(M·dec)``.

    Args:
        in_size (int): Input channels.
        out_size (int): Output channels.
        downsample (bool): Whether the block ends with a strided 4×4 conv (then it returns two tensors).
        relu_slope (float): LeakyReLU negative slope.
        use_emgc (bool): Build the EMGC convs (only used when ``downsample``). Default: False.
        num_heads (int | None): EICA heads; None builds no EICA. Default: None.
    """

    def __init__(self, in_size, out_size, downsample, relu_slope, use_emgc=False, num_heads=None):
        super().__init__()
        self.relu_slope = relu_slope
        self.identity = nn.Conv2d(in_size, out_size, kernel_size=1)
        self.conv_1 = conv3x3(in_size, out_size)
        self.conv_2 = conv3x3(out_size, out_size)
        self.use_emgc = bool(downsample and use_emgc)
        if self.use_emgc:
            self.emgc_enc = conv3x3(out_size, out_size)
            self.emgc_dec = conv3x3(out_size, out_size)
            self.emgc_enc_mask = conv3x3(out_size, out_size)
            self.emgc_dec_mask = conv3x3(out_size, out_size)
        self.downsample = conv_down(out_size, out_size) if downsample else None
        if num_heads is not None:
            self.image_event_transformer = EventImageChannelAttention(out_size, num_heads)
        else:
            self.image_event_transformer = None

    def forward(self, x, enc=None, dec=None, mask=None, event_filter=None):
        """Runs the block.

        Args:
            x (Tensor): Input (N, in_size, H, W).
            enc (Tensor | None): Stage-1 encoder feature for EMGC (N, out_size, H, W). Default: None.
            dec (Tensor | None): Stage-1 decoder feature for EMGC (N, out_size, H, W). Default: None.
            mask (Tensor | None): Event mask (N, 1, H, W) in {0, 1}; EMGC runs only when ``enc``, ``dec`` and
                ``mask`` are all given. Default: None.
            event_filter (Tensor | None): Event feature fused by EICA (N, out_size, H, W). Default: None.

        Returns:
            Tensor | tuple[Tensor, Tensor]: ``(down-sampled, full-resolution)`` if the block down-samples, else
            the full-resolution output.
        """
        out = _conv_pair(self, x)
        if enc is not None and dec is not None and mask is not None:
            if not self.use_emgc:
                raise RuntimeError('this block has no EMGC convolutions (built with use_emgc=False or no '
                                   'down-sampling) but received enc, dec and mask')
            if torch.is_inference_mode_enabled():
                out += self.emgc_enc(enc)
                out += self.emgc_enc_mask((1 - mask) * enc)
                out += self.emgc_dec(dec)
                out += self.emgc_dec_mask(mask * dec)
            else:
                out = (out + self.emgc_enc(enc) + self.emgc_enc_mask((1 - mask) * enc) + self.emgc_dec(dec) +
                       self.emgc_dec_mask(mask * dec))
        if event_filter is not None:
            if self.image_event_transformer is None:
                raise RuntimeError('this block has no EICA module (num_heads=None) but received event_filter')
            out = self.image_event_transformer(out, event_filter)
        if self.downsample is not None:
            return self.downsample(out), out
        return out


class UNetEVConvBlock(nn.Module):
    """Event-encoder block: conv block as in :class:`UNetConvBlock` plus a 1×1 projection of the fusion feature.

    When down-sampling, the next level receives the down-sampled *raw* feature and EICA receives
    ``conv_before_merge`` of it.

    Args:
        in_size (int): Input channels.
        out_size (int): Output channels.
        downsample (bool): Whether the block ends with a strided 4×4 conv.
        relu_slope (float): LeakyReLU negative slope.
    """

    def __init__(self, in_size, out_size, downsample, relu_slope):
        super().__init__()
        self.relu_slope = relu_slope
        self.identity = nn.Conv2d(in_size, out_size, kernel_size=1)
        self.conv_1 = conv3x3(in_size, out_size)
        self.conv_2 = conv3x3(out_size, out_size)
        self.conv_before_merge = nn.Conv2d(out_size, out_size, kernel_size=1)
        self.downsample = conv_down(out_size, out_size) if downsample else None

    def forward(self, x):
        """Runs the block.

        Args:
            x (Tensor): Input (N, in_size, H, W).

        Returns:
            Tensor | tuple[Tensor, Tensor]: ``(down-sampled raw feature, fusion feature)`` if the block
            down-samples, else the fusion feature (N, out_size, H, W).
        """
        out = _conv_pair(self, x)
        if self.downsample is not None:
            return self.downsample(out), self.conv_before_merge(out)
        return self.conv_before_merge(out)


class UNetUpBlock(nn.Module):
    """Decoder block: 2× transposed conv, concatenation ``[up-sampled, bridge]``, then a conv block.

    Args:
        in_size (int): Channels of the deeper input (and of the concatenation).
        out_size (int): Output channels (and channels of the bridge).
        relu_slope (float): LeakyReLU negative slope.
    """

    def __init__(self, in_size, out_size, relu_slope):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_size, out_size, kernel_size=2, stride=2, bias=True)
        self.conv_block = UNetConvBlock(in_size, out_size, False, relu_slope)

    def forward(self, x, bridge):
        """Up-samples ``x`` and merges the skip feature.

        Args:
            x (Tensor): Deeper feature (N, in_size, H/2, W/2).
            bridge (Tensor): Skip feature (N, out_size, H, W).

        Returns:
            Tensor: (N, out_size, H, W).
        """
        return self.conv_block(torch.cat([self.up(x), bridge], dim=1))


class SAM(nn.Module):
    """SAM — supervised attention module (MPRNet): predicts the stage-1 image and gates the feature with it.

    ``img = conv2(x) + x_img``; ``feat = conv1(x) · sigmoid(conv3(img)) + x``.

    Args:
        n_feat (int): Feature channels.
        img_chn (int): Image channels. Default: 3.
    """

    def __init__(self, n_feat, img_chn=3):
        super().__init__()
        self.conv1 = conv3x3(n_feat, n_feat)
        self.conv2 = conv3x3(n_feat, img_chn)
        self.conv3 = conv3x3(img_chn, n_feat)

    def forward(self, x, x_img):
        """Predicts the stage-1 image and the attended feature.

        Args:
            x (Tensor): Decoder feature (N, n_feat, H, W).
            x_img (Tensor): Blurry input image (N, img_chn, H, W).

        Returns:
            tuple[Tensor, Tensor]: ``(feature (N, n_feat, H, W), stage-1 image (N, img_chn, H, W))``.
        """
        img = self.conv2(x) + x_img
        gate = torch.sigmoid(self.conv3(img))
        return self.conv1(x) * gate + x, img
