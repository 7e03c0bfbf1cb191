"""Reliability promises of training and the framework (docs/reliability.md, "Training and the framework").

Each test injects one fault (a stalled peer, an option typo, a NaN loss, a validation setting, a killed save, a full
disk, a long name, a wrong network option, Ctrl-C, a name clash, a hostile host list, a broken module) and checks
the promised outcome. CPU only, tiny EFNet (wf=8), subprocesses through ``sys.executable``.
"""
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pipeline_utils import REPO_ROOT, TRAIN_OPT, env, run, tiny_model, train_cmd

from basicsr.archs import build_network
from basicsr.data import build_dataset
from basicsr.utils import misc
from basicsr.utils.dist_util import _first_slurm_host
from basicsr.utils.options import OptionError, parse_options

def wait_for(condition, timeout, what):
    """Polls ``condition()`` every 0.2 s; returns its first truthy value or fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f'timed out after {timeout} s waiting for {what}')


def child_pids(parent):
    """Pids of the live children of a process (Linux /proc), as ``{pid: environment}``."""
    out = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
            if int(fields[1]) == parent and fields[0] != 'Z':
                out[int(entry.name)] = (entry / 'environ').read_bytes().split(b'\0')
        except (OSError, IndexError, ValueError):
            continue
    return out


def first_line_with(path, text):
    """The first line of a file that contains ``text``, or None."""
    if not path.exists():
        return None
    return next((ln for ln in path.read_text(errors='replace').splitlines() if text in ln), None)


class MaskSpy:
    """Records, per forward call of a module, whether the network was given a ``mask``."""

    def __init__(self, net):
        self.calls = []
        net.register_forward_pre_hook(lambda mod, args, kwargs: self.calls.append('mask' in kwargs),
                                      with_kwargs=True)


# -- 3. the NaN-loss message says what exists -----------------------------------------------------------------------
@pytest.mark.parametrize('save_freq', [100, 1])
def test_nan_loss_message_names_what_was_saved(tmp_path, save_freq):
    proc = run(train_cmd(tmp_path, 'nan', ['train:optim_g:lr=1e6', 'train:use_grad_clip=false',
                                           'train:total_iter=20', f'logger:save_checkpoint_freq={save_freq}',
                                           'val:val_freq=~']), check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    line = next(ln for ln in proc.stderr.splitlines() if 'Training stopped' in ln)
    models = tmp_path / 'experiments' / 'nan' / 'models'
    saved = sorted(p.name for p in models.iterdir())
    if save_freq == 100:
        assert saved == [] and 'No checkpoint was saved' in line and 'intact' not in line
    else:
        stopped = int(line.split(' at iteration ')[1].split()[0])
        last = f'net_g_{stopped - 1}.pth'
        assert last in saved and last in line and f'{stopped - 1}.state' in line and 'intact' in line


# -- 4. validation does not change the training's mask setting -------------------------------------------------------
def test_validation_without_mask_does_not_switch_training_mask_off(tmp_path):
    model, val_loader = tiny_model(tmp_path, ['datasets:train:use_mask=true', 'datasets:val:use_mask=false',
                                              'datasets:val:num_samples=1', 'val:pbar=false'])
    spy = MaskSpy(model.get_bare_model(model.net_g))
    batch = build_dataset(model.opt['datasets']['train'])[0]
    batch = {k: v[None] if torch.is_tensor(v) else [v] for k, v in batch.items()}
    model.feed_data(batch)
    model.optimize_parameters(1)
    model.validation(val_loader, 1)
    model.feed_data(batch)
    model.optimize_parameters(2)
    assert spy.calls == [True, False, True]  # train with mask, validate without, train with mask again
    assert model.use_mask is True


# -- 5. validation runs the bare network, not the DDP wrapper -------------------------------------------------------
def test_validation_runs_the_bare_network_not_the_ddp_wrapper(tmp_path):
    import torch.distributed as dist
    if not dist.is_gloo_available():
        pytest.skip('gloo is not available')
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "rendezvous"}', rank=0, world_size=1)
    try:
        model, val_loader = tiny_model(tmp_path, ['val:pbar=false'])
        model.opt['dist'] = True
        model.net_g = model.model_to_device(model.get_bare_model(model.net_g))
        assert isinstance(model.net_g, torch.nn.parallel.DistributedDataParallel)
        wrapper_calls, bare = [], MaskSpy(model.get_bare_model(model.net_g))
        model.net_g.register_forward_pre_hook(lambda mod, args: wrapper_calls.append(1))
        model.validation(val_loader, 1)
        assert len(bare.calls) == len(val_loader.dataset) and wrapper_calls == []
        assert model.net_g.training and model.get_bare_model(model.net_g).training  # training mode restored
    finally:
        dist.destroy_process_group()


# -- 7. two archives in the same second ---------------------------------------------------------------------------
def test_two_archives_in_the_same_second_keep_both(tmp_path, monkeypatch):
    monkeypatch.setattr(misc, 'get_time_str', lambda: '20260101_000000')
    exp = tmp_path / 'exp'
    for run_no in range(3):
        misc.mkdir_and_rename(str(exp))
        (exp / 'log.txt').write_text(f'run {run_no}')
    archived = sorted(p.name for p in tmp_path.iterdir() if p.name != 'exp')
    assert archived == ['exp_archived_20260101_000000', 'exp_archived_20260101_000000_1']
    contents = sorted((tmp_path / name / 'log.txt').read_text() for name in archived)
    assert contents == ['run 0', 'run 1'] and (exp / 'log.txt').read_text() == 'run 2'


# -- 8. scontrol without a shell ---------------------------------------------------------------------------------
def test_slurm_host_list_goes_to_scontrol_as_one_argument(tmp_path, monkeypatch):
    fake = tmp_path / 'scontrol'
    fake.write_text(f'#!{sys.executable}\nimport sys\nprint("\\n".join(["host-" + a for a in sys.argv[1:]]))\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    marker = tmp_path / 'shell_ran'
    hostile = f'node[1-2]; touch {marker}'
    assert _first_slurm_host(hostile) == 'host-show'  # argv[1:] is ['show', 'hostname', hostile]
    assert not marker.exists()
    fake.write_text(f'#!{sys.executable}\nimport sys\nprint("\\n".join(sys.argv[3:]))\n')
    assert _first_slurm_host(hostile) == 'node[1-2];'
    assert not marker.exists()


# -- 9. a module that fails to import shows its error --------------------------------------------------------------
def test_registry_surfaces_the_import_error_of_a_broken_module(tmp_path, monkeypatch):
    pkg = tmp_path / 'brokenpkg'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'good_arch.py').write_text('from reg_holder import REG\n\n@REG.register()\nclass Good:\n    pass\n')
    (pkg / 'bad_arch.py').write_text('import a_module_that_does_not_exist\n')
    (tmp_path / 'reg_holder.py').write_text(
        'from basicsr.utils.registry import Registry\nREG = Registry("toy", "brokenpkg", "_arch")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    from reg_holder import REG
    for _ in range(2):  # also on the second use: the registry did not mark itself scanned
        with pytest.raises(ImportError, match="brokenpkg.bad_arch failed to import.*a_module_that_does_not_exist"):
            REG.get('Good')
    (pkg / 'bad_arch.py').write_text('')
    assert REG.get('Good').__name__ == 'Good'
    for name in ('brokenpkg', 'brokenpkg.good_arch', 'brokenpkg.bad_arch', 'reg_holder'):
        sys.modules.pop(name, None)


# -- 1. a stalled peer ends a distributed run, and --auto_resume continues ------------------------------------------
def test_stalled_peer_ends_the_run_with_a_message_and_auto_resume_continues(tmp_path):
    import torch.distributed as dist
    if not dist.is_gloo_available() or not Path('/proc/self/environ').exists():
        pytest.skip('needs gloo and Linux /proc')
    common = ['val:val_freq=~', 'dist_params:backend=gloo', 'dist_params:timeout=5', 'logger:save_checkpoint_freq=2',
              'datasets:train:batch_size_per_gpu=1']
    states = tmp_path / 'experiments' / 'hang' / 'training_states'
    out, err = tmp_path / 'stdout.txt', tmp_path / 'stderr.txt'
    with open(out, 'w') as fout, open(err, 'w') as ferr:
        proc = subprocess.Popen(train_cmd(tmp_path, 'hang', common + ['train:total_iter=100000'], launcher='torchrun'),
                                cwd=REPO_ROOT, env=env(), stdout=fout, stderr=ferr, start_new_session=True)
    workers = {}
    try:
        wait_for(lambda: (states / '2.state').exists(), 180, 'the first saved state')
        workers = {next(int(v[5:]) for v in environ if v.startswith(b'RANK=')): pid
                   for pid, environ in child_pids(proc.pid).items()}
        assert sorted(workers) == [0, 1], workers
        os.kill(workers[1], signal.SIGSTOP)
        # bound: the 5 s timeout plus start-up of the error path; a hang would never print this line
        line = wait_for(lambda: first_line_with(err, 'Training stopped'), 90, 'the stalled-peer message')
        wait_for(lambda: not Path(f'/proc/{workers[0]}').exists() or
                 Path(f'/proc/{workers[0]}/stat').read_text().rsplit(')', 1)[1].split()[0] == 'Z',
                 60, 'rank 0 to exit')
    finally:
        for pid in list(workers.values()) + [proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)
    assert 'rank 0 waited dist_params:timeout = 5 s for rank 1' in line, line
    assert 'resume with --auto_resume' in line and 'Traceback' not in err.read_text().split(line)[0][-3000:]
    latest = max(int(p.stem) for p in states.glob('*.state'))
    run(train_cmd(tmp_path, 'hang', common + [f'train:total_iter={latest + 2}'], launcher='torchrun',
                  extra=['--auto_resume']), timeout=240)
    log = max((tmp_path / 'experiments' / 'hang').glob('train_hang_*.log'), key=lambda p: p.stat().st_mtime)
    assert f'Resuming training from epoch: 0, iter: {latest}.' in log.read_text()
    assert (states / f'{latest + 2}.state').is_file()


def test_peer_failure_message_names_the_candidates_and_ignores_other_errors(monkeypatch):
    from basicsr.utils import dist_util
    monkeypatch.setattr(dist_util, 'get_dist_info', lambda: (1, 3))
    gloo = '[third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 7000ms for recv operation'
    msg = dist_util.peer_failure_message(RuntimeError(gloo), 7)
    assert msg.startswith('rank 1 waited dist_params:timeout = 7 s for one of ranks 0, 2') and 'Timed out' in msg
    lost = dist_util.peer_failure_message(RuntimeError('[gloo/transport/tcp/pair.cc] Connection closed by peer'))
    assert lost.startswith('rank 1 lost the connection to one of ranks 0, 2')
    assert dist_util.peer_failure_message(RuntimeError('DataLoader timed out after 5 seconds')) is None
    assert dist_util.peer_failure_message(ValueError('gloo timeout')) is None
    monkeypatch.setattr(dist_util, 'get_dist_info', lambda: (0, 1))
    assert dist_util.peer_failure_message(RuntimeError(gloo)) is None


# -- 6. leftovers of killed saves, full disk, long names, wrong network options, Ctrl-C ------------------------------
def test_leftovers_of_killed_saves_are_removed_at_resume_and_at_a_fresh_start(tmp_path):
    common = ['val:val_freq=~', 'logger:save_checkpoint_freq=2']
    exp = tmp_path / 'experiments' / 'left'
    run(train_cmd(tmp_path, 'left', common + ['train:total_iter=2']))

    def plant():
        names = [exp / 'models' / 'net_g_4.pth.tmp4242', exp / 'training_states' / '4.state.tmp4242']
        for path in names:
            path.write_bytes(b'half a checkpoint')
        return names

    planted = plant()
    run(train_cmd(tmp_path, 'left', common + ['train:total_iter=4'], extra=['--auto_resume']))
    assert not any(p.exists() for p in planted)
    log = max(exp.glob('train_left_*.log'), key=lambda p: p.stat().st_mtime).read_text()
    assert 'Resuming training from epoch' in log and 'Removed 2 temporary file(s)' in log
    plant()
    run(train_cmd(tmp_path, 'left', common + ['train:total_iter=1']))  # fresh: the old folder is archived clean
    archived = [p for p in (tmp_path / 'experiments').iterdir() if p.name.startswith('left_archived_')]
    assert len(archived) == 1 and (archived[0] / 'models' / 'net_g_4.pth').is_file()
    assert not [p for p in tmp_path.rglob('*.tmp*')]


ENOSPC_RUN = """
import errno, sys, torch
real_save = torch.save
def full_disk(obj, f, *args, **kwargs):
    if 'net_g_4.pth' in str(f):
        raise OSError(errno.ENOSPC, 'No space left on device')
    return real_save(obj, f, *args, **kwargs)
torch.save = full_disk
from basicsr.train import main
main(sys.argv[1:])
"""


def test_full_disk_during_a_save_is_one_line_and_keeps_the_last_checkpoint(tmp_path):
    cmd = train_cmd(tmp_path, 'full', ['val:val_freq=~', 'logger:save_checkpoint_freq=2', 'train:total_iter=6'])
    proc = run([sys.executable, '-c', ENOSPC_RUN] + cmd[2:], check=False)
    models = tmp_path / 'experiments' / 'full' / 'models'
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith('Training stopped: Could not write') and 'No space left on device' in line
    assert 'net_g_2.pth' in line and '2.state' in line and 'resume with --auto_resume' in line
    assert sorted(p.name for p in models.iterdir()) == ['net_g_2.pth']
    assert torch.load(models / 'net_g_2.pth', weights_only=True)['params']


def test_name_too_long_is_one_line_and_makes_no_folder(tmp_path):
    root = tmp_path / 'root'
    proc = run(train_cmd(root, 'n' * 250, ['train:total_iter=1']), check=False)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert 'Option name' in line and '250 bytes' in line and 'at most' in line
    assert not root.exists()


def test_wrong_network_options_name_the_option_and_the_accepted_arguments(tmp_path):
    with pytest.raises(OptionError, match=r"network_g:wff: EFNet has no argument 'wff' \(did you mean wf\?\); "
                                          r'it accepts: in_chn, ev_chn, wf, depth'):
        build_network({'type': 'EFNet', 'wff': 8})
    proc = run(train_cmd(tmp_path, 'wf', ['train:total_iter=1', 'network_g:wf="8"']), check=False)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert "network_g:wf must be an integer (default 64), got '8' (str)" in line and 'accepts: in_chn' in line


def test_ctrl_c_stops_cleanly_with_the_iteration_and_how_to_resume(tmp_path):
    states = tmp_path / 'experiments' / 'ctrlc' / 'training_states'
    cmd = train_cmd(tmp_path, 'ctrlc', ['val:val_freq=~', 'logger:save_checkpoint_freq=2', 'train:total_iter=100000'])
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (states / '2.state').exists(), 120, 'the first saved state')
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and 'Traceback' not in stderr, stderr[-3000:]
    line = stderr.strip().splitlines()[-1]
    assert line.startswith('Training stopped: Interrupted at iteration ') and 'resume with --auto_resume' in line
    stopped = int(line.split('Interrupted at iteration ')[1].split('.')[0])
    saved = int(re.search(r'/(\d+)\.state\)', line).group(1))
    assert 2 <= saved <= stopped and (states / f'{saved}.state').is_file()


# -- 2. option typos: a warning with the closest key, an error when strict ---------------------------------------------
class Warnings:
    """Collects the warnings of the project logger."""

    def __init__(self):
        import logging
        self.messages = []
        self.handler = logging.Handler(logging.WARNING)
        self.handler.emit = lambda record: self.messages.append(record.getMessage())

    def __enter__(self):
        import logging
        logging.getLogger('basicsr').addHandler(self.handler)
        return self.messages

    def __exit__(self, *exc):
        import logging
        logging.getLogger('basicsr').removeHandler(self.handler)


def parse(tmp_path, opt_file, *force, strict=False):
    argv = ['-opt', str(opt_file)] + (['--strict-options'] if strict else [])
    argv += ['--force_yml', f'path:root={tmp_path}', *force]
    return parse_options(str(tmp_path), is_train='options/train' in str(opt_file).replace(os.sep, '/'), argv=argv)


@pytest.mark.parametrize('opt_file', sorted((REPO_ROOT / 'options').rglob('*.yml')), ids=lambda p: p.stem)
def test_every_option_file_of_the_project_loads_without_warnings(tmp_path, opt_file):
    with Warnings() as warnings:
        opt, _ = parse(tmp_path, opt_file)
    assert opt['name'] and warnings == []


@pytest.mark.parametrize('force, reported, hint', [
    ('train:ema_decy=0.9', 'train:ema_decy', 'ema_decay'),
    ('train:total_iterr=3', 'train:total_iterr', 'total_iter'),
    ('network_g:wff=8', 'network_g:wff', 'wf'),
    ('datasets:train:use_mas=true', 'datasets:train:use_mas', 'use_mask'),
    ('val:metrics:psnr:crop_bordr=0', 'val:metrics:psnr:crop_bordr', 'crop_border'),
    ('train:optim_g:weight_decy=0', 'train:optim_g:weight_decy', 'weight_decay'),
    ('train:scheduler:eta_mn=0', 'train:scheduler:eta_mn', 'eta_min'),
    ('dist_params:timout=5', 'dist_params:timout', 'timeout'),
])
def test_an_option_typo_is_reported_with_the_closest_key(tmp_path, force, reported, hint):
    with Warnings() as warnings:
        parse(tmp_path, TRAIN_OPT, force)
    assert len(warnings) == 1 and f'Option {reported} is read by nothing (did you mean {hint}?)' in warnings[0]
    with pytest.raises(OptionError, match=f'{reported} is read by nothing'):
        parse(tmp_path, TRAIN_OPT, force, strict=True)
    with pytest.raises(OptionError, match=f'{reported} is read by nothing'):
        parse(tmp_path, TRAIN_OPT, force, 'strict_options=true')


def test_keys_read_late_are_not_reported(tmp_path):
    late = ['val:max_minibatch=2', 'val:suffix=x', 'val:save_panels=true', 'val:grids=false', 'val:crop_size=16',
            'datasets:val:norm_voxel=true', 'datasets:val:return_mask=true', 'val:metrics:psnr:better=higher',
            'path:ignore_resume_networks=[]', 'train:ema_decay=0.9', 'dist_params:timeout=60']
    with Warnings() as warnings:
        parse(tmp_path, TRAIN_OPT, *late, strict=True)
    assert warnings == []


def test_strict_options_flag_refuses_a_typo_in_one_line(tmp_path):
    proc = run(train_cmd(tmp_path, 'strict', ['train:total_iterr=3'], extra=['--strict-options']), check=False)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert 'train:total_iterr is read by nothing (did you mean total_iter?)' in line
    assert not (tmp_path / 'experiments').exists()


def test_a_dist_params_typo_is_reported_not_passed_to_the_process_group(tmp_path, monkeypatch):
    from basicsr.utils import options
    given = []
    monkeypatch.setattr(options, 'init_dist', lambda launcher, backend=None, port=None, timeout=1800: given.append(
        dict(backend=backend, port=port, timeout=timeout)))
    with Warnings() as warnings:
        options.parse_options(str(tmp_path), True, ['-opt', str(TRAIN_OPT), '--launcher', 'pytorch', '--force_yml',
                                                    f'path:root={tmp_path}', 'dist_params:timout=5'])
    assert given == [{'backend': 'gloo', 'port': 29500, 'timeout': 1800}]
    assert len(warnings) == 1 and 'dist_params:timout is read by nothing (did you mean timeout?)' in warnings[0]
