"""The errors and warnings of inference (``basicsr/infer.py``, :mod:`basicsr.deblur`, the recording reader).

Kept here, below every package that raises them (``basicsr.events.recording``, the method declarations in
``basicsr.archs``, ``basicsr.deblur``), so each can raise them without importing upwards.
"""

__all__ = ['InferenceError', 'InferenceWarning']


class InferenceError(ValueError):
    """Bad input to inference (file, exposure window, frame size, checkpoint); the message says what was expected."""


class InferenceWarning(UserWarning):
    """Inference ran but a result deserves attention (a frame left unchanged, a frame with almost no events)."""
