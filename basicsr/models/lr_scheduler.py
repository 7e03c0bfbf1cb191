# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/models/lr_scheduler.py (Apache-2.0)
"""Learning-rate schedules of BasicSR and HINet/EFNet, stepped once per iteration."""
import math
from collections import Counter

from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

__all__ = ['MultiStepRestartLR', 'CosineAnnealingRestartLR', 'TrueCosineAnnealingLR', 'LinearLR', 'VibrateLR',
           'SCHEDULERS']


class MultiStepRestartLR(LRScheduler):
    """Multi-step decay with restarts.

    Args:
        optimizer (torch.optim.Optimizer): Optimizer.
        milestones (list[int]): Iterations at which the lr is multiplied by ``gamma``.
        gamma (float): Decay factor. Default: 0.1.
        restarts (list[int]): Iterations at which the lr restarts. Default: (0,).
        restart_weights (list[float]): Initial-lr multiplier at each restart. Default: (1,).
        last_epoch (int): Index of the last step. Default: -1.
    """

    def __init__(self, optimizer, milestones, gamma=0.1, restarts=(0, ), restart_weights=(1, ), last_epoch=-1):
        self.milestones = Counter(milestones)
        self.gamma = gamma
        self.restarts = list(restarts)
        self.restart_weights = list(restart_weights)
        if len(self.restarts) != len(self.restart_weights):
            raise ValueError('restarts and restart_weights must have the same length')
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """Returns the learning rate of each parameter group at ``last_epoch``."""
        if self.last_epoch in self.restarts:
            weight = self.restart_weights[self.restarts.index(self.last_epoch)]
            return [group['initial_lr'] * weight for group in self.optimizer.param_groups]
        if self.last_epoch not in self.milestones:
            return [group['lr'] for group in self.optimizer.param_groups]
        return [group['lr'] * self.gamma**self.milestones[self.last_epoch] for group in self.optimizer.param_groups]


class CosineAnnealingRestartLR(LRScheduler):
    """Cosine annealing over consecutive periods, each restarting at a weighted initial lr.

    Args:
        optimizer (torch.optim.Optimizer): Optimizer.
        periods (list[int]): Length of each cosine cycle.
        restart_weights (list[float]): Initial-lr multiplier of each cycle. Default: (1,).
        eta_min (float): Minimum lr. Default: 0.
        last_epoch (int): Index of the last step. Default: -1.
    """

    def __init__(self, optimizer, periods, restart_weights=(1, ), eta_min=0, last_epoch=-1):
        self.periods = list(periods)
        self.restart_weights = list(restart_weights)
        self.eta_min = eta_min
        if len(self.periods) != len(self.restart_weights):
            raise ValueError('periods and restart_weights must have the same length')
        self.cumulative_period = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """Returns the learning rate of each parameter group at ``last_epoch``."""
        idx = next((i for i, end in enumerate(self.cumulative_period) if self.last_epoch <= end),
                   len(self.periods) - 1)
        weight = self.restart_weights[idx]
        start = 0 if idx == 0 else self.cumulative_period[idx - 1]
        period = self.periods[idx]
        return [
            self.eta_min + weight * 0.5 * (base_lr - self.eta_min) *
            (1 + math.cos(math.pi * ((self.last_epoch - start) / period))) for base_lr in self.base_lrs
        ]


class TrueCosineAnnealingLR(CosineAnnealingLR):
    """HINet/EFNet's name for torch's :class:`~torch.optim.lr_scheduler.CosineAnnealingLR` (``T_max``, ``eta_min``)."""


class LinearLR(LRScheduler):
    """Linear decay to zero over ``total_iter`` steps (HINet).

    Args:
        optimizer (torch.optim.Optimizer): Optimizer.
        total_iter (int): Steps until the lr reaches zero.
        last_epoch (int): Index of the last step. Default: -1.
    """

    def __init__(self, optimizer, total_iter, last_epoch=-1):
        self.total_iter = total_iter
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """Returns the learning rate of each parameter group at ``last_epoch``."""
        weight = 1 - self.last_epoch / self.total_iter
        return [weight * group['initial_lr'] for group in self.optimizer.param_groups]


class VibrateLR(LRScheduler):
    """HINet's oscillating schedule: a decaying triangle wave around a slowly decreasing lr.

    Args:
        optimizer (torch.optim.Optimizer): Optimizer.
        total_iter (int): Length of the schedule.
        last_epoch (int): Index of the last step. Default: -1.
    """

    def __init__(self, optimizer, total_iter, last_epoch=-1):
        self.total_iter = total_iter
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """Returns the learning rate of each parameter group at ``last_epoch``."""
        process = self.last_epoch / self.total_iter
        f = 0.1
        if process < 3 / 8:
            f = 1 - process * 8 / 3
        elif process < 5 / 8:
            f = 0.2
        period = max(self.total_iter // 80, 1)
        half = period // 2 or 1
        t = self.last_epoch % period
        f2 = t / half if t < half else 2 - t / half
        weight = max(f * f2, 0.01)
        return [weight * group['initial_lr'] for group in self.optimizer.param_groups]


SCHEDULERS = {
    'MultiStepLR': MultiStepRestartLR,
    'MultiStepRestartLR': MultiStepRestartLR,
    'CosineAnnealingRestartLR': CosineAnnealingRestartLR,
    'TrueCosineAnnealingLR': TrueCosineAnnealingLR,
    'CosineAnnealingLR': TrueCosineAnnealingLR,
    'LinearLR': LinearLR,
    'VibrateLR': VibrateLR,
}
