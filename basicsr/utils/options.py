# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/utils/options.py (Apache-2.0)
"""Command line and YAML option files: parsing, validation, ``--force_yml`` overrides and derived paths."""
import argparse
import inspect
import os
import os.path as osp
import random
import shutil
import sys
import time

import torch
import yaml

from basicsr.utils.dist_util import get_dist_info, init_dist
from basicsr.utils.logger import get_root_logger

# Option keys whose values must be numbers; YAML 1.1 reads ``2e-4`` as a string, so they are converted here.
_INT_KEYS = {
    'total_iter', 'warmup_iter', 'val_freq', 'print_freq', 'save_checkpoint_freq', 'manual_seed', 'T_max',
    'batch_size_per_gpu', 'num_worker_per_gpu', 'dataset_enlarge_ratio', 'num_prefetch_queue', 'max_minibatch'
}
_FLOAT_KEYS = {'lr', 'weight_decay', 'eps', 'eta_min', 'gamma', 'ema_decay', 'loss_weight', 'momentum',
               'grad_clip_norm'}
_FLOAT_LIST_KEYS = {'betas', 'restart_weights'}
_INT_LIST_KEYS = {'milestones', 'periods', 'restarts'}


class OptionError(ValueError):
    """An option file or command-line override that cannot be used; the message names the file and key."""


def yaml_load(path):
    """Reads a YAML option file with ``yaml.safe_load``.

    Args:
        path (str): File path.

    Returns:
        dict: The options.

    Raises:
        OptionError: For a missing file, a syntax error (with file, line and column) or a non-mapping document.
    """
    if not osp.isfile(path):
        raise OptionError(f'Option file not found: {path}')
    with open(path, 'r', encoding='utf-8') as f:
        try:
            opt = yaml.safe_load(f)
        except yaml.YAMLError as err:
            mark = getattr(err, 'problem_mark', None)
            where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark is not None else ''
            problem = getattr(err, 'problem', None) or str(err)
            raise OptionError(f'YAML syntax error in {path}{where}: {problem}') from None
    if not isinstance(opt, dict):
        raise OptionError(f'{path} must hold a mapping of options, got {type(opt).__name__}')
    return opt


def _convert(value, kind, where):
    """Converts one option value to int/float, naming the key on failure."""
    try:
        if kind is int:
            number = float(value)
            if number != int(number):
                raise ValueError
            return int(number)
        return float(value)
    except (TypeError, ValueError):
        raise OptionError(f'Option {where} must be {"an integer" if kind is int else "a number"}, '
                          f'got {value!r}') from None


def convert_numbers(opt, prefix=''):
    """Converts the numeric option fields in place (recursively), e.g. ``lr: 2e-4`` read as a string.

    Args:
        opt (dict): Options.
        prefix (str): Key path used in error messages. Default: ''.

    Returns:
        dict: ``opt`` itself.
    """
    for key, value in opt.items():
        where = f'{prefix}{key}'
        if isinstance(value, dict):
            convert_numbers(value, where + ':')
        elif isinstance(value, list) and key in ('losses', ):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    convert_numbers(item, f'{where}[{i}]:')
        elif value is None or isinstance(value, bool):
            continue
        elif key in _INT_KEYS:
            opt[key] = _convert(value, int, where)
        elif key in _FLOAT_KEYS:
            opt[key] = _convert(value, float, where)
        elif key in _FLOAT_LIST_KEYS | _INT_LIST_KEYS:
            if not isinstance(value, (list, tuple)):
                raise OptionError(f'Option {where} must be a list, got {value!r}')
            kind = int if key in _INT_LIST_KEYS else float
            opt[key] = [_convert(v, kind, f'{where}[{i}]') for i, v in enumerate(value)]
    return opt


def _parse_force_value(text):
    """Parses the value part of ``--force_yml`` with ``yaml.safe_load`` (``!!float 1e-4`` included)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise OptionError(f'--force_yml value {text!r} is not valid YAML: {err}') from None


def apply_force_yml(opt, items, create_missing=False):
    """Applies ``key1:key2=value`` overrides in place.

    Args:
        opt (dict): Options.
        items (list[str]): Overrides; the value is parsed with ``yaml.safe_load`` (never ``eval``).
        create_missing (bool): Create unknown intermediate mappings instead of failing. Default: False.

    Raises:
        OptionError: For an override without ``=``, an unknown intermediate key or an unparsable value.
    """
    for item in items or []:
        if '=' not in item:
            raise OptionError(f'--force_yml expects key1:key2=value, got {item!r}')
        keys, value = item.split('=', 1)
        path = keys.split(':')
        if not all(path):
            raise OptionError(f'--force_yml has an empty key in {item!r}')
        node = opt
        for depth, key in enumerate(path[:-1]):
            if key not in node or node[key] is None:
                if not create_missing:
                    known = ', '.join(sorted(map(str, node))) or '(none)'
                    raise OptionError(f'--force_yml {item!r}: no option {":".join(path[:depth + 1])!r} '
                                      f'(known keys at this level: {known})')
                node[key] = {}
            if not isinstance(node[key], dict):
                raise OptionError(f'--force_yml {item!r}: {":".join(path[:depth + 1])!r} is not a mapping')
            node = node[key]
        node[path[-1]] = _parse_force_value(value)


def _expand(path):
    return osp.expanduser(path) if isinstance(path, str) else path


def _require(opt, keys, source):
    for key in keys:
        if key not in opt or opt[key] is None:
            raise OptionError(f'Missing required option {key!r} in {source}')


# Longest file name made from the experiment name: <name>_archived_<YYYYMMDD_HHMMSS>_<n> (n < 1000).
_NAME_OVERHEAD = len('_archived_20260101_000000_999')


def _check_name_length(name, base, source):
    """Refuses, before any folder is made, a run name too long for file names on the file system of ``base``."""
    probe = base
    while not osp.isdir(probe) and osp.dirname(probe) != probe:
        probe = osp.dirname(probe)
    try:
        limit = os.pathconf(probe, 'PC_NAME_MAX')
    except (OSError, ValueError, AttributeError):
        limit = 255
    size = len(os.fsencode(str(name)))
    if size + _NAME_OVERHEAD > limit:
        raise OptionError(f'Option name in {source} is {size} bytes long; file names on this file system hold at '
                          f'most {limit} bytes and the run adds up to {_NAME_OVERHEAD} (log and archive names), so '
                          f'use at most {limit - _NAME_OVERHEAD} bytes')


DEBUG_ITERS = 8


def _apply_debug(opt):
    """Shortens a training run whose name holds ``debug`` (BasicSR's ``--debug``).

    The run stops after at most :data:`DEBUG_ITERS` iterations, logs every iteration, validates and saves a
    checkpoint at its end, and writes no TensorBoard or wandb logs.

    Args:
        opt (dict): Training options; modified in place.
    """
    opt['train']['total_iter'] = min(int(opt['train'].get('total_iter', DEBUG_ITERS)), DEBUG_ITERS)
    opt.setdefault('val', {})
    if opt['val'] is not None:
        opt['val']['val_freq'] = DEBUG_ITERS
    opt['logger'] = opt.get('logger') or {}
    opt['logger'].update(print_freq=1, save_checkpoint_freq=DEBUG_ITERS, use_tb_logger=False)
    opt['logger'].pop('wandb', None)


def finalize_options(opt, root_path, is_train, source='options'):
    """Validates options and fills in the derived fields (phases, paths, debug settings, seeds).

    Args:
        opt (dict): Options read from YAML (after ``--force_yml``); modified in place.
        root_path (str): Repository root; default base of ``experiments/`` and ``results/``.
        is_train (bool): Training (True) or testing (False).
        source (str): Name of the option file, for error messages. Default: 'options'.

    Returns:
        dict: ``opt``.
    """
    _require(opt, ['name', 'model_type', 'datasets'] + (['train'] if is_train else []), source)
    if not isinstance(opt['datasets'], dict) or not opt['datasets']:
        raise OptionError(f'Option "datasets" in {source} must be a non-empty mapping of phase names to datasets')
    convert_numbers(opt)
    opt['is_train'] = is_train

    if opt.get('num_gpu', 'auto') == 'auto':
        opt['num_gpu'] = torch.cuda.device_count()
    if opt.get('manual_seed') is None:
        opt['manual_seed'] = random.randint(1, 10000)

    for key, dataset in opt['datasets'].items():
        if not isinstance(dataset, dict):
            raise OptionError(f'datasets:{key} in {source} must be a mapping')
        _require(dataset, ['type'], f'{source} (datasets:{key})')
        dataset['phase'] = key.split('_')[0]
        dataset.setdefault('name', key)
        if 'scale' in opt:
            dataset['scale'] = opt['scale']
        for data_key in list(dataset):
            if data_key.startswith('dataroot'):
                dataset[data_key] = _expand(dataset[data_key])

    path = opt.setdefault('path', {}) or {}
    opt['path'] = path
    for key in list(path):
        if key.startswith('pretrain_network') or key == 'resume_state':
            path[key] = _expand(path[key])
    base = osp.abspath(_expand(path.get('root') or root_path))
    _check_name_length(opt['name'], base, source)
    if is_train:
        exp_root = _expand(path.get('experiments_root')) or osp.join(base, 'experiments', opt['name'])
        path['experiments_root'] = osp.abspath(exp_root)
        path['models'] = osp.join(path['experiments_root'], 'models')
        path['training_states'] = osp.join(path['experiments_root'], 'training_states')
        path['log'] = path['experiments_root']
        path['visualization'] = osp.join(path['experiments_root'], 'visualization')
        path['tb_logger'] = osp.join(base, 'tb_logger', opt['name'])
        if 'debug' in opt['name']:
            _apply_debug(opt)
    else:
        res_root = _expand(path.get('results_root')) or osp.join(base, 'results', opt['name'])
        path['results_root'] = osp.abspath(res_root)
        path['log'] = path['results_root']
        path['visualization'] = osp.join(path['results_root'], 'visualization')
    return opt


def build_arg_parser(is_train):
    """Returns the command-line parser shared by ``train.py`` and ``test.py``.

    Args:
        is_train (bool): Adds the training-only flags.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    parser = argparse.ArgumentParser(description='Train' if is_train else 'Test')
    parser.add_argument('-opt', type=str, required=True, help='Path to the option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    if is_train:
        parser.add_argument('--auto_resume', action='store_true',
                            help='resume from the latest state in the experiment\'s training_states folder')
    parser.add_argument('--debug', action='store_true',
                        help=f'short run: prefix the name with debug_, stop after {DEBUG_ITERS} iterations with '
                        'validation and a checkpoint, log every iteration, no TensorBoard')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='ignored: LOCAL_RANK from the environment is used')
    parser.add_argument('--force_yml', nargs='+', default=None,
                        help='override options, e.g. train:ema_decay=0.999 (values parsed as YAML)')
    parser.add_argument('--strict-options', '--strict_options', dest='strict_options', action='store_true',
                        help='refuse option keys that nothing reads (typos) instead of warning; same as the option '
                        'strict_options: true')
    return parser


def parse_options(root_path, is_train=True, argv=None):
    """Parses the command line and the option file, and initialises distribution.

    Option keys that nothing reads (typos such as ``ema_decy``) are logged as warnings with the closest known key;
    ``strict_options: true`` or ``--strict-options`` turns them into an error.

    Args:
        root_path (str): Repository root.
        is_train (bool): Training or testing. Default: True.
        argv (list[str] | None): Arguments instead of ``sys.argv[1:]``. Default: None.

    Returns:
        tuple[dict, argparse.Namespace]: Options and parsed arguments.
    """
    args = build_arg_parser(is_train).parse_args(argv)
    opt = yaml_load(args.opt)
    apply_force_yml(opt, args.force_yml)
    if args.debug and not opt.get('name', '').startswith('debug'):
        opt['name'] = 'debug_' + str(opt.get('name'))

    if args.launcher == 'none':
        opt['dist'] = False
    else:
        accepted = set(inspect.signature(init_dist).parameters) - {'launcher'}  # other keys: typos, reported below
        init_dist(args.launcher, **{k: v for k, v in (opt.get('dist_params') or {}).items() if k in accepted})
        opt['dist'] = True
    opt['rank'], opt['world_size'] = get_dist_info()
    from basicsr.utils.option_check import report_unused_options  # it imports OptionError from this module
    report_unused_options(opt, args.opt, args.strict_options or bool(opt.get('strict_options')), get_root_logger())
    finalize_options(opt, root_path, is_train, source=args.opt)
    if opt['dist'] and torch.cuda.is_available():
        opt['num_gpu'] = 1
    opt['auto_resume'] = bool(getattr(args, 'auto_resume', False))
    opt['opt_path'] = args.opt
    return opt, args


def copy_opt_file(opt_file, exp_root):
    """Copies the option file into the experiment folder with a time and command header.

    Args:
        opt_file (str): Option file used.
        exp_root (str): Experiment (or results) folder.
    """
    cmd = ' '.join(sys.argv)
    filename = osp.join(exp_root, osp.basename(opt_file))
    shutil.copy(opt_file, filename)
    with open(filename, 'r+', encoding='utf-8') as f:
        lines = f.readlines()
        lines.insert(0, f'# GENERATE TIME: {time.asctime()}\n# CMD:\n# {cmd}\n\n')
        f.seek(0)
        f.writelines(lines)


def dict2str(opt, indent_level=1):
    """Formats nested options for the log.

    Args:
        opt (dict): Options.
        indent_level (int): Indentation level. Default: 1.

    Returns:
        str: Indented text.
    """
    msg = '\n'
    for k, v in opt.items():
        if isinstance(v, dict):
            msg += ' ' * (indent_level * 2) + k + ':['
            msg += dict2str(v, indent_level + 1)
            msg += ' ' * (indent_level * 2) + ']\n'
        else:
            msg += ' ' * (indent_level * 2) + k + ': ' + str(v) + '\n'
    return msg
