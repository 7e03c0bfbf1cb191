"""Registered networks (``*_arch.py``) and :func:`build_network`."""
import copy

from basicsr.utils.option_check import accepted_arguments, check_arguments
from basicsr.utils.options import OptionError
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['build_network']


def build_network(opt, where='network_g'):
    """Builds a registered network from its options.

    Args:
        opt (dict): ``{'type': <registered name>, **constructor kwargs}``; not modified.
        where (str): Option path for messages. Default: ``'network_g'``.

    Returns:
        torch.nn.Module: The network.

    Raises:
        OptionError: An unknown argument or a value of the wrong type, naming the option and the network's accepted
            arguments.
    """
    opt = copy.deepcopy(opt)
    if 'type' not in opt:
        raise KeyError(f'network options need a "type" key naming a network; got keys {sorted(opt)}')
    net_type = opt.pop('type')
    net_cls = ARCH_REGISTRY.get(net_type)
    check_arguments(net_cls, opt, where)
    try:
        return net_cls(**opt)
    except TypeError as err:
        accepted = ', '.join(accepted_arguments(net_cls)[0])
        raise OptionError(f'{where} ({net_type}): {err}; it accepts: {accepted}') from None
