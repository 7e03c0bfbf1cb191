"""Every registered network: builds, runs a tiny CPU forward without NaNs, and every parameter gets a gradient.

Gradients zero by construction (biases into a norm, see ``tests/numerics.py``) are only required to be reached.

A network added to ``ARCH_REGISTRY`` without an entry in ``TINY`` fails here, so none escapes the check that
catches DDP "unused parameter" errors before a cluster does.
"""
import pytest
import torch

from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from numerics import assert_gradients_reach_every_parameter

pytestmark = pytest.mark.numerics  # .ci/run repeats these on other CPU kernel paths

# name -> (tiny constructor options, inputs builder). Inputs follow each network's ``io`` wiring.
TINY = {
    'EFNet': ({'wf': 8}, lambda: {'x': torch.rand(2, 3, 16, 24), 'event': torch.randn(2, 6, 16, 24),
                                  'mask': (torch.rand(2, 1, 16, 24) > 0.5).float()}),
    'LowLightEventDeblurNet': ({'init_dim': 32}, lambda: {
        'E': torch.randn(1, 13, 16, 40), 'B': torch.rand(1, 1, 16, 40), 'Bi': torch.rand(1, 1, 16, 40)}),
    'DefaultModel': ({'init_dim': 32, 'rgb': True}, lambda: {'E': torch.randn(1, 13, 16, 40),
                                                            'B': torch.rand(1, 1, 16, 40),
                                                            'Bi': torch.rand(1, 3, 48, 120)}),
    'VGG19FeatureExtractor': ({'pretrained': False}, lambda: {'x': torch.rand(1, 3, 16, 16)}),
    'PassThrough': ({}, lambda: {'x': torch.rand(1, 3, 8, 8)}),
    'EDI': ({'threshold': 0.2}, lambda: {'x': torch.rand(1, 3, 16, 24) + 0.1, 'event': torch.randn(1, 6, 16, 24)}),
}


def _outputs(out):
    if torch.is_tensor(out):
        return [out]
    return list(out)


@pytest.mark.parametrize('name', ARCH_REGISTRY.keys())
def test_registered_network_forward_backward(name):
    assert name in TINY, f'add a tiny configuration of {name} to tests/test_archs.py:TINY'
    kwargs, make_inputs = TINY[name]
    torch.manual_seed(0)
    net = build_network({'type': name, **kwargs})
    for module in net.modules():  # non-zero residual gates, so the gated branches receive gradients too
        for pname, param in module.named_parameters(recurse=False):
            if param.numel() == 1 and float(param.detach()) == 0:
                param.data.fill_(0.5)
    outs = _outputs(net(**make_inputs()))
    assert outs and all(torch.isfinite(o).all() for o in outs)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        return  # nothing to train (EDI, frozen feature extractors): the forward pass is the whole contract
    sum(o.float().square().mean() for o in outs).backward()
    assert_gradients_reach_every_parameter(net, name)


def test_efnet_without_mask_keeps_every_parameter_in_the_graph():
    """Without a mask EMGC is off; the model's ``0 * sum(params)`` term keeps DDP from meeting unused params."""
    kwargs, make_inputs = TINY['EFNet']
    net = build_network({'type': 'EFNet', **kwargs})
    inputs = make_inputs()
    inputs.pop('mask')
    out = _outputs(net(**inputs))
    loss = sum(o.square().mean() for o in out) + 0 * sum(p.sum() for p in net.parameters())
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
