# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/data/__init__.py (Apache-2.0)
"""Datasets (``*_dataset.py``, registered in ``DATASET_REGISTRY``), :func:`build_dataset` and
:func:`build_dataloader`.

Importing this package imports no dataset module; the registry discovers them on first use.
"""
import copy
import functools
import logging
import random

import numpy as np
import torch
import torch.distributed as torch_dist
from torch.utils.data import DataLoader

from basicsr.data.prefetch_dataloader import PrefetchDataLoader
from basicsr.utils.registry import DATASET_REGISTRY

__all__ = ['build_dataset', 'build_dataloader', 'worker_init_fn']


def build_dataset(dataset_opt):
    """Builds a registered dataset.

    Args:
        dataset_opt (dict): Dataset options with ``type`` (registered class name) and ``name``; the dataset
            receives a deep copy of the whole dict, the caller's dict is never modified.

    Returns:
        torch.utils.data.Dataset: The dataset.
    """
    if 'type' not in dataset_opt:
        raise KeyError(f'dataset options need a "type" key naming a dataset; got keys {sorted(dataset_opt)}')
    opt = copy.deepcopy(dataset_opt)
    dataset = DATASET_REGISTRY.get(opt['type'])(opt)
    logging.getLogger('basicsr').info(f'Dataset [{dataset.__class__.__name__}] - {opt.get("name")} is built.')
    return dataset


def _rank():
    if torch_dist.is_available() and torch_dist.is_initialized():
        return torch_dist.get_rank()
    return 0


def worker_init_fn(worker_id, num_workers, rank, seed):
    """Seeds numpy, ``random`` and torch of a DataLoader worker with ``num_workers * rank + worker_id + seed``.

    Args:
        worker_id (int): Worker index (given by the DataLoader).
        num_workers (int): Workers per process.
        rank (int): Process rank.
        seed (int): Base seed (``manual_seed``).
    """
    worker_seed = num_workers * rank + worker_id + seed
    np.random.seed(worker_seed % 2**32)
    random.seed(worker_seed)
    torch.manual_seed(worker_seed)


def _int_opt(dataset_opt, key, default):
    value = dataset_opt.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f'dataset option "{key}" of {dataset_opt.get("name")!r} must be an integer, '
                         f'got {value!r}') from None


def build_dataloader(dataset, dataset_opt, num_gpu=1, dist=False, sampler=None, seed=None):
    """Builds the DataLoader of a dataset for its phase.

    Train phase: batch ``batch_size_per_gpu`` and ``num_worker_per_gpu`` workers per process (both multiplied by
    ``num_gpu`` in the non-distributed multi-GPU case), ``drop_last=True``, shuffled only when no sampler is
    given (and ``use_shuffle`` is not false), ``persistent_workers`` when requested and workers > 0. Val/test
    phase: batch 1, ``num_worker_per_gpu`` workers (default 0), no shuffle. With ``prefetch_mode: cpu`` a
    :class:`PrefetchDataLoader` of ``num_prefetch_queue`` batches is returned (``cuda`` prefetching is done by
    the caller with :class:`~basicsr.data.prefetch_dataloader.CUDAPrefetcher`).

    Args:
        dataset (torch.utils.data.Dataset): The dataset.
        dataset_opt (dict): Dataset options including ``phase`` (``train``, ``val`` or ``test``); not modified.
        num_gpu (int): Number of GPUs (0 = CPU). Default: 1.
        dist (bool): Distributed training. Default: False.
        sampler (torch.utils.data.Sampler | None): Sampler, e.g. :class:`EnlargedSampler`. Default: None.
        seed (int | None): Base seed for the workers; None leaves worker seeding to torch. Default: None.

    Returns:
        torch.utils.data.DataLoader: The loader.
    """
    phase = dataset_opt.get('phase')
    if phase is None:
        raise KeyError(f'dataset options of {dataset_opt.get("name")!r} have no "phase" (set by the option parser '
                       'from the key under "datasets", e.g. train, val_1, test)')
    rank = _rank()
    if phase == 'train':
        batch_size = _int_opt(dataset_opt, 'batch_size_per_gpu', None)
        num_workers = _int_opt(dataset_opt, 'num_worker_per_gpu', 0)
        if not dist:
            multiplier = 1 if not num_gpu else int(num_gpu)
            batch_size *= multiplier
            num_workers *= multiplier
        loader_args = dict(dataset=dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                           sampler=sampler, drop_last=True)
        if sampler is None:
            loader_args['shuffle'] = bool(dataset_opt.get('use_shuffle', True))
    elif phase in ('val', 'test'):
        num_workers = _int_opt(dataset_opt, 'num_worker_per_gpu', 0)
        loader_args = dict(dataset=dataset, batch_size=1, shuffle=False, num_workers=num_workers, sampler=sampler)
    else:
        raise ValueError(f'dataset phase {phase!r} of {dataset_opt.get("name")!r} is not supported; '
                         'expected train, val or test')
    loader_args['pin_memory'] = bool(dataset_opt.get('pin_memory', False))
    if num_workers > 0:
        loader_args['persistent_workers'] = bool(dataset_opt.get('persistent_workers', False))
        if seed is not None:
            loader_args['worker_init_fn'] = functools.partial(worker_init_fn, num_workers=num_workers, rank=rank,
                                                              seed=int(seed))

    prefetch_mode = dataset_opt.get('prefetch_mode')
    if prefetch_mode == 'cpu':
        num_prefetch_queue = _int_opt(dataset_opt, 'num_prefetch_queue', 1)
        logging.getLogger('basicsr').info(f'Use {prefetch_mode} prefetch dataloader: '
                                          f'num_prefetch_queue = {num_prefetch_queue}')
        return PrefetchDataLoader(num_prefetch_queue=num_prefetch_queue, **loader_args)
    if prefetch_mode not in (None, 'cuda'):
        raise ValueError(f'prefetch_mode must be ~, cpu or cuda; got {prefetch_mode!r}')
    if prefetch_mode == 'cuda' and not loader_args['pin_memory']:
        raise ValueError(f'dataset {dataset_opt.get("name")!r}: prefetch_mode: cuda requires pin_memory: true')
    return DataLoader(**loader_args)
