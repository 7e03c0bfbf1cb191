"""Registered metrics and :func:`calculate_metric`."""
import copy

from basicsr.utils.registry import METRIC_REGISTRY

__all__ = ['calculate_metric']


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
