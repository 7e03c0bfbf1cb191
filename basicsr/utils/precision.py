"""Numerical precision of inference and training: the names, what the hardware runs fast, autocast.

``fp32`` runs as written. ``bf16`` and ``fp16`` run the network under :func:`torch.autocast` (convolutions and
matrix products in the reduced type; operations autocast keeps in fp32, and those the networks pin to fp32, stay
there) and return fp32 outputs. A reduced precision is used only where the hardware runs it fast, checked once per
process: a CPU needs native bf16 instructions (``avx512_bf16`` or ``amx_bf16``) that oneDNN may use; a CUDA GPU
needs bf16 support (Ampere or newer) or, for fp16, tensor cores (compute capability 7.0 or newer). Otherwise a
warning names what is available and the run is fp32. fp16 on a CPU is refused (no fast kernels; CPU autocast is
a bf16 feature).

Training uses the same names through ``train.amp: {enabled, dtype}`` (:func:`resolve_amp`); fp16 training on CUDA
needs a gradient scaler, bf16 does not.
"""
import functools
import os
from collections import namedtuple
from contextlib import nullcontext

import torch

from basicsr.utils.logger import get_root_logger

__all__ = ['PRECISIONS', 'DTYPES', 'PrecisionError', 'AmpSettings', 'check_precision', 'precision_support',
           'available_precisions', 'resolve_precision', 'resolve_amp', 'autocast', 'to_float32',
           'autocast_forward']

PRECISIONS = ('fp32', 'bf16', 'fp16')
DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that still include native bf16 instructions
_BF16_ISAS = ('AVX512_CORE_BF16', 'AVX512_CORE_FP16', 'AVX512_CORE_AMX', 'AVX10', 'ALL', 'DEFAULT')

AmpSettings = namedtuple('AmpSettings', ['dtype', 'use_scaler'])
AmpSettings.__doc__ = ('Mixed-precision training: autocast ``dtype`` (None: fp32, no autocast) and whether a '
                       'gradient scaler is needed (fp16 on CUDA).')


class PrecisionError(ValueError):
    """A precision that cannot be used: an unknown name, or fp16 on a CPU; the message names the choices."""


def check_precision(name, where='precision'):
    """Checks a precision name.

    Args:
        name (str): ``fp32``, ``bf16`` or ``fp16``.
        where (str): Option or argument name for the message. Default: ``'precision'``.

    Returns:
        str: The name.

    Raises:
        PrecisionError: An unknown value, naming the choices.
    """
    if name not in PRECISIONS:
        raise PrecisionError(f'{where}: unknown precision {name!r}; choose one of {", ".join(PRECISIONS)}')
    return name


def _cpu_flags():
    """Instruction-set flags of the CPU (torch's cpuinfo, else ``/proc/cpuinfo``)."""
    get_capabilities = getattr(torch.cpu, 'get_capabilities', None)
    if get_capabilities is not None:
        return {name for name, value in get_capabilities().items() if value is True}
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            line = next((ln for ln in f if ln.startswith('flags')), '')
    except OSError:
        return set()
    return set(line.partition(':')[2].split())


@functools.lru_cache(maxsize=None)
def _cpu_bf16():
    """``(fast, reason)`` for bf16 on this CPU."""
    flags = _cpu_flags()
    native = sorted(flags & {'avx512_bf16', 'amx_bf16'})
    if not native:
        return False, 'this CPU has no native bf16 instructions, avx512_bf16 or amx_bf16'
    if not torch.backends.mkldnn.is_available():
        return False, 'this PyTorch build has no oneDNN (mkldnn), which runs bf16 convolutions on CPU'
    isa = (os.environ.get('ONEDNN_MAX_CPU_ISA') or os.environ.get('DNNL_MAX_CPU_ISA') or '').upper()
    if isa and not isa.startswith(_BF16_ISAS):
        return False, f'ONEDNN_MAX_CPU_ISA={isa} keeps oneDNN from the CPU\'s bf16 instructions'
    return True, f'CPU with {" and ".join(native)}'


@functools.lru_cache(maxsize=None)
def _cuda_support(index, name):
    """``(fast, reason)`` for bf16 or fp16 on one CUDA device."""
    major, minor = torch.cuda.get_device_capability(index)
    gpu = f'{torch.cuda.get_device_name(index)} (compute capability {major}.{minor})'
    if name == 'bf16':
        try:
            ok = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # older torch: no emulation argument
            ok = torch.cuda.is_bf16_supported()
        return (True, gpu) if ok else (False, f'{gpu} has no native bf16 (needs compute capability 8.0 or newer)')
    if (major, minor) >= (7, 0):
        return True, gpu
    return False, f'{gpu} has no fp16 tensor cores (needs compute capability 7.0 or newer)'


def precision_support(name, device):
    """Whether a device runs a precision fast, and why (checked once per process and device).

    Args:
        name (str): ``fp32``, ``bf16`` or ``fp16``.
        device (torch.device | str): Where the network runs.

    Returns:
        tuple[bool, str]: Fast or not, and the reason (the hardware found, or what it lacks).
    """
    name = check_precision(name)
    device = torch.device(device)
    if name == 'fp32':
        return True, 'full precision'
    if device.type == 'cpu':
        if name == 'fp16':
            return False, 'CPUs have no fast fp16 kernels'
        return _cpu_bf16()
    if device.type == 'cuda':
        index = device.index if device.index is not None else torch.cuda.current_device()
        return _cuda_support(index, name)
    return False, f'reduced precision is not supported on {device.type} devices here'


def available_precisions(device):
    """The precisions a device runs fast.

    Args:
        device (torch.device | str): Where the network runs.

    Returns:
        list[str]: Names, ``fp32`` first.
    """
    return [name for name in PRECISIONS if precision_support(name, device)[0]]


def resolve_precision(name, device, where='precision', logger=None):
    """Turns a precision name into the autocast dtype for a device; unsupported hardware falls back to fp32.

    Args:
        name (str): ``fp32``, ``bf16`` or ``fp16``.
        device (torch.device | str): Where the network runs.
        where (str): Option or argument name for messages, e.g. ``'val:precision'``. Default: ``'precision'``.
        logger (logging.Logger | None): Receives the fallback warning; None uses the root logger. Default: None.

    Returns:
        torch.dtype | None: ``torch.bfloat16`` or ``torch.float16``; None for fp32 (also after a fallback).

    Raises:
        PrecisionError: An unknown name, or fp16 on a CPU (naming the alternatives).
    """
    check_precision(name, where)
    device = torch.device(device)
    if name == 'fp32':
        return None
    if device.type == 'cpu' and name == 'fp16':
        raise PrecisionError(f'{where}: fp16 is not supported on CPU (no fast fp16 kernels); use {_cpu_bf16_hint()} '
                             'or fp32')
    fast, reason = precision_support(name, device)
    if not fast:
        (logger or get_root_logger()).warning(
            f'{where}: {name} requested but {reason}; running in fp32 (fast on {device.type}: '
            f'{", ".join(available_precisions(device))})')
        return None
    return DTYPES[name]


def _cpu_bf16_hint():
    fast, reason = precision_support('bf16', 'cpu')
    return 'bf16 (fast on this CPU)' if fast else f'bf16 (runs as fp32 on this CPU: {reason})'


def resolve_amp(amp_opt, device, logger=None):
    """Reads ``train.amp: {enabled: bool, dtype: bf16|fp16}`` for a device.

    bf16 needs no gradient scaler; fp16 (CUDA only) does. Hardware without fast support for the dtype falls back to
    fp32 training with a warning (:func:`resolve_precision`).

    Args:
        amp_opt (dict | None): The ``train.amp`` options; None or ``enabled: false`` is fp32 training.
        device (torch.device | str): Where the network trains.
        logger (logging.Logger | None): Receives warnings; None uses the root logger. Default: None.

    Returns:
        AmpSettings: The autocast dtype (None for fp32) and whether to use a gradient scaler.

    Raises:
        PrecisionError: A malformed ``train.amp``, an unknown dtype, ``fp32`` as AMP dtype, or fp16 on a CPU.
    """
    if amp_opt is None:
        return AmpSettings(None, False)
    if not isinstance(amp_opt, dict):
        raise PrecisionError(f'train:amp must be a mapping {{enabled: true|false, dtype: bf16|fp16}}, got {amp_opt!r}')
    enabled = amp_opt.get('enabled', False)
    if not isinstance(enabled, bool):
        raise PrecisionError(f'train:amp:enabled must be true or false, got {enabled!r}')
    name = amp_opt.get('dtype', 'bf16')
    if name == 'fp32' or name not in PRECISIONS:
        raise PrecisionError(f'train:amp:dtype: unknown AMP dtype {name!r}; choose bf16 or fp16 '
                             '(or train:amp:enabled: false for fp32)')
    if not enabled:
        return AmpSettings(None, False)
    device = torch.device(device)
    if device.type == 'cpu' and name == 'fp16':
        raise PrecisionError(f'train:amp:dtype: fp16 training is not supported on CPU (no fast fp16 kernels); use '
                             f'{_cpu_bf16_hint()}, or train in fp32 (train:amp:enabled: false)')
    dtype = resolve_precision(name, device, 'train:amp:dtype', logger)
    return AmpSettings(dtype, dtype == torch.float16 and device.type == 'cuda')


def autocast(device, dtype):
    """Autocast on a device; a no-op context for fp32.

    Args:
        device (torch.device | str): Where the network runs.
        dtype (torch.dtype | None): From :func:`resolve_precision`; None for fp32.

    Returns:
        contextlib.AbstractContextManager: :class:`torch.autocast` or a null context.
    """
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def to_float32(outputs):
    """Casts floating-point tensors (alone or in a list/tuple/dict) to fp32; others pass through.

    Args:
        outputs (Tensor | list | tuple | dict): Network outputs.

    Returns:
        The same structure with fp32 tensors (fp32 tensors are returned as they are).
    """
    if torch.is_tensor(outputs):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, dict):
        return type(outputs)((k, to_float32(v)) for k, v in outputs.items())
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(to_float32(v) for v in outputs)
    return outputs


class _AutocastForward:
    """Calls a network under autocast and returns fp32 outputs; other attributes are the network's."""

    def __init__(self, net, dtype, device):
        self.net, self.dtype, self.device = net, dtype, device

    def __call__(self, *args, **kwargs):
        with autocast(self.device, self.dtype):
            outputs = self.net(*args, **kwargs)
        return to_float32(outputs)

    def __getattr__(self, name):
        if name == 'net':  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.net, name)


def autocast_forward(net, dtype, device):
    """The network as a callable that runs under autocast and returns fp32 outputs (for metrics, saving, tiling).

    Args:
        net (Callable): The network.
        dtype (torch.dtype | None): From :func:`resolve_precision`; None returns ``net`` itself.
        device (torch.device | str): Where the network runs.

    Returns:
        Callable: ``net`` (fp32), or a wrapper that also exposes the network's attributes (e.g. ``size_multiple``).
    """
    return net if dtype is None else _AutocastForward(net, dtype, device)
