"""Registered networks (``*_arch.py``), :func:`build_network` and the inference declarations of the networks.

A network class declares what inference needs (event representation, image inputs, size multiple, checkpoint
keys) beside its ``io``; :mod:`basicsr.archs.method_spec` holds the declaration types, the generic look-ups and the
optional hooks a method may declare (EDI's per-run threshold choice lives in :mod:`basicsr.archs.edi_threshold`).
A method is an arch: its event maths may stay a module of :mod:`basicsr.events` it imports (EDI's does).
"""
import copy

from basicsr.archs.method_spec import (CheckpointMatch, ImageInput, MethodSpec, build_image_inputs,
                                       check_image_sizes, checkpoint_options, method_spec, network_options,
                                       recognise_checkpoint)
from basicsr.utils.option_check import accepted_arguments, check_arguments
from basicsr.utils.options import OptionError
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['build_network', 'method_spec', 'recognise_checkpoint', 'checkpoint_options', 'network_options',
           'build_image_inputs', 'check_image_sizes', 'MethodSpec', 'ImageInput', 'CheckpointMatch']


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
