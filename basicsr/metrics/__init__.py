"""Registered metrics, :func:`calculate_metric` and the public metric functions.

The metric functions (``calculate_psnr``, ``calculate_ssim``, ``calculate_ssim_3d`` and their ``_pt`` torch
variants) are imported from :mod:`basicsr.metrics.psnr_ssim` on first access, so importing this package stays
free of side effects (the metric registry imports that module itself on first use).
"""
import copy
import importlib

from basicsr.utils.registry import METRIC_REGISTRY

_METRIC_FUNCTIONS = ('calculate_psnr', 'calculate_ssim', 'calculate_ssim_3d', 'calculate_psnr_pt', 'calculate_ssim_pt',
                     'calculate_ssim_3d_pt')

__all__ = ['calculate_metric', *_METRIC_FUNCTIONS]


def __getattr__(name):
    """Imports a public metric function on first access (PEP 562).

    Args:
        name (str): Attribute name.

    Returns:
        callable: The metric function from :mod:`basicsr.metrics.psnr_ssim`.
    """
    if name in _METRIC_FUNCTIONS:
        return getattr(importlib.import_module('basicsr.metrics.psnr_ssim'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(_METRIC_FUNCTIONS))


def calculate_metric(data, opt):
    """Computes a registered metric.

    Args:
        data (dict): Keyword arguments of the metric, e.g. ``{'img': out, 'img2': gt}``.
        opt (dict): ``{'type': <registered name>, **metric kwargs}``; not modified. Extra YAML keys such as
            ``better`` are passed on and ignored by the metric functions.

    Returns:
        float: The metric value.
    """
    opt = copy.deepcopy(opt)
    metric_type = opt.pop('type')
    return METRIC_REGISTRY.get(metric_type)(**data, **opt)
