"""DistributedDataParallel on CPU (gloo): torchrun and the legacy launcher, equivalence with one process."""
import re
import subprocess

import pytest
import torch.distributed as dist

from pipeline_utils import REPO_ROOT, TEST_OPT, env, free_port, load_params, max_param_diff, run, train_cmd

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason='torch.distributed with gloo is not available')


def val_psnr(root, name):
    log = next((root / 'experiments' / name).glob(f'train_{name}_*.log')).read_text()
    return [float(v) for v in re.findall(r'# psnr: ([0-9.]+)', log)]


def test_two_gloo_processes_equal_one_process_with_double_batch(tmp_path):
    common = ['train:total_iter=4', 'logger:save_checkpoint_freq=4', 'val:val_freq=~', 'datasets:val:num_samples=3',
              'dist_params:backend=gloo']
    run(train_cmd(tmp_path / 'single', 'run', common + ['datasets:train:batch_size_per_gpu=4']))
    run(train_cmd(tmp_path / 'ddp', 'run', common + ['datasets:train:batch_size_per_gpu=2'], launcher='torchrun'))
    single = load_params(tmp_path / 'single' / 'experiments' / 'run' / 'models' / 'net_g_latest.pth')
    ddp = load_params(tmp_path / 'ddp' / 'experiments' / 'run' / 'models' / 'net_g_latest.pth')
    assert max_param_diff(single, ddp) < 1e-5
    # validation of 3 images sharded over 2 ranks, gathered on rank 0: the same mean PSNR
    single_psnr, ddp_psnr = val_psnr(tmp_path / 'single', 'run'), val_psnr(tmp_path / 'ddp', 'run')
    assert len(single_psnr) == len(ddp_psnr) == 1 and abs(single_psnr[0] - ddp_psnr[0]) < 1e-3
    log = next((tmp_path / 'ddp' / 'experiments' / 'run').glob('train_run_*.log')).read_text()
    assert 'World size (gpu number): 2' in log


def test_legacy_launcher_passes_local_rank_and_trains(tmp_path):
    run(train_cmd(tmp_path, 'legacy', ['train:total_iter=2', 'logger:save_checkpoint_freq=2', 'val:val_freq=~',
                                       'datasets:val:num_samples=2', 'datasets:train:batch_size_per_gpu=2'],
                  launcher='legacy'))
    assert (tmp_path / 'experiments' / 'legacy' / 'models' / 'net_g_latest.pth').is_file()


def test_dist_test_script_shards_and_gathers_every_image(tmp_path):
    cmd = ['bash', str(REPO_ROOT / 'scripts' / 'dist_test.sh'), '2', str(TEST_OPT), '--force_yml', 'name=dtest',
           f'path:root={tmp_path}', 'path:pretrain_network_g=~', 'network_g:wf=8', 'datasets:test:num_samples=3',
           'datasets:test:size=[24, 32]']
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=dict(env(), PORT=str(free_port())), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = (tmp_path / 'results' / 'dtest' / 'synthetic-test_metrics.csv').read_text().splitlines()
    assert [r.split(',')[0] for r in rows[1:]] == ['synthetic_0000', 'synthetic_0001', 'synthetic_0002', 'mean']
    assert len(list((tmp_path / 'results' / 'dtest' / 'visualization' / 'synthetic-test').glob('*.png'))) == 3
