"""Deprecated location of :mod:`basicsr.synthesis.lowlight_noise`; kept for one release (imports warn and re-export)."""
import warnings

from basicsr.synthesis.lowlight_noise import *  # noqa: F401,F403
from basicsr.synthesis.lowlight_noise import __all__  # noqa: F401

warnings.warn('basicsr.events.lowlight_noise moved to basicsr.synthesis.lowlight_noise; import it from there '
              '(the old path goes in the next release)', DeprecationWarning, stacklevel=2)
