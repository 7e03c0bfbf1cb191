"""EFNet end to end through the real option files: GoPro-style training -> REBlur fine-tuning -> testing."""
import csv
import sys

import numpy as np
import pytest
import torch

from basicsr.events import efnet_frame, event_mask, scer, write_efnet_h5
from basicsr.synthesis.blur_synthesis import event_blur_sample, linear_trajectory
from basicsr.data.synthetic_event_dataset import random_texture
from pipeline_utils import REPO_ROOT, run

TINY_EFNET = ['network_g:wf=8', 'logger:use_tb_logger=false', 'logger:print_freq=1', 'num_gpu=0']


def write_sequences(folder, names, num, size, seed):
    """EFNet processed h5 files of simulated blur (one per sequence name)."""
    folder.mkdir(parents=True)
    for s, name in enumerate(names):
        frames, sharps, voxels, masks = [], [], [], []
        for k in range(num):
            rng = np.random.default_rng([seed, s, k])
            sample = event_blur_sample(random_texture(rng, *size), linear_trajectory(rng.uniform(-5, 5, 2), 9), rng)
            ev = sample['events']
            voxel = scer(ev.x, ev.y, ev.t, ev.p, 6, *size)
            frames.append(efnet_frame((sample['blur'] * 255).round().astype(np.uint8)))
            sharps.append(efnet_frame((sample['sharp'] * 255).round().astype(np.uint8)))
            voxels.append(voxel)
            masks.append(event_mask(voxel))
        write_efnet_h5(folder / f'{name}.h5', frames, sharps, voxels, masks, size)
    return folder


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('efnet_data')
    return {'gopro': write_sequences(root / 'gopro', ['GOPR0001', 'GOPR0002'], 3, (32, 40), 0),
            'reblur_train': write_sequences(root / 'reblur_train', ['seqA'], 3, (32, 40), 1),
            'reblur_test': write_sequences(root / 'reblur_test', ['seqB', 'seqC'], 2, (30, 46), 2)}


def train(opt, root, name, overrides, check=True):
    cmd = [sys.executable, str(REPO_ROOT / 'basicsr' / 'train.py'), '-opt', str(REPO_ROOT / opt), '--force_yml',
           f'name={name}', f'path:root={root}', *TINY_EFNET, *overrides]
    return run(cmd, check=check)


def test_gopro_train_reblur_finetune_and_test(tmp_path, data):
    loader = ['datasets:train:crop_size=32', 'datasets:train:batch_size_per_gpu=2',
              'datasets:train:num_worker_per_gpu=0']
    train('options/train/GoPro/EFNet.yml', tmp_path, 'gopro', loader + [
        f'datasets:train:dataroot={data["gopro"]}', f'datasets:val:dataroot={data["reblur_test"]}',
        'train:total_iter=4', 'train:scheduler:T_max=4', 'logger:save_checkpoint_freq=2', 'val:val_freq=4',
        # leftovers of the original EFNet option files must not stop a run
        'logger:wandb:project=your_project_name', 'logger:wandb:resume_id=x', 'path:training_states=~'])
    gopro = tmp_path / 'experiments' / 'gopro' / 'models' / 'net_g_latest.pth'
    assert gopro.is_file()
    log = next((tmp_path / 'experiments' / 'gopro').glob('train_gopro_*.log')).read_text()
    assert '# ssim_3d:' in log and 'Number of train images: 6' in log
    assert 'wandb logging is not supported here' in log

    finetune = ['options/train/REBlur/Finetune_EFNet.yml', tmp_path]
    proc = train(*finetune, 'scratch', loader + [f'datasets:train:dataroot={data["reblur_train"]}',
                                                 f'datasets:val:dataroot={data["reblur_test"]}',
                                                 'path:pretrain_network_g=~'], check=False)
    assert proc.returncode == 1 and 'train:require_pretrained is set' in proc.stderr

    train(*finetune, 'reblur', loader + [
        f'datasets:train:dataroot={data["reblur_train"]}', f'datasets:val:dataroot={data["reblur_test"]}',
        f'path:pretrain_network_g={gopro}', 'train:total_iter=2', 'train:scheduler:T_max=2', 'val:val_freq=2'])
    log = next((tmp_path / 'experiments' / 'reblur').glob('train_reblur_*.log')).read_text()
    assert f'Loaded EFNet weights from {gopro}' in log
    start = torch.load(gopro, weights_only=True)['params']
    tuned = torch.load(tmp_path / 'experiments' / 'reblur' / 'models' / 'net_g_latest.pth', weights_only=True)['params']
    assert any(not torch.equal(start[k], tuned[k]) for k in start), 'fine-tuning must change the weights'

    weights = tmp_path / 'experiments' / 'reblur' / 'models' / 'net_g_latest.pth'
    run([sys.executable, str(REPO_ROOT / 'basicsr' / 'test.py'), '-opt', str(REPO_ROOT / 'options/test/REBlur/EFNet.yml'),
         '--force_yml', 'name=reblur_test', f'path:root={tmp_path}', f'path:pretrain_network_g={weights}',
         f'datasets:test:dataroot={data["reblur_test"]}', 'network_g:wf=8', 'num_gpu=0'])
    res = tmp_path / 'results' / 'reblur_test'
    saved = sorted(str(p.relative_to(res / 'visualization' / 'reblur-test')) for p in res.rglob('*.png'))
    assert saved == ['seqB/0000.png', 'seqB/0001.png', 'seqC/0000.png', 'seqC/0001.png']
    rows = list(csv.reader(open(res / 'reblur-test_metrics.csv')))
    assert rows[0] == ['image', 'psnr', 'ssim', 'ssim_3d'] and len(rows) == 6
