"""Registered networks (``*_arch.py``) and :func:`build_network`."""
import copy

from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['build_network']


def build_network(opt):
    """Builds a registered network from its options.

    Args:
        opt (dict): ``{'type': <registered name>, **constructor kwargs}``; not modified.

    Returns:
        torch.nn.Module: The network.
    """
    opt = copy.deepcopy(opt)
    if 'type' not in opt:
        raise KeyError(f'network options need a "type" key naming a network; got keys {sorted(opt)}')
    net_type = opt.pop('type')
    return ARCH_REGISTRY.get(net_type)(**opt)
