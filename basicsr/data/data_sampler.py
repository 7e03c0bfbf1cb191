# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/data/data_sampler.py (Apache-2.0)
"""Sampler for iteration-based training: the dataset virtually repeated, shuffled per epoch, split per rank."""
import math

import torch
from torch.utils.data.sampler import Sampler

__all__ = ['EnlargedSampler']


class EnlargedSampler(Sampler):
    """Shuffles a virtually enlarged dataset and gives each rank an interleaved share.

    The dataset is repeated ``ratio`` times (indices taken modulo its length), shuffled with a generator seeded
    ``seed + epoch`` (call :meth:`set_epoch` every epoch), padded by wrapping around so the total is divisible by
    ``num_replicas``, and rank ``r`` takes positions ``r, r + num_replicas, ...``. Every rank computes the same
    permutation, so the shares are disjoint and together cover every enlarged index.

    Args:
        dataset (torch.utils.data.Dataset): Dataset to sample (needs ``__len__``).
        num_replicas (int): World size.
        rank (int): Rank of this process.
        ratio (int): Enlargement factor (``dataset_enlarge_ratio``). Default: 1.
        seed (int): Base seed (``manual_seed``). Default: 0.
    """

    def __init__(self, dataset, num_replicas, rank, ratio=1, seed=0):
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f'EnlargedSampler: need 0 <= rank < num_replicas, got rank={rank}, '
                             f'num_replicas={num_replicas}')
        if int(ratio) != ratio or ratio < 1:
            raise ValueError(f'EnlargedSampler: dataset_enlarge_ratio must be a positive integer, got {ratio}')
        if len(dataset) == 0:
            raise ValueError('EnlargedSampler: the dataset is empty')
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.ratio = int(ratio)
        self.seed = int(seed)
        self.epoch = 0
        self.num_samples = math.ceil(len(dataset) * self.ratio / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        indices = torch.randperm(len(self.dataset) * self.ratio, generator=g).tolist()
        indices += indices[:self.total_size - len(indices)]
        while len(indices) < self.total_size:  # only when total_size exceeds twice the enlarged length
            indices += indices[:self.total_size - len(indices)]
        dataset_size = len(self.dataset)
        indices = [v % dataset_size for v in indices[self.rank:self.total_size:self.num_replicas]]
        assert len(indices) == self.num_samples
        return iter(indices)

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Sets the epoch, which selects the permutation.

        Args:
            epoch (int): Epoch number.
        """
        self.epoch = int(epoch)
