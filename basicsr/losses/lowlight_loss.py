"""Losses specific to the low-light two-stage network (``spec/lowlight.md`` §6): squared total variation and the
VGG19 conv3_3 perceptual loss.

The composite loss ``L = 0.01·Lf + 10·Ld + 1·Lr`` is written in the option files as a list of weighted terms on
named outputs (``L1Loss`` / ``MSELoss`` come from ``basic_loss.py``)::

    losses:
      - {type: L1Loss, loss_weight: 0.01, pred: F, target: F}
      - {type: TVLoss, loss_weight: 0.001, pred: F, target: ~}
      - {type: L1Loss, loss_weight: 10, pred: Bi_clean, target: Bi_clean}
      - {type: MSELoss, loss_weight: 10, pred: Bi_clean, target: Bi_clean}
      - {type: MSELoss, loss_weight: 100, pred: S, target: S}
      - {type: PerceptualLoss, loss_weight: 0.1, pred: S, target: S, vgg_weights_path: <path>/vgg19-dcbb9e9d.pth}
"""
import torch
from torch import nn

from basicsr.archs.vgg_arch import VGG19FeatureExtractor, load_vgg19_state_dict
from basicsr.utils.registry import LOSS_REGISTRY

__all__ = ['TVLoss', 'PerceptualLoss', 'total_variation', 'reference_loss_entries']


def reference_loss_entries(vgg_weights_path=None):
    """The loss entries that reproduce the published composite loss ``0.01·Lf + 10·Ld + 1·Lr`` (spec §6).

    ``Lf = L1(F) + 0.1·TV(F)``, ``Ld = L1(Bi_clean) + MSE(Bi_clean)``, ``Lr = 100·MSE(S) + 0.1·MSE(φ(S))``.

    Args:
        vgg_weights_path (str | None): VGG19 weights of the perceptual term. Default: None.

    Returns:
        list[dict]: ``{type, loss_weight, pred: <output name>, target: <batch key or None>}`` entries.
    """
    return [
        {'type': 'L1Loss', 'loss_weight': 0.01, 'pred': 'F', 'target': 'F'},
        {'type': 'TVLoss', 'loss_weight': 0.001, 'pred': 'F', 'target': None},
        {'type': 'L1Loss', 'loss_weight': 10.0, 'pred': 'Bi_clean', 'target': 'Bi_clean'},
        {'type': 'MSELoss', 'loss_weight': 10.0, 'pred': 'Bi_clean', 'target': 'Bi_clean'},
        {'type': 'MSELoss', 'loss_weight': 100.0, 'pred': 'S', 'target': 'S'},
        {'type': 'PerceptualLoss', 'loss_weight': 0.1, 'pred': 'S', 'target': 'S',
         'vgg_weights_path': vgg_weights_path},
    ]


def total_variation(x):
    """Squared total variation as in the reference, averaged over channels, positions and the batch.

    ``2·(Σ(Δ_h x)² / (C·(H−1)·W) + Σ(Δ_w x)² / (C·H·(W−1))) / N``.

    Args:
        x (Tensor): (N, C, H, W) with H, W >= 2.

    Returns:
        Tensor: Scalar.
    """
    n, c, h, w = x.shape
    if h < 2 or w < 2:
        raise ValueError(f'total variation needs H, W >= 2; got shape {tuple(x.shape)}')
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).sum() / (c * (h - 1) * w)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).sum() / (c * h * (w - 1))
    return 2 * (dh + dw) / n


@LOSS_REGISTRY.register()
class TVLoss(nn.Module):
    """Squared total-variation regulariser of a prediction (no target); used on the flow F.

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
    """

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred, target=None):
        """Computes the weighted loss.

        Args:
            pred (Tensor): (N, C, H, W).
            target (None): Must be None: the term has no target (write ``target: ~`` in the options).

        Returns:
            Tensor: Scalar loss.
        """
        if target is not None:
            raise ValueError('TVLoss has no target: write "target: ~" in its loss entry')
        return self.loss_weight * total_variation(pred)


def _vgg_template(last_layer, use_input_norm=False):
    """Returns a randomly initialised, frozen VGG19 feature extractor (weights are loaded by the caller)."""
    return VGG19FeatureExtractor(last_layer=last_layer, use_input_norm=use_input_norm, pretrained=False)


@LOSS_REGISTRY.register()
class PerceptualLoss(nn.Module):
    """MSE between VGG19 features (conv3_3 before its ReLU by default) of a prediction and its target.

    Gray inputs are replicated to three channels; inputs are used as is (linear [0, 1], no ImageNet
    normalisation) unless ``use_input_norm``. The VGG is frozen and only built at the first call (on the device of
    the prediction), but a missing weights file is reported at construction, i.e. at start-up. Target features are
    computed without gradient.

    Args:
        loss_weight (float): Multiplier of the loss. Default: 1.0.
        vgg_weights_path (str | None): Local torchvision-format VGG19 state dict (``vgg19-dcbb9e9d.pth``).
            Default: None (an error saying how to provide it).
        last_layer (int): Last kept index of VGG19 ``features``. Default: 14 (conv3_3, pre-activation).
        use_input_norm (bool): ImageNet mean / std normalisation before the VGG. Default: False.
        reduction (str): ``'mean'`` or ``'sum'`` over feature elements. Default: ``'mean'``.

    Raises:
        FileNotFoundError: If the weights file is not given or does not exist.
    """

    def __init__(self, loss_weight=1.0, vgg_weights_path=None, last_layer=14, use_input_norm=False, reduction='mean'):
        super().__init__()
        if reduction not in ('mean', 'sum'):
            raise ValueError(f"PerceptualLoss: reduction must be 'mean' or 'sum'; got {reduction!r}")
        self.loss_weight = loss_weight
        self.vgg_weights_path = vgg_weights_path
        self.last_layer = last_layer
        self.use_input_norm = use_input_norm
        self.reduction = reduction
        self.vgg = None
        self._vgg_weights = None
        if loss_weight:
            # Read and check the weights now so that a missing or wrong file fails at start-up; keep only the
            # tensors of the truncated VGG until the first call builds it.
            sd = load_vgg19_state_dict(vgg_weights_path)
            needed = list(_vgg_template(last_layer).state_dict())
            missing = [k for k in needed if k not in sd]
            if missing:
                raise KeyError(f'VGG19 weights {vgg_weights_path!r} lack {missing[:4]} ({len(missing)} keys); '
                               'expected a torchvision-format VGG19 state dict (features.0.weight, ...)')
            self._vgg_weights = {k: sd[k] for k in needed}

    def _build(self, like):
        """Creates the frozen VGG on the device and dtype of ``like``."""
        vgg = _vgg_template(self.last_layer, self.use_input_norm)
        vgg.load_state_dict(self._vgg_weights, strict=True)
        self._vgg_weights = None
        self.vgg = vgg.to(device=like.device, dtype=like.dtype).eval()

    def _features(self, x):
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] != 3:
            raise ValueError(f'PerceptualLoss expects 1 or 3 channels; got shape {tuple(x.shape)}')
        return self.vgg(x)

    def forward(self, pred, target):
        """Computes the weighted loss.

        Args:
            pred (Tensor): (N, 1 or 3, H, W).
            target (Tensor): Same shape as ``pred``.

        Returns:
            Tensor: Scalar loss.
        """
        if pred.shape != target.shape:
            raise ValueError(f'PerceptualLoss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ')
        if not self.loss_weight:
            return pred.new_zeros(())
        if self.vgg is None:
            self._build(pred)
        self.vgg.eval()
        with torch.no_grad():
            target_features = self._features(target)
        diff = (self._features(pred) - target_features).pow(2)
        loss = diff.mean() if self.reduction == 'mean' else diff.sum()
        return self.loss_weight * loss
