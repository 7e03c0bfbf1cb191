"""Deprecated location of :mod:`basicsr.synthesis.simulator`; kept for one release (imports warn and re-export)."""
import warnings

from basicsr.synthesis.simulator import *  # noqa: F401,F403
from basicsr.synthesis.simulator import __all__  # noqa: F401

warnings.warn('basicsr.events.simulator moved to basicsr.synthesis.simulator; import it from there '
              '(the old path goes in the next release)', DeprecationWarning, stacklevel=2)
