"""Tests of the inference helpers: padding to a size multiple, cropping back and tiled inference."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from basicsr.archs.efnet_arch import EFNet
from basicsr.models.inference import (crop_outputs, forward_padded, forward_tiled, input_scales, pad_inputs,
                                      tile_starts)
from numerics import assert_close_scaled

pytestmark = pytest.mark.numerics  # .ci/run repeats these on other CPU kernel paths


def _efnet_inputs(h, w, seed=0, n=1):
    gen = torch.Generator().manual_seed(seed)
    return {
        'x': torch.rand(n, 3, h, w, generator=gen),
        'event': torch.randn(n, 6, h, w, generator=gen),
        'mask': (torch.rand(n, 1, h, w, generator=gen) > 0.5).float(),
    }


def _assert_same(tiled, whole):
    """Tiles run the convolutions on other shapes (other kernels, another summation order): equal up to rounding."""
    assert_close_scaled(tiled, whole, 1e-5)


@pytest.fixture(scope='module')
def efnet():
    torch.manual_seed(0)
    return EFNet(wf=8).eval()


class LocalNet(nn.Module):
    """Purely per-pixel test network with EFNet's interface; checks the size multiple like EFNet does.

    Args:
        multiple (int): Required multiple of H and W.
    """

    def __init__(self, multiple=4):
        super().__init__()
        self.multiple = multiple
        self.conv = nn.Conv2d(9, 3, kernel_size=1)
        self.calls = []

    def forward(self, x, event, mask=None):
        """Returns two per-pixel outputs; ``mask`` gates the second one.

        Args:
            x (Tensor): (N, 3, H, W).
            event (Tensor): (N, 6, H, W).
            mask (Tensor | None): (N, 1, H, W).

        Returns:
            list[Tensor]: Two (N, 3, H, W) tensors.
        """
        assert x.shape[-2] % self.multiple == 0 and x.shape[-1] % self.multiple == 0, x.shape
        self.calls.append(x.shape)
        out = self.conv(torch.cat([x, event], dim=1))
        gated = out if mask is None else out * (1 + 2 * mask)
        return [out, gated + x]


class ScaledNet(nn.Module):
    """Per-pixel test network whose image input and first output are at 3x the event resolution."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(6, 3, kernel_size=1)

    def forward(self, event, image, mask):
        """Combines low-resolution events with a 3x image.

        Args:
            event (Tensor): (N, 6, h, w).
            image (Tensor): (N, 3, 3h, 3w).
            mask (Tensor): (N, 1, h, w).

        Returns:
            tuple[Tensor, Tensor]: (N, 3, 3h, 3w) and (N, 3, h, w).
        """
        low = self.conv(event) * (1 + mask)
        up = low.repeat_interleave(3, dim=-2).repeat_interleave(3, dim=-1)
        return image * 2 + up, low + F.avg_pool2d(image, 3)


def test_pad_inputs_reflects_and_crop_restores():
    inputs = _efnet_inputs(30, 46)
    inputs['unused'] = None
    padded, info = pad_inputs(inputs, 4)
    assert tuple(info) == (30, 46, 32, 48)
    assert padded['unused'] is None
    for name in ('x', 'event', 'mask'):
        assert padded[name].shape[-2:] == (32, 48)
        assert torch.equal(padded[name], F.pad(inputs[name], (0, 2, 0, 2), mode='reflect'))
    cropped = crop_outputs([padded['x'], padded['event']], info)
    assert torch.equal(cropped[0], inputs['x']) and torch.equal(cropped[1], inputs['event'])


def test_pad_inputs_rectangular_multiple_and_already_aligned():
    inputs = _efnet_inputs(32, 46)
    padded, info = pad_inputs(inputs, (8, 16))
    assert tuple(info) == (32, 46, 32, 48)
    assert torch.equal(padded['x'][..., :46], inputs['x'])
    assert padded['x'].shape[-2:] == (32, 48)


def test_pad_falls_back_to_replicate_for_tiny_tensors():
    tensor = torch.arange(4.).reshape(1, 1, 2, 2)
    padded, info = pad_inputs({'x': tensor}, 8)
    assert padded['x'].shape[-2:] == (8, 8)
    assert torch.equal(padded['x'], F.pad(tensor, (0, 6, 0, 6), mode='replicate'))


def test_pad_keeps_integer_dtype():
    mask = (torch.rand(1, 1, 5, 7) > 0.5).to(torch.uint8)
    padded, _ = pad_inputs({'mask': mask}, 4)
    assert padded['mask'].dtype == torch.uint8
    assert torch.equal(padded['mask'], F.pad(mask.float(), (0, 1, 0, 3), mode='reflect').to(torch.uint8))


def test_scaled_input_padded_by_k_times():
    gen = torch.Generator().manual_seed(1)
    event = torch.randn(1, 6, 10, 14, generator=gen)
    image = torch.rand(1, 3, 30, 42, generator=gen)
    padded, info = pad_inputs({'event': event, 'image': image}, 4)
    assert padded['event'].shape[-2:] == (12, 16)
    assert padded['image'].shape[-2:] == (36, 48)
    assert torch.equal(padded['image'], F.pad(image, (0, 6, 0, 6), mode='reflect'))
    out_big, out_small = crop_outputs([padded['image'], padded['event']], info)
    assert torch.equal(out_big, image) and torch.equal(out_small, event)


def test_non_integer_ratio_and_empty_inputs_rejected():
    with pytest.raises(ValueError, match='"image"'):
        input_scales({'event': torch.zeros(1, 6, 10, 14), 'image': torch.zeros(1, 3, 25, 28)})
    with pytest.raises(ValueError, match='non-None'):
        pad_inputs({'x': None}, 4)
    with pytest.raises(ValueError, match='"x"'):
        pad_inputs({'x': torch.zeros(3, 8, 8)}, 4)


@pytest.mark.parametrize('channels_last', [False, True])
def test_forward_padded_equals_manual_pad_and_crop(efnet, channels_last):
    inputs = _efnet_inputs(30, 46)
    outs = forward_padded(efnet, inputs, efnet.size_multiple, channels_last=channels_last)
    with torch.no_grad():
        manual = efnet(*[F.pad(inputs[k], (0, 2, 0, 2), mode='reflect') for k in ('x', 'event', 'mask')])
    assert len(outs) == 2
    for out, ref in zip(outs, manual):
        assert out.shape == (1, 3, 30, 46) and out.is_contiguous()
        # inference mode runs EFNet's in-place path, NHWC other convolution kernels: equal up to rounding
        assert_close_scaled(out, ref[..., :30, :46], 1e-5)


def test_channels_last_option_reaches_the_network():
    seen = []

    def net(x, mask=None):
        seen.append((x.is_contiguous(), x.is_contiguous(memory_format=torch.channels_last), mask.dtype))
        return x * 2

    inputs = {'x': torch.rand(1, 3, 6, 10), 'mask': torch.ones(1, 1, 6, 10, dtype=torch.uint8)}
    for flag in (None, True, False):
        (out, ) = forward_padded(net, inputs, 4, channels_last=flag)
        assert torch.equal(out, inputs['x'] * 2) and out.is_contiguous()
    assert seen == [(False, True, torch.uint8), (False, True, torch.uint8), (True, False, torch.uint8)]


def test_forward_padded_odd_size_like_davis(efnet):
    inputs = _efnet_inputs(26, 35)
    inputs['mask'] = None
    out_1, out_2 = forward_padded(efnet, inputs, efnet.size_multiple)
    assert out_1.shape == out_2.shape == (1, 3, 26, 35)
    assert torch.isfinite(out_2).all()


def test_forward_padded_single_tensor_output_and_grad_mode():
    net = nn.Conv2d(3, 2, 1)
    x = torch.rand(1, 3, 5, 6)
    (out, ) = forward_padded(lambda x: net(x), {'x': x}, 4)
    assert out.shape == (1, 2, 5, 6) and torch.is_inference(out)
    (out, ) = forward_padded(lambda x: net(x), {'x': x}, 4, inference=False)
    assert out.requires_grad and not torch.is_inference(out)


def test_tile_starts_follow_the_adaptive_stride_rule():
    assert tile_starts(720, 256) == [0, 232, 464]  # 3 rows, stride ceil(464 / 2)
    assert tile_starts(1280, 256) == [0, 256, 512, 768, 1024]
    assert tile_starts(260, 256) == [0, 4]
    assert tile_starts(100, 256) == [0]
    for length, crop in [(97, 16), (346, 64), (33, 32), (1000, 7)]:
        starts = tile_starts(length, crop)
        covered = torch.zeros(length)
        for s in starts:
            covered[s:s + crop] += 1
        assert starts[-1] == length - crop and (covered >= 1).all() and len(starts) == -(-length // crop)


def test_tiled_single_tile_equals_whole_frame(efnet):
    inputs = _efnet_inputs(30, 46)
    whole = forward_padded(efnet, inputs, efnet.size_multiple)
    for crop in (64, (30, 46)):
        tiled = forward_tiled(efnet, inputs, crop, efnet.size_multiple)
        for a, b in zip(tiled, whole):
            assert torch.equal(a, b)  # one tile covering the frame: the same kernels run on the same data


@pytest.mark.parametrize('max_minibatch', [1, 4])
def test_tiled_local_net_equals_whole_frame_with_mask(max_minibatch):
    torch.manual_seed(0)
    net = LocalNet(multiple=4)
    inputs = _efnet_inputs(37, 53, n=2)
    whole = forward_padded(net, inputs, 4)
    net.calls.clear()
    tiled = forward_tiled(net, inputs, 16, multiple=4, max_minibatch=max_minibatch)
    num_tiles = len(tile_starts(37, 16)) * len(tile_starts(53, 16))
    assert len(net.calls) == -(-num_tiles // max_minibatch)
    assert net.calls[0][0] == 2 * min(max_minibatch, num_tiles)
    for a, b in zip(tiled, whole):
        assert a.shape == b.shape == (2, 3, 37, 53)
        _assert_same(a, b)
    # a mask tiled on another grid (or not at all) would change the gated output
    shifted = dict(inputs, mask=torch.roll(inputs['mask'], 1, dims=-1))
    assert (forward_tiled(net, shifted, 16, multiple=4)[1] - tiled[1]).abs().max() > 1e-2


@pytest.mark.parametrize('max_minibatch', [1, 2])
def test_tiled_pads_tiles_to_the_multiple(max_minibatch):
    net = LocalNet(multiple=8)
    inputs = _efnet_inputs(30, 41)
    tiled = forward_tiled(net, inputs, 18, multiple=8, max_minibatch=max_minibatch)
    assert all(shape[-2] % 8 == 0 and shape[-1] % 8 == 0 for shape in net.calls)
    whole = forward_padded(net, inputs, 8)
    for a, b in zip(tiled, whole):
        _assert_same(a, b)


def test_tiled_scaled_input_consistent():
    torch.manual_seed(0)
    net = ScaledNet()
    gen = torch.Generator().manual_seed(2)
    inputs = {
        'event': torch.randn(1, 6, 22, 29, generator=gen),
        'image': torch.rand(1, 3, 66, 87, generator=gen),
        'mask': (torch.rand(1, 1, 22, 29, generator=gen) > 0.5).float(),
    }
    with torch.no_grad():
        whole = net(**inputs)
    tiled = forward_tiled(net, inputs, 8, multiple=1, max_minibatch=3)
    assert tiled[0].shape == (1, 3, 66, 87) and tiled[1].shape == (1, 3, 22, 29)
    for a, b in zip(tiled, whole):
        _assert_same(a, b)


def test_tiled_efnet_several_tiles_runs(efnet):
    inputs = _efnet_inputs(30, 46)
    tiled = forward_tiled(efnet, inputs, 18, efnet.size_multiple, max_minibatch=2)
    assert [t.shape for t in tiled] == [(1, 3, 30, 46)] * 2
    assert all(torch.isfinite(t).all() for t in tiled)


def test_tiled_argument_errors(efnet):
    inputs = _efnet_inputs(16, 16)
    with pytest.raises(ValueError, match='crop_size'):
        forward_tiled(efnet, inputs, 0, 4)
    with pytest.raises(ValueError, match='max_minibatch'):
        forward_tiled(efnet, inputs, 8, 4, max_minibatch=0)
