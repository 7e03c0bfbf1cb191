# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/losses/basic_loss.py (Apache-2.0)
# PSNRLoss after https://github.com/megvii-research/NAFNet (MIT) as used by EFNet.
"""Pixel losses: L1, MSE, Charbonnier, PSNR and weighted total variation."""
import math

import torch
from torch import nn

from basicsr.losses.loss_util import check_reduction, weighted_loss
from basicsr.utils.registry import LOSS_REGISTRY

__all__ = ['L1Loss', 'MSELoss', 'CharbonnierLoss', 'PSNRLoss', 'WeightedTVLoss', 'l1_loss', 'mse_loss',
           'charbonnier_loss']


@weighted_loss
def l1_loss(pred, target):
    """Element-wise absolute error ``|pred - target|``."""
    return (pred - target).abs()


@weighted_loss
def mse_loss(pred, target):
    """Element-wise squared error ``(pred - target)²``."""
    return (pred - target)**2


@weighted_loss
def charbonnier_loss(pred, target, eps=1e-12):
    """Element-wise Charbonnier error ``sqrt((pred - target)² + eps)``."""
    return torch.sqrt((pred - target)**2 + eps)


class _PixelLoss(nn.Module):
    """Base of the element-wise losses: stores and validates ``loss_weight`` and ``reduction``.

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.
    """

    loss_fn = None  # element-wise loss of the subclass, wrapped by ``weighted_loss``

    def __init__(self, loss_weight=1.0, reduction='mean'):
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss_weight = float(loss_weight)

    def extra_kwargs(self):
        """Keyword arguments of ``loss_fn`` besides the tensors (e.g. Charbonnier's ``eps``)."""
        return {}

    def forward(self, pred, target, weight=None, **kwargs):
        """Computes the loss.

        Args:
            pred (Tensor): (N, C, H, W) prediction.
            target (Tensor): (N, C, H, W) ground truth.
            weight (Tensor | None): (N, C, H, W) or (N, 1, H, W) element weights. Default: None.

        Returns:
            Tensor: The weighted, reduced loss.
        """
        return self.loss_weight * self.loss_fn(pred, target, weight, reduction=self.reduction, **self.extra_kwargs())


@LOSS_REGISTRY.register()
class L1Loss(_PixelLoss):
    """L1 (mean absolute error) loss.

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.
    """

    loss_fn = staticmethod(l1_loss)


@LOSS_REGISTRY.register()
class MSELoss(_PixelLoss):
    """MSE (L2) loss.

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.
    """

    loss_fn = staticmethod(mse_loss)


@LOSS_REGISTRY.register()
class CharbonnierLoss(_PixelLoss):
    """Charbonnier loss, a differentiable variant of L1: ``sqrt((pred - target)² + eps)``.

    Ref: Lai et al., "Fast and Accurate Image Super-Resolution with Deep Laplacian Pyramid Networks", TPAMI 2018.

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.
        eps (float): Constant under the square root. Default: 1e-12.
    """

    loss_fn = staticmethod(charbonnier_loss)

    def __init__(self, loss_weight=1.0, reduction='mean', eps=1e-12):
        super().__init__(loss_weight, reduction)
        self.eps = float(eps)

    def extra_kwargs(self):
        """Passes ``eps`` to the element-wise loss."""
        return {'eps': self.eps}


@LOSS_REGISTRY.register()
class PSNRLoss(_PixelLoss):
    """Negative PSNR loss of NAFNet/EFNet: ``w · 10/ln10 · mean_n(ln(mean_CHW((pred - gt)²) + 1e-8))``.

    For data in [0, 1] this is ``-w · PSNR`` in dB (up to the 1e-8 guard), averaged over the batch.

    Args:
        loss_weight (float): Multiplier w. Default: 1.0.
        reduction (str): Over the batch: 'mean' (reference), 'sum', or 'none' for per-image values. Default: 'mean'.
        toY (bool): Compare the BT.601 Y channel of RGB inputs (values then in [16/255, 235/255]). Default: False.
    """

    _Y_WEIGHTS = (65.481, 128.553, 24.966)

    def __init__(self, loss_weight=1.0, reduction='mean', toY=False):  # noqa: N803 (option-file key)
        super().__init__(loss_weight, reduction)
        self.scale = 10. / math.log(10.)
        self.toY = bool(toY)

    def _to_y(self, img):
        coef = torch.tensor(self._Y_WEIGHTS, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
        return ((img * coef).sum(dim=1, keepdim=True) + 16.) / 255.

    def forward(self, pred, target, weight=None, **kwargs):
        """Computes the loss.

        Args:
            pred (Tensor): (N, C, H, W) prediction (C = 3, RGB, when ``toY``).
            target (Tensor): (N, C, H, W) ground truth.
            weight (Tensor | None): Element weights of shape (N, C, H, W) or (N, 1, H, W); the per-image MSE becomes
                the weighted mean. Default: None.

        Returns:
            Tensor: Scalar for 'mean'/'sum', (N,) for 'none'.
        """
        if pred.dim() != 4 or pred.shape != target.shape:
            raise ValueError(f'PSNRLoss expects two (N, C, H, W) tensors of equal shape, got {tuple(pred.shape)} '
                             f'and {tuple(target.shape)}')
        if self.toY:
            pred, target = self._to_y(pred), self._to_y(target)
        err = (pred - target)**2
        if weight is None:
            mse = err.mean(dim=(1, 2, 3))
        else:
            if weight.dim() != 4 or weight.size(1) not in (1, err.size(1)):
                raise ValueError(f'weight of shape {tuple(weight.shape)} does not fit a loss of shape '
                                 f'{tuple(err.shape)}')
            weight = weight.expand_as(err)
            mse = (err * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp_min(1e-12)
        loss = self.loss_weight * self.scale * torch.log(mse + 1e-8)
        if self.reduction == 'mean':
            return loss.mean()
        if self.reduction == 'sum':
            return loss.sum()
        return loss


@LOSS_REGISTRY.register()
class WeightedTVLoss(L1Loss):
    """Total variation loss: mean absolute difference of vertical plus horizontal neighbours (BasicSR definition).

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        reduction (str): 'mean' or 'sum' (the two difference maps have different shapes, so no 'none').
            Default: 'mean'.
    """

    def __init__(self, loss_weight=1.0, reduction='mean'):
        check_reduction(reduction, allowed=('mean', 'sum'))
        super().__init__(loss_weight=loss_weight, reduction=reduction)

    def forward(self, pred, weight=None, **kwargs):
        """Computes the loss.

        Args:
            pred (Tensor): (N, C, H, W) input.
            weight (Tensor | None): (N, C, H, W) or (N, 1, H, W) weights; the difference between rows (columns) i
                and i+1 is weighted by row (column) i. Default: None.

        Returns:
            Tensor: Scalar loss.
        """
        y_weight = None if weight is None else weight[:, :, :-1, :]
        x_weight = None if weight is None else weight[:, :, :, :-1]
        y_diff = super().forward(pred[:, :, :-1, :], pred[:, :, 1:, :], weight=y_weight)
        x_diff = super().forward(pred[:, :, :, :-1], pred[:, :, :, 1:], weight=x_weight)
        return x_diff + y_diff
