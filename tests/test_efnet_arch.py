"""Tests of the EFNet network: checkpoint layout, golden equivalence, gradients and input checks."""
import json

import pytest
import torch

from basicsr.archs import build_network
from basicsr.archs.efnet_arch import EFNet
from basicsr.utils.registry import ARCH_REGISTRY
from golden_data import REFERENCE_SETS, assert_matches_reference, layout_file, load_reference, reference_network

pytestmark = pytest.mark.numerics  # .ci/run repeats these on other CPU kernel paths


def _small_inputs(h=16, w=24, ev_chn=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h, w, generator=gen)
    event = torch.randn(1, ev_chn, h, w, generator=gen)
    mask = (torch.rand(1, 1, h, w, generator=gen) > 0.5).float()
    return x, event, mask


def test_registered_and_built_from_options():
    assert ARCH_REGISTRY.get('EFNet') is EFNet
    opt = {'type': 'EFNet', 'wf': 8, 'fuse_before_downsample': True}
    net = build_network(opt)
    assert isinstance(net, EFNet)
    assert opt == {'type': 'EFNet', 'wf': 8, 'fuse_before_downsample': True}


def test_state_dict_matches_released_checkpoint_layout():
    expected = json.loads(layout_file('efnet_state_dict_shapes.json').read_text())
    net = EFNet()
    state = net.state_dict()
    assert sorted(state) == sorted(expected)
    mismatched = {k: (list(v.shape), expected[k]) for k, v in state.items() if list(v.shape) != expected[k]}
    assert not mismatched
    assert len(state) == 183
    assert sum(p.numel() for p in net.parameters()) == 8_466_445
    assert len(list(net.buffers())) == 0
    # strict loading of a checkpoint-shaped state dict
    fake = {k: torch.zeros(shape) for k, shape in expected.items()}
    net.load_state_dict(fake, strict=True)


def _load_golden(which='compact'):
    data = load_reference(which)
    inputs = {k: torch.from_numpy(data[f'efnet_in_{k}']) for k in ('x', 'event', 'mask')}
    return reference_network(which, 'efnet'), inputs, data


@pytest.mark.parametrize('which', REFERENCE_SETS)
@pytest.mark.parametrize('with_mask', [False, True])
def test_golden_equivalence(with_mask, which):
    net, inputs, data = _load_golden(which)
    suffix = 'mask' if with_mask else 'nomask'
    with torch.no_grad():
        outs = net(inputs['x'], inputs['event'], inputs['mask'] if with_mask else None)
    assert isinstance(outs, list) and len(outs) == 2
    for out, name in zip(outs, (f'efnet_out1_{suffix}', f'efnet_out2_{suffix}')):
        assert_matches_reference(out, data[name], name)


@pytest.mark.parametrize('chunk_tokens', [100, 1 << 20])
def test_golden_equivalence_inference_mode_banded_mlp(monkeypatch, chunk_tokens):
    from basicsr.archs.efnet_blocks import EventImageChannelAttention
    monkeypatch.setattr(EventImageChannelAttention, 'ffn_chunk_tokens', chunk_tokens)
    net, inputs, data = _load_golden()
    with torch.inference_mode():
        outs = net(inputs['x'], inputs['event'], inputs['mask'])
    for out, name in zip(outs, ('efnet_out1_mask', 'efnet_out2_mask')):
        assert_matches_reference(out, data[name], name)


def test_mask_changes_the_output():
    net, inputs, _ = _load_golden()
    with torch.no_grad():
        plain = net(inputs['x'], inputs['event'])[1]
        masked = net(inputs['x'], inputs['event'], inputs['mask'])[1]
    assert (plain - masked).abs().max().item() > 1e-3


def _grad_status(net, with_mask, anchor):
    torch.manual_seed(0)
    x, event, mask = _small_inputs()
    net.zero_grad(set_to_none=True)
    out_1, out_2 = net(x, event, mask if with_mask else None)
    loss = out_1.square().mean() + out_2.square().mean()
    if anchor:
        loss = loss + 0 * sum(p.sum() for p in net.parameters())
    loss.backward()
    return {name: p.grad for name, p in net.named_parameters()}


def test_every_parameter_gets_a_gradient_with_mask():
    torch.manual_seed(0)
    net = EFNet(wf=8)
    grads = _grad_status(net, with_mask=True, anchor=False)
    missing = [k for k, g in grads.items() if g is None]
    assert not missing
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for k, g in grads.items() if 'emgc' in k)


def test_without_mask_only_emgc_lacks_gradient_and_anchor_term_fixes_it():
    torch.manual_seed(0)
    net = EFNet(wf=8)
    grads = _grad_status(net, with_mask=False, anchor=False)
    missing = sorted(k for k, g in grads.items() if g is None)
    assert missing and all('.emgc_' in k for k in missing)
    assert len(missing) == 16  # 4 convs x (weight, bias) x 2 levels
    grads = _grad_status(net, with_mask=False, anchor=True)
    assert all(g is not None for g in grads.values())


def test_seven_channel_event_error_explains_keep_middle():
    net = EFNet(wf=8)
    x, event, _ = _small_inputs(ev_chn=7)
    with pytest.raises(ValueError, match=r'keep_middle.*index 3'):
        net(x, event)


def test_wrong_event_channel_count_error():
    net = EFNet(wf=8)
    x, event, _ = _small_inputs(ev_chn=2)
    with pytest.raises(ValueError, match='ev_chn=6'):
        net(x, event)


def test_seven_channel_network_accepts_seven_channels():
    net = EFNet(wf=8, ev_chn=7)
    x, event, _ = _small_inputs(ev_chn=7)
    with torch.no_grad():
        out_1, out_2 = net(x, event)
    assert out_2.shape == x.shape


@pytest.mark.parametrize('size', [(18, 24), (16, 26)])
def test_size_not_multiple_raises(size):
    net = EFNet(wf=8)
    x, event, _ = _small_inputs(*size)
    with pytest.raises(ValueError, match='multiples of 4'):
        net(x, event)


def test_size_multiple_follows_depth():
    assert EFNet.size_multiple == 4
    assert EFNet(wf=8).size_multiple == 4
    net = EFNet(wf=8, depth=2)
    assert net.size_multiple == 2
    x, event, mask = _small_inputs(6, 10)
    with torch.no_grad():
        outs = net(x, event, mask)
    assert [o.shape for o in outs] == [x.shape, x.shape]


def test_fuse_after_downsample_rejected():
    with pytest.raises(ValueError, match='fuse_before_downsample'):
        EFNet(wf=8, fuse_before_downsample=False)


def test_mask_shape_checked():
    net = EFNet(wf=8)
    x, event, _ = _small_inputs()
    with pytest.raises(ValueError, match='mask'):
        net(x, event, torch.ones(1, 1, 8, 8))


def test_io_declaration():
    assert EFNet.io['inputs'] == {'x': 'frame', 'event': 'voxel', 'mask': 'mask'}
    assert EFNet.io['outputs'] == ['out_1', 'out_2']
    assert EFNet.io['result'] == 'out_2' and EFNet.io['gt'] == 'frame_gt'
