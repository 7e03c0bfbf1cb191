"""Tests of FileClient: disk, lmdb and h5 backends, lazy handles and pickling."""
import multiprocessing as mp
import pickle

import h5py
import lmdb
import numpy as np
import pytest

from basicsr.utils.file_client import FileClient


def _make_lmdb(path, items):
    env = lmdb.open(str(path), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for k, v in items.items():
            txn.put(k.encode('ascii'), v)
    env.close()


def _read_in_child(args):
    client, key, client_key = args
    return client.get(key, client_key)


def test_disk_backend(tmp_path):
    (tmp_path / 'a.bin').write_bytes(b'abc')
    client = FileClient('disk')
    assert client.get(tmp_path / 'a.bin') == b'abc'
    with pytest.raises(FileNotFoundError, match='nope.bin'):
        client.get(str(tmp_path / 'nope.bin'))
    with pytest.raises(ValueError, match='unknown file-client backend'):
        FileClient('s3')


def test_lmdb_lazy_open_pickle_and_missing_key(tmp_path):
    _make_lmdb(tmp_path / 'gt.lmdb', {'seq/0001': b'one', '0002': b'two'})
    client = FileClient('lmdb', db_paths=[tmp_path / 'gt.lmdb'], client_keys=['gt'])
    assert not client.client.is_open
    clone = pickle.loads(pickle.dumps(client))
    assert clone.get('seq/0001', 'gt') == b'one'
    assert clone.client.is_open
    clone2 = pickle.loads(pickle.dumps(clone))  # picklable after opening; handles are not carried over
    assert not clone2.client.is_open
    assert clone2.get('0002', 'gt') == b'two'
    with pytest.raises(KeyError, match="'0003'.*gt.lmdb"):
        clone.get('0003', 'gt')
    with pytest.raises(KeyError, match='client_key'):
        clone.get('0002', 'lq')
    missing = FileClient('lmdb', db_paths=str(tmp_path / 'none.lmdb'))
    with pytest.raises(FileNotFoundError, match='none.lmdb'):
        missing.get('x')


def test_h5_lazy_open_pickle_and_missing_key(tmp_path):
    path = tmp_path / 'seq.h5'
    with h5py.File(path, 'w') as f:
        f.create_dataset('images/image000000000', data=np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    client = FileClient('h5')
    assert not client.client.is_open
    clone = pickle.loads(pickle.dumps(client))
    np.testing.assert_array_equal(clone.get('images/image000000000', str(path)), np.arange(6).reshape(1, 2, 3))
    assert clone.client.is_open
    assert not pickle.loads(pickle.dumps(clone)).client.is_open
    with pytest.raises(KeyError, match=r"image000000001.*seq\.h5"):
        clone.get('images/image000000001', str(path))
    with pytest.raises(FileNotFoundError, match='other.h5'):
        clone.get('images/image000000000', str(tmp_path / 'other.h5'))
    clone.close()
    assert not clone.client.is_open


def test_clients_work_in_spawned_processes(tmp_path):
    _make_lmdb(tmp_path / 'db.lmdb', {'k': b'value'})
    path = tmp_path / 's.h5'
    with h5py.File(path, 'w') as f:
        f['a'] = np.array([1., 2.])
    lmdb_client = FileClient('lmdb', db_paths=str(tmp_path / 'db.lmdb'))
    h5_client = FileClient('h5')
    lmdb_client.get('k')  # opened in the parent: the child must open its own handle
    h5_client.get('a', str(path))
    with mp.get_context('spawn').Pool(1) as pool:
        got = pool.map(_read_in_child, [(lmdb_client, 'k', None), (h5_client, 'a', str(path))])
    assert got[0] == b'value'
    np.testing.assert_array_equal(got[1], [1., 2.])
