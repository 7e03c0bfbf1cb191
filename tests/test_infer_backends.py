"""infer.py's backends and precision: ``--backend onnxruntime --onnx`` runs the torch pipeline's steps with the
exported file and equals the torch backend; ``--precision`` runs the network under autocast (or falls back / is
refused); bad combinations fail before anything is written.

Small seeded networks (EFNet wf=8, the low-light APS network init_dim=32 with its attention ``gamma`` non-zero so
the attention reaches the output), one torch thread (as tests/test_onnx_export.py: two spinning threads on the
shared 2-core machine made forwards far slower). The ONNX tests skip without onnxruntime.
"""
import functools
import importlib.util
import sys

import cv2
import numpy as np
import pytest
import torch

from numerics import assert_close_scaled
from test_infer import EXPOSURES, _frames, _h5_frames, _stream

from basicsr.archs.efnet_arch import EFNet
from basicsr.archs.lowlight_arch import LowLightEventDeblurNet
from basicsr.deblur import deblur, deblur_file, load_method
from basicsr.deblur.backends import with_precision
from basicsr.deploy.onnx_runtime import OnnxNetworkError
from basicsr.events import write_event_h5
from basicsr.infer import InferenceError, InferenceWarning, main
from basicsr.utils import precision

needs_ort = pytest.mark.skipif(importlib.util.find_spec('onnxruntime') is None or importlib.util.find_spec('onnx')
                               is None, reason="onnx/onnxruntime not installed (optional extra: pip install -e "
                               "'.[deploy]')")

# method -> (network builder, recording size (H, W): not a multiple of the size multiple, so padding is exercised)
EFNET_SIZE, LOWLIGHT_SIZE = (18, 30), (20, 70)
# The backends differ by rounding only (the export accepts 1e-4 of the output; measured 1e-7 for EFNet, 1-2.5e-5 for
# the low-light network), so the float outputs agree to 1e-4 relative, and an 8-bit result can differ by one grey
# level where the value lies within that distance of a rounding boundary (never more).
REL, GREY_LEVELS = 1e-4, 1


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _recording(folder, size, channels, seed):
    rng = np.random.default_rng(seed)
    stream = _stream(rng, *size)
    path = str(folder / f'rec_{size[0]}x{size[1]}.h5')
    write_event_h5(path, stream, frames=_h5_frames(_frames(rng, *size, channels=channels)))
    return path


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Checkpoints of a small EFNet and a small low-light APS network, and recordings for them."""
    folder = tmp_path_factory.mktemp('backends')
    torch.manual_seed(0)
    efnet = folder / 'efnet.pth'
    torch.save({'params': EFNet(wf=8).state_dict()}, efnet)
    torch.manual_seed(1)
    lowlight = LowLightEventDeblurNet(init_dim=32).init_weights()
    for name, param in lowlight.named_parameters():
        if name.endswith('gamma'):  # 0 after init_weights: the attention would not reach the output
            param.data.fill_(0.5)
    lowlight_path = folder / 'lowlight.pth'
    torch.save({'params': lowlight.state_dict()}, lowlight_path)
    return {'EFNet': (str(efnet), _recording(folder, EFNET_SIZE, 3, 7)),
            'LowLightEventDeblurNet': (str(lowlight_path), _recording(folder, LOWLIGHT_SIZE, 1, 8)),
            'folder': folder}


@pytest.fixture(scope='module')
def exported(models):
    """The checkpoints exported to ONNX at their recording's size (dynamic height and width)."""
    from basicsr.deploy.onnx_export import export_method

    files = {}
    for method, size in (('EFNet', EFNET_SIZE), ('LowLightEventDeblurNet', LOWLIGHT_SIZE)):
        files[method] = str(models['folder'] / f'{method}.onnx')
        export_method(method, size, files[method], checkpoint=models[method][0], num_threads=1)
    return files


def _run(args, out):
    return main(args + ['--out', str(out), '--no-progress', '--threads', '1'])


def _sharp(written):
    return [cv2.imread(w['sharp'], cv2.IMREAD_UNCHANGED).astype(int) for w in written]


def _fails(args, out, match, exc=InferenceError):
    with pytest.raises(exc, match=match):
        _run(args, out)
    assert not out.exists() or not any(out.rglob('*'))


# -- the ONNX Runtime backend -------------------------------------------------------------------------------------
@needs_ort
@pytest.mark.numerics
@pytest.mark.parametrize('method, tile', [('EFNet', None), ('EFNet', 12), ('LowLightEventDeblurNet', None)])
def test_onnxruntime_backend_equals_torch_backend(models, exported, tmp_path, method, tile):
    checkpoint, recording = models[method]
    tiling = [] if tile is None else ['--tile', str(tile)]
    torch_run = _run(['--events', recording, '--method', method, '--checkpoint', checkpoint] + tiling,
                     tmp_path / 'torch')
    ort_run = _run(['--events', recording, '--backend', 'onnxruntime', '--onnx', exported[method]] + tiling,
                   tmp_path / 'ort')  # no --method: it comes from the file
    assert [w['name'] for w in ort_run] == [w['name'] for w in torch_run] == [f'{k:06d}' for k in range(3)]
    for k, (a, b) in enumerate(zip(_sharp(ort_run), _sharp(torch_run))):
        assert a.shape == b.shape and np.abs(a - b).max() <= GREY_LEVELS, f'{method} frame {k}'
        assert a.std() > 0, 'a result that is not flat'
    # the float results, through the same API infer.py drives
    from basicsr.deblur.backends import open_onnx

    torch_net, onnx_net = load_method(method, checkpoint), open_onnx(exported[method], num_threads=1)
    for k in range(len(EXPOSURES)):
        expected = deblur_file(recording, method, torch_net, frame=k, tile=tile)['sharp_float']
        got = deblur_file(recording, method, onnx_net, frame=k, tile=tile)['sharp_float']
        assert_close_scaled(got, expected, REL, f'{method} frame {k}')


@needs_ort
def test_onnxruntime_backend_bad_combinations(models, exported, tmp_path):
    checkpoint, recording = models['EFNet']
    out, efnet_file = tmp_path / 'out', exported['EFNet']
    base = ['--events', recording]
    _fails(base + ['--onnx', efnet_file], out, r'--onnx .*EFNet\.onnx needs --backend onnxruntime')
    _fails(base + ['--backend', 'onnxruntime', '--method', 'EFNet'], out, '--backend onnxruntime needs --onnx FILE')
    _fails(base + ['--backend', 'onnxruntime', '--onnx', efnet_file, '--checkpoint', checkpoint], out,
           'the weights are in the ONNX file; drop --checkpoint')
    _fails(base + ['--backend', 'onnxruntime', '--onnx', efnet_file, '--precision', 'bf16'], out,
           '--precision bf16 does not apply to --backend onnxruntime')
    _fails(base + ['--backend', 'onnxruntime', '--onnx', exported['LowLightEventDeblurNet'], '--method', 'EFNet'],
           out, 'holds the network of LowLightEventDeblurNet, but method EFNet was requested', OnnxNetworkError)
    _fails(base + ['--backend', 'onnxruntime', '--onnx', efnet_file, '--no-mask'], out,
           "--no-mask: .* takes the event mask \\(input 'mask'")
    _fails(base + ['--backend', 'onnxruntime', '--onnx', efnet_file, '--net-opt', 'wf=16'], out,
           'wf=16 was requested, but .* holds EFNet with wf=8; the network options are fixed in the ONNX file')
    _fails(base + ['--backend', 'onnxruntime', '--onnx', str(tmp_path / 'none.onnx')], out, 'ONNX file not found',
           OnnxNetworkError)


@needs_ort
def test_onnx_file_of_another_size_is_refused_before_inference(models, tmp_path):
    from basicsr.deploy.onnx_export import export_method

    checkpoint, recording = models['EFNet']
    fixed = str(tmp_path / 'fixed.onnx')
    export_method('EFNet', (22, 30), fixed, checkpoint=checkpoint, dynamic=False, num_threads=1)
    _fails(['--events', recording, '--backend', 'onnxruntime', '--onnx', fixed], tmp_path / 'out',
           r'fixed\.onnx was exported for 22x30 frames only \(fixed size\), but the frames are 18x30; export it again '
           r'with --size 18 30', OnnxNetworkError)


def test_onnxruntime_missing_names_the_install_command(models, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # `import onnxruntime` now raises ImportError
    _fails(['--events', models['EFNet'][1], '--backend', 'onnxruntime', '--onnx', str(tmp_path / 'x.onnx')],
           tmp_path / 'out', r"onnxruntime is not installed; .* pip install -e '\.\[deploy\]'", ImportError)


# -- precision ----------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_bf16_cpu(monkeypatch):
    """The start-up check reports a CPU with native bf16 (as in tests/test_precision.py: bf16 autocast rounds the
    same operations the same way on any CPU, natively or emulated; only the speed differs)."""
    monkeypatch.setattr(precision, '_cpu_bf16', functools.lru_cache(maxsize=None)(lambda: (True, 'CPU (test)')))


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(precision, '_cpu_bf16', functools.lru_cache(maxsize=None)(
        lambda: (False, 'this CPU has no native bf16 instructions, avx512_bf16 or amx_bf16')))


@pytest.mark.numerics
@pytest.mark.parametrize('tile', [None, 12])
def test_precision_bf16_stays_close_to_fp32(models, fake_bf16_cpu, tmp_path, tile):
    checkpoint, recording = models['EFNet']
    net = load_method('EFNet', checkpoint)
    bf16 = with_precision(net, 'bf16', 'cpu', 'EFNet')
    assert bf16 is not net and bf16.size_multiple == net.size_multiple
    dtypes = []
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda mod, args, out: dtypes.append(out.dtype))
    rng = np.random.default_rng(3)
    stream, image = _stream(rng, *EFNET_SIZE), _frames(rng, *EFNET_SIZE)[0]
    got = deblur(image, stream, *EXPOSURES[0], 'EFNet', bf16, tile=tile)['sharp_float']
    assert dtypes and set(dtypes) == {torch.bfloat16}, 'the convolutions run in bf16'
    expected = deblur(image, stream, *EXPOSURES[0], 'EFNet', net, tile=tile)['sharp_float']
    assert got.dtype == np.float32
    # the bound of tests/test_precision.py: bf16 keeps 8 significant bits; through EFNet's convolutions with fp32
    # accumulation the measured error is ~1e-3 of the output scale, 1e-2 leaves ~8x margin
    assert_close_scaled(got, expected, rel=1e-2, what=f'bf16 tile={tile}')
    # and the command line: 8-bit results within the same bound
    args = ['--events', recording, '--method', 'EFNet', '--checkpoint', checkpoint]
    fp32_run, bf16_run = _run(args, tmp_path / 'fp32'), _run(args + ['--precision', 'bf16'], tmp_path / 'bf16')
    for a, b in zip(_sharp(bf16_run), _sharp(fp32_run)):
        assert_close_scaled(a / 255, b / 255, rel=1e-2, what='bf16 written result')


def test_precision_bf16_without_hardware_falls_back_with_a_warning(models, cpu_without_bf16, tmp_path):
    checkpoint, recording = models['EFNet']
    args = ['--events', recording, '--method', 'EFNet', '--checkpoint', checkpoint, '--frame', '1']
    with pytest.warns(InferenceWarning, match=r'^--precision: bf16 requested but this CPU has no native bf16 '
                      r'instructions, avx512_bf16 or amx_bf16; running in fp32 \(fast on cpu: fp32\)$'):
        bf16_run = _run(args + ['--precision', 'bf16'], tmp_path / 'bf16')
    fp32_run = _run(args, tmp_path / 'fp32')
    assert np.array_equal(_sharp(bf16_run)[0], _sharp(fp32_run)[0]), 'the fallback is the fp32 run itself'


def test_precision_fp16_refused_on_cpu_and_unknown_rejected(models, cpu_without_bf16, tmp_path, capsys):
    checkpoint, recording = models['EFNet']
    args = ['--events', recording, '--method', 'EFNet', '--checkpoint', checkpoint]
    _fails(args + ['--precision', 'fp16'], tmp_path / 'out', r'^--precision: fp16 is not supported on CPU \(no fast '
           r'fp16 kernels\); use bf16 \(runs as fp32 on this CPU: .*\) or fp32$')
    with pytest.raises(InferenceError, match=r'^--threads 0: expected a number of threads >= 1$'):
        main(args + ['--threads', '0', '--out', str(tmp_path / 'out')])
    with pytest.raises(SystemExit):
        _run(args + ['--precision', 'fp64'], tmp_path / 'out')
    err = capsys.readouterr().err.replace("'", '')  # argparse quotes the choices from Python 3.12 on
    assert 'argument --precision: invalid choice: fp64 (choose from fp32, bf16, fp16)' in err


def test_precision_does_not_apply_to_edi(models, tmp_path):
    recording = models['EFNet'][1]
    with pytest.warns(InferenceWarning, match=r'^--precision bf16: EDI has no network weights'):
        written = _run(['--events', recording, '--method', 'EDI', '--precision', 'bf16', '--net-opt',
                        'threshold=0.25', '--frame', '0'], tmp_path / 'edi')
    assert len(written) == 1 and cv2.imread(written[0]['sharp']) is not None
