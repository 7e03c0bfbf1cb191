"""Convert a training checkpoint of the reference low-light code (``final.pth``, ``final_rgb.pth``) to this project.

The reference checkpoints (``spec/lowlight.md`` §5) are ``torch.save``d dicts ``{'model': state_dict, 'config':
..., 'logger': <utils.logger.Logger>, 'optimizer': ..., ...}``. Because of the pickled ``Logger`` they cannot be
read with ``weights_only=True``; this script reads them with PyTorch's restricted unpickler, mapping exactly
``utils.logger.Logger`` to a local stub (and allowing NumPy scalars / arrays as plain data); every other global is
refused. It rebuilds the network from ``config['model']['args']``, checks that the weights load with
``strict=True`` and writes ``{'params': state_dict, 'config': config}`` (loadable with ``weights_only=True``)
atomically.

Usage::

    python scripts/convert_checkpoint.py final.pth experiments/pretrained_models/lowlight_aps.pth
"""
import argparse
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), '..')))

from basicsr.archs import build_network  # noqa: E402

__all__ = ['ReferenceLoggerStub', 'load_reference_checkpoint', 'convert_checkpoint', 'main']

LOGGER_GLOBAL = 'utils.logger.Logger'
NETWORK_TYPES = ('DefaultModel', 'LowLightEventDeblurNet')


class ReferenceLoggerStub:
    """Stands in for the reference ``utils.logger.Logger`` while unpickling; keeps its state (``entries``)."""


def _numpy_data_globals():
    """NumPy globals needed to unpickle scalars and arrays, under their NumPy 1.x and 2.x names.

    Returns:
        list: Objects and ``(object, qualified name)`` pairs for ``torch.serialization.safe_globals``.
    """
    try:
        from numpy._core import multiarray
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray
    allowed = [np.ndarray, np.dtype]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed += [(multiarray.scalar, f'{module}.scalar'), (multiarray._reconstruct, f'{module}._reconstruct')]
    allowed += [type(np.dtype(t)) for t in ('f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'bool')]
    return allowed


def _allowed_names():
    names = {LOGGER_GLOBAL, 'numpy.ndarray', 'numpy.dtype'}
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        names |= {f'{module}.scalar', f'{module}._reconstruct'}
    return names


def load_reference_checkpoint(path):
    """Reads a reference checkpoint with the restricted unpickler.

    Args:
        path (str | os.PathLike): Checkpoint file.

    Returns:
        dict: The checkpoint; its ``logger`` entry is a :class:`ReferenceLoggerStub`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file needs a global other than ``utils.logger.Logger`` and NumPy data, naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'checkpoint not found: {path}')
    allowed = [(ReferenceLoggerStub, LOGGER_GLOBAL)] + _numpy_data_globals()
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # the unpickler raises pickle.UnpicklingError or RuntimeError
        try:
            refused = sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) - _allowed_names())
        except Exception:  # not a zip-format checkpoint: the original message is the best information
            refused = []
        detail = f'it needs the refused global(s) {refused}' if refused else f'{type(err).__name__}: {err}'
        raise ValueError(f'{path}: cannot read the checkpoint safely; {detail}. Only tensors, containers, NumPy '
                         f'scalars/arrays and {LOGGER_GLOBAL} (mapped to a stub) are accepted.') from None


def _plain(obj):
    """Returns ``obj`` with ordered dicts turned into dicts (config values stay plain data)."""
    if isinstance(obj, (dict, OrderedDict)):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _network_options(config, path):
    if not isinstance(config, dict) or not isinstance(config.get('model'), dict):
        raise ValueError(f'{path}: checkpoint["config"] must be a dict with a "model" entry {{type, args}}; '
                         f'got {type(config).__name__}')
    module = config.get('module', 'full')
    if module != 'full':
        raise ValueError(f'{path}: config["module"] is {module!r}; only checkpoints of the full two-stage model '
                         '("full") can be converted')
    net_type = config['model'].get('type')
    if net_type not in NETWORK_TYPES:
        raise ValueError(f'{path}: config["model"]["type"] is {net_type!r}; expected one of {NETWORK_TYPES}')
    args = config['model'].get('args', {}) or {}
    if not isinstance(args, dict):
        raise ValueError(f'{path}: config["model"]["args"] must be a dict; got {type(args).__name__}')
    return {'type': net_type, **_plain(args)}


def convert_checkpoint(src, dst, force=False):
    """Converts a reference checkpoint to ``{'params': state_dict, 'config': config}``.

    Args:
        src (str | os.PathLike): Reference checkpoint (``final.pth`` ...).
        dst (str | os.PathLike): Output file; its folder is created.
        force (bool): Overwrite an existing ``dst``. Default: False.

    Returns:
        dict: Report with ``source``, ``output``, ``model_type``, ``model_args``, ``tensors``, ``parameters``,
        ``epoch``, ``stripped_prefix`` and ``dropped_keys``.

    Raises:
        FileExistsError: If ``dst`` exists and not ``force``.
        ValueError: If the checkpoint is unsafe, malformed or does not load strictly into the rebuilt network.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and not force:
        raise FileExistsError(f'{dst} exists; pass --force to overwrite it')
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise ValueError(f'output {dst} is the input checkpoint; choose another path')
    ckpt = load_reference_checkpoint(src)
    if not isinstance(ckpt, dict) or 'model' not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        hint = ' (it looks already converted)' if isinstance(ckpt, dict) and 'params' in ckpt else ''
        raise ValueError(f'{src}: expected a reference checkpoint with a "model" state dict; got {keys}{hint}')
    state = ckpt['model']
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f'{src}: checkpoint["model"] must be a dict of tensors (a state dict)')
    stripped = any(k.startswith('module.') for k in state)
    state = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v.contiguous()) for k, v in state.items())
    opt = _network_options(ckpt.get('config'), src)
    net = build_network(opt)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f'{src}: the weights do not load strictly into {type(net).__name__}({opt}): {err}') from None
    config = _plain(ckpt['config'])
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f'.{dst.name}.{os.getpid()}.tmp')  # same folder, default permissions
    try:
        torch.save({'params': state, 'config': config}, tmp)
        reloaded = torch.load(tmp, map_location='cpu', weights_only=True)
        net.load_state_dict(reloaded['params'], strict=True)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return {
        'source': str(src),
        'output': str(dst),
        'model_type': opt['type'],
        'model_args': {k: v for k, v in opt.items() if k != 'type'},
        'network': type(net).__name__,
        'tensors': len(state),
        'parameters': sum(v.numel() for v in state.values()),
        'epoch': ckpt.get('epoch'),
        'stripped_prefix': stripped,
        'dropped_keys': sorted(k for k in ckpt if k not in ('model', 'config')),
    }


def main(argv=None):
    """Command-line entry point.

    Args:
        argv (list[str] | None): Arguments (default: ``sys.argv[1:]``).

    Returns:
        int: Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='reference checkpoint, e.g. final.pth or final_rgb.pth')
    parser.add_argument('dst', help='output file in the project format {"params": ..., "config": ...}')
    parser.add_argument('--force', action='store_true', help='overwrite an existing output file')
    args = parser.parse_args(argv)
    try:
        report = convert_checkpoint(args.src, args.dst, force=args.force)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'read      {report["source"]} (epoch {report["epoch"]})')
    print(f'model     {report["model_type"]} -> {report["network"]}, args {report["model_args"]}')
    print(f'weights   {report["tensors"]} tensors, {report["parameters"]:,} parameters, strict load OK'
          + (' (stripped "module." prefix)' if report['stripped_prefix'] else ''))
    print(f'dropped   {", ".join(report["dropped_keys"]) or "nothing"}')
    print(f'wrote     {report["output"]} {{params, config}}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
