"""Tests of the low-light two-stage network: checkpoint layout, golden outputs, gradients, options, sizes, errors."""
import json

import numpy as np
import pytest
import torch

from basicsr.archs import build_network
from basicsr.archs.lowlight_arch import LowLightEventDeblurNet
from basicsr.archs.lowlight_blocks import laplacian
from golden_data import (LOWLIGHT_S_REL_TOL, NETWORK_REL_TOL, REFERENCE_SETS, assert_matches_reference, layout_file,
                         load_reference, reference_network)
from numerics import assert_gradients_reach_every_parameter, zero_gradient_by_construction

pytestmark = pytest.mark.numerics  # .ci/run repeats these on other CPU kernel paths


def _inputs(h, w, rgb, seed=0):
    g = torch.Generator().manual_seed(seed)
    E = torch.randn(1, 13, h, w, generator=g)
    B = torch.rand(1, 1, h, w, generator=g)
    Bi = torch.rand(1, 3, 3 * h, 3 * w, generator=g) if rgb else B
    return E, B, Bi


@pytest.mark.parametrize('mode, rgb, n_tensors, n_params', [('aps', False, 170, 11795803),
                                                            ('rgb', True, 172, 11814589)])
def test_state_dict_matches_reference_layout(mode, rgb, n_tensors, n_params):
    ref = json.loads(layout_file(f'lowlight_{mode}_state_dict_shapes.json').read_text())
    sd = LowLightEventDeblurNet(rgb=rgb).state_dict()
    assert list(sd) == list(ref)
    assert {k: list(v.shape) for k, v in sd.items()} == ref
    assert len(sd) == n_tensors
    assert sum(v.numel() for v in sd.values()) == n_params


@pytest.mark.parametrize('which', REFERENCE_SETS)
@pytest.mark.parametrize('mode', ['aps', 'rgb'])
def test_outputs_match_golden(mode, which):
    z = load_reference(which)
    net = reference_network(which, f'll_{mode}')
    inputs = [torch.from_numpy(z[f'll_{mode}_in_{k}']) for k in ('E', 'B', 'Bi')]
    with torch.no_grad():
        outputs = net(*inputs)
    for name, out in zip(('F', 'Bi_clean', 'S'), outputs):
        ref = z[f'll_{mode}_out_{name}']
        assert_matches_reference(out, ref, name, LOWLIGHT_S_REL_TOL if name == 'S' else NETWORK_REL_TOL)
        assert np.abs(out.numpy() - ref).mean() <= 1e-4, name  # no systematic difference (measured <= 3e-5 for S)


def test_flow_relu_option_changes_only_the_flow():
    z = load_reference('compact')
    sd = reference_network('compact', 'll_aps').state_dict()
    inputs = [torch.from_numpy(z[f'll_aps_in_{k}']) for k in ('E', 'B', 'Bi')]
    nets = {}
    for flow_relu in (True, False):
        nets[flow_relu] = LowLightEventDeblurNet(init_dim=32, flow_relu=flow_relu).eval()
        nets[flow_relu].load_state_dict(sd, strict=True)
    with torch.no_grad():
        f_relu, bic_relu, s_relu = nets[True](*inputs)
        f_signed, bic_signed, s_signed = nets[False](*inputs)
    assert f_relu.min() >= 0
    assert f_signed.min() < 0
    torch.testing.assert_close(f_signed.clamp(min=0), f_relu)
    torch.testing.assert_close(bic_signed, bic_relu)
    torch.testing.assert_close(s_signed, s_relu)


def test_registry_names_and_io():
    opt = {'type': 'DefaultModel', 'init_dim': 32, 'n_ev': 13, 'norm_type': 'instance', 'use_dropout': False}
    net = build_network(opt)
    assert type(net) is LowLightEventDeblurNet
    assert opt['type'] == 'DefaultModel'
    rgb_net = build_network({'type': 'LowLightEventDeblurNet', 'init_dim': 32, 'rgb': True})
    assert type(rgb_net) is LowLightEventDeblurNet and rgb_net.rgb
    assert net.io == {'inputs': {'E': 'E', 'B': 'B', 'Bi': 'Bi'}, 'outputs': ['F', 'Bi_clean', 'S'],
                      'result': 'S', 'gt': 'S'}
    assert net.size_multiple == (8, 40)
    assert LowLightEventDeblurNet(init_dim=32, grid=(4, 4)).size_multiple == (8, 8)


@pytest.mark.parametrize('rgb', [False, True])
def test_every_parameter_receives_a_gradient(rgb):
    torch.manual_seed(0)
    net = LowLightEventDeblurNet(init_dim=32, rgb=rgb).init_weights()
    # gamma = 0 at initialisation makes the attention an identity with zero gradient for its convolutions.
    for name, p in net.named_parameters():
        if name.endswith('gamma'):
            p.data.fill_(0.5)
    E, B, Bi = _inputs(16, 40, rgb)
    F, Bi_clean, S = net(E, B, Bi)
    (F.mean() + Bi_clean.mean() + S.mean()).backward()
    assert_gradients_reach_every_parameter(net)


@pytest.mark.parametrize('rgb', [False, True])
def test_zero_by_construction_gradients_are_exactly_those_vanishing_in_float64(rgb):
    """Checks the derived list: in float64 round-off is ~1e-17 of the largest gradient, real gradients >= ~1e-6."""
    torch.manual_seed(0)
    net = LowLightEventDeblurNet(init_dim=32, rgb=rgb).init_weights().double()
    for name, p in net.named_parameters():
        if name.endswith('gamma'):
            p.data.fill_(0.5)
    outputs = net(*[t.double() for t in _inputs(16, 40, rgb)])
    sum(o.mean() for o in outputs).backward()
    scale = max(p.grad.abs().max().item() for p in net.parameters())
    vanishing = {n for n, p in net.named_parameters() if p.grad.abs().max().item() <= 1e-10 * scale}
    assert vanishing == set(zero_gradient_by_construction(net))


def test_init_weights_follows_reference_scheme():
    torch.manual_seed(0)
    net = LowLightEventDeblurNet(init_dim=32).init_weights()
    sd = net.state_dict()
    assert torch.all(sd['E_feature_extraction.3.self_attn_fm.gamma'] == 0)
    w = sd['backbone.downsampling_blocks.2.model.1.bottleneck.3.weight']
    assert abs(w.std().item() - 0.02) < 0.002
    assert torch.all(sd['backbone.downsampling_blocks.2.model.1.bottleneck.3.bias'] == 0)
    assert torch.all(sd['fuse2.1.se.1.bias'] == 0)
    bound = (6 / (32 + 4))**0.5
    assert sd['fuse2.1.se.1.weight'].abs().max() <= bound


def test_laplacian_matches_kernel_with_reflect101():
    x = torch.arange(20.).view(1, 1, 4, 5) ** 1.5
    lap = laplacian(x)
    xp = np.pad(x[0, 0].numpy(), 1, mode='reflect')
    ref = xp[:-2, 1:-1] + xp[2:, 1:-1] + xp[1:-1, :-2] + xp[1:-1, 2:] - 4 * xp[1:-1, 1:-1]
    np.testing.assert_allclose(lap[0, 0].numpy(), ref, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize('rgb, bad, message', [
    (False, 'E6', 'n_ev=13'),
    (False, 'B3', 'input B'),
    (True, 'Bi2x', 'exactly 3x'),
    (True, 'Bi1ch', 'exactly 3x'),
    (False, 'E3d', '4-D tensor'),
    (False, 'E64', 'dtype torch.float64'),
])
def test_wrong_inputs_raise_clear_errors(rgb, bad, message):
    net = LowLightEventDeblurNet(init_dim=32, rgb=rgb)
    E, B, Bi = _inputs(16, 40, rgb)
    if bad == 'E6':
        E = E[:, :6]
    elif bad == 'B3':
        B = B.repeat(1, 3, 1, 1)
    elif bad == 'Bi2x':
        Bi = Bi[:, :, :32, :80]
    elif bad == 'Bi1ch':
        Bi = Bi[:, :1]
    elif bad == 'E3d':
        E = E[0]
    elif bad == 'E64':
        E = E.double()
    with pytest.raises(ValueError, match=message):
        net(E, B, Bi)


@pytest.mark.parametrize('kwargs', [{'init_dim': 16}, {'init_dim': 36}, {'norm_type': 'group'},
                                    {'out_channels': 3}, {'grid': (8,)}])
def test_bad_constructor_arguments(kwargs):
    with pytest.raises(ValueError):
        LowLightEventDeblurNet(**{'init_dim': 32, **kwargs})


def test_batch_norm_and_dropout_options():
    net = LowLightEventDeblurNet(init_dim=32, norm_type='batch', use_dropout=True)
    sd = net.state_dict()
    assert 'backbone.double_conv_block.bottleneck.0.bias' not in sd
    assert 'backbone.double_conv_block.projection.bias' in sd
    assert 'backbone.double_conv_block.bottleneck.1.running_mean' in sd
    assert 'B_edge_feature_extraction.1.running_mean' not in sd  # stage-1 branches keep instance norm
    assert any(isinstance(m, torch.nn.Dropout) for m in net.modules())
    plain = LowLightEventDeblurNet(init_dim=32, use_dropout=True).state_dict()
    assert list(plain) == list(LowLightEventDeblurNet(init_dim=32).state_dict())
    torch.manual_seed(0)
    net.init_weights()
    bn = net.backbone.double_conv_block.bottleneck[1]
    assert abs(bn.weight.mean().item() - 1) < 0.01 and torch.all(bn.bias == 0)
    with torch.no_grad():
        F, Bi_clean, S = net.eval()(*_inputs(16, 40, False))
    assert F.shape == (1, 4, 16, 40) and S.shape == Bi_clean.shape == (1, 1, 16, 40)


def test_rgb_three_channel_head_option():
    net = LowLightEventDeblurNet(init_dim=32, rgb=True, out_channels=3).eval()
    assert net.state_dict()['out_block.0.weight'].shape == (3, 32, 1, 1)
    with torch.no_grad():
        _, _, S = net(*_inputs(16, 40, True))
    assert S.shape == (1, 3, 48, 120)


def test_davis_frame_needs_padding_and_runs_padded():
    inference = pytest.importorskip('basicsr.models.inference')
    net = LowLightEventDeblurNet(init_dim=32).eval()
    E, B, Bi = _inputs(260, 346, False)
    with pytest.raises(ValueError, match='multiple of 8x40'):
        with torch.no_grad():
            net(E, B, Bi)
    F, Bi_clean, S = inference.forward_padded(net, {'E': E, 'B': B, 'Bi': Bi}, net.size_multiple)
    assert F.shape == (1, 4, 260, 346)
    assert Bi_clean.shape == S.shape == (1, 1, 260, 346)
    assert torch.isfinite(S).all() and 0 <= S.min() and S.max() <= 1


def test_hybrid_rgb_frame_needs_padding_and_runs_padded():
    inference = pytest.importorskip('basicsr.models.inference')
    net = LowLightEventDeblurNet(init_dim=32, rgb=True).eval()
    E, B, Bi = _inputs(260, 346, True)
    assert Bi.shape == (1, 3, 780, 1038)
    with pytest.raises(ValueError, match='multiple of 8x40'):
        with torch.no_grad():
            net(E, B, Bi)
    F, Bi_clean, S = inference.forward_padded(net, {'E': E, 'B': B, 'Bi': Bi}, net.size_multiple)
    assert F.shape == (1, 4, 260, 346)
    assert Bi_clean.shape == S.shape == (1, 3, 780, 1038)
    assert torch.isfinite(S).all() and 0 <= S.min() and S.max() <= 1
