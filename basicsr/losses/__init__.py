"""Registered losses (``*_loss.py``) and :func:`build_loss`."""
import copy

from basicsr.utils.registry import LOSS_REGISTRY

__all__ = ['build_loss']


def build_loss(opt):
    """Builds a registered loss from its options.

    Args:
        opt (dict): ``{'type': <registered name>, **constructor kwargs}``; not modified. Keys the restoration model
            uses to wire and name the loss (``pred``, ``target``, ``no_target``, ``name``) are removed first.

    Returns:
        torch.nn.Module: The loss.
    """
    opt = copy.deepcopy(opt)
    if 'type' not in opt:
        raise KeyError(f'loss options need a "type" key naming a loss; got keys {sorted(opt)}')
    loss_type = opt.pop('type')
    for wiring_key in ('pred', 'target', 'no_target', 'name'):
        opt.pop(wiring_key, None)
    return LOSS_REGISTRY.get(loss_type)(**opt)
