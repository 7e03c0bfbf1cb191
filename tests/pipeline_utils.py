"""Helpers for tests that run ``basicsr/train.py`` and ``basicsr/test.py`` as a user would."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_OPT = REPO_ROOT / 'options' / 'train' / 'Synthetic' / 'EFNet_tiny.yml'
TEST_OPT = REPO_ROOT / 'options' / 'test' / 'Synthetic' / 'EFNet_tiny.yml'

# A tiny version of the synthetic EFNet recipe: 8 samples of 32×32, EFNet wf=8, no TensorBoard.
TINY = ['network_g:wf=8', 'datasets:train:size=[32, 32]', 'datasets:train:num_samples=8',
        'datasets:val:size=[32, 40]', 'datasets:val:num_samples=3', 'logger:use_tb_logger=false',
        'logger:print_freq=1']


def free_port():
    """Returns a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def env():
    """Environment of the child processes: single-threaded torch, so runs are deterministic and light.

    ``PYTHON`` makes ``scripts/dist_train.sh`` launch the interpreter that runs the tests.
    """
    out = dict(os.environ)
    out.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONHASHSEED='0', PYTHON=sys.executable)
    return out


def train_cmd(root, name, overrides=(), launcher=None, nproc=2, opt=TRAIN_OPT, extra=()):
    """Command line of a training run whose outputs go under ``root``.

    Args:
        root (Path): Base of ``experiments/`` and ``tb_logger/``.
        name (str): Experiment name.
        overrides (Sequence[str]): More ``--force_yml`` items.
        launcher (str | None): None, ``'torchrun'`` or ``'legacy'`` (python -m torch.distributed.launch).
        nproc (int): Processes per node for the launchers. Default: 2.
        opt (Path): Option file. Default: the tiny synthetic EFNet recipe.
        extra (Sequence[str]): More arguments for train.py (e.g. ``--auto_resume``).

    Returns:
        list[str]: The command.
    """
    force = [f'name={name}', f'path:root={root}'] + TINY + list(overrides)
    script = [str(REPO_ROOT / 'basicsr' / 'train.py'), '-opt', str(opt)]
    if launcher is None:
        prefix = [sys.executable]
        tail = []
    else:
        module = 'torch.distributed.run' if launcher == 'torchrun' else 'torch.distributed.launch'
        prefix = [sys.executable, '-m', module, f'--nproc_per_node={nproc}', f'--master_port={free_port()}']
        tail = ['--launcher', 'pytorch']
    return prefix + script + tail + list(extra) + ['--force_yml'] + force


def run(cmd, timeout=300, check=True):
    """Runs a command from the repository root; on failure the assertion shows its output."""
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env(), capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f'{" ".join(cmd)}\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-4000:]}'
    return proc


def load_params(path):
    """Loads the ``params`` of a checkpoint with ``weights_only=True``."""
    return torch.load(path, map_location='cpu', weights_only=True)['params']


def max_param_diff(a, b):
    """Largest absolute difference between two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


TINY_MODEL = ['network_g:wf=8', 'datasets:train:size=[16, 16]', 'datasets:train:num_samples=2',
              'datasets:val:size=[16, 24]', 'datasets:val:num_samples=2', 'logger:use_tb_logger=false']


def tiny_model(tmp_path, overrides=()):
    """The tiny synthetic EFNet recipe (``TRAIN_OPT`` + ``TINY_MODEL``) as an in-process model.

    Args:
        tmp_path (Path): Root of the run's folders.
        overrides (Sequence[str]): Further ``--force_yml`` assignments. Default: ().

    Returns:
        tuple: The built model and its validation loader.
    """
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.models import build_model
    from basicsr.utils.options import parse_options

    argv = ['-opt', str(TRAIN_OPT), '--force_yml', 'name=rel', f'path:root={tmp_path}', *TINY_MODEL, *overrides]
    opt, _ = parse_options(str(tmp_path), is_train=True, argv=argv)
    val_set = build_dataset(opt['datasets']['val'])
    return build_model(opt), build_dataloader(val_set, opt['datasets']['val'], num_gpu=0, dist=False)


def read_video_frames(path):
    """Every frame of a video file as OpenCV decodes it.

    Args:
        path (str | Path): The video.

    Returns:
        list[np.ndarray]: BGR uint8 frames in order.
    """
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames
