"""The synthesis modules moved from basicsr.events to basicsr.synthesis: old names warn and are the same objects."""
import importlib
import subprocess
import sys
import warnings

import pytest

MOVED_MODULES = ('simulator', 'motion', 'blur_synthesis', 'lowlight_noise')


@pytest.mark.parametrize('name', MOVED_MODULES)
def test_old_module_path_warns_and_reexports(name):
    new = importlib.import_module(f'basicsr.synthesis.{name}')
    sys.modules.pop(f'basicsr.events.{name}', None)
    with pytest.warns(DeprecationWarning, match=f'basicsr.synthesis.{name}'):
        old = importlib.import_module(f'basicsr.events.{name}')
    assert old.__all__ == new.__all__
    for public in new.__all__:
        assert getattr(old, public) is getattr(new, public), public


def test_old_package_name_warns_and_is_the_new_class():
    import basicsr.events
    from basicsr.synthesis import DVSSimulator
    with pytest.warns(DeprecationWarning, match='basicsr.synthesis.simulator.DVSSimulator'):
        old = basicsr.events.DVSSimulator
    assert old is DVSSimulator
    with pytest.warns(DeprecationWarning):
        from basicsr.events import DVSSimulator as imported  # noqa: F401
    assert imported is DVSSimulator


def test_unknown_name_is_still_an_attribute_error():
    import basicsr.events
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(AttributeError, match='no_such_name'):
            basicsr.events.no_such_name  # noqa: B018


def test_imports_run_downwards(repo_root):
    """basicsr.events never imports basicsr.synthesis; the package itself uses no deprecated path."""
    code = ('import sys, warnings\n'
            'warnings.simplefilter("error", DeprecationWarning)\n'
            'import basicsr.events, basicsr.events.edi\n'
            'print("basicsr.synthesis" in sys.modules)\n'
            'import basicsr.synthesis, basicsr.synthesis.blur_synthesis, basicsr.synthesis.lowlight_noise\n'
            'import basicsr.data.synthetic_event_dataset\n'
            'print(sorted(m for m in sys.modules if m.startswith("basicsr.events.") and m.rsplit(".", 1)[1] in '
            f'{MOVED_MODULES!r}))\n')
    out = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert out.stdout.split('\n')[:2] == ['False', '[]']
