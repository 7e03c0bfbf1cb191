"""EDI's inference declaration, attached to :class:`basicsr.archs.edi_arch.EDI`.

Kept in its own file while ``edi_arch.py`` is being edited on another branch; it belongs in the class body beside
``io`` and moves there when the branches meet. Registry discovery imports every ``*_arch.py``, so the declaration
is in place whenever EDI is looked up through ``ARCH_REGISTRY``.
"""
from basicsr.archs.edi_arch import EDI
from basicsr.archs.method_spec import ImageInput, MethodSpec
from basicsr.events.event_input import EventInputSpec

__all__ = []


def _inference_spec(cls, options):
    """Inference declaration of EDI: the raw (un-normalised) 6-channel SCER of the window's events (7 with
    ``keep_middle``), the frame as read with its own channels; no parameters, so no checkpoint.

    Args:
        options (dict): Complete constructor options (see :func:`basicsr.archs.method_spec.network_options`).

    Returns:
        MethodSpec: The declaration.
    """
    scer = {'type': 'scer', 'num_bins': 6, 'keep_middle': bool(options['keep_middle'])}
    return MethodSpec(name=cls.__name__, events=EventInputSpec(scer, key='voxel'), images=(ImageInput('frame'), ),
                      size_multiple=cls.size_multiple)


EDI.checkpoint_keys = ()
EDI.inference_spec = classmethod(_inference_spec)
