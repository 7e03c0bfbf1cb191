"""Data synthesis: camera motion, blur by averaging, the DVS event simulator and low-light noise.

Sits above :mod:`basicsr.events` (it may import event streams and maths from there, never the reverse). Importing
this package loads numpy only; the modules with heavier imports are used by their full name:
``basicsr.synthesis.motion`` and ``basicsr.synthesis.blur_synthesis`` (OpenCV), ``basicsr.synthesis.lowlight_noise``
(OpenCV).
"""
from basicsr.synthesis.simulator import DVSSimulator, lin_log

__all__ = ['DVSSimulator', 'lin_log']
