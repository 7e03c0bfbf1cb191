# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/losses/loss_util.py (Apache-2.0)
"""Reduction and element-weighting helpers shared by the pixel losses."""
import functools

__all__ = ['REDUCTION_MODES', 'check_reduction', 'reduce_loss', 'weight_reduce_loss', 'weighted_loss']

REDUCTION_MODES = ('none', 'mean', 'sum')


def check_reduction(reduction, allowed=REDUCTION_MODES):
    """Raises a ValueError unless ``reduction`` is one of ``allowed``.

    Args:
        reduction (str): Requested reduction.
        allowed (tuple[str]): Accepted values. Default: ('none', 'mean', 'sum').

    Returns:
        str: ``reduction``.
    """
    if reduction not in allowed:
        raise ValueError(f'Unsupported reduction mode: {reduction!r}. Supported ones are: {", ".join(allowed)}')
    return reduction


def reduce_loss(loss, reduction):
    """Reduces an element-wise loss.

    Args:
        loss (Tensor): Element-wise loss.
        reduction (str): 'none', 'mean' or 'sum'.

    Returns:
        Tensor: ``loss`` itself, its mean or its sum.
    """
    check_reduction(reduction)
    if reduction == 'mean':
        return loss.mean()
    if reduction == 'sum':
        return loss.sum()
    return loss


def weight_reduce_loss(loss, weight=None, reduction='mean'):
    """Applies an element-wise weight, then reduces.

    With a weight, 'mean' is the weighted mean ``sum(w·loss) / sum(w)``, where a one-channel weight counts once per
    channel of ``loss``. An all-zero weight gives 0 rather than NaN.

    Args:
        loss (Tensor): Element-wise loss of shape (N, C, ...).
        weight (Tensor | None): Weight of shape (N, C, ...) or (N, 1, ...). Default: None.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.

    Returns:
        Tensor: Reduced (or, for 'none', weighted element-wise) loss.
    """
    check_reduction(reduction)
    if weight is None:
        return reduce_loss(loss, reduction)
    if weight.dim() != loss.dim() or weight.size(1) not in (1, loss.size(1)):
        raise ValueError(f'weight of shape {tuple(weight.shape)} does not fit a loss of shape {tuple(loss.shape)}: '
                         'expected the same number of dimensions and 1 or the same number of channels')
    loss = loss * weight
    if reduction != 'mean':
        return reduce_loss(loss, reduction)
    total_weight = weight.expand_as(loss).sum()
    return loss.sum() / total_weight.clamp_min(1e-12)


def weighted_loss(loss_func):
    """Decorator giving an element-wise loss function ``weight`` and ``reduction`` arguments.

    The decorated function computes the element-wise loss from ``(pred, target, **kwargs)``; the wrapper has the
    signature ``loss_func(pred, target, weight=None, reduction='mean', **kwargs)``.

    Example::

        @weighted_loss
        def l1_loss(pred, target):
            return (pred - target).abs()

    Args:
        loss_func (callable): Element-wise loss function.

    Returns:
        callable: The wrapped loss function.
    """

    @functools.wraps(loss_func)
    def wrapper(pred, target, weight=None, reduction='mean', **kwargs):
        return weight_reduce_loss(loss_func(pred, target, **kwargs), weight, reduction)

    return wrapper
