"""Outputs recorded from the original EFNet, low-light and event-representation code, and how tests use them.

Two sets hold the same cases (EFNet ``wf=8`` at 32x48 with and without mask; the low-light network
``init_dim=32`` APS at 64x80 and RGB; a 3,000-event stream with its SCER and voxel grids):

- ``compact``: ``tests/data/golden_compact.npz``, shipped with the repository, recorded without the weights:
  they are rebuilt from a seed (:func:`seeded_state_dict`), so the checks run in every clone;
- ``shared``: ``../shared/golden/reference_small.npz`` beside the repository, with the weights stored; an extra
  check when present, skipped with the reason otherwise.
"""
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

from basicsr.archs.efnet_arch import EFNet
from basicsr.archs.lowlight_arch import LowLightEventDeblurNet
from numerics import assert_close_scaled

COMPACT = Path(__file__).resolve().parent / 'data' / 'golden_compact.npz'
SHARED_DIR = Path(__file__).resolve().parents[2] / 'shared' / 'golden'
# The full set is an extra where it lies beside the repository; its cases are not collected elsewhere (no skips).
REFERENCE_SETS = ('compact', 'shared') if (SHARED_DIR / 'reference_small.npz').is_file() else ('compact', )
NETWORK_REL_TOL = 1e-4  # of (1 + max |reference|): float32 outputs of another implementation (golden README)
REPRESENTATION_TOL = 1e-5  # absolute, for event representations (golden README)
# S of the low-light network amplifies float32 rounding at these random weights: our own float32 and float64 S
# differ by up to 4.3e-4 (measured), and the reference is float32 too; 1e-4 holds on some kernel paths only.
LOWLIGHT_S_REL_TOL = 1e-3

# network name in the files -> (constructor, seed offset of the compact recipe)
NETWORKS = {
    'efnet': (lambda: EFNet(wf=8), 0),
    'll_aps': (lambda: LowLightEventDeblurNet(init_dim=32, rgb=False), 1),
    'll_rgb': (lambda: LowLightEventDeblurNet(init_dim=32, rgb=True), 1),
}


def layout_file(name):
    """Path of a released checkpoint's state-dict layout (keys and shapes), shipped in ``tests/data``.

    Args:
        name (str): File name, e.g. ``'efnet_state_dict_shapes.json'``.

    Returns:
        Path: The file in the repository.
    """
    return COMPACT.parent / name


def shared_file(name):
    """Path of a file of the full golden set beside the repository; skips the test when it is absent.

    Args:
        name (str): File name in ``../shared/golden``.

    Returns:
        Path: The existing file.
    """
    path = SHARED_DIR / name
    if not path.is_file():
        pytest.skip(f'extra check on the full golden set beside the repository: {path} is absent (the in-repo '
                    'tests/data/golden_compact.npz equivalence checks run in every clone)')
    return path


@lru_cache(maxsize=None)
def _load(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def load_reference(which):
    """Arrays of one reference set.

    Args:
        which (str): ``'compact'`` or ``'shared'`` (skips when ``../shared/golden`` is absent).

    Returns:
        dict[str, np.ndarray]: Name -> array (read-only by convention: shared between tests).
    """
    return _load(COMPACT if which == 'compact' else shared_file('reference_small.npz'))


def seeded_state_dict(model, seed):
    """Weights of the compact set's recipe: a seeded normal draw per tensor, over the sorted state-dict keys.

    Args:
        model (nn.Module): Network whose ``state_dict()`` keys and shapes are filled.
        seed (int): Seed of ``numpy.random.default_rng``.

    Returns:
        dict[str, Tensor]: float32 state dict.
    """
    rng = np.random.default_rng(seed)
    own = model.state_dict()
    state = {}
    for key in sorted(own):
        shape = tuple(own[key].shape)
        if len(shape) >= 2:
            w = rng.standard_normal(shape) / math.sqrt(math.prod(shape[1:]))
        elif key.endswith('weight'):
            w = 1 + 0.1 * rng.standard_normal(shape)
        else:
            w = 0.1 * rng.standard_normal(shape)
        state[key] = torch.from_numpy(np.asarray(w, dtype=np.float32))
    return state


def reference_network(which, name):
    """The network of a reference case with its reference weights, in eval mode.

    Args:
        which (str): ``'compact'`` (weights rebuilt from the seed) or ``'shared'`` (weights stored).
        name (str): ``'efnet'``, ``'ll_aps'`` or ``'ll_rgb'``.

    Returns:
        nn.Module: The network.
    """
    data = load_reference(which)
    build, seed_offset = NETWORKS[name]
    net = build()
    if which == 'compact':
        state = seeded_state_dict(net, int(data['seed']) + seed_offset)
    else:
        prefix = f'{name}_sd/'
        state = {k[len(prefix):]: torch.from_numpy(data[k]) for k in data if k.startswith(prefix)}
    net.load_state_dict(state, strict=True)
    return net.eval()


def assert_matches_reference(out, ref, what, rel=NETWORK_REL_TOL):
    """Asserts a network output equals the recorded one within the golden tolerance.

    Args:
        out (Tensor): Our output.
        ref (np.ndarray | Tensor): Recorded output.
        what (str): Name used in the failure message.
        rel (float): Tolerance relative to ``1 + max |ref|``. Default: ``NETWORK_REL_TOL``.
    """
    assert_close_scaled(out, ref, rel, what)
