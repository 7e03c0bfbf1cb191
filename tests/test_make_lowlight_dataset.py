"""Tests of the low-light data set maker and the low-light image noise model."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from basicsr.events import voxel_grid
from basicsr.synthesis.lowlight_noise import add_aps_noise, add_rgb_noise, bayer_mosaic, sample_noise_params

SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'data_preparation' / 'make_lowlight_dataset.py'
OPTS = dict(trajectories=2, patch_grid=(4, 5), sub_frames=7, progress=False)


@pytest.fixture(scope='module')
def maker():
    spec = importlib.util.spec_from_file_location('make_lowlight_dataset', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules['make_lowlight_dataset'] = module  # worker processes find make_sample by module name
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def sources(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / 'src'
    folder.mkdir()
    for name in ('img_a', 'img_b'):
        img = cv2.GaussianBlur(rng.random((144, 180, 3)), (0, 0), 2) * 400
        cv2.imwrite(str(folder / f'{name}.png'), np.clip(img, 0, 255).astype(np.uint8))  # has saturated pixels
    return folder


def all_files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob('*') if p.is_file())


def test_train_run_writes_exactly_the_layout(maker, sources, tmp_path):
    out = tmp_path / 'train'
    summary = maker.make_dataset(str(sources), str(out), mode='train', seed=5, workers=1, **OPTS)
    names = ['img_a_000', 'img_a_flipud_001', 'img_b_000', 'img_b_flipud_001']
    assert sorted(summary['made']) == names and summary['skipped'] == 0
    folders = ['share/APS_blur', 'share/APS_blur_clean', 'subnetwork2/APS', 'subnetwork2/RGB', 'subnetwork2/RGB_blur',
               'subnetwork2/RGB_blur_clean']
    expected = [f'{f}/{n}.png' for f in folders for n in names]
    expected += [f'{f}/{n}.npy' for f in ('share/flow', 'others/events', 'subnetwork1/events_voxel_grid')
                 for n in names]
    assert all_files(out) == sorted(expected + ['manifest.jsonl'])

    name = 'img_a_flipud_001'
    aps = cv2.imread(str(out / 'subnetwork2/APS' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
    rgb = cv2.imread(str(out / 'subnetwork2/RGB' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
    assert aps.shape == (48, 60) and rgb.shape == (144, 180, 3) and rgb.dtype == np.uint8
    src = cv2.imread(str(sources / 'img_a.png'))
    np.testing.assert_array_equal(rgb, src[::-1])  # sharp target = unwarped first sub-frame, flipped
    events = np.load(out / 'others/events' / f'{name}.npy')
    assert events.dtype == np.float32 and events.shape[1] == 4 and len(events) > 100
    assert events[:, 0].min() > 0 and events[:, 0].max() <= 0.1 and set(np.unique(events[:, 3])) <= {-1, 1}
    voxel = np.load(out / 'subnetwork1/events_voxel_grid' / f'{name}.npy')
    assert voxel.shape == (48, 60, 13) and voxel.dtype == np.float32
    ref = voxel_grid(events[:, 1].astype(int), events[:, 2].astype(int), events[:, 0].astype(np.float64),
                     events[:, 3], 13, 48, 60, t_range=(0, 0.1))
    np.testing.assert_allclose(voxel, ref.transpose(1, 2, 0), atol=1e-5)
    flow = np.load(out / 'share/flow' / f'{name}.npy')
    assert flow.shape == (48, 60, 4) and flow.dtype == np.float32 and np.abs(flow).max() > 0
    clean = cv2.imread(str(out / 'share/APS_blur_clean' / f'{name}.png'), cv2.IMREAD_UNCHANGED).astype(float)
    noisy = cv2.imread(str(out / 'share/APS_blur' / f'{name}.png'), cv2.IMREAD_UNCHANGED).astype(float)
    assert 0 < np.abs(noisy - clean).mean() < 10


def test_manifest_records_seed_and_parameters(maker, sources, tmp_path):
    out = tmp_path / 'train'
    maker.make_dataset(str(sources), str(out), mode='train', seed=5, workers=1, **OPTS)
    lines = (out / 'manifest.jsonl').read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r['name'] for r in records] == ['img_a_000', 'img_a_flipud_001', 'img_b_000', 'img_b_flipud_001']
    for i, rec in enumerate(records):
        assert rec['index'] == i and rec['seed'] == [5, i] and rec['mode'] == 'train' and rec['flip'] == i % 2
        assert rec['config']['sub_frames'] == 7 and rec['config']['patch_grid'] == [4, 5]
        assert rec['config']['simulator']['shot_noise_rate_hz'] == 0.1
        params = rec['params']
        assert 1.25 <= params['boost'] <= 2.5
        assert all(0.01 <= params['noise'][k] <= 0.02 for k in ('sigma1', 'sigma2', 'sigma3'))
        assert 0.65 <= params['noise']['w'] <= 0.75
        assert {'clockwise', 'arc_len', 'theta_c', 'theta_p'} <= set(params['base_trajectory'])
        assert {'r0', 'c0', 's_t', 'phi_r', 's_r'} <= set(params['patch_trajectory'])
        events = np.load(out / 'others/events' / f"{rec['name']}.npy")
        assert params['num_events'] == len(events) == sum(params['events'].values())
    assert len({r['params']['boost'] for r in records}) == 4  # an own generator per sample


def test_resume_redoes_only_the_missing_sample(maker, sources, tmp_path):
    out = tmp_path / 'train'
    maker.make_dataset(str(sources), str(out), mode='train', seed=1, workers=1, **OPTS)
    before = {f: os.stat(out / f).st_mtime_ns for f in all_files(out)}
    contents = {f: (out / f).read_bytes() for f in all_files(out)}
    os.remove(out / 'share/flow' / 'img_b_000.npy')
    stale = out / 'share/APS_blur' / '.img_b_000.png.part-123'
    stale.write_bytes(b'half')
    summary = maker.make_dataset(str(sources), str(out), mode='train', seed=1, workers=2, **OPTS)
    assert summary['made'] == ['img_b_000'] and summary['skipped'] == 3 and summary['removed_temporaries'] == 1
    assert all_files(out) == sorted(before)
    for f in before:
        if 'img_b_000' in f:  # redone from the same seed: identical bytes, new files
            assert (out / f).read_bytes() == contents[f] and os.stat(out / f).st_mtime_ns >= before[f], f
        elif f != 'manifest.jsonl':
            assert os.stat(out / f).st_mtime_ns == before[f], f
    assert len((out / 'manifest.jsonl').read_text().splitlines()) == 4
    again = maker.make_dataset(str(sources), str(out), mode='train', seed=1, workers=1, **OPTS)
    assert again['made'] == [] and again['skipped'] == 4
    with pytest.raises(ValueError, match='another seed or configuration'):
        maker.make_dataset(str(sources), str(out), mode='train', seed=2, workers=1, **OPTS)
    with pytest.raises(ValueError, match='another seed or configuration'):
        maker.make_dataset(str(sources), str(out), mode='train', seed=1, workers=1, noisy_rounding='round', **OPTS)


def test_sample_without_manifest_record_is_redone(maker, sources, tmp_path):
    out = tmp_path / 'train'
    maker.make_dataset(str(sources), str(out), mode='train', seed=1, workers=1, **OPTS)
    lines = (out / 'manifest.jsonl').read_text().splitlines()
    (out / 'manifest.jsonl').write_text('\n'.join(lines[:2]) + '\n' + lines[2][:30])  # a kill cut the last lines
    summary = maker.make_dataset(str(sources), str(out), mode='train', seed=1, workers=1, **OPTS)
    assert sorted(summary['made']) == ['img_b_000', 'img_b_flipud_001']


def test_test_mode_writes_trajectories_and_kernels(maker, sources, tmp_path):
    out = tmp_path / 'test'
    main_summary = maker.main(['--input', str(sources), '--output', str(out), '--mode', 'test', '--trajectories', '1',
                               '--patch-grid', '4', '5', '--sub-frames', '7', '--workers', '1', '--no-progress'])
    assert sorted(main_summary['made']) == ['img_a_000', 'img_b_000']
    base = np.load(out / 'others/base_trajectory_APS/img_a_000.npy')
    patch = np.load(out / 'others/patch_wise_trajectory_APS/img_a_000.npy')
    assert base.dtype == np.complex128 and base.shape == (7, ) and patch.shape == (4, 5, 7)
    kernel = np.load(out / 'others/base_kernel_APS/img_a_000.npy')
    kmap = np.load(out / 'others/patch_wise_kernel_APS/img_a_000.npy')
    assert kernel.shape == (12, 12) and kmap.shape == (48, 60) and kmap.dtype == np.float32
    assert abs(kernel.sum() - 1) < 1e-5 and abs(kmap.sum() - 20) < 1e-4
    flow = np.load(out / 'share/flow/img_a_000.npy')
    mid = patch[1, 2, 3] - patch[1, 2, 0]
    np.testing.assert_allclose(flow[12, 24, :2], [mid.real, -mid.imag], rtol=1e-5)
    assert not any('flip' in f for f in all_files(out))


def test_improved_options_change_outputs(maker, sources, tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    maker.make_dataset(str(sources), str(a), mode='test', seed=2, workers=1, **OPTS)
    maker.make_dataset(str(sources), str(b), mode='test', seed=2, workers=1, aps_downsample='area',
                       noisy_rounding='round', simulator={'shot_noise_every_step': True}, **OPTS)
    aps_a = cv2.imread(str(a / 'subnetwork2/APS/img_a_000.png'), cv2.IMREAD_UNCHANGED)
    aps_b = cv2.imread(str(b / 'subnetwork2/APS/img_a_000.png'), cv2.IMREAD_UNCHANGED)
    rgb = cv2.imread(str(a / 'subnetwork2/RGB/img_a_000.png')).astype(np.float32) / 255
    gray = cv2.cvtColor(rgb[..., ::-1].copy(), cv2.COLOR_RGB2GRAY)
    boosted = rgb.max(axis=-1) >= 1  # saturated sources are boosted above 1 before the APS is made
    centre = ~boosted[1::3, 1::3]
    block = ~boosted.reshape(48, 3, 60, 3).any(axis=(1, 3))
    assert centre.mean() > 0.1 and block.mean() > 0.1
    np.testing.assert_allclose((aps_a / 255)[centre], gray[1::3, 1::3][centre], atol=1.5 / 255)  # block centre
    area = gray.reshape(48, 3, 60, 3).mean(axis=(1, 3))
    np.testing.assert_allclose((aps_b / 255)[block], area[block], atol=1.5 / 255)
    assert np.abs((aps_a / 255)[block] - area[block]).max() > 5 / 255
    with pytest.raises(ValueError, match='aps_downsample'):
        maker.make_dataset(str(sources), str(tmp_path / 'c'), mode='test', aps_downsample='cubic', **OPTS)


def test_bad_source_size_is_named(maker, tmp_path):
    folder = tmp_path / 'src'
    folder.mkdir()
    cv2.imwrite(str(folder / 'odd.png'), np.zeros((100, 180, 3), np.uint8))
    with pytest.raises(ValueError, match='100x180'):
        maker.make_dataset(str(folder), str(tmp_path / 'out'), mode='train', workers=1, **OPTS)
    with pytest.raises(FileNotFoundError, match='no \\*.png'):
        maker.make_dataset(str(tmp_path / 'out'), str(tmp_path / 'o2'), mode='train', workers=1, **OPTS)


def test_noise_model_statistics():
    rng = np.random.default_rng(0)
    params = sample_noise_params(rng)
    assert all(0.01 <= params[k] <= 0.02 for k in ('sigma1', 'sigma2', 'sigma3')) and 0.65 <= params['w'] <= 0.75
    params = {'sigma1': 0.02, 'sigma2': 0.02, 'sigma3': 0.02, 'w': 0.7}
    clean = np.full((64, 80), 0.5, np.float32)
    noisy = add_aps_noise(clean, params, rng)
    assert np.allclose(noisy * 255, np.round(noisy * 255), atol=1e-4)
    # multiplicative: std = sqrt(s2^2 + s3^2) * x (to first order); floor quantisation: mean offset -0.5 DN
    assert abs(noisy.std() / (0.5 * np.hypot(0.02, 0.02)) - 1) < 0.1
    assert abs((noisy.mean() - 0.5) * 255 + 0.5) < 0.15
    rounded = add_aps_noise(clean, params, rng, rounding='round')
    assert abs((rounded.mean() - 0.5) * 255) < 0.15
    dark = add_aps_noise(np.full((64, 80), 0.05, np.float32), params, rng, rounding='round')
    assert dark.std() < noisy.std() / 4
    rgb = np.stack([np.full((64, 80), v, np.float32) for v in (0.2, 0.5, 0.8)], axis=-1)
    mosaic = bayer_mosaic(rgb)
    assert mosaic[0, 0] == np.float32(0.2) and mosaic[0, 1] == mosaic[1, 0] == np.float32(0.5)
    assert mosaic[1, 1] == np.float32(0.8)
    noisy_rgb = add_rgb_noise(rgb, params, rng)
    assert noisy_rgb.shape == rgb.shape and noisy_rgb.min() >= 0 and noisy_rgb.max() <= 1
    np.testing.assert_allclose(noisy_rgb[8:-8, 8:-8].mean(axis=(0, 1)), [0.2, 0.5, 0.8], atol=0.01)
    with pytest.raises(ValueError, match='rounding'):
        add_aps_noise(clean, params, rng, rounding='ceil')
