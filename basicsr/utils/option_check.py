"""Options checked against what reads them: unknown keys (typos) at start-up, and constructor arguments of registered
classes (names and types)."""
import difflib
import importlib
import inspect
import re

from basicsr.utils.options import OptionError

__all__ = ['accepted_arguments', 'check_arguments', 'closest', 'unused_options', 'report_unused_options']


def closest(key, known):
    """Returns ``' (did you mean X?)'`` for the known name closest to ``key``, or ``''``.

    Args:
        key (str): The unknown name.
        known (Iterable[str]): The names that exist.

    Returns:
        str: The hint, with a leading space, or an empty string.
    """
    match = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
    return f' (did you mean {match[0]}?)' if match else ''


def accepted_arguments(obj):
    """Returns the keyword arguments a class (its constructor) or function accepts.

    Args:
        obj (type | callable): The class or function.

    Returns:
        tuple[dict, bool]: ``{name: default or inspect.Parameter.empty}`` and whether it takes ``**kwargs``.
    """
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return {}, True
    named = {p.name: p.default for p in params
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != 'self'}
    return named, any(p.kind == p.VAR_KEYWORD for p in params)


def _type_error(value, default):
    """The expected kind of ``value`` judged from the default, or None when it fits."""
    if default is None or default is inspect.Parameter.empty:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else 'true or false'
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else 'an integer'
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else 'a number'
    if isinstance(default, str):
        return None if isinstance(value, str) else 'a string'
    if isinstance(default, (list, tuple)):
        return None if isinstance(value, (list, tuple)) else 'a list'
    return None


def check_arguments(obj, kwargs, where):
    """Checks option values against a constructor: unknown names and values of another type than the default.

    Args:
        obj (type | callable): The registered class or function the options are for.
        kwargs (dict): The options given to it (without ``type``).
        where (str): Option path for messages, e.g. ``'network_g'``.

    Raises:
        OptionError: Naming the option, the closest accepted name or the expected type, and every accepted
            argument.
    """
    named, open_ended = accepted_arguments(obj)
    name = getattr(obj, '__name__', str(obj))
    accepted = ', '.join(named) or '(none)'
    for key, value in kwargs.items():
        if key not in named:
            if open_ended:
                continue
            raise OptionError(f'{where}:{key}: {name} has no argument {key!r}{closest(key, named)}; it accepts: '
                              f'{accepted}')
        expected = _type_error(value, named[key])
        if expected:
            raise OptionError(f'{where}:{key} must be {expected} (default {named[key]!r}), got {value!r} '
                              f'({type(value).__name__}); {name} accepts: {accepted}')


# Keys of the framework (framework.md §3 and the project's own options), per section. A key listed here is read by
# the framework, or kept for compatibility with option files written for BasicSR / EFNet and harmlessly ignored.
_TOP = {'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'dataset_name', 'find_unused_parameters',
        'print_flops', 'flops_input_shape', 'datasets', 'path', 'train', 'val', 'logger', 'dist_params',
        'network_io', 'strict_options', 'is_train', 'dist', 'rank', 'world_size', 'auto_resume', 'opt_path'}
_SECTIONS = {
    'path': {'pretrain_network_g', 'param_key_g', 'param_key', 'strict_load_g', 'resume_state', 'experiments_root',
             'results_root', 'root', 'ignore_resume_networks', 'models', 'training_states', 'log',
             'visualization', 'tb_logger'},
    'train': {'optim_g', 'scheduler', 'total_iter', 'warmup_iter', 'ema_decay', 'pixel_opt', 'perceptual_opt',
              'losses', 'use_grad_clip', 'grad_clip_norm', 'require_pretrained', 'amp'},
    'train:amp': {'enabled', 'dtype'},
    'val': {'val_freq', 'save_img', 'suffix', 'pbar', 'metrics', 'grids', 'crop_size', 'max_minibatch', 'trans_num',
            'random_crop_num', 'rgb2bgr', 'use_image', 'size_multiple', 'save_panels',
            'tb_images', 'precision'},
    'logger': {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb'},
    'logger:wandb': {'project', 'resume_id', 'entity'},
    'dist_params': {'backend', 'port', 'timeout'},
    'network_io': {'inputs', 'outputs', 'result', 'gt', 'events'},
}
_PATH_PREFIXES = ('pretrain_network_', 'param_key_', 'strict_load_')
# Keys every dataset accepts: the data loader's, the phase bookkeeping and EFNet's (framework.md §3).
_DATASET_COMMON = {'name', 'type', 'phase', 'scale', 'num_worker_per_gpu', 'batch_size_per_gpu',
                   'dataset_enlarge_ratio', 'prefetch_mode', 'num_prefetch_queue', 'pin_memory', 'persistent_workers',
                   'use_shuffle', 'io_backend', 'dataroot', 'dataroot_gt', 'dataroot_lq', 'dataroot_voxel',
                   'meta_info_file', 'filename_tmpl', 'gt_size', 'crop_size', 'use_flip', 'use_hflip', 'use_rot',
                   'norm_voxel', 'return_voxel', 'return_mask', 'return_gt_frame', 'use_mask', 'voxel_bins', 'mean',
                   'std'}
_LOSS_MODEL_KEYS = {'type', 'pred', 'target', 'no_target', 'name'}
_OPT_READ = re.compile(r"""\w*opt\w*(?:\.get\(|\[)\s*['"](\w+)['"]|_\w*opt\(\s*\w+\s*,\s*['"](\w+)['"]""")


def _dataset_keys(cls):
    """Keys a dataset class reads: the common ones plus every ``opt['key']`` / ``opt.get('key')`` in the source of
    the modules defining it and its bases."""
    keys = set(_DATASET_COMMON)
    for klass in inspect.getmro(cls):
        module = inspect.getmodule(klass)
        if module is None or not getattr(module, '__name__', '').startswith(cls.__module__.split('.')[0]):
            continue
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            continue
        keys.update(a or b for a, b in _OPT_READ.findall(source))
    return keys


def _constructor_keys(obj, skip=()):
    """Named arguments of a constructor or function without ``skip``, and whether it takes ``**kwargs``."""
    named, open_ended = accepted_arguments(obj)
    return {k for k in named if k not in skip}, open_ended


# where the classes of each kind of option are registered: (module, name of the registry or table)
_REGISTRIES = {
    'arch': ('basicsr.utils.registry', 'ARCH_REGISTRY'),
    'dataset': ('basicsr.utils.registry', 'DATASET_REGISTRY'),
    'loss': ('basicsr.utils.registry', 'LOSS_REGISTRY'),
    'metric': ('basicsr.utils.registry', 'METRIC_REGISTRY'),
    'optimizer': ('basicsr.models.base_model', 'OPTIMIZERS'),
    'scheduler': ('basicsr.models.lr_scheduler', 'SCHEDULERS'),
}


def _lookup(kind, name):
    """The class or function registered as ``name`` for ``kind``, or None (an unknown type fails at build time)."""
    if kind not in _REGISTRIES:
        return None
    module, table = _REGISTRIES[kind]
    try:
        return getattr(importlib.import_module(module), table).get(name)
    except (KeyError, TypeError):
        return None


def _check(mapping, known, where, out, open_ended=False):
    """Appends ``(path, hint)`` for every key of ``mapping`` that is not in ``known``."""
    if not isinstance(mapping, dict) or open_ended:
        return
    for key in mapping:
        if key not in known:
            out.append((f'{where}:{key}' if where else str(key), closest(key, known)))


def _check_typed(mapping, kind, where, out, extra=(), skip=()):
    """Checks a ``{type: ..., **kwargs}`` mapping against the arguments of the registered ``type``."""
    if not isinstance(mapping, dict):
        return
    obj = _lookup(kind, mapping.get('type'))
    if obj is None:
        return
    if kind == 'dataset':
        known, open_ended = _dataset_keys(obj), False
    else:
        known, open_ended = _constructor_keys(obj, skip)
        # metric functions take **kwargs only so that YAML keys such as ``better`` pass; their real options are named
        open_ended = open_ended and kind != 'metric'
    _check(mapping, known | {'type'} | set(extra), where, out, open_ended)


def unused_options(opt):
    """Finds option keys that nothing reads, with the closest known key.

    Framework sections are checked against the framework's keys; ``network_*``, ``train:optim_g``,
    ``train:scheduler``, the losses and ``val:metrics`` against the constructor (or function) arguments of their
    registered ``type``; each dataset against the keys its class reads. Keys read only late (at validation or in a
    dataset's ``__getitem__``) are known from these lists, so they are never reported.

    Args:
        opt (dict): Options as read from the file (after ``--force_yml``).

    Returns:
        list[tuple[str, str]]: ``(option path, hint)`` pairs, e.g. ``('train:ema_decy', ' (did you mean
        ema_decay?)')``.
    """
    out = []
    top = {k for k in opt if str(k).startswith('network_')} | _TOP
    _check(opt, top, '', out)
    for section, known in _SECTIONS.items():
        node = opt
        for part in section.split(':'):
            node = node.get(part) if isinstance(node, dict) else None
        if section == 'path' and isinstance(node, dict):
            known = known | {k for k in node if str(k).startswith(_PATH_PREFIXES)}
        _check(node, known, section, out)
    for key, value in opt.items():
        if str(key).startswith('network_') and key != 'network_io':
            _check_typed(value, 'arch', key, out)
    for key, value in (opt.get('datasets') or {}).items() if isinstance(opt.get('datasets'), dict) else []:
        _check_typed(value, 'dataset', f'datasets:{key}', out)
    train = opt.get('train') if isinstance(opt.get('train'), dict) else {}
    _check_typed(train.get('optim_g'), 'optimizer', 'train:optim_g', out, skip=('params', ))
    _check_typed(train.get('scheduler'), 'scheduler', 'train:scheduler', out, skip=('optimizer', 'last_epoch'))
    for key in ('pixel_opt', 'perceptual_opt'):
        _check_typed(train.get(key), 'loss', f'train:{key}', out)
    for i, loss_opt in enumerate(train.get('losses') or []):
        _check_typed(loss_opt, 'loss', f'train:losses[{i}]', out, extra=_LOSS_MODEL_KEYS)
    val = opt.get('val') if isinstance(opt.get('val'), dict) else {}
    for name, metric_opt in (val.get('metrics') or {}).items() if isinstance(val.get('metrics'), dict) else []:
        _check_typed(metric_opt, 'metric', f'val:metrics:{name}', out, extra=('better', 'device'),
                     skip=('img', 'img2'))
    return out


def report_unused_options(opt, source, strict, logger):
    """Warns about every option key nothing reads; with ``strict`` refuses them instead.

    Args:
        opt (dict): Options as read from the file (after ``--force_yml``).
        source (str): The option file, for messages.
        strict (bool): Raise instead of warning (``strict_options: true`` or ``--strict-options``).
        logger (logging.Logger): Where the warnings go.

    Raises:
        OptionError: With ``strict``, listing every unused key and its closest known key.
    """
    found = unused_options(opt)
    if not found:
        return
    lines = [f'{path} is read by nothing{hint}' for path, hint in found]
    if strict:
        raise OptionError(f'{source}: unknown option(s) (strict_options is on): ' + '; '.join(lines))
    for line in lines:
        logger.warning(f'Option {line} [{source}]; set strict_options: true (or --strict-options) to refuse it')
