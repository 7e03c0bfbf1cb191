"""The "no deblurring" baseline: returns the blurry frame, so results tables get a blurry-input row."""
from torch import nn

from basicsr.archs.method_spec import ImageInput, MethodSpec
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class PassThrough(nn.Module):
    """Returns its image input unchanged (no parameters, nothing to train).

    Evaluated through ``test.py`` like any network, it scores the blurry input against the ground truth with the
    same metrics, naming and image saving as the methods it is compared with.
    """

    io = {'inputs': {'x': 'frame'}, 'outputs': ['out'], 'result': 'out', 'gt': 'frame_gt'}
    size_multiple = 1
    checkpoint_keys = ()
    returns_input = True  # the identity by design: validation does not warn that the output equals the input

    @classmethod
    def inference_spec(cls, options):
        """Inference declaration: no events, the frame as read.

        Args:
            options (dict): Complete constructor options (none).

        Returns:
            MethodSpec: The declaration.
        """
        return MethodSpec(name=cls.__name__, events=None, images=(ImageInput('frame'), ), size_multiple=1)

    def forward(self, x):
        """Returns ``x``.

        Args:
            x (Tensor): (N, C, H, W) blurry image.

        Returns:
            Tensor: ``x`` itself.
        """
        return x
