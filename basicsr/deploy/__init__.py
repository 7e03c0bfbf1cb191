"""Deployment of the networks outside PyTorch: ONNX export with a verified equivalence, and an ONNX Runtime network.

Needs the optional ``deploy`` extra (``pip install -e .[deploy]``: ``onnx`` and ``onnxruntime``). The submodules
import them only when used, so importing :mod:`basicsr.deploy` never fails:

- :mod:`basicsr.deploy.onnx_export`: :func:`~basicsr.deploy.onnx_export.export_method` and
  :func:`~basicsr.deploy.onnx_export.export_network`;
- :mod:`basicsr.deploy.onnx_runtime`: :class:`~basicsr.deploy.onnx_runtime.OnnxNetwork`, called like the torch
  network;
- :mod:`basicsr.deploy.onnx_metadata`: what an exported file records about itself.
"""
