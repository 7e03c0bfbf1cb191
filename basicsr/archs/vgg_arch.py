"""VGG19 feature extractor for perceptual losses, without torchvision and without downloads.

The layers and their names equal torchvision's ``vgg19().features`` (``features.0.weight`` ...), so a
torchvision-format VGG19 state dict (``vgg19-dcbb9e9d.pth``) loads directly; weights always come from a local file.
"""
import os

import torch
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['VGG19FeatureExtractor', 'VGG19_CFG', 'IMAGENET_MEAN', 'IMAGENET_STD', 'load_vgg19_state_dict']

# torchvision's configuration 'E' (VGG19): channels of each 3x3 convolution, 'M' for a 2x2 max-pool.
VGG19_CFG = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M')
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_HINT = ('Provide a torchvision-format VGG19 state dict (vgg19-dcbb9e9d.pth, from torchvision) with the '
                'option "vgg_weights_path" of the perceptual loss, or disable the perceptual term (remove the '
                'PerceptualLoss entry or set its loss_weight to 0).')


def _make_features(num_layers):
    """Builds the first ``num_layers`` modules of VGG19's ``features`` (conv, ReLU, max-pool slots).

    Args:
        num_layers (int): Number of modules to keep (15 = up to conv3_3 before its ReLU).

    Returns:
        nn.Sequential: The layers, indexed as in torchvision.
    """
    layers, in_c = [], 3
    for v in VGG19_CFG:
        if v == 'M':
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_c = v
    if not 1 <= num_layers <= len(layers):
        raise ValueError(f'VGG19 features have {len(layers)} layers; got num_layers={num_layers}')
    return nn.Sequential(*layers[:num_layers])


def load_vgg19_state_dict(path):
    """Loads a VGG19 state dict from a local file (never downloads).

    Accepts a torchvision state dict (``features.*`` and ``classifier.*`` keys) or one wrapped in ``params`` /
    ``state_dict``; a ``module.`` prefix is stripped.

    Args:
        path (str | os.PathLike): File saved with ``torch.save``.

    Returns:
        dict[str, Tensor]: The state dict.

    Raises:
        FileNotFoundError: If ``path`` is None or not a file, with instructions on how to provide weights.
        ValueError: If the file does not hold a state dict.
    """
    if path is None:
        raise FileNotFoundError(f'No VGG19 weights given. {WEIGHTS_HINT}')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'VGG19 weights file not found: {os.fspath(path)!r}. {WEIGHTS_HINT}')
    sd = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('params', 'state_dict'):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError(f'{os.fspath(path)!r} does not hold a VGG19 state dict (a dict of tensors). {WEIGHTS_HINT}')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}


@ARCH_REGISTRY.register()
class VGG19FeatureExtractor(nn.Module):
    """VGG19 ``features`` truncated after layer ``last_layer`` (14 = conv3_3 before its ReLU), frozen by default.

    Args:
        weights_path (str | None): Local torchvision-format VGG19 state dict; required when ``pretrained``.
            Default: None.
        last_layer (int): Index of the last kept module of ``features``. Default: 14.
        use_input_norm (bool): Normalise inputs in [0, 1] with the ImageNet mean / std first. Default: False.
        requires_grad (bool): Let the VGG parameters be trained. Default: False.
        pretrained (bool): Load ``weights_path``; False keeps a random initialisation (tests only). Default: True.

    Raises:
        FileNotFoundError: Without weights when ``pretrained``, with instructions on how to provide them.
        KeyError: If the state dict lacks one of the needed ``features.*`` entries.
    """

    def __init__(self, weights_path=None, last_layer=14, use_input_norm=False, requires_grad=False, pretrained=True):
        super().__init__()
        self.features = _make_features(last_layer + 1)
        self.use_input_norm = use_input_norm
        if use_input_norm:
            self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if pretrained:
            sd = load_vgg19_state_dict(weights_path)
            needed = self.state_dict()
            missing = [k for k in needed if k not in sd]
            if missing:
                raise KeyError(f'VGG19 weights {os.fspath(weights_path)!r} lack {missing[:4]}... ({len(missing)} '
                               'keys); expected a torchvision-format VGG19 state dict (features.0.weight, ...)')
            self.load_state_dict({k: sd[k] for k in needed}, strict=True)
        for p in self.parameters():
            p.requires_grad_(requires_grad)

    def forward(self, x):
        """Computes the features.

        Args:
            x (Tensor): (N, 3, H, W) in [0, 1].

        Returns:
            Tensor: Features after ``features[last_layer]`` ((N, 256, H/4, W/4) for conv3_3).
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'VGG19FeatureExtractor expects (N, 3, H, W) input; got {tuple(x.shape)}')
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        return self.features(x)
