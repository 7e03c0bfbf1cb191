"""Names of samples for per-image results (metrics CSV keys, result PNGs): unique, and short where possible."""
import os
from collections import Counter

__all__ = ['unique_names']


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def unique_names(rel_paths, short=_stem):
    """Names samples by their short name (the file stem) where it is unique, else by their relative path.

    Files in nested folders may share a stem (``a/0001.png``, ``b/0001.png``): those get their relative path
    without extension (``a/0001``), or with it when that repeats too (``x.png``, ``x.jpg``). A flat folder keeps
    its stems, so names only change where they would have collapsed.

    Args:
        rel_paths (list[str]): Paths relative to the dataset root (or lmdb keys), one per sample.
        short (callable): Short name of a path. Default: the file stem.

    Returns:
        list[str]: One distinct name per path (``/``-separated), in the given order.
    """
    rel_paths = [os.fspath(p).replace(os.sep, '/') for p in rel_paths]
    shorts = [short(p) for p in rel_paths]
    no_ext = [os.path.splitext(p)[0] for p in rel_paths]
    short_count, no_ext_count = Counter(shorts), Counter(no_ext)
    return [s if short_count[s] == 1 else (n if no_ext_count[n] == 1 else p)
            for p, s, n in zip(rel_paths, shorts, no_ext)]
