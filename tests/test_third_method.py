"""A third network plugs in with one file: declared in a module of its own outside the repository, registered by
importing it, it is trained (``basicsr/train.py`` through ``train_pipeline``), evaluated (``test_pipeline``) and
run on a recording (``basicsr.infer.cli``) end to end, with no file of the project changed.

The module is the kind an extension package holds: a network with its own ``io`` (other argument and output names
than EFNet's), its own event representation (a 5-bin voxel grid, max-abs normalised) declared in
``inference_spec``, and how to recognise its checkpoints. The runs are the extension's own entry scripts, as the
README's "Registries" paragraph describes.
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import yaml

from basicsr.archs.method_spec import method_spec
from basicsr.deblur import deblur_recording, inference_methods, load_method
from basicsr.events import EventStream, Frame, write_event_h5
from basicsr.utils.registry import ARCH_REGISTRY
from pipeline_utils import REPO_ROOT, env

NAME = 'VoxelSkipNet'
H, W = 17, 29  # not a multiple of the network's 2: inference pads and crops back
EXPOSURES = [(0.02, 0.08), (0.12, 0.18)]

MODULE = f'''
"""A tiny event-deblurring network of an extension package: frame + 5-bin voxel grid -> residual."""
import torch
from torch import nn
from torch.nn import functional as F

from basicsr.archs.method_spec import ImageInput, MethodSpec
from basicsr.events.event_input import EventInputSpec
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class {NAME}(nn.Module):
    io = {{'inputs': {{'blurry': 'frame', 'voxels': 'voxel'}}, 'outputs': ['restored'], 'result': 'restored',
          'gt': 'frame_gt'}}
    size_multiple = 2
    checkpoint_keys = ('skip_head', 'skip_tail')

    def __init__(self, bins=5, width=8):
        super().__init__()
        self.bins, self.width = bins, width
        self.skip_head = nn.Conv2d(3 + bins, width, 3, padding=1)
        self.skip_tail = nn.Conv2d(width, 3, 3, padding=1)

    @classmethod
    def inference_spec(cls, options):
        voxel = EventInputSpec({{'type': 'voxel_grid', 'num_bins': int(options['bins']), 'normalize': 'maxabs'}})
        return MethodSpec(cls.__name__, voxel, (ImageInput('frame', channels=3), ), cls.size_multiple,
                          checkpoint_keys=cls.checkpoint_keys)

    @classmethod
    def options_from_state_dict(cls, state):
        shape = state['skip_head.weight'].shape
        return {{'width': int(shape[0]), 'bins': int(shape[1]) - 3}}

    def forward(self, blurry, voxels):
        assert blurry.shape[-2] % 2 == 0 and blurry.shape[-1] % 2 == 0, 'inputs must be padded to even sizes'
        feat = F.relu(self.skip_head(torch.cat([blurry, voxels], 1)))
        feat = F.interpolate(F.avg_pool2d(feat, 2), scale_factor=2)
        return blurry + self.skip_tail(feat)
'''

ENTRY = '''
"""Entry script of the extension: registers its network, then runs a basicsr command."""
import os.path as osp
import sys

import voxel_skip  # noqa: F401  (registers the network)

if __name__ == '__main__':
    root = osp.dirname(osp.abspath(__file__))
    command = sys.argv.pop(1)
    if command == 'train':
        from basicsr.train import train_pipeline
        train_pipeline(root)
    elif command == 'test':
        from basicsr.test import test_pipeline
        test_pipeline(root)
    else:
        from basicsr.infer import cli
        cli()
'''


@pytest.fixture
def extension(tmp_path):
    """The extension package's folder with the network module and the entry script; the network is registered in
    this process too for the API (and removed again afterwards)."""
    folder = tmp_path / 'ext'
    folder.mkdir()
    (folder / 'voxel_skip.py').write_text(textwrap.dedent(MODULE))
    (folder / 'run.py').write_text(textwrap.dedent(ENTRY))
    spec = importlib.util.spec_from_file_location('voxel_skip', folder / 'voxel_skip.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield folder
    finally:
        ARCH_REGISTRY.unregister(NAME)


def _options(kind, root, event_repr, weights=None):
    """A tiny synthetic recipe for the network, from the repository's synthetic EFNet option file."""
    with open(REPO_ROOT / 'options' / kind / 'Synthetic' / 'EFNet_tiny.yml', encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt.update(name=f'{NAME}_{kind}', num_gpu=0)
    opt['network_g'] = {'type': NAME, 'bins': 5, 'width': 8}
    opt['path'] = {'root': str(root), 'pretrain_network_g': weights, 'strict_load_g': True, 'resume_state': None}
    for name, dataset in opt['datasets'].items():
        dataset.update(event_repr=event_repr, return_mask=False, use_mask=False, num_samples=2 if kind == 'test'
                       else 4, size=[32, 40] if name != 'train' else [32, 32])
    if kind == 'train':
        opt['train'].update(total_iter=4, scheduler={'type': 'TrueCosineAnnealingLR', 'T_max': 4, 'eta_min': 1e-6})
        opt['train'].pop('pixel_opt')
        opt['train']['losses'] = [{'type': 'L1Loss', 'loss_weight': 1.0}]
        opt['val'].update(val_freq=4)
        opt['logger'].update(print_freq=1, save_checkpoint_freq=4, use_tb_logger=False)
    path = root / f'{kind}.yml'
    path.write_text(yaml.safe_dump(opt))
    return path


def _run(folder, *args):
    environment = env()
    environment['PYTHONPATH'] = os.pathsep.join([str(REPO_ROOT), str(folder)])
    proc = subprocess.run([sys.executable, str(folder / 'run.py'), *map(str, args)], cwd=folder, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _recording(path):
    """A tiny h5 recording with two frames and their exposure windows; returns the frames."""
    rng = np.random.default_rng(0)
    n = 3000
    t = np.sort(rng.uniform(0, 0.2, n))
    stream = EventStream.from_arrays(rng.integers(0, W, n), rng.integers(0, H, n), t, rng.choice([-1, 1], n), H, W)
    frames = [Frame(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (t0 + t1) / 2, t0, t1) for t0, t1 in EXPOSURES]
    write_event_h5(path, stream, frames=frames)
    return [f.image for f in frames]


def test_third_network_trains_tests_and_deblurs_a_recording(extension, tmp_path):
    spec = method_spec(NAME)
    assert NAME in inference_methods() and spec.events.event_repr['num_bins'] == 5
    event_repr = spec.events.event_repr  # the datasets get the representation the network declares

    _run(extension, 'train', '-opt', _options('train', tmp_path, event_repr))
    weights = tmp_path / 'experiments' / f'{NAME}_train' / 'models' / 'net_g_latest.pth'
    assert weights.is_file()

    _run(extension, 'test', '-opt', _options('test', tmp_path, event_repr, str(weights)))
    metrics = tmp_path / 'results' / f'{NAME}_test' / 'synthetic-test_metrics.csv'
    rows = metrics.read_text().splitlines()
    assert rows[0].startswith('image,') and rows[-1].startswith('mean,') and len(rows) == 2 + 2

    recording = tmp_path / 'rec.h5'
    frames = _recording(recording)
    out = tmp_path / 'infer'
    _run(extension, 'infer', '--events', recording, '--method', NAME, '--checkpoint', weights, '--out', out, '--no-progress')
    written = sorted(os.listdir(out / 'sharp'))
    assert written == ['000000.png', '000001.png']

    # The same run through the API in this process: the checkpoint is recognised as the third network's, the
    # results agree with the command line's (same computation in two processes; uint8 values may differ by one
    # level where a float lands on a rounding boundary).
    net = load_method(NAME, str(weights))
    assert (net.bins, net.width) == (5, 8)
    api = deblur_recording(str(recording), str(tmp_path / 'api'), NAME, net, progress=False)
    for row in api:
        cli_png = cv2.imread(str(out / 'sharp' / f'{row["name"]}.png'), cv2.IMREAD_UNCHANGED)
        api_png = cv2.imread(row['sharp'], cv2.IMREAD_UNCHANGED)
        assert cli_png.shape == (H, W, 3)
        assert np.abs(cli_png.astype(int) - api_png.astype(int)).max() <= 1
        # the network's output, not the frame: its residual changes the pixels
        assert np.abs(cli_png.astype(int) - frames[int(row['name'])].astype(int)).max() > 1
