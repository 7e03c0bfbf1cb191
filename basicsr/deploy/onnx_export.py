"""ONNX export of a deblurring network, checked against torch before the file is kept.

The exported graph takes the network's inputs under their batch keys (EFNet: ``frame``, ``voxel``, ``mask``;
low-light: ``E``, ``B``, ``Bi``), read from the network's ``io`` and inference declaration, and returns only the
result output (``io['result']``). It receives the size the network receives: the export size padded to the size
multiple (``basicsr.models.inference.forward_padded`` pads before the call). Heights and widths are dynamic when the
graph computes the same as torch at a second size; otherwise it is exported again for the one size, and the
metadata says so (:mod:`basicsr.deploy.onnx_metadata`).

Exporter: the TorchScript-based one (``torch.onnx.export(..., dynamo=False)``). Measured on this project's networks
with torch 2.13: it exports both with dynamic H and W in a few seconds; the torch.export-based default (``dynamo``)
gives equal outputs but takes 3-5x longer, needs ``onnxscript``, and exports the low-light network with dynamic
sizes only when every size is declared as a multiple of the size multiple.
"""
import json
import os
import tempfile
import warnings
from collections import namedtuple

import numpy as np
import torch
from torch import nn

import basicsr
from basicsr.archs import build_network, checkpoint_options, method_spec, network_options
from basicsr.deploy.onnx_metadata import OnnxMetadata
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['ExportError', 'ExportResult', 'SizeCheck', 'INSTALL_HINT', 'import_deploy', 'padded_size',
           'random_inputs', 'export_network', 'export_method']

INSTALL_HINT = "pip install -e '.[deploy]' (onnx and onnxruntime)"
OPSET = 17
TOLERANCE = 1e-4

SizeCheck = namedtuple('SizeCheck', ['size', 'max_abs_diff', 'max_rel_diff'])
SizeCheck.__doc__ = ('Export check at one network size (H, W): largest absolute difference ONNX Runtime - torch, and '
                     'that difference relative to the largest absolute torch output.')
ExportResult = namedtuple('ExportResult', ['path', 'metadata', 'checks'])
ExportResult.__doc__ = 'A kept export: its path, its :class:`OnnxMetadata` and the :class:`SizeCheck` of each size.'


class ExportError(ValueError):
    """An export that cannot be made or whose outputs differ from torch (no file is left behind)."""


def import_deploy(name):
    """Imports one of the optional deploy packages, with the install command in the error.

    Args:
        name (str): ``'onnx'`` or ``'onnxruntime'``.

    Returns:
        module: The imported package.

    Raises:
        ImportError: Naming the package and how to install it.
    """
    try:
        return __import__(name)
    except ImportError:
        raise ImportError(f'{name} is not installed; ONNX export and the ONNX Runtime backend need the deploy '
                          f'extra: {INSTALL_HINT}') from None


def padded_size(size, multiple):
    """The size a network receives for frames of ``size``: each side rounded up to the size multiple.

    Args:
        size (tuple[int, int]): (H, W).
        multiple (int | tuple[int, int]): Size multiple of the network.

    Returns:
        tuple[int, int]: Padded (H, W).
    """
    mh, mw = (multiple, multiple) if isinstance(multiple, int) else tuple(multiple)
    return -(-size[0] // mh) * mh, -(-size[1] // mw) * mw


def _check_size(size):
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ExportError(f'size must be two positive integers (H, W), got {size!r}') from None
    if h < 1 or w < 1:
        raise ExportError(f'size must be two positive integers (H, W), got {size!r}')
    return h, w


def _input_layout(spec):
    """ONNX input name -> (kind, channels, scale) from a declaration."""
    layout = {}
    for image in spec.images:
        if image.channels is None:
            raise ExportError(f'{spec.description}: image input {image.key!r} declares no channel count; cannot '
                              'export a graph for it')
        layout[image.key] = ('image', image.channels, image.scale)
    if spec.events is not None:
        layout[spec.events.key] = ('events', spec.events.num_channels, 1)
        if spec.events.mask_key is not None:
            layout[spec.events.mask_key] = ('mask', 1, 1)
    return layout


def random_inputs(spec, io, size, seed=0):
    """Seeded random inputs of a network at a network size, keyed by forward argument.

    Images are uniform in [0, 1], events standard normal, the mask 0/1 (about 30 % ones).

    Args:
        spec (MethodSpec): The network's declaration.
        io (dict): The network's ``io`` (``inputs``: forward argument -> batch key).
        size (tuple[int, int]): (H, W) at the event resolution, a multiple of the size multiple.
        seed (int): Seed. Default: 0.

    Returns:
        dict[str, Tensor]: Forward argument -> (1, C, H, W) float32 tensor.
    """
    layout = _input_layout(spec)
    gen = torch.Generator().manual_seed(seed)
    inputs = {}
    for arg, key in io['inputs'].items():
        kind, channels, scale = layout[key]
        shape = (1, channels, scale * size[0], scale * size[1])
        if kind == 'image':
            inputs[arg] = torch.rand(shape, generator=gen)
        elif kind == 'events':
            inputs[arg] = torch.randn(shape, generator=gen)
        else:
            inputs[arg] = (torch.rand(shape, generator=gen) < 0.3).float()
    return inputs


class _ResultGraph(nn.Module):
    """The network as exported: positional inputs in ``io`` order, the result output only."""

    def __init__(self, net, args, result_index):
        super().__init__()
        self.net, self.args, self.result_index = net, tuple(args), result_index

    def forward(self, *tensors):
        out = self.net(**dict(zip(self.args, tensors)))
        return out if torch.is_tensor(out) else out[self.result_index]


def _torch_result(graph, inputs):
    with torch.inference_mode(False), torch.no_grad():
        return graph(*inputs.values()).float().numpy()


def _export_graph(graph, inputs, names, result, scales, out_scale, path, dynamic, opset):
    onnx = import_deploy('onnx')
    axes = None
    if dynamic:
        def dims(k):
            return {2: 'height' if k == 1 else f'height_x{k}', 3: 'width' if k == 1 else f'width_x{k}'}
        axes = {name: dims(scales[name]) for name in names}
        axes[result] = dims(out_scale)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter('ignore')  # the exporter's deprecation and tracer warnings about the shape checks
        torch.onnx.export(graph, tuple(inputs.values()), path, input_names=list(names), output_names=[result],
                          opset_version=opset, dynamic_axes=axes, dynamo=False, do_constant_folding=True)
    onnx.checker.check_model(path, full_check=True)


def _compare(session, graph, spec, io, size, seed):
    inputs = random_inputs(spec, io, size, seed)
    ref = _torch_result(graph, inputs)
    feed = {io['inputs'][arg]: t.numpy() for arg, t in inputs.items()}
    out = session.run(None, feed)[0]
    if out.shape != ref.shape:
        return SizeCheck(size, float('inf'), float('inf'))
    max_abs = float(np.abs(out.astype(np.float64) - ref).max())
    return SizeCheck(size, max_abs, max_abs / max(float(np.abs(ref).max()), 1e-12))


def _session(path, num_threads=None):
    ort = import_deploy('onnxruntime')
    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
    return ort.InferenceSession(path, sess_options=options, providers=['CPUExecutionProvider'])


def _second_size(size, multiple):
    """Another network size for the dynamic-size check: about half of ``size`` plus one multiple, other aspect."""
    mh, mw = (multiple, multiple) if isinstance(multiple, int) else tuple(multiple)
    other = padded_size((size[0] // 2 + 1, size[1] // 3 + 1), (mh, mw))
    return other if other != tuple(size) else (size[0] + mh, size[1] + 2 * mw)


def _set_metadata(path, metadata):
    onnx = import_deploy('onnx')
    model = onnx.load(path)
    del model.metadata_props[:]
    for key, value in metadata.to_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)


def export_network(net, method, options, size, out_path, dynamic=True, opset=OPSET, tolerance=TOLERANCE, seed=0,
                   overwrite=False, num_threads=None):
    """Exports a network to ONNX, checks it and keeps the file only when it equals torch.

    Check: the ONNX checker, then ONNX Runtime against torch on seeded random inputs at the export size (and, for a
    dynamic export, at a second size with another aspect ratio); the largest difference relative to the largest
    torch output must not exceed ``tolerance``. A dynamic export that fails at the second size is exported again
    for the one size (``dynamic_size: false`` in the metadata). The file is written under a temporary name beside
    ``out_path`` and renamed only once the check passed.

    Args:
        net (nn.Module): The network (any device; exported on the CPU in eval mode).
        method (str): Registered name of its class (an alias is resolved).
        options (dict): Its constructor options (missing ones take the defaults, recorded complete).
        size (tuple[int, int]): Frame size (H, W) at the event resolution (the sensor's size).
        out_path (str): The ``.onnx`` file to write.
        dynamic (bool): Try dynamic H and W. Default: True.
        opset (int): ONNX opset. Default: 17.
        tolerance (float): Largest accepted difference relative to the output. Default: 1e-4.
        seed (int): Seed of the random check inputs. Default: 0.
        overwrite (bool): Replace an existing ``out_path``. Default: False.
        num_threads (int | None): ONNX Runtime threads of the check; None for its default. Default: None.

    Returns:
        ExportResult: Path, metadata and the size checks.

    Raises:
        ExportError: For a method without a network, an existing file, or outputs that differ from torch.
        ImportError: Without onnx / onnxruntime, naming the install command.
    """
    import_deploy('onnx')
    import_deploy('onnxruntime')
    size = _check_size(size)
    cls = ARCH_REGISTRY.get(method)
    options = network_options(cls, options)
    spec = method_spec(cls.__name__, options)
    if not spec.needs_checkpoint:
        raise ExportError(f'{spec.description} has no learned network (no parameters) to export to ONNX; it runs '
                          'with PyTorch and NumPy only (basicsr/infer.py)')
    if os.path.exists(out_path) and not overwrite:
        raise ExportError(f'{out_path} exists; choose another output or allow overwriting it (--overwrite)')
    io = net.io
    layout = _input_layout(spec)
    if set(io['inputs'].values()) != set(layout):
        raise ExportError(f'{spec.description}: io inputs {sorted(io["inputs"].values())} differ from the declared '
                          f'inputs {sorted(layout)}')
    names = [io['inputs'][arg] for arg in io['inputs']]
    result = io.get('result', io['outputs'][-1])
    graph = _ResultGraph(net.cpu().eval(), io['inputs'], io['outputs'].index(result)).eval()
    net_size = padded_size(size, spec.size_multiple)
    inputs = random_inputs(spec, io, net_size, seed)
    out_scale = _torch_result(graph, inputs).shape[-2] // net_size[0]
    scales = {key: layout[key][2] for key in names}

    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(out_path) + '.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        sizes = [net_size]
        if dynamic:
            sizes.append(_second_size(net_size, spec.size_multiple))
        while True:
            _export_graph(graph, inputs, names, result, scales, out_scale, tmp, dynamic, opset)
            session = _session(tmp, num_threads)
            checks = []
            for k, check_size in enumerate(sizes):
                try:
                    checks.append(_compare(session, graph, spec, io, check_size, seed + k))
                except Exception:  # noqa: BLE001 - ONNX Runtime raises its own types for a graph fixed to one size
                    checks.append(SizeCheck(check_size, float('inf'), float('inf')))
            if checks[0].max_rel_diff > tolerance:
                first = checks[0]
                raise ExportError(
                    f'export of {spec.description} refused: ONNX Runtime differs from torch by '
                    f'{first.max_abs_diff:.3g} ({first.max_rel_diff:.3g} of the largest output) at '
                    f'{net_size[0]}x{net_size[1]}, more than the accepted {tolerance:g}; no file written')
            if all(c.max_rel_diff <= tolerance for c in checks):
                break
            dynamic, sizes = False, [net_size]  # equal at the export size only: keep that size alone
        metadata = OnnxMetadata(
            method=cls.__name__, options=json.loads(json.dumps(options)), events=spec.events,
            io={'inputs': dict(io['inputs']), 'result': result}, size=size, network_size=net_size,
            dynamic_size=dynamic, max_rel_diff=max(c.max_rel_diff for c in checks), version=basicsr.__version__,
            torch_version=torch.__version__)
        _set_metadata(tmp, metadata)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return ExportResult(out_path, metadata, checks)


def _method_options(method, checkpoint, net_opt):
    """The complete options of a checkpoint's network, as ``load_method`` merges them (checkpoint, then given)."""
    from basicsr.models.base_model import load_checkpoint, select_state_dict

    ckpt = load_checkpoint(checkpoint)
    state = select_state_dict(ckpt, 'params', checkpoint)
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    config = ckpt.get('config') if isinstance(ckpt.get('config'), dict) else None
    return {**checkpoint_options(method, state, config), **net_opt}


def export_method(method, size, out_path, checkpoint=None, net_opt=None, random_weights=False, seed=0, **kwargs):
    """Builds a method's network (from a checkpoint, or with seeded random weights) and exports it.

    Args:
        method (str): ``'EFNet'`` or ``'LowLightEventDeblurNet'`` (alias ``'DefaultModel'``); ``'EDI'`` is refused.
        size (tuple[int, int]): Frame size (H, W) at the event resolution.
        out_path (str): The ``.onnx`` file to write.
        checkpoint (str | None): Trained weights (``.pth``), loaded strictly as ``basicsr/infer.py`` does. Default:
            None.
        net_opt (dict | None): Constructor options (the checkpoint fixes widths and channels). Default: None.
        random_weights (bool): Export seeded random weights (initialised as for training: ``init_weights()`` when
            the network has it) instead of a checkpoint, for testing only. Default: False.
        seed (int): Seed of the random weights and of the check inputs. Default: 0.
        **kwargs: Passed to :func:`export_network` (``dynamic``, ``opset``, ``tolerance``, ``overwrite``,
            ``num_threads``).

    Returns:
        ExportResult: As :func:`export_network`.

    Raises:
        ExportError: For EDI, a missing checkpoint without ``random_weights``, both given, or a refused export.
    """
    from basicsr.deblur.methods import canonical_method, load_method

    method = canonical_method(method)
    net_opt = {k: v for k, v in (net_opt or {}).items() if k != 'type'}
    if not method_spec(method, net_opt).needs_checkpoint:
        raise ExportError(f'{method} has no learned network (no parameters) to export to ONNX; it runs with PyTorch '
                          'and NumPy only (basicsr/infer.py)')
    if checkpoint and random_weights:
        raise ExportError('give either a checkpoint or random weights, not both')
    if random_weights:
        torch.manual_seed(seed)
        net, options = build_network({'type': method, **net_opt}), net_opt
        if hasattr(net, 'init_weights'):  # initialised as for training (the constructor's default is not)
            net.init_weights()
        net.eval()
    elif checkpoint:
        net = load_method(method, checkpoint, net_opt)
        options = _method_options(method, checkpoint, net_opt)
    else:
        raise ExportError(f'{method}: no checkpoint given; pass the trained weights (--checkpoint X.pth), or random '
                          'weights for testing only (--random-weights: the exported network then deblurs nothing)')
    return export_network(net, method, options, size, out_path, seed=seed, **kwargs)
