"""Networks under ``torch.autocast`` (bf16 on CPU) keep their outputs close to float32 on briefly trained weights.

Both networks are trained for a few dozen steps on a synthetic task first: a fresh network has zero attention
``gamma`` and near-identity residual paths, which hides precision losses that trained weights expose.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import basicsr.archs.lowlight_blocks as lowlight_blocks
from basicsr.archs.efnet_arch import EFNet
from basicsr.archs.lowlight_arch import LowLightEventDeblurNet
from basicsr.archs.precision_ops import full_precision

pytestmark = pytest.mark.numerics

MIN_PSNR = 45.0  # dB, bf16 autocast vs float32, outputs in [0, 1] (the bound of issue 13)


def _bf16_autocast_reason():
    try:
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = F.conv2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3))
    except RuntimeError as err:
        return f'bf16 autocast does not run on this CPU: {err}'
    if out.dtype != torch.bfloat16:
        return 'autocast on this CPU does not compute convolutions in bf16'
    return None


requires_bf16 = pytest.mark.skipif(_bf16_autocast_reason() is not None, reason=str(_bf16_autocast_reason()))


def _psnr(a, b):
    mse = float(torch.mean((a.double() - b.double())**2))
    return float('inf') if mse == 0 else 10 * np.log10(1 / mse)


def _smooth(gen, *shape):
    return F.avg_pool2d(torch.rand(*shape, generator=gen), 5, stride=1, padding=2, count_include_pad=False)


def _train(net, make_batch, loss_fn, steps=30):
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for step in range(steps):
        inputs, target = make_batch(step)
        loss = loss_fn(net(**inputs), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _outputs(net, inputs, pick, bf16):
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        return pick(net(**inputs)).float()


def _lowlight_batch(seed, size=32):
    gen = torch.Generator().manual_seed(seed)
    aps = _smooth(gen, 2, 1, size, size) * 0.4
    events = torch.randn(2, 13, size, size, generator=gen) * (torch.rand(2, 13, size, size, generator=gen) < 0.3)
    return {'E': events, 'B': aps, 'Bi': aps}, (aps * 2).clamp(0, 1)


def _efnet_batch(seed, size=32):
    gen = torch.Generator().manual_seed(seed)
    image = _smooth(gen, 2, 3, size, size)
    events = torch.randn(2, 6, size, size, generator=gen)
    mask = (torch.rand(2, 1, size, size, generator=gen) > 0.5).float()
    return {'x': image, 'event': events, 'mask': mask}, (image + 0.05 * events[:, :3]).clamp(0, 1)


@pytest.fixture(scope='module')
def trained_lowlight():
    torch.manual_seed(1)
    net = LowLightEventDeblurNet(init_dim=32, grid=(2, 2), flow_relu=False).init_weights()
    for m in net.modules():  # the attention starts as the identity (gamma 0); give it a part to play
        if isinstance(m, lowlight_blocks.SelfAttentionFM):
            m.gamma.data.fill_(0.5)
    return _train(net, lambda step: _lowlight_batch(step), lambda out, t: F.mse_loss(out[2], t))


@pytest.fixture(scope='module')
def trained_efnet():
    torch.manual_seed(2)
    return _train(EFNet(wf=8), lambda step: _efnet_batch(step), lambda out, t: F.l1_loss(out[-1], t))


@requires_bf16
def test_lowlight_bf16_output_close_to_fp32(trained_lowlight):
    inputs, _ = _lowlight_batch(1000)
    fp32 = _outputs(trained_lowlight, inputs, lambda out: out[2], bf16=False)
    bf16 = _outputs(trained_lowlight, inputs, lambda out: out[2], bf16=True)
    assert fp32.dtype == bf16.dtype == torch.float32
    assert _psnr(bf16, fp32) >= MIN_PSNR


@requires_bf16
def test_efnet_bf16_output_close_to_fp32(trained_efnet):
    inputs, _ = _efnet_batch(1000)
    fp32 = _outputs(trained_efnet, inputs, lambda out: out[-1], bf16=False)
    bf16 = _outputs(trained_efnet, inputs, lambda out: out[-1], bf16=True)
    assert _psnr(bf16.clamp(0, 1), fp32.clamp(0, 1)) >= MIN_PSNR


@requires_bf16
def test_full_precision_runs_float32_only_under_autocast():
    x = torch.randn(2, 3)
    seen = []

    def op(t):
        seen.append((t.dtype, torch.is_autocast_enabled('cpu')))
        return t

    assert full_precision(op, x) is x  # no autocast: a plain call, no copy
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = full_precision(op, x.bfloat16())
    assert y.dtype == torch.float32
    assert seen == [(torch.float32, False), (torch.float32, False)]
