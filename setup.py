"""Installs the ``basicsr`` package of this repository (never PyPI's ``basicsr``)."""
from setuptools import find_packages, setup

setup(
    name='event-deblur-basicsr',
    version='0.1.0',
    description='Event-guided motion deblurring (EFNet, low-light two-stage network) in the BasicSR style',
    packages=find_packages(include=['basicsr', 'basicsr.*']),
    python_requires='>=3.9',
    install_requires=[
        'torch>=2.1', 'numpy', 'opencv-python-headless', 'pyyaml', 'h5py', 'lmdb', 'scikit-image', 'tensorboard',
        'tqdm'
    ],
    extras_require={
        'aedat': ['aedat'],
        'test': ['pytest'],
        # ONNX export (torch's TorchScript-based exporter) and the ONNX Runtime backend; versions tested here
        'deploy': ['onnx==1.23.2', 'onnxruntime==1.32.0'],
    },
    license='Apache-2.0',
)
