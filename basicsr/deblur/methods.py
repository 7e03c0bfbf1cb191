"""Loading a deblurring method: its network built from its declaration and its checkpoint.

Every registered network that declares an ``inference_spec`` (see :mod:`basicsr.archs.method_spec`) is a method;
its checkpoint is recognised by the ``checkpoint_keys`` the networks declare, and the options the weights fix
(widths, channels, mode) are read by the network's own ``options_from_state_dict``. Nothing here names a network.
"""
from basicsr.archs import build_network
from basicsr.archs.method_spec import declaring_networks, method_spec, recognise_checkpoint
from basicsr.models.base_model import CheckpointError, load_checkpoint, select_state_dict
from basicsr.utils.inference_errors import InferenceError
from basicsr.utils.registry import ARCH_REGISTRY

__all__ = ['inference_methods', 'canonical_method', 'load_method', 'recognise_state_dict', 'RELEASED_WEIGHTS_SECTION']

# The README heading of the released checkpoints and data sets, named when a checkpoint is missing
RELEASED_WEIGHTS_SECTION = 'Released weights and data'


def inference_methods():
    """The registered networks usable for inference (those declaring an ``inference_spec``).

    Returns:
        tuple[str, ...]: Class names, sorted (aliases left out).
    """
    return tuple(declaring_networks())


def canonical_method(name):
    """Returns the registered class name of a method (aliases resolved, e.g. ``DefaultModel``).

    Args:
        name (str): Method or network type.

    Returns:
        str: One of :func:`inference_methods`.

    Raises:
        InferenceError: For an unknown method or a network that declares no ``inference_spec``.
    """
    methods = inference_methods()
    cls = ARCH_REGISTRY.get(name) if isinstance(name, str) and name in ARCH_REGISTRY else None
    if cls is None or cls.__name__ not in methods:
        raise InferenceError(f'unknown method {name!r}; expected one of {list(methods)}')
    return cls.__name__


def recognise_state_dict(state):
    """Tells which network a state dict belongs to, with the variant its weights fix.

    Args:
        state (dict): State dict (``module.`` prefixes already removed).

    Returns:
        tuple[str | None, str]: ``(method or None, variant)``, e.g. ``('LowLightEventDeblurNet', 'RGB')``;
        ``(None, 'unknown network')`` when no declared network matches.
    """
    match = recognise_checkpoint(state)
    if match is None:
        return None, 'unknown network'
    return match.name, method_spec(match.name, match.options).variant


def _one_of(names):
    return names[0] if len(names) == 1 else f'{", ".join(names[:-1])} or {names[-1]}'


def _check_variant(method, checkpoint, from_ckpt, opts):
    """Refuses a given option that would make the weights another variant of the network (e.g. ``rgb``)."""
    fixed = method_spec(method, from_ckpt)
    for key, value in opts.items():
        if key not in from_ckpt or value == from_ckpt[key]:
            continue
        try:
            asked = method_spec(method, {**from_ckpt, key: value})
        except (TypeError, ValueError):
            continue  # a bad value: building the network names it
        if asked.variant != fixed.variant:
            raise InferenceError(f'checkpoint {checkpoint} is a {fixed.description} checkpoint, but {key}={value} '
                                 f'was requested; expected {key}={from_ckpt[key]} for these weights')


def _build(method, opts, what):
    try:
        return build_network({'type': method, **opts})
    except (TypeError, ValueError) as err:
        raise InferenceError(f'{what}: {err}') from None


def load_method(method, checkpoint=None, net_opt=None, device='cpu', param_key='params'):
    """Builds a method's network and loads its weights (strictly), checking the checkpoint is of that method.

    Options not given in ``net_opt`` but fixed by the weights (read by the network's ``options_from_state_dict``
    and ``options_from_config`` from the ``config`` stored beside them) are taken from the checkpoint.

    Args:
        method (str): Registered network name or alias, e.g. ``'EFNet'``.
        checkpoint (str | None): ``.pth`` file (``{'params': state_dict}`` or a bare state dict); required for
            networks with parameters (``checkpoint_keys``), refused for those without.
        net_opt (dict | None): Constructor options (``type`` is ignored if equal to the method). Default: None.
        device (str | torch.device): Device of the network. Default: ``'cpu'``.
        param_key (str): Checkpoint entry holding the weights. Default: ``'params'``.

    Returns:
        torch.nn.Module: The network in eval mode on ``device``.

    Raises:
        InferenceError: For a missing checkpoint, one of another method or an unknown network, or weights that do
            not fit the options.
    """
    method = canonical_method(method)
    opts = dict(net_opt or {})
    given_type = opts.pop('type', None)
    if given_type is not None and canonical_method(given_type) != method:
        raise InferenceError(f'network options name type {given_type!r} but method {method!r} was requested')
    cls = ARCH_REGISTRY.get(method)
    keys = tuple(getattr(cls, 'checkpoint_keys', ()))
    if not keys:
        if checkpoint:
            raise InferenceError(f'{method} has no parameters, but checkpoint {checkpoint} was given; drop '
                                 '--checkpoint (or choose the method the checkpoint belongs to)')
        return _build(method, opts, f'{method} options {opts}').to(device).eval()
    if not checkpoint:
        raise InferenceError(f'method {method} needs a checkpoint (.pth with its trained weights); pass --checkpoint. '
                             f'The released weights are listed in the README section "{RELEASED_WEIGHTS_SECTION}"; '
                             'randomly initialised weights deblur nothing (they are only for tests, so infer.py '
                             'has no option for them); EDI needs no weights')
    try:
        ckpt = load_checkpoint(checkpoint)
        state = select_state_dict(ckpt, param_key, checkpoint)
    except CheckpointError as err:
        hint = getattr(cls, 'checkpoint_help', '')
        raise InferenceError(f'{err} {hint}' if hint else str(err)) from None
    config = ckpt.get('config') if isinstance(ckpt.get('config'), dict) else None
    match = recognise_checkpoint(state, config)
    if match is None:
        tops = sorted({k.split('.', 1)[0] for k in state})[:8]
        known = sorted({c.__name__ for _, c in ARCH_REGISTRY if getattr(c, 'checkpoint_keys', ())})
        raise InferenceError(f'checkpoint {checkpoint} does not look like an {_one_of(known)} checkpoint (top-level '
                             f'keys {tops}); expected the weights of {method}')
    if match.name != method:
        found = method_spec(match.name, match.options).description
        raise InferenceError(f'checkpoint {checkpoint} looks like a {found} checkpoint, but method {method} was '
                             f'requested; expected {method} weights (keys such as {list(keys[:2])}), or choose '
                             f'--method {match.name}')
    _check_variant(method, checkpoint, match.options, opts)
    merged = {**match.options, **opts}
    net = _build(method, merged, f'cannot build {method} with options {merged}')
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise InferenceError(f'checkpoint {checkpoint} does not fit {method} with options {merged}: '
                             f'{str(err).splitlines()[0]} ... check the network options') from None
    return net.to(device).eval()
