# Modified from https://github.com/XPixelGroup/BasicSR/blob/master/basicsr/utils/registry.py (Apache-2.0)
"""Name → object registries that let option files pick networks, datasets, losses, metrics and models."""
import difflib
import fnmatch
import importlib
from pathlib import Path

__all__ = ['Registry', 'ARCH_REGISTRY', 'DATASET_REGISTRY', 'MODEL_REGISTRY', 'LOSS_REGISTRY', 'METRIC_REGISTRY']


class Registry:
    """A mapping from names to classes or functions, filled by a decorator.

    Modules are discovered by file suffix the first time the registry is asked for a name, in sorted order, so
    ``import basicsr`` has no side effects and the registration order never depends on the file system.

    Example::

        @ARCH_REGISTRY.register()
        class MyNet(nn.Module):
            ...

        net_cls = ARCH_REGISTRY.get('MyNet')

    Args:
        name (str): Name of the registry, used in error messages.
        package (str | None): Package scanned for modules to import on first use. Default: None.
        suffix (str | None): File-name suffix of the modules to import, e.g. ``'_arch'``. Default: None.
        modules (list[str] | None): Explicit module names to import on first use. Default: None.
    """

    def __init__(self, name, package=None, suffix=None, modules=None):
        self._name = name
        self._obj_map = {}
        self._module_of = {}
        self._package = package
        self._suffix = suffix
        self._modules = list(modules or [])
        self._scanned = package is None and not modules
        self._scanning = False

    def _scan(self):
        """Imports the registering modules once (sorted by file name).

        The registry counts as scanned only when every module imported, so a module that fails to import raises its
        own error on every use instead of leaving its names "unknown".

        Raises:
            ImportError: Naming the registry and the module that failed, chained to the original error.
        """
        if self._scanned or self._scanning:
            return
        self._scanning = True
        try:
            names = list(self._modules)
            if self._package and self._suffix:
                folder = Path(importlib.import_module(self._package).__file__).parent
                names += sorted(f'{self._package}.{p.stem}' for p in folder.glob(f'*{self._suffix}.py'))
            for module_name in names:
                try:
                    importlib.import_module(module_name)
                except Exception as err:
                    raise ImportError(f"'{self._name}' registry: module {module_name} failed to import: "
                                      f'{type(err).__name__}: {err}') from err
            self._scanned = True
        finally:
            self._scanning = False

    def _do_register(self, name, obj, suffix=None):
        if isinstance(suffix, str):
            name = f'{name}_{suffix}'
        if name in self._obj_map and self._obj_map[name] is not obj:
            raise KeyError(f"An object named '{name}' was already registered in '{self._name}' registry "
                           f'(by {self._module_of[name]})!')
        self._obj_map[name] = obj
        self._module_of[name] = getattr(obj, '__module__', '?')

    def register(self, obj=None, suffix=None, name=None):
        """Registers ``obj`` under its ``__name__``; used as ``@register()`` or ``register(obj)``.

        Args:
            obj (type | callable | None): Object to register; None returns a decorator. Default: None.
            suffix (str | None): Appended to the key as ``<name>_<suffix>``. Default: None.
            name (str | None): Key to use instead of ``obj.__name__`` (e.g. for aliases). Default: None.

        Returns:
            The decorator, or ``obj`` itself.
        """
        if obj is None:

            def deco(func_or_class):
                self._do_register(name or func_or_class.__name__, func_or_class, suffix)
                return func_or_class

            return deco
        self._do_register(name or obj.__name__, obj, suffix)
        return obj

    def unregister(self, name):
        """Removes ``name`` (for tests and interactive sessions that register a class for a while).

        Args:
            name (str): Registered key.

        Raises:
            KeyError: For a name that is not registered.
        """
        if name not in self._obj_map:
            raise KeyError(f"No object named '{name}' found in '{self._name}' registry!")
        del self._obj_map[name]
        del self._module_of[name]

    def get(self, name):
        """Returns the object registered as ``name``.

        Args:
            name (str): Registered key.

        Returns:
            The registered class or function.

        Raises:
            KeyError: Naming the registry, the key and the closest registered names.
        """
        self._scan()
        if name not in self._obj_map:
            close = difflib.get_close_matches(str(name), self._obj_map.keys(), n=3, cutoff=0.5)
            hint = f' Did you mean: {", ".join(close)}?' if close else ''
            raise KeyError(f"No object named '{name}' found in '{self._name}' registry!{hint} "
                           f"List all with {self._name.upper()}_REGISTRY.keys().")
        return self._obj_map[name]

    def module_of(self, name):
        """Returns the module that registered ``name``.

        Args:
            name (str): Registered key.

        Returns:
            str: Dotted module name.
        """
        self.get(name)
        return self._module_of[name]

    def keys(self):
        """Returns the sorted list of registered names."""
        self._scan()
        return sorted(self._obj_map)

    def list(self, pattern='*'):
        """Returns the sorted registered names matching a shell-style wildcard pattern.

        Args:
            pattern (str): ``fnmatch`` pattern, e.g. ``'EF*'``. Default: ``'*'``.

        Returns:
            list[str]: Matching names.
        """
        return [k for k in self.keys() if fnmatch.fnmatchcase(k, pattern)]

    def __contains__(self, name):
        self._scan()
        return name in self._obj_map

    def __iter__(self):
        self._scan()
        return iter(sorted(self._obj_map.items()))

    def __len__(self):
        self._scan()
        return len(self._obj_map)

    def __repr__(self):
        return f'Registry(name={self._name!r}, items={self.keys()})'


ARCH_REGISTRY = Registry('arch', 'basicsr.archs', '_arch')
DATASET_REGISTRY = Registry('dataset', 'basicsr.data', '_dataset')
MODEL_REGISTRY = Registry('model', 'basicsr.models', '_model')
LOSS_REGISTRY = Registry('loss', 'basicsr.losses', '_loss')
METRIC_REGISTRY = Registry('metric', 'basicsr.metrics', '_metric', modules=['basicsr.metrics.psnr_ssim'])
