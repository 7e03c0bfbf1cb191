"""Event-guided motion deblurring in the BasicSR style.

Importing ``basicsr`` does nothing but expose the version: every subpackage is imported on its own, lazily,
so one optional dependency can never break the others.
"""

__version__ = '0.1.0'
