# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/utils/file_client.py (Apache-2.0)
"""Uniform byte/array access to files on disk, in lmdb databases and in h5 files.

Handles (lmdb environments, h5 files) are opened lazily on the first ``get`` inside the process that uses them
(typically a DataLoader worker) and are never pickled, so a client built in the main process can be shipped to
workers under any multiprocessing start method. A handle inherited through ``fork`` is not reused: the client
notices the new process id and opens its own.
"""
import os

__all__ = ['FileClient', 'DiskBackend', 'LmdbBackend', 'H5Backend']


class _LazyHandles:
    """Per-process cache of open handles, dropped when pickled or when the process id changes."""

    def __init__(self):
        self._handles = {}
        self._pid = os.getpid()

    def _cache(self):
        if self._pid != os.getpid():
            self._handles = {}
            self._pid = os.getpid()
        return self._handles

    @property
    def is_open(self):
        """bool: Whether any handle is open in this process."""
        return bool(self._cache())

    def close(self):
        """Closes the handles opened by this process."""
        for handle in self._cache().values():
            handle.close()
        self._handles = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state['_handles'] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._pid = os.getpid()


class DiskBackend:
    """Reads whole files from the local file system.

    Args:
        **kwargs: Ignored (accepted so option dicts written for other backends do not fail).
    """

    def __init__(self, **kwargs):
        pass

    def get(self, filepath, client_key=None):
        """Returns the bytes of a file.

        Args:
            filepath (str | os.PathLike): File to read.
            client_key (str | None): Ignored. Default: None.

        Returns:
            bytes: File content.

        Raises:
            FileNotFoundError: Naming the file.
        """
        filepath = os.fspath(filepath)
        if not os.path.isfile(filepath):
            raise FileNotFoundError(f'file not found: {filepath}')
        with open(filepath, 'rb') as f:
            return f.read()

    def close(self):
        """Nothing to close."""


_SHARED_LMDB = {'pid': None, 'envs': {}}


def _shared_lmdb_env(path, open_kwargs):
    """lmdb refuses to open one environment twice in a process: clients of this process share it."""
    import lmdb
    if _SHARED_LMDB['pid'] != os.getpid():
        _SHARED_LMDB['pid'] = os.getpid()
        _SHARED_LMDB['envs'] = {}
    key = os.path.realpath(path)
    if key not in _SHARED_LMDB['envs']:
        _SHARED_LMDB['envs'][key] = lmdb.open(path, **open_kwargs)
    return _SHARED_LMDB['envs'][key]


class _EnvRef:
    """A client's reference to a shared lmdb environment; closing it only drops the reference."""

    def __init__(self, env):
        self.env = env

    def close(self):
        self.env = None


class LmdbBackend(_LazyHandles):
    """Reads values from one or several lmdb databases; keys are relative paths without extension.

    Args:
        db_paths (str | list[str]): lmdb folder(s).
        client_keys (str | list[str]): Name of each database, used as ``client_key`` in :meth:`get`.
            Default: ``'default'``.
        readonly (bool): Open read-only. Default: True.
        lock (bool): Use lmdb locking. Default: False.
        readahead (bool): OS read-ahead. Default: False.
        **kwargs: Further ``lmdb.open`` arguments.
    """

    def __init__(self, db_paths, client_keys='default', readonly=True, lock=False, readahead=False, **kwargs):
        super().__init__()
        if isinstance(db_paths, (str, os.PathLike)):
            db_paths = [db_paths]
        if isinstance(client_keys, str):
            client_keys = [client_keys]
        db_paths = [os.fspath(p) for p in db_paths]
        if len(db_paths) != len(client_keys):
            raise ValueError(f'lmdb backend: {len(db_paths)} db_paths but {len(client_keys)} client_keys '
                             f'({db_paths} vs {client_keys})')
        self.db_paths = dict(zip(client_keys, db_paths))
        self._open_kwargs = dict(readonly=readonly, lock=lock, readahead=readahead, **kwargs)

    def _env(self, client_key):
        if client_key not in self.db_paths:
            raise KeyError(f'lmdb backend has no client_key {client_key!r}; known: {sorted(self.db_paths)}')
        cache = self._cache()
        if client_key not in cache:
            path = self.db_paths[client_key]
            if not os.path.isdir(path):
                raise FileNotFoundError(f'lmdb database folder not found: {path}')
            cache[client_key] = _EnvRef(_shared_lmdb_env(path, self._open_kwargs))
        return cache[client_key].env

    def get(self, key, client_key='default'):
        """Returns the value stored under ``key``.

        Args:
            key (str): Key (relative path without extension).
            client_key (str | None): Which database (None means ``'default'``). Default: ``'default'``.

        Returns:
            bytes: Stored value.

        Raises:
            KeyError: Naming the key and the database folder.
        """
        if client_key is None:
            client_key = 'default'
        with self._env(client_key).begin(write=False) as txn:
            value = txn.get(str(key).encode('ascii'))
        if value is None:
            raise KeyError(f'key {key!r} not found in lmdb database {self.db_paths[client_key]}')
        return bytes(value)


class H5Backend(_LazyHandles):
    """Reads datasets (arrays) from h5 files; ``client_key`` is the h5 file path.

    Args:
        swmr (bool): Open files in single-writer-multiple-reader mode. Default: False.
        **kwargs: Ignored.
    """

    def __init__(self, swmr=False, **kwargs):
        super().__init__()
        self.swmr = swmr

    def handle(self, h5_path):
        """Returns the open ``h5py.File`` of this process for ``h5_path`` (opened on first use).

        Args:
            h5_path (str | os.PathLike): h5 file.

        Returns:
            h5py.File: Read-only handle.

        Raises:
            FileNotFoundError: Naming the file.
        """
        import h5py
        h5_path = os.fspath(h5_path)
        cache = self._cache()
        if h5_path not in cache:
            if not os.path.isfile(h5_path):
                raise FileNotFoundError(f'h5 file not found: {h5_path}')
            cache[h5_path] = h5py.File(h5_path, 'r', swmr=self.swmr)
        return cache[h5_path]

    def get(self, key, client_key=None):
        """Returns the array stored at ``key`` in the h5 file ``client_key``.

        Args:
            key (str): Dataset path inside the file, e.g. ``'images/image000000000'``.
            client_key (str | os.PathLike): The h5 file.

        Returns:
            np.ndarray: The dataset content.

        Raises:
            KeyError: Naming the key and the file.
        """
        if client_key is None:
            raise ValueError(f'h5 backend: get({key!r}) needs client_key=<h5 file path>')
        f = self.handle(client_key)
        if key not in f:
            raise KeyError(f'key {key!r} not found in h5 file {os.fspath(client_key)}')
        return f[key][()]


_BACKENDS = {'disk': DiskBackend, 'lmdb': LmdbBackend, 'h5': H5Backend, 'hdf5': H5Backend}


class FileClient:
    """Chooses a storage backend by name and forwards ``get`` to it.

    Args:
        backend (str): ``'disk'``, ``'lmdb'`` or ``'h5'``. Default: ``'disk'``.
        **kwargs: Backend arguments (``db_paths``, ``client_keys`` for lmdb).

    Example::

        client = FileClient('lmdb', db_paths=['gt.lmdb'], client_keys=['gt'])
        img_bytes = client.get('0001', 'gt')
    """

    def __init__(self, backend='disk', **kwargs):
        if backend not in _BACKENDS:
            raise ValueError(f'unknown file-client backend {backend!r}; supported: {sorted(_BACKENDS)}')
        self.backend = backend
        self.client = _BACKENDS[backend](**kwargs)

    def get(self, filepath, client_key=None):
        """Reads one entry.

        Args:
            filepath (str): File path (disk), key (lmdb) or dataset path inside the file (h5).
            client_key (str | None): Database name (lmdb; None means ``'default'``), h5 file path (h5), ignored on
                disk. Default: None.

        Returns:
            bytes | np.ndarray: Bytes (disk, lmdb) or an array (h5).
        """
        return self.client.get(filepath, client_key)

    def close(self):
        """Closes the handles this process opened."""
        self.client.close()
