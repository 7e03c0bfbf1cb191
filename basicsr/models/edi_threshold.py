"""Former place of EDI's threshold choice, now part of the EDI method: :mod:`basicsr.archs.edi_threshold`.

Re-exports its names for code that imports them from here (scripts, tests); new code imports from
``basicsr.archs.edi_threshold``.
"""
from basicsr.archs.edi_threshold import *  # noqa: F401,F403
from basicsr.archs.edi_threshold import __all__  # noqa: F401
