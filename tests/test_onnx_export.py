"""ONNX export (basicsr/deploy/onnx_export.py, scripts/export_onnx.py) and the ONNX Runtime network (onnx_runtime.py).

Small networks with seeded weights (EFNet wf=8; the low-light network init_dim=32, APS and RGB, its attention
``gamma`` set non-zero so the chunked attention shapes count), exported once per module. Tolerance 1e-4 relative to
the output (the export's own acceptance bound): the graph runs the same float32 operations as torch with other
kernels, measured 1e-7 (EFNet) and 1-2.5e-5 (low-light, whose instance norms amplify rounding) of the output.
Torch and ONNX Runtime use one thread here: on the shared 2-core machine two spinning threads made a forward 50x
slower.
"""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

onnx = pytest.importorskip('onnx', reason="onnx is not installed (optional extra: pip install -e '.[deploy]')")
pytest.importorskip('onnxruntime', reason="onnxruntime is not installed (optional extra: pip install -e '.[deploy]')")

import basicsr  # noqa: E402
from basicsr.archs import method_spec, network_options  # noqa: E402
from basicsr.archs.efnet_arch import EFNet  # noqa: E402
from basicsr.archs.lowlight_arch import LowLightEventDeblurNet  # noqa: E402
from basicsr.deploy.onnx_export import ExportError, export_network, import_deploy, random_inputs  # noqa: E402
from basicsr.deploy.onnx_runtime import OnnxNetwork, OnnxNetworkError  # noqa: E402
from basicsr.models.inference import forward_padded, forward_tiled  # noqa: E402
from numerics import assert_close_scaled  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'export_onnx.py'
REL = 1e-4


def _efnet():
    torch.manual_seed(0)
    return EFNet(wf=8).eval(), 'EFNet', {'wf': 8}


def _lowlight(rgb):
    torch.manual_seed(1)
    net = LowLightEventDeblurNet(init_dim=32, rgb=rgb).init_weights()
    for name, param in net.named_parameters():
        if name.endswith('gamma'):  # 0 after init_weights: the attention would not reach the output
            param.data.fill_(0.5)
    return net.eval(), 'LowLightEventDeblurNet', {'init_dim': 32, 'rgb': rgb}


# network -> (builder, export size (sensor H, W), a second frame size for the dynamic-size check)
NETWORKS = {'efnet': (_efnet, (30, 46), (21, 34)), 'lowlight_aps': (lambda: _lowlight(False), (20, 70), (13, 44)),
            'lowlight_rgb': (lambda: _lowlight(True), (20, 70), (13, 44))}


pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """Every network of NETWORKS exported once: name -> (net, method, options, ExportResult)."""
    folder = tmp_path_factory.mktemp('onnx')
    done = {}
    for name, (build, size, _) in NETWORKS.items():
        net, method, options = build()
        result = export_network(net, method, options, size, str(folder / f'{name}.onnx'), num_threads=1)
        done[name] = (net, method, options, result)
    return done


def _frame_inputs(net, method, options, size, seed):
    """Random inputs at a frame size that is not a multiple of the size multiple (forward_padded pads)."""
    return random_inputs(method_spec(method, options), net.io, size, seed)


@pytest.mark.numerics
@pytest.mark.parametrize('name', sorted(NETWORKS))
def test_export_equals_torch_at_two_sizes(exported, name):
    net, method, options, result = exported[name]
    meta = result.metadata
    assert meta.dynamic_size, f'{name}: dynamic export was not kept: {result.checks}'
    assert len(result.checks) == 2 and result.checks[0].size != result.checks[1].size
    assert all(0 <= c.max_rel_diff <= REL for c in result.checks), result.checks
    onnx_net = OnnxNetwork(result.path, method=method, num_threads=1)
    result_index = net.io['outputs'].index(net.io['result'])
    for k, size in enumerate((NETWORKS[name][1], NETWORKS[name][2])):
        inputs = _frame_inputs(net, method, options, size, seed=10 + k)
        expected = forward_padded(net, inputs, net.size_multiple)[result_index]
        got = forward_padded(onnx_net, inputs, onnx_net.size_multiple)
        assert len(got) == 1
        assert_close_scaled(got[0], expected, REL, f'{name} at {size}')
        assert tuple(got[0].shape[-2:]) == tuple(expected.shape[-2:])


@pytest.mark.numerics
def test_onnx_network_tiled_equals_torch_tiled(exported):
    net, method, options, result = exported['efnet']
    onnx_net = OnnxNetwork(result.path, num_threads=1)
    inputs = _frame_inputs(net, method, options, (30, 46), seed=3)
    expected = forward_tiled(net, inputs, 16, net.size_multiple)[1]
    got = forward_tiled(onnx_net, inputs, 16, onnx_net.size_multiple)
    assert_close_scaled(got[0], expected, REL, 'EFNet tiled')


@pytest.mark.parametrize('name', sorted(NETWORKS))
def test_metadata_records_method_options_representation(exported, name):
    net, method, options, result = exported[name]
    full = network_options(type(net), options)
    onnx_net = OnnxNetwork(result.path)
    assert onnx_net.method == method
    assert onnx_net.options == {k: list(v) if isinstance(v, tuple) else v for k, v in full.items()}
    assert onnx_net.representation == method_spec(method, full).events
    assert onnx_net.spec.input_keys == method_spec(method, full).input_keys
    assert onnx_net.io['inputs'] == net.io['inputs'] and onnx_net.io['outputs'] == [net.io['result']]
    assert onnx_net.metadata.size == NETWORKS[name][1] and onnx_net.metadata.version == basicsr.__version__
    assert onnx_net.prefers_channels_last is False and next(onnx_net.parameters(), None) is None
    model = onnx.load(result.path)
    assert [i.name for i in model.graph.input] == list(net.io['inputs'].values())
    assert [o.name for o in model.graph.output] == [net.io['result']]


def test_fixed_size_file_refuses_other_size(tmp_path):
    net, method, options = _efnet()
    path = str(tmp_path / 'fixed.onnx')
    result = export_network(net, method, options, (10, 18), path, dynamic=False, num_threads=1)
    assert not result.metadata.dynamic_size and result.metadata.network_size == (12, 20)
    onnx_net = OnnxNetwork(path, num_threads=1)
    onnx_net.check_size(10, 18)
    with pytest.raises(OnnxNetworkError, match=r'10x18 frames only.*frames are 16x20'):
        onnx_net.check_size(16, 20)
    inputs = _frame_inputs(net, method, options, (10, 18), seed=4)
    assert_close_scaled(forward_padded(onnx_net, inputs, 4)[0], forward_padded(net, inputs, 4)[1], REL, 'fixed')
    other = _frame_inputs(net, method, options, (16, 20), seed=5)
    with pytest.raises(OnnxNetworkError, match=r'10x18 frames only.*inputs are 16x20'):
        forward_padded(onnx_net, other, 4)


def test_file_of_another_method_is_refused(exported):
    path = exported['efnet'][3].path
    with pytest.raises(OnnxNetworkError, match=r'network of EFNet, but method LowLightEventDeblurNet was requested'):
        OnnxNetwork(path, method='DefaultModel')


def test_non_project_files_are_refused(tmp_path):
    plain = str(tmp_path / 'plain.onnx')
    helper = onnx.helper
    value = helper.make_tensor_value_info
    graph = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'plain',
                              [value('x', onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
                              [value('y', onnx.TensorProto.FLOAT, [1, 1, 8, 8])])
    onnx.save(helper.make_model(graph), plain)  # a valid ONNX model without the project's metadata
    with pytest.raises(OnnxNetworkError, match='not an ONNX file exported by this project'):
        OnnxNetwork(plain)
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'not a model at all')
    with pytest.raises(OnnxNetworkError, match='not a readable ONNX model'):
        OnnxNetwork(str(junk))
    with pytest.raises(OnnxNetworkError, match='not found'):
        OnnxNetwork(str(tmp_path / 'missing.onnx'))


def test_refused_export_leaves_no_file(tmp_path):
    net, method, options = _efnet()
    with pytest.raises(ExportError, match='refused: ONNX Runtime differs from torch by'):
        export_network(net, method, options, (8, 8), str(tmp_path / 'm.onnx'), tolerance=-1.0, num_threads=1)
    assert list(tmp_path.iterdir()) == []


def test_missing_onnxruntime_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[deploy\]'"):
        import_deploy('onnxruntime')
    with pytest.raises(ImportError, match='onnxruntime is not installed'):
        OnnxNetwork(str(tmp_path / 'any.onnx'))


@pytest.fixture(scope='module')
def script():
    spec = importlib.util.spec_from_file_location('export_onnx_under_test', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_exports_a_checkpoint_and_refuses_edi_and_missing_weights(script, tmp_path, capsys):
    net, _, _ = _efnet()
    ckpt = tmp_path / 'efnet.pth'
    torch.save({'params': net.state_dict()}, ckpt)
    out = tmp_path / 'efnet.onnx'
    args = ['--size', '10', '18', '--out', str(out), '--threads', '1']
    assert script.main(['--method', 'EDI', *args]) == 1
    assert 'EDI has no learned network' in capsys.readouterr().err
    assert script.main(['--method', 'EFNet', *args]) == 1
    assert '--random-weights' in capsys.readouterr().err and not out.exists()
    assert script.main(['--method', 'EFNet', '--checkpoint', str(ckpt), '--tolerance', '-1', *args]) == 1
    assert 'refused' in capsys.readouterr().err and not out.exists()
    assert script.main(['--method', 'EFNet', '--checkpoint', str(ckpt), *args]) == 0
    printed = capsys.readouterr().out
    assert 'ONNX checker passed' in printed and 'check     12x20' in printed
    onnx_net = OnnxNetwork(str(out), method='EFNet', num_threads=1)
    assert onnx_net.options['wf'] == 8 and onnx_net.metadata.dynamic_size
    inputs = random_inputs(onnx_net.spec, onnx_net.io, (12, 20), seed=6)
    expected = net(**inputs)[1].detach()
    assert_close_scaled(onnx_net(**inputs)[0], expected, REL, 'script export')
    assert script.main(['--method', 'EFNet', '--checkpoint', str(ckpt), *args]) == 1
    assert 'exists' in capsys.readouterr().err
