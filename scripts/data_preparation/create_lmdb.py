"""Converts an EFNet h5 split or an image folder into an lmdb database.

Usage::

    python scripts/data_preparation/create_lmdb.py h5 --input datasets/GOPRO/train --output datasets/GOPRO/train.lmdb
    python scripts/data_preparation/create_lmdb.py images --input datasets/x/gt --output datasets/x/gt.lmdb

h5 mode: every array of the groups ``images``, ``sharp_images``, ``voxels``, ``masks`` is stored as ``.npy`` bytes
under ``<relative h5 name without extension>/<group>/<name>%09d``; read it with ``H5ImageDataset`` and
``io_backend: {type: lmdb}``. Image mode: the encoded file bytes under the relative path without extension, with a
BasicSR ``meta_info.txt`` (``<name> (h,w,c) 1``), for ``PairedImageDataset`` with ``io_backend: {type: lmdb}``.

The map size is the summed size of all values plus headroom (never estimated from one sample), keys come from
relative paths (no basename collisions), and the database is written to a temporary folder next to the output
and renamed when complete, so an interrupted run never leaves a half-written database under the final name.
"""
import argparse
import io
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..')))

from basicsr.data.h5_image_dataset import GROUPS, list_h5_files  # noqa: E402

_IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _write_lmdb(output, items, total_bytes, batch=256):
    """Writes ``items`` (iterable of (key, bytes, meta line)) to ``output`` through a temporary folder.

    Args:
        output (str): Final lmdb folder (must not exist).
        items (iterable): ``(key, value_bytes, meta_line)`` tuples.
        total_bytes (int): Summed size of all values, used for the map size.
        batch (int): Puts per transaction. Default: 256.

    Returns:
        int: Number of entries written.
    """
    import lmdb
    output = os.path.abspath(output)
    if os.path.exists(output):
        raise FileExistsError(f'lmdb output already exists: {output} (remove it or choose another --output)')
    tmp = f'{output}.tmp{os.getpid()}'
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    map_size = int(total_bytes * 1.5) + (64 << 20)
    count = 0
    try:
        env = lmdb.open(tmp, map_size=map_size)
        meta_lines = []
        txn = env.begin(write=True)
        for key, value, meta in items:
            if not txn.put(key.encode('ascii'), value, overwrite=False):
                raise KeyError(f'duplicate lmdb key {key!r}')
            meta_lines.append(meta)
            count += 1
            if count % batch == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
        env.close()
        with open(os.path.join(tmp, 'meta_info.txt'), 'w') as f:
            f.write(''.join(line + '\n' for line in meta_lines))
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def create_lmdb_from_h5(input_path, output):
    """Converts an EFNet processed h5 split (folder or txt/csv list) into one lmdb.

    Args:
        input_path (str): Folder of h5 files or a list file (as ``H5ImageDataset``'s ``dataroot``).
        output (str): lmdb folder to create.

    Returns:
        int: Number of arrays stored.
    """
    import h5py
    files = list_h5_files(input_path)
    base = input_path if os.path.isdir(input_path) else os.path.dirname(os.path.abspath(input_path))
    entries, total = [], 0
    for path in files:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(base))
        if rel.startswith('..'):
            rel = os.path.basename(path)
        prefix = os.path.splitext(rel)[0].replace(os.sep, '/')
        with h5py.File(path, 'r') as f:
            if 'images' not in f:
                raise KeyError(f'h5 file {path} has no "images" group')
            for group in GROUPS:
                if group in f:
                    for name in sorted(f[group].keys()):
                        ds = f[group][name]
                        total += ds.size * ds.dtype.itemsize + 128
                        entries.append((path, f'{group}/{name}', f'{prefix}/{group}/{name}'))

    def items():
        handles = {}
        try:
            for path, inner, key in entries:
                if path not in handles:
                    handles.clear()
                    handles[path] = h5py.File(path, 'r')
                arr = handles[path][inner][()]
                yield key, _npy_bytes(arr), f'{key} {",".join(map(str, arr.shape))} {arr.dtype}'
        finally:
            for h in handles.values():
                h.close()

    return _write_lmdb(output, items(), total)


def create_lmdb_from_images(input_folder, output):
    """Stores the encoded images of a folder (recursively) in an lmdb with a BasicSR ``meta_info.txt``.

    Args:
        input_folder (str): Image folder.
        output (str): lmdb folder to create.

    Returns:
        int: Number of images stored.
    """
    import cv2
    if not os.path.isdir(input_folder):
        raise FileNotFoundError(f'image folder not found: {input_folder}')
    names = sorted(
        os.path.relpath(os.path.join(root, n), input_folder) for root, _, files in os.walk(input_folder)
        for n in files if n.lower().endswith(_IMAGE_EXTS) and not n.startswith('.'))
    if not names:
        raise FileNotFoundError(f'no images in {input_folder}')
    total = sum(os.path.getsize(os.path.join(input_folder, n)) for n in names)

    def items():
        for name in names:
            with open(os.path.join(input_folder, name), 'rb') as f:
                content = f.read()
            img = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise ValueError(f'cannot decode image {os.path.join(input_folder, name)}')
            h, w = img.shape[:2]
            c = 1 if img.ndim == 2 else img.shape[2]
            key = os.path.splitext(name)[0].replace(os.sep, '/')
            yield key, content, f'{name.replace(os.sep, "/")} ({h},{w},{c}) 1'

    return _write_lmdb(output, items(), total)


def main(argv=None):
    """Command-line entry point.

    Args:
        argv (list[str] | None): Arguments; None reads ``sys.argv``. Default: None.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('mode', choices=['h5', 'images'], help='input kind')
    parser.add_argument('--input', required=True, help='h5 folder / list file, or image folder')
    parser.add_argument('--output', required=True, help='lmdb folder to create (must not exist)')
    args = parser.parse_args(argv)
    if args.mode == 'h5':
        count = create_lmdb_from_h5(args.input, args.output)
    else:
        count = create_lmdb_from_images(args.input, args.output)
    print(f'wrote {count} entries to {args.output}')


if __name__ == '__main__':
    main()
