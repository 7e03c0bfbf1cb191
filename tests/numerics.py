"""Numerical assertions that hold on any CPU: output-scaled tolerances and what a backward pass guarantees.

Two computation paths (another kernel, tile shape, memory layout, thread count or summation order) agree only up
to rounding, and oneDNN / ATen pick kernels by CPU, threads and shape; so comparisons of two paths use a tolerance
scaled to the output, and gradient checks never rely on a gradient that is zero in exact arithmetic.
"""
import numpy as np
import torch
from torch import nn

from basicsr.archs.lowlight_blocks import SelfAttentionFM, UnetDoubleConvBlock


def _float64(x):
    if torch.is_tensor(x):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def assert_close_scaled(actual, expected, rel, what='output'):
    """Asserts ``max |actual - expected| <= rel * (1 + max |expected|)``.

    Rounding differences grow with the magnitude of the values, so the bound scales with the output (the ``1 +``
    keeps it meaningful for outputs near zero).

    Args:
        actual (Tensor | np.ndarray): Output of the path under test.
        expected (Tensor | np.ndarray): Output of the reference path, same shape.
        rel (float): Relative tolerance.
        what (str): Name used in the failure message. Default: ``'output'``.
    """
    a, e = _float64(actual), _float64(expected)
    assert a.shape == e.shape, f'{what}: shape {a.shape} != expected {e.shape}'
    if not a.size:
        return
    err, bound = np.abs(a - e).max(), rel * (1 + np.abs(e).max())
    assert err <= bound, f'{what}: max |difference| {err:.3g} > {bound:.3g} = {rel:g} * (1 + max |expected|)'


def removes_channel_mean(module):
    """Whether ``module`` subtracts, per sample and channel, the mean over the other axes.

    A per-channel constant added to the input of such a layer has no effect on its output. InstanceNorm does this
    (and BatchNorm with batch statistics); LayerNorm normalises over the channel axis itself, over which a
    per-channel bias is not constant, so it does not.

    Args:
        module (nn.Module): Any layer.

    Returns:
        bool: True for instance norm, and batch norm using batch statistics.
    """
    if isinstance(module, (nn.modules.instancenorm._InstanceNorm, nn.modules.batchnorm._BatchNorm)):
        return module.training or not module.track_running_stats
    return False


def zero_gradient_by_construction(net):
    """Parameters whose gradient is zero in exact arithmetic for every input and loss, with the reason.

    Derived from the architecture by three rules (see ``basicsr/archs/lowlight_blocks.py``):

    - in an ``nn.Sequential``, the bias of a layer directly followed by a layer that removes the channel mean;
    - in :class:`UnetDoubleConvBlock`, the biases of ``projection`` and of the last bottleneck convolution reach
      the norm of ``out_block`` as per-channel constants (through the bottleneck, the projection bias becomes a
      per-channel constant that its first norm removes);
    - in :class:`SelfAttentionFM`, the key bias adds ``q·b`` to every logit of a query: softmax over the keys
      ignores it (max-pooling the keys keeps a per-channel constant).

    In floating point their gradient is round-off, exactly zero or not depending on the CPU, thread count and
    shape, so tests only check that they are reached.

    Args:
        net (nn.Module): The network (in the mode the backward pass runs in).

    Returns:
        dict[str, str]: Parameter name -> reason.
    """
    names = {id(p): n for n, p in net.named_parameters()}
    zero = {}

    def add(param, reason):
        if param is not None and id(param) in names:
            zero[names[id(param)]] = reason

    for module in net.modules():
        if isinstance(module, nn.Sequential):
            for layer, after in zip(module, list(module)[1:]):
                if removes_channel_mean(after):
                    add(getattr(layer, 'bias', None), f'bias directly followed by {type(after).__name__}')
        if isinstance(module, UnetDoubleConvBlock) and removes_channel_mean(module.out_block[0]):
            add(module.bottleneck[-1].bias, 'per-channel constant into the out_block norm')
            if removes_channel_mean(module.bottleneck[1]):
                add(module.projection.bias, 'per-channel constant into the out_block norm and the bottleneck norm')
        if isinstance(module, SelfAttentionFM):
            key = module.key_conv[0] if isinstance(module.key_conv, nn.Sequential) else module.key_conv
            add(key.bias, 'key bias shifts all logits of a query alike; softmax over the keys removes it')
    return zero


def assert_gradients_reach_every_parameter(net, what='network'):
    """After a backward pass: every trainable parameter has a finite gradient, non-zero unless zero by construction.

    Args:
        net (nn.Module): The network after ``loss.backward()``.
        what (str): Name used in the failure messages. Default: ``'network'``.
    """
    zero = zero_gradient_by_construction(net)
    params = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    unreached = [n for n, p in params if p.grad is None]
    assert not unreached, f'{what}: parameters the backward pass does not reach: {unreached[:10]}'
    nonfinite = [n for n, p in params if not torch.isfinite(p.grad).all()]
    assert not nonfinite, f'{what}: non-finite gradients: {nonfinite[:10]}'
    dead = [n for n, p in params if n not in zero and not p.grad.any()]
    assert not dead, f'{what}: parameters without gradient: {dead[:10]}'
