"""Former home of the inference methods, kept for code that imports from here (scripts, tests).

The methods are now the registered networks' own declarations (:mod:`basicsr.archs.method_spec`), loaded by
:mod:`basicsr.deblur.methods`; this module re-exports the public names and derives the old helpers from the
declarations. New code imports from :mod:`basicsr.deblur` (this module imports upwards, as a compatibility shim).
"""
from basicsr.archs.method_spec import ImageInput, MethodSpec, check_image_sizes, spec_of
from basicsr.deblur.frame import frame_inputs, network_inputs
from basicsr.deblur.methods import canonical_method, inference_methods, load_method, recognise_state_dict
from basicsr.utils.img_util import to_float_image
from basicsr.utils.inference_errors import InferenceError, InferenceWarning
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['METHODS', 'InferenceError', 'InferenceWarning', 'recognise_state_dict', 'options_from_state_dict',
           'load_method', 'method_batch', 'network_inputs', 'check_frame_size', 'canonical_method', 'to_float_image']


def __getattr__(name):
    """``METHODS``: the registered networks usable for inference, looked up when asked for.

    Args:
        name (str): Attribute looked up on the module.

    Returns:
        tuple[str, ...]: :func:`basicsr.deblur.methods.inference_methods` for ``METHODS``.

    Raises:
        AttributeError: For any other name.
    """
    if name == 'METHODS':
        return inference_methods()
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def options_from_state_dict(method, state):
    """Reads the constructor options that the weights fix, as the network declares (``options_from_state_dict``).

    Args:
        method (str): Method name.
        state (dict): State dict of that network.

    Returns:
        dict: Constructor options (only those the shapes determine).
    """
    return ARCH_REGISTRY.get(canonical_method(method)).options_from_state_dict(state)


def method_batch(method, net, image, window, t_start, t_end, aps=None):
    """Builds the network's inputs for one frame as its declaration says (see
    :func:`basicsr.deblur.frame.frame_inputs`).

    Args:
        method (str): Method name.
        net (torch.nn.Module): The network.
        image (np.ndarray): Frame (H, W[, C]) as read.
        window (EventStream): The (non-empty) events of the exposure window.
        t_start (float): Exposure start in seconds.
        t_end (float): Exposure end in seconds.
        aps (np.ndarray | None): Gray APS frame, for methods that take one. Default: None.

    Returns:
        tuple[dict, np.ndarray]: Batch ``key -> float32 array (C, H, W)`` and the un-normalised representation.
    """
    return frame_inputs(spec_of(net, canonical_method(method)), image, window, t_start, t_end, aps)


def check_frame_size(image_shape, sensor_shape, rgb=False, aps_shape=None, image_name='image',
                     events_name='events'):
    """Checks a frame size against the event sensor (see :func:`basicsr.archs.method_spec.check_image_sizes`).

    Args:
        image_shape (tuple): Shape of the image to deblur, (H, W[, C]).
        sensor_shape (tuple[int, int]): Event sensor (H, W).
        rgb (bool): The image is an RGB image at exactly 3x the sensor, with a gray APS frame at 1x. Default: False.
        aps_shape (tuple | None): Shape of the APS frame when ``rgb``. Default: None.
        image_name (str): Named in errors. Default: ``'image'``.
        events_name (str): Named in errors. Default: ``'events'``.

    Raises:
        InferenceError: Naming both sizes and the expected one.
    """
    images = ((ImageInput('aps', 1, source='aps'), ImageInput('image', 3, rgb=True, scale=3)) if rgb else
              (ImageInput('image'), ))
    spec = MethodSpec('the RGB model' if rgb else 'the method', None, images, 1)
    try:
        check_image_sizes(spec, sensor_shape, image_shape, aps_shape, image_name, events_name)
    except ValueError as err:
        raise InferenceError(str(err)) from None
