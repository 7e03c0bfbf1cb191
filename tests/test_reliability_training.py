"""Reliability promises of training and the framework (docs/reliability.md, "Training and the framework").

Each test injects one fault (a stalled peer, an option typo, a NaN loss, a validation setting, a killed save, a full
disk, a long name, a wrong network option, Ctrl-C, a name clash, a hostile host list, a broken module) and checks
the promised outcome. CPU only, tiny EFNet (wf=8), subprocesses through ``sys.executable``.
"""
import os
import stat
import subprocess
import sys

import pytest
import torch

from pipeline_utils import REPO_ROOT, TRAIN_OPT, env, run, train_cmd

from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model
from basicsr.utils import misc
from basicsr.utils.dist_util import _first_slurm_host
from basicsr.utils.options import parse_options
from basicsr.utils.registry import Registry

TINY_MODEL = ['network_g:wf=8', 'datasets:train:size=[16, 16]', 'datasets:train:num_samples=2',
              'datasets:val:size=[16, 24]', 'datasets:val:num_samples=2', 'logger:use_tb_logger=false']


def tiny_model(tmp_path, overrides=()):
    """The tiny synthetic EFNet recipe as an in-process model, with its validation loader."""
    argv = ['-opt', str(TRAIN_OPT), '--force_yml', 'name=rel', f'path:root={tmp_path}', *TINY_MODEL, *overrides]
    opt, _ = parse_options(str(tmp_path), is_train=True, argv=argv)
    val_set = build_dataset(opt['datasets']['val'])
    return build_model(opt), build_dataloader(val_set, opt['datasets']['val'], num_gpu=0, dist=False)


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
