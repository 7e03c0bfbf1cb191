"""Deprecated location of :mod:`basicsr.synthesis.blur_synthesis`; kept for one release (imports warn and re-export)."""
import warnings

from basicsr.synthesis.blur_synthesis import *  # noqa: F401,F403
from basicsr.synthesis.blur_synthesis import __all__  # noqa: F401

warnings.warn('basicsr.events.blur_synthesis moved to basicsr.synthesis.blur_synthesis; import it from there '
              '(the old path goes in the next release)', DeprecationWarning, stacklevel=2)
