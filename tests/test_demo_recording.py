"""The demo's raw-event recordings: the test set's frames and events, and ``infer.py`` on them agrees with
``test.py`` on the test set."""
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest
import torch

from basicsr.archs.efnet_arch import EFNet
from basicsr.events import H5EventReader, scer
from basicsr.metrics import calculate_psnr
from pipeline_utils import REPO_ROOT, env
from test_demo import load_demo

SCENE = 'chelsea'


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    """The quick demo's data (train, test and recordings), made once for this module."""
    demo = load_demo()
    root = tmp_path_factory.mktemp('demo_data')
    demo.make_data(str(root), dict(demo.QUICK), 0)
    return demo, root


def run(cmd):
    proc = subprocess.run([sys.executable, *map(str, cmd)], cwd=REPO_ROOT, env=env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_recording_holds_the_test_frames_and_their_events(demo_data):
    demo, root = demo_data
    assert sorted(p.name for p in (root / 'recording').iterdir()) == sorted(f'{s}.h5' for s in demo.SOURCES['test'])
    with h5py.File(root / 'test' / f'{SCENE}.h5', 'r') as test_set, \
            H5EventReader(root / 'recording' / f'{SCENE}.h5') as rec:
        n = len(test_set['images'])
        assert rec.num_frames('images') == rec.num_frames('sharp_images') == n == demo.QUICK['test_per_source']
        assert tuple(rec.attrs['sensor_resolution']) == tuple(demo.QUICK['test_size'])
        ends = []
        for k in range(n):
            blurry, sharp = rec.read_frame(k), rec.read_frame(k, 'sharp_images')
            np.testing.assert_array_equal(blurry.image.transpose(2, 0, 1), test_set[f'images/image{k:09d}'][()])
            np.testing.assert_array_equal(sharp.image.transpose(2, 0, 1), test_set[f'sharp_images/image{k:09d}'][()])
            assert blurry.exposure == pytest.approx((k * demo.FRAME_PERIOD, k * demo.FRAME_PERIOD + demo.EXPOSURE))
            assert blurry.exposure_start < blurry.timestamp < blurry.exposure_end
            # the exposure window holds exactly the events the test set's SCER was computed from
            ev = rec.read_window(*blurry.exposure, closed='both')
            assert len(ev) > 100
            voxel = scer(ev.x, ev.y, ev.t, ev.p, demo.QUICK['num_bins'], ev.height, ev.width)
            np.testing.assert_array_equal(voxel, test_set[f'voxels/voxel{k:09d}'][()])
            ends.append(rec.searchsorted(blurry.exposure_end, 'right'))
        assert ends[-1] == len(rec), 'every event of the recording lies in an exposure window'


@pytest.mark.numerics  # .ci/run repeats these on other CPU kernel paths
def test_infer_on_the_recording_matches_test_py(demo_data, tmp_path):
    demo, root = demo_data
    torch.manual_seed(0)
    checkpoint = tmp_path / 'efnet.pth'
    torch.save({'params': EFNet(wf=8).state_dict()}, checkpoint)  # random weights: any output will do
    run(['basicsr/test.py', '-opt', 'options/test/Demo/EFNet.yml', '--force_yml', f'path:root={tmp_path}',
         'name=rec_check', f'datasets:test:dataroot={root / "test"}', f'path:pretrain_network_g={checkpoint}',
         'network_g:wf=8'])
    out = tmp_path / 'infer'
    run(['basicsr/infer.py', '--events', root / 'recording' / f'{SCENE}.h5', '--method', 'EFNet', '--checkpoint',
         checkpoint, '--out', out, '--no-progress'])
    for k in range(demo.QUICK['test_per_source']):
        expected = cv2.imread(str(tmp_path / 'results' / 'rec_check' / 'visualization' / 'demo-test' / SCENE /
                                  f'{k:04d}.png')).astype(np.int16)
        got = cv2.imread(str(out / 'sharp' / f'{k:06d}.png')).astype(np.int16)
        assert got.shape == expected.shape
        # Same weights and bit-identical inputs (frame and SCER of the same events), but two code paths (the test
        # loader's batch and padding vs infer.py's): their float outputs agree to ~1e-6, so a pixel may only round
        # to the neighbouring 8-bit level where its value sits at a rounding boundary: at most 1 level, rarely.
        diff = np.abs(got - expected)
        assert diff.max() <= 1, f'frame {k}: largest difference {diff.max()} levels'
        assert (diff > 0).mean() < 0.01, f'frame {k}: {(diff > 0).mean():.2%} of the values differ'


def test_edi_on_the_recording(demo_data, tmp_path):
    demo, root = demo_data
    recording = root / 'recording' / f'{SCENE}.h5'
    out = tmp_path / 'edi'
    run(['basicsr/infer.py', '--events', recording, '--method', 'EDI', '--out', out, '--no-progress'])
    n = demo.QUICK['test_per_source']
    for kind in ('sharp', 'events', 'panel'):
        assert sorted(p.name for p in (out / kind).iterdir()) == [f'{k:06d}.png' for k in range(n)]
    rows = (out / 'thresholds.csv').read_text().splitlines()
    assert len(rows) == n + 1 and all(',joint,' in row for row in rows[1:])  # estimated over the recording
    gain = []
    with h5py.File(recording, 'r') as f:
        for k in range(n):
            sharp = f[f'sharp_images/image{k:09d}'][()]
            blurry = f[f'images/image{k:09d}'][()]
            edi = cv2.imread(str(out / 'sharp' / f'{k:06d}.png'))
            gain.append(calculate_psnr(edi, sharp, 0) - calculate_psnr(blurry, sharp, 0))
    assert np.mean(gain) > 1.0, f'EDI on simulated events must beat the blurry input; PSNR gains {gain}'
