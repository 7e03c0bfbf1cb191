"""Tests of the pixel losses and the reduction helpers."""
import math

import numpy as np
import pytest
import torch

from basicsr.losses import build_loss
from basicsr.losses.basic_loss import CharbonnierLoss, L1Loss, MSELoss, PSNRLoss, WeightedTVLoss
from basicsr.losses.loss_util import weight_reduce_loss, weighted_loss
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_psnr_pt

pytestmark = pytest.mark.numerics  # .ci/run repeats these on other CPU kernel paths


def _pair(seed=0, shape=(2, 3, 5, 6)):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen, dtype=torch.float64), torch.rand(shape, generator=gen,
                                                                             dtype=torch.float64)


def test_l1_mse_charbonnier_match_hand_computation():
    pred = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    target = torch.tensor([[[[1.0, 1.0], [0.0, 4.0]]]])
    # |d| = 1, 0, 2, 1
    assert L1Loss()(pred, target).item() == pytest.approx(1.0)
    assert L1Loss(reduction='sum')(pred, target).item() == pytest.approx(4.0)
    assert MSELoss(loss_weight=0.5)(pred, target).item() == pytest.approx(0.5 * 6 / 4)
    assert MSELoss(reduction='sum')(pred, target).item() == pytest.approx(6.0)
    charb = CharbonnierLoss(eps=0.25)(pred, target).item()
    assert charb == pytest.approx(np.mean(np.sqrt(np.array([1, 0, 4, 1]) + 0.25)))
    assert CharbonnierLoss().eps == 1e-12
    assert CharbonnierLoss()(pred, target).item() == pytest.approx(1.0, abs=1e-6)


def test_reduction_none_keeps_shape_and_weighted_mean():
    pred, target = _pair()
    none = L1Loss(loss_weight=2., reduction='none')(pred, target)
    assert none.shape == pred.shape
    torch.testing.assert_close(none, 2. * (pred - target).abs())
    weight = torch.zeros(2, 1, 5, 6, dtype=torch.float64)
    weight[0, 0, 1, 2] = 1.
    weight[1, 0, 3, 4] = 3.
    got = L1Loss()(pred, target, weight=weight)
    diff = (pred - target).abs()
    expected = (diff[0, :, 1, 2].sum() + 3 * diff[1, :, 3, 4].sum()) / (4. * 3)  # one-channel weight counts per channel
    assert got.item() == pytest.approx(expected.item())
    got_sum = MSELoss(reduction='sum')(pred, target, weight=weight)
    assert got_sum.item() == pytest.approx(((pred - target)**2 * weight).sum().item())
    assert L1Loss()(pred, target, weight=torch.zeros_like(pred)).item() == 0.


def test_invalid_reduction_and_weight_raise():
    for cls in (L1Loss, MSELoss, CharbonnierLoss, PSNRLoss):
        with pytest.raises(ValueError, match="Unsupported reduction mode: 'avg'"):
            cls(reduction='avg')
    with pytest.raises(ValueError, match='Supported ones are: mean, sum'):
        WeightedTVLoss(reduction='none')
    pred, target = _pair()
    with pytest.raises(ValueError, match='does not fit'):
        L1Loss()(pred, target, weight=torch.ones(2, 2, 5, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match='Unsupported reduction'):
        weight_reduce_loss(pred, None, 'avg')


def test_weighted_loss_decorator():

    @weighted_loss
    def cube(pred, target, power=3):
        return (pred - target).abs()**power

    pred, target = _pair(1)
    assert cube.__name__ == 'cube'
    assert cube(pred, target, reduction='sum', power=2).item() == pytest.approx(((pred - target)**2).sum().item())
    assert cube(pred, target).item() == pytest.approx(((pred - target).abs()**3).mean().item())


def test_psnr_loss_equals_negative_weighted_psnr():
    pred, target = _pair(2)
    loss = PSNRLoss(loss_weight=0.5)(pred, target)
    psnr = calculate_psnr_pt(pred, target, crop_border=0)
    assert loss.item() == pytest.approx(-0.5 * psnr.mean().item(), abs=1e-6)
    per_image = PSNRLoss(reduction='none')(pred, target)
    torch.testing.assert_close(per_image, -psnr, atol=1e-6, rtol=0)
    img = pred[0].permute(1, 2, 0).numpy()
    img2 = target[0].permute(1, 2, 0).numpy()
    assert per_image[0].item() == pytest.approx(-calculate_psnr(img, img2, 0), abs=1e-6)
    assert PSNRLoss(reduction='sum')(pred, target).item() == pytest.approx(per_image.sum().item())


def test_psnr_loss_formula_toy_and_weight():
    pred, target = _pair(3)
    mse = ((pred - target)**2).mean(dim=(1, 2, 3))
    expected = 10 / math.log(10) * torch.log(mse + 1e-8).mean()
    assert PSNRLoss()(pred, target).item() == pytest.approx(expected.item())
    same = PSNRLoss()(target, target).item()
    assert same == pytest.approx(10 / math.log(10) * math.log(1e-8))
    coef = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64).view(1, 3, 1, 1)
    y1 = ((pred * coef).sum(1, keepdim=True) + 16) / 255
    y2 = ((target * coef).sum(1, keepdim=True) + 16) / 255
    expected_y = 10 / math.log(10) * torch.log(((y1 - y2)**2).mean(dim=(1, 2, 3)) + 1e-8).mean()
    assert PSNRLoss(toY=True)(pred, target).item() == pytest.approx(expected_y.item())
    weight = torch.zeros(2, 1, 5, 6, dtype=torch.float64)
    weight[:, :, :2] = 1.
    expected_w = PSNRLoss()(pred[:, :, :2], target[:, :, :2])
    assert PSNRLoss()(pred, target, weight=weight).item() == pytest.approx(expected_w.item())


def test_weighted_tv_loss():
    x = torch.tensor([[[[0., 1., 3.], [2., 2., 2.]]]])
    # vertical |diffs|: 2, 1, 1 -> mean 4/3; horizontal: 1, 2, 0, 0 -> mean 3/4
    assert WeightedTVLoss()(x).item() == pytest.approx(4 / 3 + 3 / 4)
    assert WeightedTVLoss(loss_weight=2., reduction='sum')(x).item() == pytest.approx(2 * (4 + 3))
    weight = torch.tensor([[[[1., 0., 0.], [0., 0., 0.]]]])
    # row 0 / column 0 carry the weights: vertical diff at (0,0) = 2, horizontal at (0,0) = 1
    assert WeightedTVLoss()(x, weight=weight).item() == pytest.approx(2. + 1.)


def test_build_loss_from_options_and_gradients():
    opt = {'type': 'PSNRLoss', 'loss_weight': 0.5, 'reduction': 'mean', 'toY': False}
    loss_fn = build_loss(opt)
    assert isinstance(loss_fn, PSNRLoss) and loss_fn.loss_weight == 0.5
    assert opt['type'] == 'PSNRLoss'
    pred, target = _pair(4)
    pred.requires_grad_(True)
    loss_fn(pred, target).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    for name in ('L1Loss', 'MSELoss', 'CharbonnierLoss', 'WeightedTVLoss'):
        assert type(build_loss({'type': name, 'loss_weight': 1.0})).__name__ == name
