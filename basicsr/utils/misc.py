# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/utils/misc.py (Apache-2.0)
"""Small helpers: seeding, time stamps, experiment folders, directory scans, atomic saving."""
import errno
import os
import random
import re
import time
from pathlib import Path

import numpy as np
import torch

from basicsr.utils.dist_util import master_only


def set_random_seed(seed):
    """Seeds Python, NumPy and torch (all devices).

    Args:
        seed (int): The seed.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_time_str():
    """Returns the local time as ``YYYYMMDD_HHMMSS``."""
    return time.strftime('%Y%m%d_%H%M%S', time.localtime())


def mkdir_and_rename(path):
    """Creates ``path``; an existing folder is first renamed to ``<path>_archived_<time>``.

    Two archives made in the same second get distinct names (``..._<time>_1``, ``_2``, ...): an earlier archive is
    never replaced.

    Args:
        path (str): Folder to create.
    """
    if os.path.exists(path):
        stem = f'{path}_archived_{get_time_str()}'
        for n in range(1000):
            new_name = stem if n == 0 else f'{stem}_{n}'
            if os.path.lexists(new_name):
                continue
            try:
                os.rename(path, new_name)
            except FileNotFoundError:
                break  # another process archived it first
            except OSError as err:
                if err.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue  # the name was taken between the check and the rename
                raise
            print(f'Path already exists. Rename it to {new_name}', flush=True)
            break
    os.makedirs(path, exist_ok=True)


@master_only
def make_exp_dirs(opt):
    """Creates the experiment (training) or results (testing) folders of a run (rank 0 only).

    A fresh training run archives an existing experiment folder; a resumed one keeps it.

    Args:
        opt (dict): Parsed options (``path`` section filled by :func:`basicsr.utils.options.parse_options`).
    """
    path_opt = opt['path']
    if opt['is_train']:
        root = path_opt['experiments_root']
        if path_opt.get('resume_state') is None:
            mkdir_and_rename(root)
        else:
            os.makedirs(root, exist_ok=True)
    else:
        mkdir_and_rename(path_opt['results_root'])
    for key, path in path_opt.items():
        if key in ('models', 'training_states', 'log', 'visualization') and path is not None:
            os.makedirs(path, exist_ok=True)


def scandir(dir_path, suffix=None, recursive=False, full_path=False):
    """Lists the files of a folder, sorted.

    Args:
        dir_path (str | Path): Folder to scan.
        suffix (str | tuple[str] | None): Keep only names ending with it. Default: None.
        recursive (bool): Descend into sub-folders. Default: False.
        full_path (bool): Return full paths instead of paths relative to ``dir_path``. Default: False.

    Returns:
        list[str]: Sorted file paths.
    """
    if suffix is not None and not isinstance(suffix, (str, tuple)):
        raise TypeError('"suffix" must be a string or tuple of strings')
    root = Path(dir_path)
    if not root.is_dir():
        raise FileNotFoundError(f'Folder not found: {dir_path}')
    files = root.rglob('*') if recursive else root.iterdir()
    out = []
    for entry in files:
        if not entry.is_file() or entry.name.startswith('.'):
            continue
        if suffix is not None and not entry.name.endswith(suffix):
            continue
        out.append(str(entry) if full_path else str(entry.relative_to(root)))
    return sorted(out)


class SaveError(OSError):
    """A checkpoint that could not be written (full disk, lost permissions); earlier files are untouched."""


_LEFTOVER = re.compile(r'\.(pth|state)\.tmp\d+$')


def atomic_torch_save(obj, path):
    """Saves with ``torch.save`` to a temporary name (``<path>.tmp<pid>``) in the same folder, then renames.

    A crash or kill during the write leaves any previous file at ``path`` untouched; a kill -9 may leave the
    temporary file, which :func:`remove_save_leftovers` removes at the next start of the experiment.

    Args:
        obj: Object to save (tensors and plain containers only, so it loads with ``weights_only=True``).
        path (str): Destination.

    Raises:
        SaveError: The file could not be written (e.g. no space left); the message names it and the reason.
    """
    path = str(path)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        torch.save(obj, tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch reports write failures of its zip writer as RuntimeError
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).strip().splitlines()[0]
        raise SaveError(getattr(err, 'errno', None) or errno.EIO, f'Could not write {path}: {reason}') from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_save_leftovers(folder):
    """Removes the ``*.pth.tmp<pid>`` / ``*.state.tmp<pid>`` files of saves killed midway, anywhere in a folder.

    Args:
        folder (str): An experiment folder (searched recursively); a missing folder is fine.

    Returns:
        list[str]: The removed files.
    """
    removed = []
    if not folder or not os.path.isdir(folder):
        return removed
    for root, _, files in os.walk(folder):
        for name in files:
            if _LEFTOVER.search(name):
                path = os.path.join(root, name)
                try:
                    os.remove(path)
                except FileNotFoundError:
                    continue
                removed.append(path)
    return sorted(removed)


def describe_saved(path_opt):
    """One sentence on what a stopped run leaves behind: its latest checkpoint and state, or that there is none.

    Args:
        path_opt (dict): The ``path`` options (``models``, ``training_states``).

    Returns:
        str: e.g. ``'The last saved checkpoint (.../net_g_8.pth and .../8.state) is intact; resume with
        --auto_resume.'``
    """
    models = path_opt.get('models')
    weights = latest_checkpoint(models, 'net_g')
    state = latest_state(path_opt.get('training_states'))
    if weights is None and state is None:
        return f'No checkpoint was saved before this iteration ({models} holds none).'
    saved = ' and '.join(p for p in (weights, state) if p)
    resume = '; resume with --auto_resume.' if state else '.'
    return f'The last saved checkpoint ({saved}) is intact{resume}'


def latest_state(training_states_dir):
    """Returns the ``<iter>.state`` file with the highest iteration in a folder.

    Args:
        training_states_dir (str): The experiment's ``training_states`` folder.

    Returns:
        str | None: Path of the latest state, or None if there is none.
    """
    if not training_states_dir or not os.path.isdir(training_states_dir):
        return None
    iters = [int(name[:-len('.state')]) for name in os.listdir(training_states_dir)
             if name.endswith('.state') and name[:-len('.state')].isdigit()]
    if not iters:
        return None
    return os.path.join(training_states_dir, f'{max(iters)}.state')


def latest_checkpoint(models_dir, net_label='net_g'):
    """Returns the ``<net_label>_<iter>.pth`` file with the highest iteration in a folder.

    Args:
        models_dir (str | None): The experiment's ``models`` folder.
        net_label (str): Network label, e.g. ``'net_g'``. Default: ``'net_g'``.

    Returns:
        str | None: Path of the latest checkpoint, or None if there is none.
    """
    if not models_dir or not os.path.isdir(models_dir):
        return None
    head, tail = f'{net_label}_', '.pth'
    iters = [int(name[len(head):-len(tail)]) for name in os.listdir(models_dir)
             if name.startswith(head) and name.endswith(tail) and name[len(head):-len(tail)].isdigit()]
    if not iters:
        return None
    return os.path.join(models_dir, f'{head}{max(iters)}{tail}')


def check_resume(opt, resume_iter):
    """Points the pretrained-network paths to the checkpoint of the resumed iteration.

    Args:
        opt (dict): Parsed options; modified in place (this is the one place options change after parsing).
        resume_iter (int): Iteration of the resumed state.
    """
    if not opt['path'].get('resume_state'):
        return
    ignore = opt['path'].get('ignore_resume_networks') or []
    for net in [key for key in opt if key.startswith('network_')]:
        name = net.replace('network_', '')
        if name in ignore:
            continue
        opt['path'][f'pretrain_{net}'] = os.path.join(opt['path']['models'], f'net_{name}_{resume_iter}.pth')
        for key in (f'param_key_{name}', 'param_key'):
            if opt['path'].get(key) == 'params_ema':
                opt['path'][key] = 'params'


def sizeof_fmt(size, suffix='B'):
    """Formats a byte count for humans.

    Args:
        size (float): Number of bytes.
        suffix (str): Unit suffix. Default: 'B'.

    Returns:
        str: e.g. ``'1.5 MB'``.
    """
    for unit in ['', 'K', 'M', 'G', 'T', 'P']:
        if abs(size) < 1024.0:
            return f'{size:3.1f} {unit}{suffix}'
        size /= 1024.0
    return f'{size:3.1f} E{suffix}'
