# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/data/prefetch_dataloader.py (Apache-2.0)
"""Prefetching wrappers around a DataLoader: a background thread (CPU) or a side stream (CUDA)."""
import queue as Queue
import threading

import torch
from torch.utils.data import DataLoader

__all__ = ['PrefetchGenerator', 'PrefetchDataLoader', 'CPUPrefetcher', 'CUDAPrefetcher']

_END = object()


class PrefetchGenerator(threading.Thread):
    """Runs a generator in a daemon thread and hands its items out through a bounded queue.

    Args:
        generator (iterable): Source of items.
        num_prefetch_queue (int): Queue size (items fetched ahead).
    """

    def __init__(self, generator, num_prefetch_queue):
        super().__init__(daemon=True)
        self.queue = Queue.Queue(num_prefetch_queue)
        self.generator = generator
        self.error = None
        self.start()

    def run(self):
        try:
            for item in self.generator:
                self.queue.put(item)
        except BaseException as err:  # re-raised in the consumer thread
            self.error = err
        finally:
            self.queue.put(_END)

    def __next__(self):
        item = self.queue.get()
        if item is _END:
            if self.error is not None:
                raise self.error
            raise StopIteration
        return item

    def __iter__(self):
        return self


class PrefetchDataLoader(DataLoader):
    """DataLoader whose iterator is filled ahead by a background thread.

    Args:
        num_prefetch_queue (int): Number of batches fetched ahead.
        **kwargs: DataLoader arguments.
    """

    def __init__(self, num_prefetch_queue, **kwargs):
        if int(num_prefetch_queue) < 1:
            raise ValueError(f'num_prefetch_queue must be >= 1, got {num_prefetch_queue}')
        self.num_prefetch_queue = int(num_prefetch_queue)
        super().__init__(**kwargs)

    def __iter__(self):
        return PrefetchGenerator(super().__iter__(), self.num_prefetch_queue)


class CPUPrefetcher:
    """Iterates a loader with ``next()`` returning a batch, or None at the end of the epoch.

    Args:
        loader (iterable): The data loader.
    """

    def __init__(self, loader):
        self.ori_loader = loader
        self.loader = iter(loader)

    def next(self):
        """Returns the next batch, or None when the loader is exhausted."""
        try:
            return next(self.loader)
        except StopIteration:
            return None

    def reset(self):
        """Starts a new pass over the loader."""
        self.loader = iter(self.ori_loader)


def _to_device(batch, device):
    if torch.is_tensor(batch):
        return batch.to(device=device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


class CUDAPrefetcher:
    """Copies the next batch to the GPU on a side stream while the current one is used.

    Requires a loader with ``pin_memory=True`` so the host-to-device copies are asynchronous. Tensors in nested
    dicts/lists are moved; other values (names, paths) are passed through.

    Args:
        loader (iterable): The data loader.
        opt (dict): Options; the device is ``torch.device('cuda')`` unless ``opt['device']`` is given (a device or
            a string such as ``'cuda:1'``).
    """

    def __init__(self, loader, opt):
        self.ori_loader = loader
        self.loader = iter(loader)
        self.opt = opt
        self.device = torch.device(opt.get('device', 'cuda') if opt else 'cuda')
        self.stream = torch.cuda.Stream(device=self.device)
        self.batch = None
        self.preload()

    def preload(self):
        """Fetches the next batch and starts its copy on the side stream."""
        try:
            self.batch = next(self.loader)
        except StopIteration:
            self.batch = None
            return
        with torch.cuda.stream(self.stream):
            self.batch = _to_device(self.batch, self.device)

    def _record(self, batch):
        if torch.is_tensor(batch):
            batch.record_stream(torch.cuda.current_stream(self.device))
        elif isinstance(batch, dict):
            for v in batch.values():
                self._record(v)
        elif isinstance(batch, (list, tuple)):
            for v in batch:
                self._record(v)

    def next(self):
        """Returns the next batch already on the GPU, or None when the loader is exhausted."""
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        batch = self.batch
        if batch is not None:
            self._record(batch)
        self.preload()
        return batch

    def reset(self):
        """Starts a new pass over the loader."""
        self.loader = iter(self.ori_loader)
        self.preload()
