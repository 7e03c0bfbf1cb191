"""An argparse help formatter that shows each option's default once, and only when there is one to show."""
import argparse

__all__ = ['DefaultsOnceHelpFormatter']


class DefaultsOnceHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help unless its help already says its default (``default:`` or
    ``%(default)``) or there is no default to show (None, False, or a suppressed default).

    Use as ``argparse.ArgumentParser(formatter_class=DefaultsOnceHelpFormatter)``.
    """

    def _get_help_string(self, action):
        help_text = action.help or ''
        no_default = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if no_default or 'default' in help_text.lower():
            return help_text
        return super()._get_help_string(action)
