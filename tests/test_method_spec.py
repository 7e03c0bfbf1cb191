"""Inference declarations of the networks: each reproduces what ``deblur_methods.method_batch`` builds today, and
checkpoints are recognised through the registry with the options their shapes fix."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from basicsr.archs import build_network, build_image_inputs, method_spec, network_options, recognise_checkpoint
from basicsr.archs.method_spec import check_image_sizes, declaring_networks
from basicsr.events import EventFormatError, EventInputSpec, EventStream, build_event_input
from basicsr.models.deblur_methods import (InferenceError, check_frame_size, load_method, method_batch,
                                           options_from_state_dict, recognise_state_dict)
from basicsr.utils.registry import ARCH_REGISTRY
from golden_data import layout_file

H, W = 16, 40
T_START, T_END = 0.0, 0.1


@pytest.fixture(scope='module')
def window():
    rng = np.random.default_rng(3)
    n = 3000
    return EventStream(rng.integers(0, W, n).astype(np.uint16), rng.integers(0, H, n).astype(np.uint16),
                       np.sort(rng.uniform(0.01, 0.09, n)), rng.choice(np.array([-1, 1], np.int8), n), H, W)


def _image(rng, shape, dtype):
    if dtype == np.float32:
        return rng.uniform(0, 1, shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)


# (method name for method_batch, network options, image shape, image dtype, APS frame given)
CASES = {
    'efnet_bgr': ('EFNet', {'wf': 8}, (H, W, 3), np.uint8, False),
    'efnet_keep_middle_gray': ('EFNet', {'wf': 8, 'ev_chn': 7}, (H, W), np.uint8, False),
    'efnet_gray_net_colour_frame': ('EFNet', {'wf': 8, 'in_chn': 1, 'depth': 2}, (H, W, 3), np.uint16, False),
    'lowlight_aps': ('LowLightEventDeblurNet', {'init_dim': 32}, (H, W), np.uint8, False),
    'lowlight_aps_colour_frame': ('LowLightEventDeblurNet', {'init_dim': 32, 'n_ev': 5}, (H, W, 3), np.float32,
                                  False),
    'lowlight_rgb': ('LowLightEventDeblurNet', {'init_dim': 32, 'rgb': True}, (3 * H, 3 * W, 3), np.uint8, True),
    'lowlight_rgb_gray_image': ('LowLightEventDeblurNet', {'init_dim': 32, 'rgb': True}, (3 * H, 3 * W), np.uint16,
                                True),
    'edi': ('EDI', {}, (H, W, 3), np.uint16, False),
    'edi_keep_middle_rgba': ('EDI', {'keep_middle': True}, (H, W, 4), np.uint8, False),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_declaration_reproduces_method_batch(case, window):
    """Same events, same image: the declaration builds exactly the arrays ``method_batch`` builds (the same
    representation kernels and conversions run, so equality is exact)."""
    name, opts, shape, dtype, with_aps = CASES[case]
    rng = np.random.default_rng(sorted(CASES).index(case))
    image = _image(rng, shape, dtype)
    aps = _image(rng, (H, W), np.uint8) if with_aps else None
    net = build_network({'type': name, **opts})
    expected, expected_raw = method_batch(name, net, image, window, T_START, T_END, aps)

    spec = method_spec(name, opts)
    events, raw = build_event_input(spec.events, *window.arrays(), T_START, T_END, H, W)
    batch = {**build_image_inputs(spec, image, aps), **events}

    assert sorted(batch) == sorted(expected)
    for key, value in expected.items():
        assert batch[key].dtype == value.dtype and batch[key].shape == value.shape, key
        assert np.array_equal(batch[key], value), key
    assert np.array_equal(raw, expected_raw)
    assert spec.size_multiple == net.size_multiple
    assert spec.events.num_channels == raw.shape[0]


def test_declared_keys_are_the_io_inputs():
    names = declaring_networks()
    assert names == ['EDI', 'EFNet', 'LowLightEventDeblurNet', 'PassThrough']
    for name in names:
        spec = method_spec(name)
        assert spec.name == name
        assert set(spec.input_keys) == set(ARCH_REGISTRY.get(name).io['inputs'].values()), name
    assert method_spec('LowLightEventDeblurNet', {'rgb': True}).output_rgb
    assert not method_spec('EFNet').output_rgb


def test_alias_is_resolved_by_the_registry():
    assert method_spec('DefaultModel', {'rgb': True}) == method_spec('LowLightEventDeblurNet', {'rgb': True})
    assert method_spec('DefaultModel').name == 'LowLightEventDeblurNet'


def test_options_defaults_and_errors():
    cls = ARCH_REGISTRY.get('EFNet')
    opts = network_options(cls, {'type': 'EFNet', 'wf': 8})
    assert opts['wf'] == 8 and opts['ev_chn'] == 6 and opts['depth'] == 3 and 'type' not in opts
    with pytest.raises(ValueError, match=r"EFNet takes no option\(s\) \['n_ev'\]"):
        method_spec('EFNet', {'n_ev': 13})
    with pytest.raises(ValueError, match='declares no inference_spec'):
        method_spec('VGG19FeatureExtractor')
    with pytest.raises(KeyError, match='Did you mean: EFNet'):
        method_spec('EFNte')
    with pytest.raises(ValueError, match='APS frame'):
        build_image_inputs(method_spec('LowLightEventDeblurNet', {'rgb': True}), np.zeros((3 * H, 3 * W, 3)))


def test_event_input_spec_checks_and_fixed_window(window):
    with pytest.raises(EventFormatError, match='normalize'):
        EventInputSpec({'type': 'scer', 'normalize': 'zscore'})
    with pytest.raises(EventFormatError, match='"type"'):
        EventInputSpec({'num_bins': 6})
    with pytest.raises(TypeError, match='EventInputSpec'):
        build_event_input({'type': 'scer'}, *window.arrays(), T_START, T_END, H, W)
    rep = {'type': 'voxel_grid', 'num_bins': 5}
    fixed = build_event_input(EventInputSpec(rep, fixed_window=True), *window.arrays(), 0.0, 1.0, H, W)[1]
    spanned = build_event_input(EventInputSpec(rep), *window.arrays(), 0.0, 1.0, H, W)[1]
    # Events lie in [0.01, 0.09]: over the fixed window [0, 1] (bin centres 0.25 s apart) they reach bins 0 and 1
    # only; spanning first to last event, they fill all 5.
    assert np.abs(fixed[0]).sum() > 0 and np.abs(fixed[2:]).sum() == 0
    assert np.abs(spanned[2:]).sum() > 0
    spec = EventInputSpec({'type': 'scer', 'num_bins': 6})
    assert hash(spec) == hash(EventInputSpec({'type': 'scer', 'num_bins': 6})) and spec.event_repr is not \
        spec.representation


FULL_SIZE = {
    'efnet': ('EFNet', {'wf': 64, 'in_chn': 3, 'ev_chn': 6, 'depth': 3}),
    'lowlight_aps': ('LowLightEventDeblurNet', {'init_dim': 64, 'n_ev': 13, 'out_channels': 1, 'rgb': False}),
    'lowlight_rgb': ('LowLightEventDeblurNet', {'init_dim': 64, 'n_ev': 13, 'out_channels': 1, 'rgb': True}),
}


@pytest.mark.parametrize('which', sorted(FULL_SIZE))
def test_recognise_full_size_checkpoint_shapes(which):
    with open(layout_file(f'{which}_state_dict_shapes.json')) as f:
        shapes = json.load(f)
    state = {k: torch.empty(v, device='meta') for k, v in shapes.items()}
    name, expected = FULL_SIZE[which]
    match = recognise_checkpoint(state)
    assert match is not None and match.name == name and match.options == expected
    # Same answer as the method switch of deblur_methods.py today.
    assert match.options == options_from_state_dict(name, state)
    assert (name, method_spec(name, match.options).variant) == (recognise_state_dict(state)[0],
                                                               recognise_state_dict(state)[1] or '')
    with torch.device('meta'):
        rebuilt = build_network({'type': name, **match.options})
    assert {k: list(v.shape) for k, v in rebuilt.state_dict().items()} == shapes


SMALL = [
    ('EFNet', {'wf': 8}),
    ('EFNet', {'wf': 16, 'ev_chn': 7, 'in_chn': 1, 'depth': 2}),
    ('LowLightEventDeblurNet', {'init_dim': 32, 'n_ev': 5}),
    ('LowLightEventDeblurNet', {'init_dim': 40, 'rgb': True, 'out_channels': 3, 'norm_type': 'batch'}),
]


@pytest.mark.parametrize('name, opts', SMALL)
def test_recognise_small_checkpoint_and_read_width_back(name, opts):
    state = build_network({'type': name, **opts}).state_dict()
    match = recognise_checkpoint(state)
    assert match.name == name
    assert {k: v for k, v in match.options.items() if k in opts} == opts
    assert match.options == options_from_state_dict(name, state)
    build_network({'type': name, **match.options}).load_state_dict(state, strict=True)


def test_stored_config_gives_the_options_the_shapes_do_not_fix(tmp_path):
    """A converted low-light checkpoint stores the reference config; its grid reaches the options as in
    ``load_method`` today, the shapes still win for what they fix."""
    net = build_network({'type': 'LowLightEventDeblurNet', 'init_dim': 32, 'grid': (4, 5)})
    config = {'model': {'type': 'DefaultModel', 'args': {'grid': [4, 5], 'init_dim': 64}}}
    path = str(tmp_path / 'll.pth')
    torch.save({'params': net.state_dict(), 'config': config}, path)
    loaded = load_method('LowLightEventDeblurNet', path)
    match = recognise_checkpoint(net.state_dict(), config)
    assert match.options['grid'] == [4, 5] and match.options['init_dim'] == 32
    rebuilt = build_network({'type': match.name, **match.options})
    assert rebuilt.grid == loaded.grid == (4, 5) and rebuilt.init_dim == loaded.init_dim
    assert method_spec(match.name, match.options).size_multiple == loaded.size_multiple == (8, 40)
    assert recognise_checkpoint(net.state_dict()).options.get('grid') is None
    assert recognise_checkpoint(net.state_dict(), {'model': 'not a dict'}).options.get('grid') is None
    assert 'convert_checkpoint.py' in method_spec('DefaultModel').checkpoint_help
    assert method_spec('EFNet').checkpoint_help == '' and method_spec('EDI').needs_checkpoint is False


def test_unknown_state_dicts_are_not_recognised():
    assert recognise_checkpoint({'conv.weight': torch.zeros(1)}) is None
    assert recognise_checkpoint({'sam12.conv1.weight': torch.zeros(1)}) is None  # one key is not enough
    assert recognise_checkpoint({}) is None


def test_a_new_registered_network_is_recognised_without_other_changes(repo_root):
    """A network registered outside the package declares itself and is found by the generic look-ups."""
    code = '''
import torch
from torch import nn
from basicsr.archs import ImageInput, MethodSpec, method_spec, recognise_checkpoint
from basicsr.events import EventInputSpec
from basicsr.utils.registry import ARCH_REGISTRY

@ARCH_REGISTRY.register()
class TinyNet(nn.Module):
    io = {'inputs': {'x': 'frame', 'ev': 'voxel'}, 'outputs': ['out'], 'result': 'out', 'gt': 'frame_gt'}
    checkpoint_keys = ('head', 'body')

    def __init__(self, width=4, bins=5):
        super().__init__()
        self.head, self.body = nn.Conv2d(3 + bins, width, 3), nn.Conv2d(width, 3, 1)

    @classmethod
    def inference_spec(cls, options):
        ev = EventInputSpec({'type': 'voxel_grid', 'num_bins': options['bins']}, fixed_window=True)
        return MethodSpec(cls.__name__, ev, (ImageInput('frame', channels=3), ), 1, checkpoint_keys=cls.checkpoint_keys)

    @classmethod
    def options_from_state_dict(cls, state):
        return {'width': state['head.weight'].shape[0], 'bins': state['head.weight'].shape[1] - 3}

match = recognise_checkpoint(TinyNet(width=6, bins=7).state_dict())
print(match.name, match.options['width'], match.options['bins'], method_spec(*match).events.num_channels)
'''
    out = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['TinyNet', '6', '7', '7']


SIZE_CASES = [  # (name, options, image shape, APS shape)
    ('EFNet', {}, (H, W, 3), None),
    ('EFNet', {}, (H - 2, W, 3), None),
    ('EDI', {}, (H, W + 1), None),
    ('LowLightEventDeblurNet', {}, (H, W), None),
    ('LowLightEventDeblurNet', {'rgb': True}, (3 * H, 3 * W, 3), (H, W)),
    ('LowLightEventDeblurNet', {'rgb': True}, (2 * H, 2 * W, 3), (H, W)),
    ('LowLightEventDeblurNet', {'rgb': True}, (3 * H, 3 * W, 3), None),
    ('LowLightEventDeblurNet', {'rgb': True}, (3 * H, 3 * W, 3), (H, W + 2)),
    ('LowLightEventDeblurNet', {'rgb': True}, (H, W, 3), (H, W + 2)),
]


@pytest.mark.parametrize('case', range(len(SIZE_CASES)))
def test_size_check_agrees_with_check_frame_size(case):
    name, opts, shape, aps_shape = SIZE_CASES[case]
    spec = method_spec(name, opts)
    try:
        check_frame_size(shape, (H, W), bool(opts.get('rgb')), aps_shape)
        expected = None
    except InferenceError as err:
        expected = str(err)
    if expected is None:
        check_image_sizes(spec, (H, W), shape, aps_shape)
        return
    with pytest.raises(ValueError) as info:
        check_image_sizes(spec, (H, W), shape, aps_shape)
    # The same sizes are named (the wording differs only in naming the network instead of "the RGB model").
    numbers = [f'{a}x{b}' for a, b in [shape[:2], (H, W), (3 * H, 3 * W)] + ([aps_shape[:2]] if aps_shape else [])]
    for n in numbers:
        assert (n in expected) == (n in str(info.value)), (n, expected, str(info.value))
