"""Deprecated location of :mod:`basicsr.synthesis.motion`; kept for one release (imports warn and re-export)."""
import warnings

from basicsr.synthesis.motion import *  # noqa: F401,F403
from basicsr.synthesis.motion import __all__  # noqa: F401

warnings.warn('basicsr.events.motion moved to basicsr.synthesis.motion; import it from there '
              '(the old path goes in the next release)', DeprecationWarning, stacklevel=2)
