"""What runs the network of an inference run: the torch network (fp32, or under autocast in bf16/fp16), or an
exported ONNX file run by ONNX Runtime.

Both are called the same way (``net(**inputs)`` through :mod:`basicsr.models.inference`, padded or tiled) and both
carry their declaration for :func:`basicsr.archs.method_spec.spec_of`: the ONNX network as ``spec`` (with the
event representation recorded in the file), the autocast wrapper as ``spec`` taken from the network it wraps.

- **Precision** (:func:`with_precision`): ``bf16``/``fp16`` run the network under :func:`torch.autocast` and hand
  fp32 outputs to the rest of the pipeline (:func:`basicsr.utils.precision.autocast_forward`), so padding, tiles
  and writing are unchanged. The hardware check of :mod:`basicsr.utils.precision` decides: without fast support
  the run is fp32 with an :class:`InferenceWarning` naming what is available; fp16 on a CPU is refused. A method
  without parameters (EDI: NumPy/float64 maths on the raw events) has nothing to run in reduced precision: it runs
  as always, with a one-line warning.
- **ONNX Runtime** (:func:`open_onnx`): the method, its options and the event representation come from the file;
  it runs on the CPU in fp32, takes no checkpoint, and takes every input it was exported with (EFNet's mask).
"""
import warnings

import torch

from basicsr.archs.method_spec import spec_of
from basicsr.deblur.methods import canonical_method
from basicsr.utils.inference_errors import InferenceError, InferenceWarning
from basicsr.utils.precision import PRECISIONS, PrecisionError, autocast_forward, resolve_precision

__all__ = ['BACKENDS', 'PRECISIONS', 'check_backend_options', 'open_onnx', 'with_precision']

BACKENDS = ('torch', 'onnxruntime')


def check_backend_options(backend, onnx=None, checkpoint=None, precision='fp32'):
    """Checks that the backend options go together, before anything is loaded.

    Args:
        backend (str): ``'torch'`` or ``'onnxruntime'``.
        onnx (str | None): The ONNX file (``--onnx``). Default: None.
        checkpoint (str | None): The checkpoint given on the command line (``--checkpoint``). Default: None.
        precision (str): ``fp32``, ``bf16`` or ``fp16``. Default: ``'fp32'``.

    Raises:
        InferenceError: For an unknown backend, ``--onnx`` without ``--backend onnxruntime`` or the reverse, a
            checkpoint with an ONNX file, or a reduced precision with ONNX Runtime.
    """
    if backend not in BACKENDS:
        raise InferenceError(f'--backend {backend!r}: expected one of {", ".join(BACKENDS)}')
    if backend == 'torch':
        if onnx:
            raise InferenceError(f'--onnx {onnx} needs --backend onnxruntime (the torch backend loads --checkpoint)')
        return
    if not onnx:
        raise InferenceError('--backend onnxruntime needs --onnx FILE (an ONNX file written by '
                             'scripts/export_onnx.py)')
    if checkpoint:
        raise InferenceError(f'--checkpoint {checkpoint} with --onnx {onnx}: the weights are in the ONNX file; drop '
                             '--checkpoint')
    if precision != 'fp32':
        raise InferenceError(f'--precision {precision} does not apply to --backend onnxruntime (the ONNX file runs in '
                             'fp32); drop --precision, or use --backend torch')


def open_onnx(path, method=None, net_opt=None, use_mask=True, num_threads=None):
    """Opens an exported file for inference with ONNX Runtime.

    Args:
        path (str): ``.onnx`` file written by ``scripts/export_onnx.py``.
        method (str | None): The method asked for; a file of another method is refused. None takes the file's.
            Default: None.
        net_opt (dict | None): Network options asked for (``--net-opt``, ``-opt``); each must equal the file's.
            Default: None.
        use_mask (bool): Whether the run feeds the event mask; a graph exported with a mask input always takes
            it. Default: True.
        num_threads (int | None): ONNX Runtime threads; None for its default. Default: None.

    Returns:
        OnnxNetwork: The network (method, options and representation from the file's metadata).

    Raises:
        ImportError: Without onnxruntime, naming the install command.
        OnnxNetworkError: For a missing or foreign file, or a file of another method.
        InferenceError: For options that differ from the file's, or a run without the mask the graph takes.
    """
    from basicsr.deploy.onnx_runtime import OnnxNetwork

    net = OnnxNetwork(path, None if method is None else canonical_method(method), num_threads)
    for key, value in (net_opt or {}).items():
        if key == 'type' or key in net.options and net.options[key] == value:
            continue
        shown = f'{key}={net.options[key]}' if key in net.options else f'no option {key}'
        raise InferenceError(f'{key}={value} was requested, but {path} holds {net.spec.description} with {shown}; '
                             'the network options are fixed in the ONNX file: drop them')
    events = net.spec.events
    if not use_mask and events is not None and events.mask_key in net.io['inputs'].values():
        raise InferenceError(f'--no-mask: {path} takes the event mask (input {events.mask_key!r}, exported with '
                             'it); drop --no-mask, or run the torch backend without the mask')
    return net


class _WarningLog:
    """Hands the precision fallback message to :mod:`warnings` (printed as ``warning: ...`` by ``infer.py``)."""

    @staticmethod
    def warning(message):
        warnings.warn(message, InferenceWarning, stacklevel=4)


def with_precision(net, precision, device, method=None):
    """The network running in a precision, returning fp32 outputs.

    Args:
        net (torch.nn.Module): The loaded network (see :func:`basicsr.deblur.methods.load_method`).
        precision (str): ``fp32``, ``bf16`` or ``fp16``.
        device (torch.device | str): Where the network runs.
        method (str | None): Registered method name (for the declaration); None takes the class name. Default:
            None.

    Returns:
        Callable: ``net`` itself for fp32, for a fallback to fp32 and for a method without parameters; otherwise a
        wrapper running it under autocast, with the network's attributes and its declaration as ``spec``.

    Raises:
        InferenceError: For an unknown precision, or fp16 on a CPU (naming what is available).
    """
    if precision != 'fp32' and next(iter(net.parameters()), None) is None:
        name = method or type(net).__name__
        warnings.warn(f'--precision {precision}: {name} has no network weights (no convolutions to run in '
                      f'{precision}); it runs as always', InferenceWarning, stacklevel=2)
        return net
    try:
        dtype = resolve_precision(precision, device, '--precision', _WarningLog())
    except PrecisionError as err:
        raise InferenceError(str(err)) from None
    if dtype is None:
        return net
    spec = spec_of(net, method)
    wrapped = autocast_forward(net, dtype, torch.device(device))
    wrapped.spec = spec
    return wrapped
