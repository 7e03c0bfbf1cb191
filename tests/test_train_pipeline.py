"""train.py and test.py run as a user runs them: outputs, resume after SIGKILL, bad input, NaN loss."""
import csv
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from basicsr.models.base_model import CheckpointError, load_checkpoint
from basicsr.utils.misc import atomic_torch_save
from pipeline_utils import REPO_ROOT, TEST_OPT, env, load_params, max_param_diff, run, train_cmd


def exp_dir(root, name):
    return root / 'experiments' / name


def test_train_then_test_writes_the_basicsr_layout(tmp_path):
    run(train_cmd(tmp_path, 'layout', ['train:total_iter=4', 'logger:save_checkpoint_freq=2',
                                       'val:val_freq=2', 'val:save_img=true', 'logger:use_tb_logger=true']))
    exp = exp_dir(tmp_path, 'layout')
    models = sorted(p.name for p in (exp / 'models').iterdir())
    assert models == ['net_g_2.pth', 'net_g_4.pth', 'net_g_latest.pth']
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['2.state', '4.state']
    ckpt = torch.load(exp / 'models' / 'net_g_latest.pth', weights_only=True)
    assert list(ckpt) == ['params'] and not any(k.startswith('module.') for k in ckpt['params'])
    state = load_checkpoint(str(exp / 'training_states' / '4.state'))
    assert state['iter'] == 4 and len(state['optimizers']) == 1 and len(state['schedulers']) == 1
    copied = (exp / 'EFNet_tiny.yml').read_text().splitlines()
    assert copied[0].startswith('# GENERATE TIME:') and copied[1] == '# CMD:'
    log = next(exp.glob('train_layout_*.log')).read_text()
    assert 'iter:       4' in log and 'l_pix' in log and 'eta:' in log and '# psnr:' in log
    assert 'Notice: calculate_ssim is the standard (2-D) SSIM' in log  # EFNet option files meet the 3-D variant
    assert (exp / 'visualization' / 'synthetic_0000' / 'synthetic_0000_4.png').is_file()
    assert list((tmp_path / 'tb_logger' / 'layout').glob('events.out.tfevents.*'))

    weights = exp / 'models' / 'net_g_latest.pth'
    run([sys.executable, str(REPO_ROOT / 'basicsr' / 'test.py'), '-opt', str(TEST_OPT), '--force_yml', 'name=layout',
         f'path:root={tmp_path}', f'path:pretrain_network_g={weights}', 'network_g:wf=8',
         'datasets:test:num_samples=3', 'datasets:test:size=[30, 46]', 'val:save_panels=true'])
    res = tmp_path / 'results' / 'layout'
    images = sorted(p.name for p in (res / 'visualization' / 'synthetic-test').iterdir() if 'panel' not in p.name)
    assert images == ['synthetic_0000.png', 'synthetic_0001.png', 'synthetic_0002.png']
    panel = cv2.imread(str(res / 'visualization' / 'synthetic-test' / 'synthetic_0000_panel.png'))
    assert panel.shape[0] == 30 + 18 and panel.shape[1] == 4 * 46 + 3 * 4  # blurry | events | output | sharp
    rows = list(csv.reader(open(res / 'synthetic-test_metrics.csv')))
    assert rows[0] == ['image', 'psnr', 'ssim'] and [r[0] for r in rows[1:]] == [
        'synthetic_0000', 'synthetic_0001', 'synthetic_0002', 'mean']
    assert abs(sum(float(r[1]) for r in rows[1:4]) / 3 - float(rows[4][1])) < 1e-5
    assert 'synthetic-test' in next(res.glob('test_layout_*.log')).read_text()


def test_sigkill_and_auto_resume_equals_uninterrupted_run(tmp_path):
    overrides = ['train:total_iter=40', 'logger:save_checkpoint_freq=4', 'val:val_freq=~',
                 'datasets:val:num_samples=1']
    run(train_cmd(tmp_path / 'a', 'run', overrides))
    reference = load_params(exp_dir(tmp_path / 'a', 'run') / 'models' / 'net_g_latest.pth')

    root = tmp_path / 'b'
    states = exp_dir(root, 'run') / 'training_states'
    proc = subprocess.Popen(train_cmd(root, 'run', overrides), cwd=REPO_ROOT, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (states.is_dir() and any(p.suffix == '.state' for p in states.iterdir())):
        assert proc.poll() is None and time.time() < deadline, 'the run ended before writing a state'
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    models = exp_dir(root, 'run') / 'models'
    assert not (models / 'net_g_latest.pth').exists(), 'the kill must interrupt the run'
    for path in list(models.glob('*.pth')) + list(states.glob('*.state')):
        load_checkpoint(str(path))  # nothing truncated under a final name

    run(train_cmd(root, 'run', overrides, extra=['--auto_resume']))
    log = '\n'.join(p.read_text() for p in exp_dir(root, 'run').glob('train_run_*.log'))
    assert 'Resuming training from epoch' in log
    resumed = load_params(models / 'net_g_latest.pth')
    assert max_param_diff(reference, resumed) < 1e-6


def test_atomic_save_keeps_the_previous_file_when_the_write_dies(tmp_path, monkeypatch):
    path = tmp_path / 'net_g_4.pth'
    atomic_torch_save({'params': {'w': torch.ones(3)}}, path)

    def dying_save(obj, f):
        open(f, 'wb').write(b'PK\x03\x04 half a zip')
        raise KeyboardInterrupt('killed during the write')

    monkeypatch.setattr(torch, 'save', dying_save)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({'params': {'w': torch.zeros(3)}}, path)
    assert torch.equal(load_params(path)['w'], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ['net_g_4.pth']


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path):
    run(train_cmd(tmp_path, 'nan', ['train:total_iter=2', 'logger:save_checkpoint_freq=2', 'val:val_freq=~']))
    good = exp_dir(tmp_path, 'nan') / 'models' / 'net_g_2.pth'
    before = load_params(good)
    proc = run(train_cmd(tmp_path, 'nan', ['train:total_iter=6', 'logger:save_checkpoint_freq=2',
                                           'train:pixel_opt:loss_weight=.nan'], extra=['--auto_resume']),
               check=False)
    assert proc.returncode == 1
    assert 'Loss is nan at iteration 3' in proc.stderr and 'is intact' in proc.stderr
    assert max_param_diff(before, load_params(good)) == 0
    assert not (good.parent / 'net_g_4.pth').exists()


@pytest.mark.parametrize('override, message', [
    ('network_g:type=EFNett', "No object named 'EFNett' found in 'arch' registry! Did you mean: EFNet"),
    ('datasets:train:type=H5ImageDatset', "in 'dataset' registry"),
    ('train:pixel_opt:type=PSNRLos', 'Did you mean: PSNRLoss'),
    ('val:metrics:psnr:type=calc_psnr', "in 'metric' registry"),
    ('train:optim_g:type=Adamm', "train:optim_g:type 'Adamm' is not supported"),
    ('train:optim_g:lr=fast', 'train:optim_g:lr must be a number'),
    ('train:nosuch:lr=1', "no option 'train:nosuch'"),
    ('datasets:train:type=H5ImageDataset', 'option "dataroot" is required'),
    (('datasets:train:type=H5ImageDataset', 'datasets:train:dataroot=/no/such/folder'),
     'not found: /no/such/folder'),
])
def test_bad_options_fail_with_a_clear_message(tmp_path, override, message):
    overrides = [override] if isinstance(override, str) else list(override)
    proc = run(train_cmd(tmp_path, 'bad', ['train:total_iter=1', 'val:val_freq=1', *overrides]), check=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr[-3000:]
    assert not list((tmp_path / 'experiments').rglob('*.pth')), 'nothing is written for bad options'


def test_ema_weights_are_saved_beside_the_weights(tmp_path):
    run(train_cmd(tmp_path, 'ema', ['train:total_iter=3', 'logger:save_checkpoint_freq=3', 'val:val_freq=~',
                                    'datasets:val:num_samples=1', 'train:ema_decay=0.5']))
    ckpt = torch.load(tmp_path / 'experiments' / 'ema' / 'models' / 'net_g_3.pth', weights_only=True)
    assert sorted(ckpt) == ['params', 'params_ema'] and ckpt['params'].keys() == ckpt['params_ema'].keys()
    diff = max(float((ckpt['params'][k] - ckpt['params_ema'][k]).abs().max()) for k in ckpt['params'])
    assert diff > 0, 'the EMA copy trails the trained weights'


def test_bad_checkpoints_are_named(tmp_path):
    truncated = tmp_path / 'truncated.pth'
    atomic_torch_save({'params': {'w': torch.ones(1000)}}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    proc = run(train_cmd(tmp_path, 'ckpt', ['train:total_iter=1', f'path:pretrain_network_g={truncated}']),
               check=False)
    assert proc.returncode == 1 and 'Cannot read checkpoint' in proc.stderr and str(truncated) in proc.stderr

    other = tmp_path / 'other.pth'
    atomic_torch_save({'params': {'conv.weight': torch.ones(1)}}, other)
    proc = run(train_cmd(tmp_path, 'ckpt2', ['train:total_iter=1', f'path:pretrain_network_g={other}']),
               check=False)
    assert proc.returncode == 1 and 'does not match EFNet' in proc.stderr
    assert 'unexpected keys (1): conv.weight' in proc.stderr and 'missing keys' in proc.stderr
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint(str(tmp_path / 'none.pth'))


def test_yaml_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / 'bad.yml'
    bad.write_text('name: x\nnetwork_g: {type: EFNet\n')
    proc = run([sys.executable, str(REPO_ROOT / 'basicsr' / 'train.py'), '-opt', str(bad)], check=False)
    assert proc.returncode == 1 and f'YAML syntax error in {bad} at line' in proc.stderr
    proc = run([sys.executable, str(REPO_ROOT / 'basicsr' / 'test.py'), '-opt', str(tmp_path / 'none.yml')], check=False)
    assert proc.returncode == 1 and 'Option file not found' in proc.stderr


def test_debug_run_is_short_and_leaves_a_checkpoint(tmp_path):
    """``--debug`` on a 1000-iteration recipe stops after 8 iterations with a validation and one checkpoint."""
    run(train_cmd(tmp_path, 'dbg', ['train:total_iter=1000', 'logger:save_checkpoint_freq=2', 'val:val_freq=1000'],
                  extra=['--debug']))
    exp = exp_dir(tmp_path, 'debug_dbg')
    assert sorted(p.name for p in (exp / 'models').iterdir()) == ['net_g_8.pth', 'net_g_latest.pth']
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['8.state']
    assert load_checkpoint(str(exp / 'training_states' / '8.state'))['iter'] == 8
    log = next(exp.glob('train_debug_dbg_*.log')).read_text()
    assert 'iters: 8.' in log and 'iter:       8' in log and 'iter:       9' not in log and '# psnr:' in log
    assert not (tmp_path / 'tb_logger').exists()


def test_failed_test_run_keeps_earlier_results(tmp_path):
    """test.py archives an earlier results folder only once datasets and network are known good."""
    import yaml

    from basicsr.archs import build_network
    earlier = tmp_path / 'results' / 'keep'
    earlier.mkdir(parents=True)
    (earlier / 'scores.csv').write_text('earlier scores')
    base = [sys.executable, str(REPO_ROOT / 'basicsr' / 'test.py'), '-opt', str(TEST_OPT), '--force_yml', 'name=keep',
            f'path:root={tmp_path}', 'network_g:wf=8', 'datasets:test:num_samples=2', 'datasets:test:size=[24, 32]']
    wrong = tmp_path / 'wrong.pth'
    atomic_torch_save({'params': {'conv.weight': torch.ones(1)}}, wrong)
    for ckpt in (tmp_path / 'missing.pth', wrong):
        proc = run(base + [f'path:pretrain_network_g={ckpt}'], check=False)
        assert proc.returncode == 1 and 'Testing stopped' in proc.stderr
        assert [p.name for p in (tmp_path / 'results').iterdir()] == ['keep']
        assert [p.name for p in earlier.iterdir()] == ['scores.csv']

    net_opt = dict(yaml.safe_load(TEST_OPT.read_text())['network_g'], wf=8)
    good = tmp_path / 'good.pth'
    atomic_torch_save({'params': build_network(net_opt).state_dict()}, good)
    run(base + [f'path:pretrain_network_g={good}'])
    archived = [p for p in (tmp_path / 'results').iterdir() if p.name.startswith('keep_archived_')]
    assert len(archived) == 1 and (archived[0] / 'scores.csv').read_text() == 'earlier scores'
    log = next(earlier.glob('test_keep_*.log')).read_text()
    assert 'Number of test images in synthetic-test: 2' in log and 'Loaded EFNet weights' in log


def test_console_is_quiet_and_shows_an_early_eta(tmp_path):
    """Options and environment go to the log file only (one console line says where); with ``print_freq`` 100 a
    first progress line with an ETA still comes after 5 iterations."""
    proc = run(train_cmd(tmp_path, 'quiet', ['train:total_iter=7', 'logger:print_freq=100',
                                             'logger:save_checkpoint_freq=100', 'val:val_freq=100']))
    console = proc.stdout + proc.stderr
    log_file = next(exp_dir(tmp_path, 'quiet').glob('train_quiet_*.log'))
    log = log_file.read_text()
    for dump_line in ('  network_g:[', '    wf: 8', 'Version Information:'):
        assert dump_line in log and dump_line not in console
    assert f'Options and environment: {log_file}' in console
    progress = [line for line in console.splitlines() if 'eta:' in line]
    assert len(progress) == 1 and 'iter:       5' in progress[0]


def test_tensorboard_holds_metrics_learning_rate_and_panels(tmp_path):
    """A run with TensorBoard writes losses, the learning rate, validation metrics per dataset and at most
    ``val.tb_images`` validation panels (blurry | events | output | sharp) at each validation."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run(train_cmd(tmp_path, 'tb', ['train:total_iter=4', 'val:val_freq=2', 'val:tb_images=2',
                                   'logger:save_checkpoint_freq=100', 'logger:use_tb_logger=true']))
    events = EventAccumulator(str(tmp_path / 'tb_logger' / 'tb'), size_guidance={'images': 0, 'scalars': 0})
    events.Reload()
    scalars, images = events.Tags()['scalars'], events.Tags()['images']
    assert {'losses/l_pix', 'learning_rate', 'metrics/synthetic-val/psnr', 'metrics/synthetic-val/ssim'} <= set(scalars)
    assert [e.step for e in events.Scalars('metrics/synthetic-val/psnr')] == [2, 4]
    assert [e.step for e in events.Scalars('learning_rate')] == [1, 2, 3, 4]
    assert events.Scalars('learning_rate')[0].value > 0
    assert images == ['val/synthetic-val/synthetic_0000', 'val/synthetic-val/synthetic_0001']
    for tag in images:
        shots = events.Images(tag)
        assert [s.step for s in shots] == [2, 4]
        panel = cv2.imdecode(np.frombuffer(shots[0].encoded_image_string, np.uint8), cv2.IMREAD_COLOR)
        assert panel.shape[:2] == (32 + 18, 4 * 40 + 3 * 4)  # 32×40 val frames: blurry | events | output | sharp
