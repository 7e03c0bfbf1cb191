"""Reduced precision: ``val.precision`` (validation, test.py), ``train.amp`` and the hardware check behind them.

Most tests force the start-up check to report a fast bf16 CPU (``fake_bf16_cpu``): bf16 autocast runs on any CPU,
natively or emulated, with the same bf16 rounding of the same operations, so what is checked here (outputs close
to fp32, resume exactness, the scaler's state) holds on every CPU; only the speed differs, and speed is measured in
``benchmarks/``, not asserted. The test of the real check skips on CPUs without bf16 instructions.
"""
import functools
import logging
import math

import pytest
import torch

from numerics import assert_close_scaled
from pipeline_utils import REPO_ROOT, TRAIN_OPT, load_params, max_param_diff, run, train_cmd
from pipeline_utils import tiny_model

from basicsr import train as train_module
from basicsr.models.base_model import load_checkpoint
from basicsr.models.image_event_restoration_model import ImageEventRestorationModel
from basicsr.utils import precision
from basicsr.utils.option_check import unused_options
from basicsr.utils.options import yaml_load
from basicsr.utils.precision import PrecisionError, resolve_amp, resolve_precision


class Recorder(logging.Handler):
    """Keeps the messages of the records it receives."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def recording_logger(name):
    logger = logging.getLogger(f'test_precision.{name}')
    logger.handlers = [Recorder()]
    logger.propagate = False
    return logger, logger.handlers[0].messages


@pytest.fixture
def fake_bf16_cpu(monkeypatch):
    """The start-up check reports a CPU with native bf16 (see the module docstring)."""
    monkeypatch.setattr(precision, '_cpu_bf16', functools.lru_cache(maxsize=None)(lambda: (True, 'CPU (test)')))


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(precision, '_cpu_bf16', functools.lru_cache(maxsize=None)(
        lambda: (False, 'this CPU has no native bf16 instructions, avx512_bf16 or amx_bf16')))


def val_batch(loader):
    return next(iter(loader))


# -- bad input and the hardware check -----------------------------------------------------------------------------
@pytest.mark.parametrize('where, call', [
    ('val:precision', lambda: resolve_precision('fp64', 'cpu', 'val:precision')),
    ('precision', lambda: resolve_precision('BF16', 'cpu')),
])
def test_unknown_precision_names_the_choices(where, call):
    with pytest.raises(PrecisionError, match=rf'^{where}: unknown precision .*; choose one of fp32, bf16, fp16$'):
        call()


def test_unknown_amp_settings_name_the_choices():
    with pytest.raises(PrecisionError, match='train:amp:dtype: unknown AMP dtype .fp32.; choose bf16 or fp16'):
        resolve_amp({'enabled': True, 'dtype': 'fp32'}, 'cpu')
    with pytest.raises(PrecisionError, match='train:amp:enabled must be true or false'):
        resolve_amp({'enabled': 'yes'}, 'cpu')
    with pytest.raises(PrecisionError, match='train:amp must be a mapping'):
        resolve_amp('bf16', 'cpu')


def test_fp16_on_cpu_is_refused_naming_the_alternatives(cpu_without_bf16):
    with pytest.raises(PrecisionError) as err:
        resolve_precision('fp16', 'cpu', 'val:precision')
    assert str(err.value).startswith('val:precision: fp16 is not supported on CPU')
    assert 'bf16 (runs as fp32 on this CPU: ' in str(err.value) and str(err.value).endswith('or fp32')
    with pytest.raises(PrecisionError) as err:
        resolve_amp({'enabled': True, 'dtype': 'fp16'}, 'cpu')
    assert 'fp16 training is not supported on CPU' in str(err.value)
    assert 'train in fp32 (train:amp:enabled: false)' in str(err.value)


def test_train_py_refuses_fp16_amp_on_cpu_in_one_line(tmp_path):
    proc = run(train_cmd(tmp_path, 'fp16', ['train:total_iter=1', 'train:amp={enabled: true, dtype: fp16}']),
               check=False)
    assert proc.returncode == 1
    assert 'Training stopped: PrecisionError: train:amp:dtype: fp16 training is not supported on CPU' in proc.stderr
    assert 'Traceback' not in proc.stderr and not list(tmp_path.rglob('*.pth'))


def test_unsupported_precision_falls_back_to_fp32_with_a_message(cpu_without_bf16, tmp_path):
    logger, messages = recording_logger('fallback')
    assert resolve_precision('bf16', 'cpu', 'val:precision', logger) is None
    assert messages == ['val:precision: bf16 requested but this CPU has no native bf16 instructions, avx512_bf16 '
                        'or amx_bf16; running in fp32 (fast on cpu: fp32)']
    assert resolve_amp({'enabled': True, 'dtype': 'bf16'}, 'cpu', logger) == (None, False)
    assert messages[-1].startswith('train:amp:dtype: bf16 requested but')
    model, _ = tiny_model(tmp_path, ['val:precision=bf16', 'train:amp={enabled: true, dtype: bf16}'])
    assert model.val_dtype is None and model.amp_dtype is None and model.scaler is None


def test_settings_per_device(fake_bf16_cpu, monkeypatch):
    assert resolve_precision('fp32', 'cpu') is None
    assert resolve_precision('bf16', 'cpu') is torch.bfloat16
    assert resolve_amp(None, 'cpu') == (None, False)
    assert resolve_amp({'enabled': False, 'dtype': 'fp16'}, 'cpu') == (None, False)
    assert resolve_amp({'enabled': True}, 'cpu') == (torch.bfloat16, False)  # bf16 is the default, no scaler
    # CUDA decisions without a GPU: the device check is replaced; fp16 needs the scaler, bf16 does not
    monkeypatch.setattr(precision, 'precision_support', lambda name, device: (True, 'GPU (test)'))
    assert resolve_amp({'enabled': True, 'dtype': 'fp16'}, torch.device('cuda')) == (torch.float16, True)
    assert resolve_amp({'enabled': True, 'dtype': 'bf16'}, torch.device('cuda')) == (torch.bfloat16, False)


def test_hardware_check_on_this_cpu():
    fast, reason = precision.precision_support('bf16', 'cpu')
    if not fast:
        pytest.skip(f'this CPU runs bf16 as fp32: {reason}')
    assert resolve_precision('bf16', 'cpu') is torch.bfloat16 and 'bf16' in precision.available_precisions('cpu')


def test_option_checker_knows_the_precision_keys():
    opt = yaml_load(str(TRAIN_OPT))
    opt['train']['amp'] = {'enabled': True, 'dtype': 'bf16'}
    opt['val']['precision'] = 'bf16'
    assert unused_options(opt) == []
    opt['train']['amp']['dtpye'] = 'bf16'
    assert unused_options(opt) == [('train:amp:dtpye', ' (did you mean dtype?)')]


# -- inference precision ------------------------------------------------------------------------------------------
def conv_output_dtypes(net):
    """Records the dtype of every convolution output of ``net``."""
    dtypes = []
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    return dtypes


def psnr(a, b):
    return 10 * math.log10(1 / float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean()))


@pytest.mark.numerics
@pytest.mark.parametrize('tiled', [False, True])
def test_val_precision_bf16_stays_close_to_fp32(fake_bf16_cpu, tmp_path, tiled):
    tiling = ['val:grids=true', 'val:crop_size=16'] if tiled else []
    fp32, loader = tiny_model(tmp_path, tiling)
    bf16, _ = tiny_model(tmp_path, tiling + ['val:precision=bf16'])
    bf16.net_g.load_state_dict(fp32.net_g.state_dict())
    batch = val_batch(loader)
    fp32.feed_data(batch)
    fp32.test()
    dtypes = conv_output_dtypes(bf16.net_g)
    bf16.feed_data(batch)
    bf16.test()
    assert torch.bfloat16 in dtypes, 'the convolutions must run in bf16'
    for name, expected in fp32.output.items():
        actual = bf16.output[name]
        assert actual.dtype == torch.float32, 'outputs are fp32 again before metrics and saving'
        # bf16 keeps 8 significant bits (relative rounding 2^-9 per operation); through EFNet's convolutions, with
        # fp32 accumulation, the measured error is 0.9-1.3e-3 of the output scale (padded and tiled), 62-67 dB PSNR;
        # 1e-2 leaves ~8x margin and still fails when a stage runs in a wrong type (fp16 overflow, bf16 tile sums).
        assert_close_scaled(actual, expected, rel=1e-2, what=name)
        assert psnr(actual, expected) > 45, f'{name}: bf16 vs fp32 below the 45 dB of issue 13'


# -- mixed-precision training -------------------------------------------------------------------------------------
def test_gradient_scaler_path_unscales_before_clipping(tmp_path):
    """The scaler path (run on CPU in fp32) gives the step of the plain path: clipping sees the true gradients."""
    sgd = ['train:optim_g={type: SGD, lr: 0.1}', 'train:grad_clip_norm=0.05']  # SGD follows the gradient's size
    plain, loader = tiny_model(tmp_path, sgd)
    scaled, _ = tiny_model(tmp_path, sgd)
    scaled.net_g.load_state_dict(plain.net_g.state_dict())
    scaled.scaler = torch.amp.GradScaler('cpu', init_scale=2.0 ** 16)
    before = {k: v.clone() for k, v in plain.net_g.state_dict().items()}
    batch = val_batch(loader)
    for model in (plain, scaled):
        model.feed_data(batch)
        model.optimize_parameters(1)
    moved = max_param_diff(plain.net_g.state_dict(), before)
    assert moved > 1e-4, 'the step must change the weights'
    # Scaling by a power of two is exact, so both paths differ by rounding only; without unscaling first the
    # clipped step would be 2^16 times smaller.
    assert max_param_diff(plain.net_g.state_dict(), scaled.net_g.state_dict()) < 1e-3 * moved


def test_scaler_state_round_trips_through_the_training_state(tmp_path):
    model, loader = tiny_model(tmp_path, ['train:optim_g={type: SGD, lr: 0.01}'])
    model.scaler = torch.amp.GradScaler('cpu', init_scale=8.0, growth_interval=1)
    batch = val_batch(loader)
    for step in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(step)
    saved = model.scaler.state_dict()
    assert saved['scale'] == 32.0, 'two finite steps with growth_interval 1 double the scale twice'
    (tmp_path / 'experiments' / 'rel' / 'training_states').mkdir(parents=True, exist_ok=True)
    model.save_training_state(epoch=0, current_iter=2)
    state = load_checkpoint(str(tmp_path / 'experiments' / 'rel' / 'training_states' / '2.state'))
    assert state['scaler'] == saved

    resumed, _ = tiny_model(tmp_path, ['train:optim_g={type: SGD, lr: 0.01}'])
    resumed.scaler = torch.amp.GradScaler('cpu')
    resumed.resume_training(state)
    assert resumed.scaler.state_dict() == saved
    plain, _ = tiny_model(tmp_path, ['train:optim_g={type: SGD, lr: 0.01}'])
    plain.resume_training(state)  # a state with a scaler resumed without one: dropped, training goes on
    assert plain.scaler is None


@pytest.mark.numerics
def test_amp_resume_equals_uninterrupted_amp_run(fake_bf16_cpu, tmp_path, monkeypatch):
    overrides = ['train:total_iter=4', 'logger:save_checkpoint_freq=2', 'val:val_freq=~', 'datasets:val:num_samples=1',
                 'datasets:train:size=[16, 16]', 'datasets:train:batch_size_per_gpu=2',
                 'datasets:val:size=[16, 16]', 'train:amp={enabled: true, dtype: bf16}']
    root = str(REPO_ROOT)

    def argv(base, extra=()):
        return train_cmd(base, 'amp', overrides, extra=extra)[2:]  # without the interpreter and the script

    model = train_module.train_pipeline(root, argv(tmp_path / 'a'))
    assert model.amp_dtype is torch.bfloat16
    reference = load_params(tmp_path / 'a' / 'experiments' / 'amp' / 'models' / 'net_g_latest.pth')

    step = ImageEventRestorationModel.optimize_parameters

    def interrupted(self, current_iter):
        if current_iter == 3:
            raise KeyboardInterrupt
        step(self, current_iter)

    monkeypatch.setattr(ImageEventRestorationModel, 'optimize_parameters', interrupted)
    with pytest.raises(train_module.RunStopped, match='Interrupted at iteration 3'):
        train_module.train_pipeline(root, argv(tmp_path / 'b'))
    monkeypatch.setattr(ImageEventRestorationModel, 'optimize_parameters', step)
    models = tmp_path / 'b' / 'experiments' / 'amp' / 'models'
    assert not (models / 'net_g_latest.pth').exists()
    train_module.train_pipeline(root, argv(tmp_path / 'b', ['--auto_resume']))
    resumed = load_params(models / 'net_g_latest.pth')
    moved = max_param_diff(reference, load_params(models / 'net_g_2.pth'))
    assert moved > 0, 'iterations 3-4 must change the weights'
    # the same kernels on the same data in one process: equal up to rounding, far below what 3 steps move
    assert max_param_diff(reference, resumed) < 1e-6
