"""Tests of EnlargedSampler, build_dataset/build_dataloader, worker seeding and the prefetchers."""
import copy
import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher, PrefetchDataLoader


class _Range(Dataset):

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {'idx': i, 'x': torch.full((2, ), float(i))}


class _RandomDraws(Dataset):
    """Returns draws of the three RNGs a worker must seed."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return {'np': np.random.random(), 'py': random.random(), 'torch': torch.rand(1).item()}


@pytest.mark.parametrize('n,ratio,world', [(10, 1, 1), (10, 3, 2), (7, 2, 3), (5, 1, 4), (2, 1, 5)])
def test_sampler_covers_enlarged_dataset(n, ratio, world):
    ds = _Range(n)
    shares = [list(EnlargedSampler(ds, world, r, ratio, seed=5)) for r in range(world)]
    lengths = {len(s) for s in shares}
    assert len(lengths) == 1 and lengths.pop() == len(EnlargedSampler(ds, world, 0, ratio))
    total = sum(shares, [])
    assert len(total) % world == 0 and len(total) >= n * ratio
    counts = np.bincount(total, minlength=n)
    assert counts.min() >= ratio and counts.sum() == len(total)
    assert all(0 <= i < n for i in total)


def test_sampler_deterministic_per_epoch_and_seed():
    ds = _Range(50)
    s = EnlargedSampler(ds, 2, 1, 2, seed=3)
    s.set_epoch(4)
    a = list(s)
    s2 = EnlargedSampler(ds, 2, 1, 2, seed=3)
    s2.set_epoch(4)
    assert a == list(s2)
    s2.set_epoch(5)
    assert a != list(s2)
    s3 = EnlargedSampler(ds, 2, 1, 2, seed=4)
    s3.set_epoch(3)  # seed + epoch is the same generator seed
    assert a == list(s3)
    s4 = EnlargedSampler(ds, 2, 1, 2, seed=100)
    s4.set_epoch(4)
    assert a != list(s4)


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match='rank'):
        EnlargedSampler(_Range(3), 2, 2)
    with pytest.raises(ValueError, match='dataset_enlarge_ratio'):
        EnlargedSampler(_Range(3), 1, 0, ratio=0)


def _train_opt(**kw):
    opt = {'name': 't', 'phase': 'train', 'batch_size_per_gpu': 3, 'num_worker_per_gpu': 0}
    opt.update(kw)
    return opt


def test_train_loader_batches_and_multiplier_and_no_mutation():
    ds = _Range(10)
    opt = _train_opt(num_worker_per_gpu=1)
    snapshot = copy.deepcopy(opt)
    loader = build_dataloader(ds, opt, num_gpu=2, dist=False, sampler=None, seed=0)
    assert loader.batch_size == 6 and loader.num_workers == 2 and loader.drop_last
    assert opt == snapshot
    loader = build_dataloader(ds, opt, num_gpu=2, dist=True, sampler=EnlargedSampler(ds, 2, 0), seed=0)
    assert loader.batch_size == 3 and loader.num_workers == 1
    loader = build_dataloader(ds, _train_opt(), num_gpu=0)
    batches = list(loader)
    assert len(batches) == 3 and all(b['x'].shape == (3, 2) for b in batches)
    assert len(set(sum((b['idx'].tolist() for b in batches), []))) == 9
    sampler = EnlargedSampler(ds, 1, 0, seed=1)
    loader = build_dataloader(ds, _train_opt(), num_gpu=1, sampler=sampler)
    assert sum((b['idx'].tolist() for b in loader), []) == list(sampler)[:9]


def test_val_loader_batch_one_no_shuffle_and_workers_configurable():
    ds = _Range(5)
    loader = build_dataloader(ds, {'name': 'v', 'phase': 'val', 'batch_size_per_gpu': 8}, num_gpu=1)
    assert loader.batch_size == 1 and loader.num_workers == 0
    assert [b['idx'].item() for b in loader] == list(range(5))
    loader = build_dataloader(ds, {'name': 'v', 'phase': 'test', 'num_worker_per_gpu': 2}, num_gpu=1)
    assert loader.num_workers == 2


def test_loader_errors():
    with pytest.raises(KeyError, match='phase'):
        build_dataloader(_Range(2), {'name': 'x'})
    with pytest.raises(ValueError, match='pin_memory'):
        build_dataloader(_Range(2), {'name': 'x', 'phase': 'val', 'prefetch_mode': 'cuda'})
    with pytest.raises(ValueError, match='batch_size_per_gpu'):
        build_dataloader(_Range(2), {'name': 'x', 'phase': 'train', 'batch_size_per_gpu': 'two'})


def test_worker_seeding_is_reproducible_and_distinct_per_worker():
    opt = _train_opt(batch_size_per_gpu=1, num_worker_per_gpu=2, use_shuffle=False)

    def draws(seed):
        loader = build_dataloader(_RandomDraws(), opt, num_gpu=1, seed=seed)
        return [(b['np'].item(), b['py'].item(), b['torch'].item()) for b in loader]

    a, b, c = draws(10), draws(10), draws(11)
    assert a == b
    assert a != c
    # items 0 and 1 are the first draws of workers 0 and 1: different seeds give different values
    assert a[0][0] != a[1][0] and a[0][1] != a[1][1] and a[0][2] != a[1][2]
    # worker 1 of seed 10 has seed 11 = worker 0 of seed 11 (seed num_workers*rank + worker_id + seed)
    assert a[1] == c[0]
    rng = np.random.RandomState(10)
    assert a[0][0] == pytest.approx(rng.random_sample())
    assert a[0][1] == pytest.approx(random.Random(10).random())


def test_persistent_workers_option():
    loader = build_dataloader(_Range(4), _train_opt(num_worker_per_gpu=1, persistent_workers=True), num_gpu=1)
    assert loader.persistent_workers


def test_cpu_prefetch_loader_and_prefetcher():
    ds = _Range(7)
    loader = build_dataloader(ds, _train_opt(batch_size_per_gpu=2, use_shuffle=False, prefetch_mode='cpu',
                                             num_prefetch_queue=2), num_gpu=1)
    assert isinstance(loader, PrefetchDataLoader)
    prefetcher = CPUPrefetcher(loader)
    got = []
    batch = prefetcher.next()
    while batch is not None:
        got.append(batch['idx'].tolist())
        batch = prefetcher.next()
    assert got == [[0, 1], [2, 3], [4, 5]]
    prefetcher.reset()
    assert prefetcher.next()['idx'].tolist() == [0, 1]


def test_prefetch_loader_reraises_worker_errors():

    class _Bad(_Range):

        def __getitem__(self, i):
            if i == 2:
                raise RuntimeError('broken item 2')
            return super().__getitem__(i)

    loader = PrefetchDataLoader(num_prefetch_queue=1, dataset=_Bad(4), batch_size=1)
    with pytest.raises(RuntimeError, match='broken item 2'):
        list(loader)


def test_build_dataset_unknown_type_and_copy(tmp_path):
    with pytest.raises(KeyError, match='NoSuchDataset'):
        build_dataset({'type': 'NoSuchDataset', 'name': 'x'})
    with pytest.raises(KeyError, match='type'):
        build_dataset({'name': 'x'})


def test_to_device_moves_nested_tensors_and_keeps_other_values():
    from basicsr.data.prefetch_dataloader import _to_device
    batch = {'a': torch.ones(2), 'b': [torch.zeros(1), 'name'], 'c': ('x', torch.ones(1)), 'd': 3}
    out = _to_device(batch, torch.device('cpu'))
    assert out['b'][1] == 'name' and out['d'] == 3 and isinstance(out['c'], tuple)
    assert torch.equal(out['a'], batch['a'])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='CUDA prefetcher needs a GPU')
def test_cuda_prefetcher_on_gpu():
    from basicsr.data.prefetch_dataloader import CUDAPrefetcher
    loader = build_dataloader(_Range(4), _train_opt(batch_size_per_gpu=2, use_shuffle=False, pin_memory=True),
                              num_gpu=1)
    prefetcher = CUDAPrefetcher(loader, {})
    first = prefetcher.next()
    assert first['x'].is_cuda and first['idx'].tolist() == [0, 1]
    assert prefetcher.next()['idx'].tolist() == [2, 3] and prefetcher.next() is None
    prefetcher.reset()
    assert prefetcher.next()['idx'].tolist() == [0, 1]
