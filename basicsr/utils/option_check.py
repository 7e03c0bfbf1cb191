"""Options checked against what reads them: constructor arguments of registered classes (names and types)."""
import difflib
import inspect

from basicsr.utils.options import OptionError

__all__ = ['accepted_arguments', 'check_arguments', 'closest']


def closest(key, known):
    """Returns ``' (did you mean X?)'`` for the known name closest to ``key``, or ``''``.

    Args:
        key (str): The unknown name.
        known (Iterable[str]): The names that exist.

    Returns:
        str: The hint, with a leading space, or an empty string.
    """
    match = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
    return f' (did you mean {match[0]}?)' if match else ''


def accepted_arguments(obj):
    """Returns the keyword arguments a class (its constructor) or function accepts.

    Args:
        obj (type | callable): The class or function.

    Returns:
        tuple[dict, bool]: ``{name: default or inspect.Parameter.empty}`` and whether it takes ``**kwargs``.
    """
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return {}, True
    named = {p.name: p.default for p in params
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != 'self'}
    return named, any(p.kind == p.VAR_KEYWORD for p in params)


def _type_error(value, default):
    """The expected kind of ``value`` judged from the default, or None when it fits."""
    if default is None or default is inspect.Parameter.empty:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else 'true or false'
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else 'an integer'
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else 'a number'
    if isinstance(default, str):
        return None if isinstance(value, str) else 'a string'
    if isinstance(default, (list, tuple)):
        return None if isinstance(value, (list, tuple)) else 'a list'
    return None


def check_arguments(obj, kwargs, where):
    """Checks option values against a constructor: unknown names and values of another type than the default.

    Args:
        obj (type | callable): The registered class or function the options are for.
        kwargs (dict): The options given to it (without ``type``).
        where (str): Option path for messages, e.g. ``'network_g'``.

    Raises:
        OptionError: Naming the option, the closest accepted name or the expected type, and every accepted
            argument.
    """
    named, open_ended = accepted_arguments(obj)
    name = getattr(obj, '__name__', str(obj))
    accepted = ', '.join(named) or '(none)'
    for key, value in kwargs.items():
        if key not in named:
            if open_ended:
                continue
            raise OptionError(f'{where}:{key}: {name} has no argument {key!r}{closest(key, named)}; it accepts: '
                              f'{accepted}')
        expected = _type_error(value, named[key])
        if expected:
            raise OptionError(f'{where}:{key} must be {expected} (default {named[key]!r}), got {value!r} '
                              f'({type(value).__name__}); {name} accepts: {accepted}')
