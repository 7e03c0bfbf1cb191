"""Numerically sensitive operations kept in float32 when the networks run under ``torch.autocast``.

Autocast runs convolutions and matrix products in bfloat16 / float16 and leaves most other operations in the dtype
of their input, so a normalisation, softmax or power that follows a convolution would also run in reduced
precision. :func:`full_precision` runs one operation in float32 instead: with autocast off and its tensor inputs
cast up. Which operations of a network need it is decided by measurement and listed in the network's docstring.
Without autocast it is a plain call (no cast, no copy), so the float32 path is unchanged.
"""
import torch

__all__ = ['autocast_active', 'full_precision']


def autocast_active(tensor):
    """Whether autocast is on for the device type of ``tensor``.

    Args:
        tensor (Tensor): Any tensor on the device in question.

    Returns:
        bool: True inside an enabled ``torch.autocast`` region for that device type.
    """
    return torch.is_autocast_enabled(tensor.device.type)


def full_precision(fn, *tensors, **kwargs):
    """Calls ``fn(*tensors, **kwargs)`` in float32 when autocast is on, else as is.

    Args:
        fn (callable): The operation.
        *tensors (Tensor): Its tensor arguments (cast to float32 under autocast).
        **kwargs: Further arguments, passed unchanged.

    Returns:
        The result of ``fn``: float32 tensors under autocast, otherwise in the dtype ``fn`` gives.
    """
    if not tensors or not autocast_active(tensors[0]):
        return fn(*tensors, **kwargs)
    with torch.autocast(device_type=tensors[0].device.type, enabled=False):
        return fn(*(t.float() for t in tensors), **kwargs)
