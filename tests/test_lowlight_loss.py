"""Tests of the low-light losses (squared TV, VGG19 perceptual) and the VGG19 feature extractor."""
import numpy as np
import pytest
import torch

from basicsr.archs.vgg_arch import VGG19_CFG, VGG19FeatureExtractor
from basicsr.losses import build_loss
from basicsr.losses.lowlight_loss import PerceptualLoss, TVLoss, reference_loss_entries


def _torchvision_vgg19_state_dict(seed=0):
    """Random tensors under every key of torchvision's ``vgg19().state_dict()``; features at their real shapes,
    classifier tensors kept tiny (they are never used)."""
    g = torch.Generator().manual_seed(seed)
    sd, idx, in_c = {}, 0, 3
    for v in VGG19_CFG:
        if v == 'M':
            idx += 1
            continue
        sd[f'features.{idx}.weight'] = torch.randn(v, in_c, 3, 3, generator=g) * (2 / (9 * in_c))**0.5
        sd[f'features.{idx}.bias'] = torch.randn(v, generator=g) * 0.01
        idx, in_c = idx + 2, v
    for i in (0, 3, 6):
        sd[f'classifier.{i}.weight'] = torch.zeros(2, 2)
        sd[f'classifier.{i}.bias'] = torch.zeros(2)
    return sd


@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('vgg') / 'vgg19-fake.pth'
    torch.save(_torchvision_vgg19_state_dict(), path)
    return path


def test_total_variation_matches_squared_formula():
    x = torch.randn(2, 4, 5, 7, generator=torch.Generator().manual_seed(1))
    a = x.numpy().astype(np.float64)
    n, c, h, w = a.shape
    ref = 2 * (((a[:, :, 1:] - a[:, :, :-1])**2).sum() / (c * (h - 1) * w) +
               ((a[:, :, :, 1:] - a[:, :, :, :-1])**2).sum() / (c * h * (w - 1))) / n
    loss = build_loss({'type': 'TVLoss', 'loss_weight': 0.1, 'pred': 'F', 'target': None})
    assert isinstance(loss, TVLoss)
    assert loss(x).item() == pytest.approx(0.1 * ref, rel=1e-5)
    assert TVLoss()(torch.ones(1, 2, 4, 4)).item() == 0


def test_tv_loss_refuses_a_target():
    with pytest.raises(ValueError, match='target: ~'):
        TVLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))


def test_vgg_has_torchvision_names_and_loads_torchvision_state_dict(vgg_file):
    vgg = VGG19FeatureExtractor(weights_path=str(vgg_file))
    keys = list(vgg.state_dict())
    assert keys == [f'features.{i}.{p}' for i in (0, 2, 5, 7, 10, 12, 14) for p in ('weight', 'bias')]
    ref = _torchvision_vgg19_state_dict()
    for k, v in vgg.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert not any(p.requires_grad for p in vgg.parameters())
    out = vgg(torch.rand(1, 3, 16, 24))
    assert out.shape == (1, 256, 4, 6)
    # layer 14 is conv3_3 before its ReLU: negative values survive
    assert out.min() < 0


def test_vgg_accepts_wrapped_and_prefixed_state_dicts(tmp_path):
    sd = {f'module.{k}': v for k, v in _torchvision_vgg19_state_dict(seed=3).items()}
    path = tmp_path / 'wrapped.pth'
    torch.save({'params': sd}, path)
    vgg = VGG19FeatureExtractor(weights_path=path)
    assert torch.equal(vgg.features[0].weight, sd['module.features.0.weight'])


@pytest.mark.parametrize('path', [None, 'does/not/exist/vgg19.pth'])
def test_missing_vgg_weights_fail_at_construction_with_instructions(path):
    with pytest.raises(FileNotFoundError) as err:
        build_loss({'type': 'PerceptualLoss', 'loss_weight': 0.1, 'vgg_weights_path': path})
    msg = str(err.value)
    assert 'vgg_weights_path' in msg and 'disable' in msg and 'vgg19-dcbb9e9d.pth' in msg
    if path:
        assert path in msg
    with pytest.raises(FileNotFoundError, match='vgg_weights_path'):
        VGG19FeatureExtractor(weights_path=path)


def test_vgg_file_without_needed_keys_is_rejected(tmp_path):
    path = tmp_path / 'partial.pth'
    torch.save({'features.0.weight': torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(KeyError, match='features'):
        PerceptualLoss(vgg_weights_path=path)
    with pytest.raises(KeyError, match='features'):
        VGG19FeatureExtractor(weights_path=path)


def test_disabled_perceptual_term_needs_no_weights():
    loss = PerceptualLoss(loss_weight=0, vgg_weights_path=None)
    x = torch.rand(1, 1, 8, 8)
    assert loss(x, x.flip(-1)).item() == 0


def test_perceptual_loss_gray_replication_value_and_gradients(vgg_file):
    g = torch.Generator().manual_seed(2)
    pred = torch.rand(2, 1, 16, 20, generator=g, requires_grad=True)
    target = torch.rand(2, 1, 16, 20, generator=g, requires_grad=True)
    loss_fn = build_loss({'type': 'PerceptualLoss', 'loss_weight': 0.1, 'vgg_weights_path': str(vgg_file),
                          'pred': 'S', 'target': 'S'})
    assert loss_fn.vgg is None
    loss = loss_fn(pred, target)
    vgg = VGG19FeatureExtractor(weights_path=vgg_file)
    with torch.no_grad():
        ref = 0.1 * torch.mean((vgg(pred.repeat(1, 3, 1, 1)) - vgg(target.repeat(1, 3, 1, 1)))**2)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None
    assert all(p.grad is None and not p.requires_grad for p in loss_fn.vgg.parameters())
    rgb = torch.rand(1, 3, 16, 20, generator=g)
    assert loss_fn(rgb, rgb).item() == 0
    with pytest.raises(ValueError, match='1 or 3 channels'):
        loss_fn(torch.rand(1, 2, 16, 20), torch.rand(1, 2, 16, 20))


def test_perceptual_input_norm_option(vgg_file):
    g = torch.Generator().manual_seed(4)
    pred, target = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g)
    plain = PerceptualLoss(vgg_weights_path=vgg_file)(pred, target)
    normed = PerceptualLoss(vgg_weights_path=vgg_file, use_input_norm=True)(pred, target)
    vgg = VGG19FeatureExtractor(weights_path=vgg_file)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = torch.mean((vgg((pred - mean) / std) - vgg((target - mean) / std))**2)
    assert normed.item() == pytest.approx(ref.item(), rel=1e-5)
    assert abs(normed.item() - plain.item()) > 1e-6 * plain.item()


def test_reference_entries_reproduce_the_published_composite_loss(vgg_file):
    g = torch.Generator().manual_seed(5)
    out = {'F': torch.randn(2, 4, 8, 10, generator=g), 'Bi_clean': torch.rand(2, 1, 8, 10, generator=g),
           'S': torch.rand(2, 1, 8, 10, generator=g)}
    gt = {'F': torch.randn(2, 4, 8, 10, generator=g), 'Bi_clean': torch.rand(2, 1, 8, 10, generator=g),
          'S': torch.rand(2, 1, 8, 10, generator=g)}
    total = 0
    for entry in reference_loss_entries(str(vgg_file)):
        loss = build_loss(entry)
        total = total + (loss(out[entry['pred']]) if entry['target'] is None else
                         loss(out[entry['pred']], gt[entry['target']]))
    vgg = VGG19FeatureExtractor(weights_path=vgg_file)

    def mse(a, b):
        return torch.mean((a - b)**2)

    def tv(x):
        n, c, h, w = x.shape
        return 2 * (((x[:, :, 1:] - x[:, :, :-1])**2).sum() / (c * (h - 1) * w) +
                    ((x[:, :, :, 1:] - x[:, :, :, :-1])**2).sum() / (c * h * (w - 1))) / n

    with torch.no_grad():
        lf = torch.mean(torch.abs(out['F'] - gt['F'])) + 0.1 * tv(out['F'])
        ld = torch.mean(torch.abs(out['Bi_clean'] - gt['Bi_clean'])) + mse(out['Bi_clean'], gt['Bi_clean'])
        lr = 100 * mse(out['S'], gt['S']) + 0.1 * mse(vgg(out['S'].repeat(1, 3, 1, 1)),
                                                      vgg(gt['S'].repeat(1, 3, 1, 1)))
        ref = 0.01 * lf + 10 * ld + lr
    assert total.item() == pytest.approx(ref.item(), rel=1e-5)
