"""Tests of scripts/convert_checkpoint.py with fake reference checkpoints made in tmp_path."""
import importlib.util
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from basicsr.archs.lowlight_arch import LowLightEventDeblurNet

SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'convert_checkpoint.py'
ARGS = {'init_dim': 32, 'n_ev': 13, 'norm_type': 'instance', 'use_dropout': False}


@pytest.fixture(scope='module')
def convert():
    spec = importlib.util.spec_from_file_location('convert_checkpoint_under_test', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_module_class(monkeypatch, qualname, attrs=None):
    """Creates class ``qualname`` ('pkg.mod.Cls') in fake modules registered in sys.modules (for pickling only)."""
    mod_name, cls_name = qualname.rsplit('.', 1)
    cls = type(cls_name, (), dict(attrs or {}))
    cls.__module__ = mod_name
    parts = mod_name.split('.')
    for i in range(1, len(parts) + 1):
        name = '.'.join(parts[:i])
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    setattr(sys.modules[mod_name], cls_name, cls)
    return cls


def _reference_checkpoint(path, monkeypatch, rgb=False, prefix='', extra=None, state=None):
    """Writes a checkpoint shaped like the reference's final.pth, with a pickled utils.logger.Logger."""
    logger_cls = _fake_module_class(monkeypatch, 'utils.logger.Logger')
    logger = logger_cls()
    logger.entries = {1: {'epoch': 1, 'loss': np.float64(0.25), 'psnr': 20.5}}
    torch.manual_seed(0)
    net = LowLightEventDeblurNet(rgb=rgb, **ARGS)
    for p in net.parameters():
        p.data.normal_()
    if state is None:
        state = OrderedDict((prefix + k, v) for k, v in net.state_dict().items())
    args = dict(ARGS, rgb=True) if rgb else dict(ARGS)
    ckpt = {
        'arch': 'DefaultModel', 'epoch': 400, 'logger': logger,
        'model': state,
        'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-3, 'betas': (0.5, 0.999), 'amsgrad': True}]},
        'lr_scheduler': {'base_lrs': [1e-3], 'last_epoch': 400}, 'monitor_best': 0,
        'config': OrderedDict(name='default', module='full',
                              model=OrderedDict(type='DefaultModel', args=OrderedDict(args))),
    }
    ckpt.update(extra or {})
    torch.save(ckpt, path)
    for name in ('utils.logger', 'utils'):
        monkeypatch.delitem(sys.modules, name)
    return net


def test_plain_weights_only_load_is_refused(tmp_path, monkeypatch):
    src = tmp_path / 'final.pth'
    _reference_checkpoint(src, monkeypatch)
    with pytest.raises(Exception):
        torch.load(src, weights_only=True)


@pytest.mark.parametrize('rgb, prefix', [(False, ''), (True, 'module.')])
def test_converts_reference_checkpoint(convert, tmp_path, monkeypatch, capsys, rgb, prefix):
    src, dst = tmp_path / 'final.pth', tmp_path / 'out' / 'converted.pth'
    net = _reference_checkpoint(src, monkeypatch, rgb=rgb, prefix=prefix)
    assert convert.main([str(src), str(dst)]) == 0
    printed = capsys.readouterr().out
    n_tensors = len(net.state_dict())
    n_params = sum(v.numel() for v in net.state_dict().values())
    assert f'{n_tensors} tensors' in printed and f'{n_params:,} parameters' in printed
    assert 'DefaultModel -> LowLightEventDeblurNet' in printed and 'strict load OK' in printed
    assert ('module.' in printed) == bool(prefix)
    assert 'logger' in printed and 'optimizer' in printed
    out = torch.load(dst, weights_only=True)
    assert set(out) == {'params', 'config'}
    assert out['config']['model']['args']['init_dim'] == 32 and out['config']['module'] == 'full'
    fresh = LowLightEventDeblurNet(**out['config']['model']['args'])
    fresh.load_state_dict(out['params'], strict=True)
    for k, v in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    assert [p.name for p in dst.parent.iterdir()] == ['converted.pth']


def test_report_contents(convert, tmp_path, monkeypatch):
    src, dst = tmp_path / 'final.pth', tmp_path / 'converted.pth'
    _reference_checkpoint(src, monkeypatch, rgb=True)
    report = convert.convert_checkpoint(src, dst)
    assert report['model_type'] == 'DefaultModel' and report['network'] == 'LowLightEventDeblurNet'
    assert report['model_args'] == dict(ARGS, rgb=True)
    assert report['tensors'] == 172 and report['epoch'] == 400
    assert report['dropped_keys'] == ['arch', 'epoch', 'logger', 'lr_scheduler', 'monitor_best', 'optimizer']


def test_logger_is_mapped_to_a_stub(convert, tmp_path, monkeypatch):
    src = tmp_path / 'final.pth'
    _reference_checkpoint(src, monkeypatch)
    ckpt = convert.load_reference_checkpoint(src)
    assert type(ckpt['logger']) is convert.ReferenceLoggerStub
    assert ckpt['logger'].entries[1]['loss'] == 0.25
    assert 'utils.logger' not in sys.modules


def test_other_globals_are_refused_without_running_them(convert, tmp_path, monkeypatch):
    calls = []
    payload_cls = _fake_module_class(monkeypatch, 'evil.payload.Payload')
    evil_module = sys.modules['evil.payload']

    def run(arg):
        calls.append(arg)

    run.__module__, run.__qualname__ = 'evil.payload', 'run'
    evil_module.run = run
    payload_cls.__reduce__ = lambda self: (run, ('executed',))
    src, dst = tmp_path / 'final.pth', tmp_path / 'converted.pth'
    _reference_checkpoint(src, monkeypatch, extra={'extra': payload_cls()})
    assert not calls
    # evil.payload stays importable: only the restricted unpickler stands between the file and run()
    with pytest.raises(ValueError, match=r'refused global\(s\) \[.evil.payload.run.\]'):
        convert.convert_checkpoint(src, dst)
    assert not calls and not dst.exists()
    pickle.loads(pickle.dumps(payload_cls()))  # the payload is live under a plain unpickler
    assert calls == ['executed']


def test_mismatching_weights_fail_and_leave_no_output(convert, tmp_path, monkeypatch):
    src, dst = tmp_path / 'final.pth', tmp_path / 'converted.pth'
    net = LowLightEventDeblurNet(**ARGS)
    state = OrderedDict((k, v) for k, v in net.state_dict().items() if not k.startswith('out_block'))
    _reference_checkpoint(src, monkeypatch, state=state)
    with pytest.raises(ValueError, match='out_block.0.weight'):
        convert.convert_checkpoint(src, dst)
    assert list(tmp_path.iterdir()) == [src]


def test_existing_output_needs_force(convert, tmp_path, monkeypatch, capsys):
    src, dst = tmp_path / 'final.pth', tmp_path / 'converted.pth'
    _reference_checkpoint(src, monkeypatch)
    dst.write_bytes(b'keep me')
    assert convert.main([str(src), str(dst)]) == 1
    assert '--force' in capsys.readouterr().err
    assert dst.read_bytes() == b'keep me'
    assert convert.main([str(src), str(dst), '--force']) == 0
    assert 'params' in torch.load(dst, weights_only=True)


def test_wrong_config_is_reported(convert, tmp_path, monkeypatch):
    src, dst = tmp_path / 'final.pth', tmp_path / 'converted.pth'
    _reference_checkpoint(src, monkeypatch, extra={'config': {'module': 'subnetwork1', 'model': {'type': 'X'}}})
    with pytest.raises(ValueError, match='subnetwork1'):
        convert.convert_checkpoint(src, dst)
    torch.save({'params': {}}, src)
    with pytest.raises(ValueError, match='already converted'):
        convert.convert_checkpoint(src, dst)
    with pytest.raises(FileNotFoundError):
        convert.convert_checkpoint(tmp_path / 'missing.pth', dst)
