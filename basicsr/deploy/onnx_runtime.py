"""An exported ONNX file run by ONNX Runtime (CPU), called like the torch network it came from.

:class:`OnnxNetwork` has what the inference helpers read from a network (``io``, ``size_multiple``,
``prefers_channels_last``) and is called as ``net(**inputs)`` with (N, C, H, W) torch tensors keyed by forward
argument; it returns ``[result]``, a one-element list whose ``io['outputs']`` is ``[io['result']]``, so
``basicsr.models.inference.forward_padded`` / ``forward_tiled`` and ``outputs[names.index(io['result'])]`` work
unchanged. Method, options and event representation come from the file's metadata
(:mod:`basicsr.deploy.onnx_metadata`).
"""
import os
from dataclasses import replace

import numpy as np
import torch

from basicsr.archs import method_spec
from basicsr.deploy.onnx_export import import_deploy
from basicsr.deploy.onnx_metadata import OnnxMetadata, OnnxMetadataError
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['OnnxNetwork', 'OnnxNetworkError']


class OnnxNetworkError(ValueError):
    """An ONNX file that cannot serve the request: missing, not of this project, another method or size."""


class OnnxNetwork:
    """An exported network run by ONNX Runtime on the CPU.

    Args:
        path (str): ``.onnx`` file written by ``scripts/export_onnx.py``.
        method (str | None): The method the caller expects (an alias is resolved); a file of another method is
            refused. None accepts the file's method. Default: None.
        num_threads (int | None): ONNX Runtime intra-op threads; None for its default (all cores). Default: None.

    Attributes:
        path (str): The file.
        metadata (OnnxMetadata): Its metadata.
        method (str): Registered network name.
        options (dict): Complete constructor options of the exported network.
        representation (EventInputSpec | None): The event input the file expects.
        spec (MethodSpec): The network's declaration, with the file's event input.
        io (dict): ``inputs`` (forward argument -> batch key), ``outputs`` ``[result]`` and ``result``.
        size_multiple (int | tuple[int, int]): H and W of the inputs must be multiples of it.
        prefers_channels_last (bool): False: inputs are handed to ONNX Runtime contiguous.

    Raises:
        ImportError: Without onnxruntime, naming the install command.
        OnnxNetworkError: For a missing or unreadable file, a file not exported by this project, or another method.
    """

    prefers_channels_last = False

    def __init__(self, path, method=None, num_threads=None):
        ort = import_deploy('onnxruntime')
        if not os.path.isfile(path):
            raise OnnxNetworkError(f'ONNX file not found: {path}')
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        try:
            self._session = ort.InferenceSession(path, sess_options=options, providers=['CPUExecutionProvider'])
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own exception types for unreadable files
            raise OnnxNetworkError(f'{path}: not a readable ONNX model ({type(err).__name__}: '
                                   f'{str(err).splitlines()[0][:200]})') from None
        try:
            self.metadata = OnnxMetadata.from_props(self._session.get_modelmeta().custom_metadata_map, path)
        except OnnxMetadataError as err:
            raise OnnxNetworkError(str(err)) from None
        self.path = path
        meta = self.metadata
        self.method = meta.method
        if method is not None:
            asked = ARCH_REGISTRY.get(method).__name__
            if asked != self.method:
                raise OnnxNetworkError(f'{path} holds the network of {self.method}, but method {asked} was requested; '
                                       f'use a file exported for {asked}, or choose the method {self.method}')
        self.options = dict(meta.options)
        self.representation = meta.events
        self.spec = replace(method_spec(self.method, self.options), events=meta.events)
        self.size_multiple = self.spec.size_multiple
        self.io = {'inputs': dict(meta.io['inputs']), 'outputs': [meta.io['result']], 'result': meta.io['result']}

    def __repr__(self):
        return f'OnnxNetwork({self.path!r}: {self.spec.description}, {self.metadata.size_text})'

    def eval(self):
        """Does nothing (an exported graph is always in inference mode); for symmetry with ``nn.Module``.

        Returns:
            OnnxNetwork: ``self``.
        """
        return self

    def to(self, device):
        """Accepts the CPU only (ONNX Runtime's CPU provider); for symmetry with ``nn.Module``.

        Args:
            device (str | torch.device): Target device.

        Returns:
            OnnxNetwork: ``self``.

        Raises:
            OnnxNetworkError: For another device.
        """
        if torch.device(device).type != 'cpu':
            raise OnnxNetworkError(f'{self.path}: the ONNX Runtime backend runs on the CPU; got device {device}')
        return self

    def parameters(self):
        """No torch parameters (the weights are in the graph); callers that look for a device find none.

        Returns:
            Iterator: An empty iterator.
        """
        return iter(())

    def check_size(self, height, width):
        """Checks that the file serves frames of a size (at the event resolution), before any inference.

        Args:
            height (int): Frame height.
            width (int): Frame width.

        Raises:
            OnnxNetworkError: For a file exported for another fixed size, naming both sizes.
        """
        meta = self.metadata
        if not meta.dynamic_size and tuple(meta.size) != (height, width):
            raise OnnxNetworkError(f'{self.path} was exported for {meta.size[0]}x{meta.size[1]} frames only (fixed '
                                   f'size), but the frames are {height}x{width}; export it again with --size '
                                   f'{height} {width}')

    def _check_network_size(self, height, width):
        meta = self.metadata
        mh, mw = (self.size_multiple, ) * 2 if isinstance(self.size_multiple, int) else self.size_multiple
        if not meta.dynamic_size and tuple(meta.network_size) != (height, width):
            sensor = f'{meta.size[0]}x{meta.size[1]}'
            raise OnnxNetworkError(f'{self.path} was exported for {sensor} frames only (fixed size; the graph takes '
                                   f'{meta.network_size[0]}x{meta.network_size[1]} after padding), but the inputs are '
                                   f'{height}x{width}; export it again for this size (scripts/export_onnx.py --size)')
        if height % mh or width % mw:
            raise OnnxNetworkError(f'{self.path}: inputs are {height}x{width}, not multiples of {mh}x{mw}; pad them '
                                   '(basicsr.models.inference.forward_padded)')

    def __call__(self, **inputs):
        """Runs the graph.

        Args:
            **inputs: Forward argument (as in ``io['inputs']``) -> (N, C, H, W) tensor, as for the torch network.

        Returns:
            list[Tensor]: ``[result]``, float32 on the CPU.

        Raises:
            OnnxNetworkError: For a missing or unknown input, or a size the file does not serve.
        """
        args = self.io['inputs']
        unknown = sorted(set(inputs) - set(args))
        missing = sorted(a for a in args if inputs.get(a) is None)
        if unknown or missing:
            raise OnnxNetworkError(f'{self.path}: inputs {sorted(args)} expected (all given); got unknown {unknown}, '
                                   f'missing or None {missing}')
        reference = inputs[next(iter(args))]
        self._check_network_size(*reference.shape[-2:])
        feed = {args[a]: np.ascontiguousarray(t.detach().float().cpu().numpy()) for a, t in inputs.items()}
        try:
            out = self._session.run(None, feed)[0]
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own exception types
            shapes = {args[a]: tuple(t.shape) for a, t in inputs.items()}
            expected = {i.name: i.shape for i in self._session.get_inputs()}
            raise OnnxNetworkError(f'{self.path}: ONNX Runtime refused inputs {shapes} (expected {expected}): '
                                   f'{str(err).splitlines()[0][:300]}') from None
        return [torch.from_numpy(out)]
