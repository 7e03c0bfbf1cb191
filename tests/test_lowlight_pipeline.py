"""The low-light two-stage network through train.py and test.py with its option files, on tiny folders in tmp_path.

Covers: the option files carry the published recipe; train → checkpoint → test on the synthetic layout (APS, and
RGB into the hybrid test set); real and hybrid sets without ground truth save images named as the inputs, gray
for APS and RGB in OpenCV's BGR order; a full 260x346 DAVIS frame runs thanks to padding; a missing VGG weight
file and a wrong voxel channel count stop the entry points with a clear message.
"""
import csv
import json
import sys

import cv2
import numpy as np
import torch
import yaml

from basicsr.archs.lowlight_arch import LowLightEventDeblurNet
from basicsr.data import build_dataset
from basicsr.losses.lowlight_loss import reference_loss_entries
from basicsr.metrics.psnr_ssim import calculate_psnr
from basicsr.models.inference import forward_padded
from pipeline_utils import REPO_ROOT, load_params, run

TRAIN_APS = REPO_ROOT / 'options' / 'train' / 'LowLight' / 'TwoStage_APS.yml'
TRAIN_RGB = REPO_ROOT / 'options' / 'train' / 'LowLight' / 'TwoStage_RGB.yml'
TEST_DIR = REPO_ROOT / 'options' / 'test' / 'LowLight'
INIT_DIM = 32  # the smallest width the network accepts
VGG_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256), 14: (256, 256)}


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == '.npy':
        np.save(path, arr)
    else:
        assert cv2.imwrite(str(path), arr)


def _voxel(rng, h, w, bins=13):
    return (rng.normal(size=(h, w, bins)) * (rng.random((h, w, bins)) < 0.3)).astype(np.float32)


def _gray(rng, h, w):
    return rng.integers(0, 256, (h, w)).astype(np.uint8)


def _colour(rng, h, w):
    """BGR image whose channels differ clearly (dark blue, mid green, bright red), so a swap is visible."""
    base = rng.integers(0, 60, (h, w, 1))
    return np.concatenate([base, base + 90, base + 190], axis=2).astype(np.uint8)


def make_synthetic_root(root, stems, h, w, seed=0):
    """Writes the synthetic train/test layout (APS and RGB targets) with random content."""
    rng = np.random.default_rng(seed)
    for stem in stems:
        _save(root / 'subnetwork1/events_voxel_grid' / f'{stem}.npy', _voxel(rng, h, w))
        _save(root / 'share/flow' / f'{stem}.npy', rng.normal(size=(h, w, 4)).astype(np.float32))
        for folder in ('share/APS_blur', 'share/APS_blur_clean', 'subnetwork2/APS'):
            _save(root / folder / f'{stem}.png', _gray(rng, h, w))
        for folder in ('subnetwork2/RGB', 'subnetwork2/RGB_blur', 'subnetwork2/RGB_blur_clean'):
            _save(root / folder / f'{stem}.png', _colour(rng, 3 * h, 3 * w))
    return root


def make_real_root(root, sizes, rgb, bins=13, seed=1):
    """Writes the real (DAVIS) or hybrid layout without ground truth; ``sizes`` maps stem -> (h, w)."""
    rng = np.random.default_rng(seed)
    for stem, (h, w) in sizes.items():
        _save(root / 'events_voxel_grid' / f'{stem}.npy', _voxel(rng, h, w, bins))
        _save(root / 'APS_blur' / f'{stem}.png', _gray(rng, h, w))
        if rgb:
            _save(root / 'RGB_blur' / f'{stem}.png', _colour(rng, 3 * h, 3 * w))
    return root


def fake_vgg19(path):
    """Saves random weights under torchvision's VGG19 key names, for the layers the perceptual loss uses."""
    gen = torch.Generator().manual_seed(0)
    sd = {}
    for index, (out_c, in_c) in VGG_CONVS.items():
        sd[f'features.{index}.weight'] = torch.randn(out_c, in_c, 3, 3, generator=gen) * 0.05
        sd[f'features.{index}.bias'] = torch.zeros(out_c)
    torch.save(sd, path)
    return path


def tiny_checkpoint(path, rgb):
    """Saves ``{'params': ...}`` of a freshly initialised small network; returns the network."""
    torch.manual_seed(0)
    net = LowLightEventDeblurNet(init_dim=INIT_DIM, rgb=rgb)
    net.init_weights()
    torch.save({'params': net.state_dict()}, path)
    return net.eval()


def train_cmd(opt, root, name, dataroot, vgg_path, extra=()):
    """train.py on a tiny data set: 2 iterations of batch 2, a checkpoint at the end."""
    losses = json.dumps(reference_loss_entries(str(vgg_path)))
    force = [f'name={name}', f'path:root={root}', f'network_g:init_dim={INIT_DIM}',
             f'datasets:train:dataroot={dataroot}', 'datasets:train:batch_size_per_gpu=2',
             'datasets:train:num_worker_per_gpu=0', 'train:total_iter=2', 'logger:save_checkpoint_freq=2',
             'logger:print_freq=1', 'logger:use_tb_logger=false', f'train:losses={losses}'] + list(extra)
    return [sys.executable, str(REPO_ROOT / 'basicsr' / 'train.py'), '-opt', str(opt), '--force_yml'] + force


def eval_cmd(opt_name, root, name, dataroot, weights, extra=()):
    """test.py with one of the LowLight test option files on a tiny folder."""
    force = [f'name={name}', f'path:root={root}', f'network_g:init_dim={INIT_DIM}',
             f'datasets:test:dataroot={dataroot}', f'path:pretrain_network_g={weights}'] + list(extra)
    return [sys.executable, str(REPO_ROOT / 'basicsr' / 'test.py'), '-opt', str(TEST_DIR / opt_name), '--force_yml'] + force


def expected_images(weights, dataroot, rgb, real):
    """Runs the checkpoint in this process on every sample; returns name -> uint8 image as OpenCV writes it."""
    net = LowLightEventDeblurNet(init_dim=INIT_DIM, rgb=rgb).eval()
    net.load_state_dict(load_params(weights), strict=True)
    dataset = build_dataset({'type': 'LowLightRealDataset' if real else 'LowLightSyntheticDataset',
                             'name': 'check', 'dataroot': str(dataroot), 'rgb': rgb, 'phase': 'test'})
    out = {}
    for item in dataset:
        inputs = {k: item[k][None] for k in ('E', 'B', 'Bi')}
        s = forward_padded(net, inputs, net.size_multiple)[2][0]
        img = (s.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        out[item['name']] = img[:, :, 0] if img.shape[2] == 1 else img[:, :, ::-1]  # RGB -> BGR
    return out


def check_saved(vis_dir, expected):
    """Saved PNGs are named as the inputs, gray or colour as expected, and equal the in-process outputs."""
    assert sorted(p.name for p in vis_dir.iterdir()) == sorted(f'{n}.png' for n in expected)
    for name, want in expected.items():
        got = cv2.imread(str(vis_dir / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert got.shape == want.shape, name
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, name


def test_option_files_carry_the_published_recipe():
    for path, rgb, batch in ((TRAIN_APS, False, 8), (TRAIN_RGB, True, 4)):
        opt = yaml.safe_load(path.read_text())
        train = opt['train']
        vgg = train['losses'][-1]['vgg_weights_path']
        assert train['losses'] == reference_loss_entries(vgg), path.name
        assert train['optim_g'] == {'type': 'Adam', 'lr': 1e-3, 'betas': [0.5, 0.999], 'weight_decay': 0,
                                    'amsgrad': True}
        assert train['scheduler'] is None and train['use_grad_clip'] is False
        assert isinstance(opt['manual_seed'], int)
        data = opt['datasets']['train']
        assert data['batch_size_per_gpu'] == batch and data['rgb'] is rgb and opt['network_g']['rgb'] is rgb
        assert opt['network_g']['init_dim'] == 64 and opt['network_g']['n_ev'] == 13
    for name, rgb in (('synthetic.yml', False), ('real.yml', False), ('hybrid.yml', True)):
        opt = yaml.safe_load((TEST_DIR / name).read_text())
        assert opt['network_g']['rgb'] is rgb and opt['datasets']['test']['rgb'] is rgb
        assert opt['val']['save_img'] is True and opt['val']['rgb2bgr'] is True
        assert bool(opt['val']['metrics']) == (name == 'synthetic.yml')


def test_aps_train_checkpoint_then_synthetic_test_with_metrics(tmp_path):
    stems = ['scene_000', 'scene_fliplr_001']
    train_root = make_synthetic_root(tmp_path / 'train', stems, 16, 40)
    test_root = make_synthetic_root(tmp_path / 'test', ['view_000', 'view_001'], 16, 40, seed=5)
    vgg = fake_vgg19(tmp_path / 'vgg19.pth')
    proc = run(train_cmd(TRAIN_APS, tmp_path, 'aps', train_root, vgg))
    exp = tmp_path / 'experiments' / 'aps'
    assert sorted(p.name for p in (exp / 'models').iterdir()) == ['net_g_2.pth', 'net_g_latest.pth']
    log = next(exp.glob('train_aps_*.log')).read_text()
    for term in ('l_F_L1Loss', 'l_F_TVLoss', 'l_Bi_clean_L1Loss', 'l_Bi_clean_MSELoss', 'l_S_MSELoss',
                 'l_S_PerceptualLoss'):
        assert term in log, (term, proc.stdout[-2000:])
    weights = exp / 'models' / 'net_g_latest.pth'
    initial = LowLightEventDeblurNet(init_dim=INIT_DIM).state_dict()
    assert load_params(weights).keys() == initial.keys()

    run(eval_cmd('synthetic.yml', tmp_path, 'aps', test_root, weights))
    res = tmp_path / 'results' / 'aps'
    vis = res / 'visualization' / 'lowlight-synthetic-test'
    check_saved(vis, expected_images(weights, test_root, rgb=False, real=False))
    rows = list(csv.reader(open(res / 'lowlight-synthetic-test_metrics.csv')))
    assert rows[0] == ['image', 'psnr', 'ssim'] and [r[0] for r in rows[1:]] == ['view_000', 'view_001', 'mean']
    for row in rows[1:3]:
        out = cv2.imread(str(vis / f'{row[0]}.png'), cv2.IMREAD_UNCHANGED)[..., None]
        gt = cv2.imread(str(test_root / 'subnetwork2' / 'APS' / f'{row[0]}.png'), cv2.IMREAD_UNCHANGED)[..., None]
        assert abs(float(row[1]) - calculate_psnr(out, gt, crop_border=0)) < 1e-4


def test_rgb_train_then_hybrid_set_without_ground_truth_padded(tmp_path):
    train_root = make_synthetic_root(tmp_path / 'train', ['a_000', 'a_001'], 16, 40)
    vgg = fake_vgg19(tmp_path / 'vgg19.pth')
    run(train_cmd(TRAIN_RGB, tmp_path, 'rgb', train_root, vgg))
    weights = tmp_path / 'experiments' / 'rgb' / 'models' / 'net_g_latest.pth'
    assert 'up.0.weight' in load_params(weights)

    # 20x50 events / 60x150 RGB are not multiples of the network's 8x40: padded and cropped back.
    hybrid = make_real_root(tmp_path / 'hybrid', {'night_01': (20, 50), 'night_02': (16, 40)}, rgb=True)
    run(eval_cmd('hybrid.yml', tmp_path, 'hybrid', hybrid, weights))
    res = tmp_path / 'results' / 'hybrid'
    check_saved(res / 'visualization' / 'lowlight-hybrid', expected_images(weights, hybrid, rgb=True, real=True))
    assert not list(res.glob('*.csv'))


def test_real_set_runs_a_full_davis_frame(tmp_path):
    weights = tmp_path / 'aps.pth'
    tiny_checkpoint(weights, rgb=False)
    real = make_real_root(tmp_path / 'real', {'davis_full': (260, 346), 'davis_crop': (16, 40)}, rgb=False)
    run(eval_cmd('real.yml', tmp_path, 'real', real, weights))
    expected = expected_images(weights, real, rgb=False, real=True)
    assert expected['davis_full'].shape == (260, 346)
    check_saved(tmp_path / 'results' / 'real' / 'visualization' / 'lowlight-real', expected)


def test_missing_vgg_weights_stop_training_at_start_up(tmp_path):
    train_root = make_synthetic_root(tmp_path / 'train', ['a_000', 'a_001'], 16, 40)
    missing = tmp_path / 'nowhere' / 'vgg19-dcbb9e9d.pth'
    proc = run(train_cmd(TRAIN_APS, tmp_path, 'novgg', train_root, missing), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-2000:]
    assert 'Training stopped: FileNotFoundError: VGG19 weights file not found' in out and str(missing) in out
    assert 'vgg_weights_path' in out and 'PerceptualLoss' in out
    assert not list((tmp_path / 'experiments' / 'novgg').glob('models/*.pth'))


def test_wrong_voxel_channel_count_stops_testing_with_a_clear_message(tmp_path):
    weights = tmp_path / 'aps.pth'
    tiny_checkpoint(weights, rgb=False)
    real = make_real_root(tmp_path / 'real', {'five_bins': (16, 40)}, rgb=False, bins=5)
    proc = run(eval_cmd('real.yml', tmp_path, 'bins', real, weights), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-2000:]
    assert 'Testing stopped: ValueError' in out and 'n_ev=13 channels' in out and '5' in out
    assert not (tmp_path / 'results' / 'bins' / 'visualization' / 'lowlight-real' / 'five_bins.png').exists()
