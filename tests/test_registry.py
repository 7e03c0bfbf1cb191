"""Registry behaviour: discovery, errors with close matches, duplicates, introspection, no import side effects."""
import subprocess
import sys

import pytest

from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, Registry


def test_unknown_name_error_names_registry_key_and_close_matches():
    with pytest.raises(KeyError) as err:
        ARCH_REGISTRY.get('EFNte')
    msg = str(err.value)
    assert "'arch' registry" in msg and 'EFNte' in msg and 'EFNet' in msg and 'keys()' in msg


def test_duplicate_registration_raises():
    reg = Registry('toy')

    @reg.register()
    class A:
        pass

    class B:
        pass

    with pytest.raises(KeyError, match="already registered in 'toy'"):
        reg.register(B, name='A')
    reg.register(A)  # the same object again is harmless


def test_keys_sorted_list_pattern_and_module():
    keys = ARCH_REGISTRY.keys()
    assert keys == sorted(keys) and 'EFNet' in keys
    assert ARCH_REGISTRY.list('EF*') == [k for k in keys if k.startswith('EF')]
    assert ARCH_REGISTRY.module_of('EFNet') == 'basicsr.archs.efnet_arch'
    assert 'calculate_psnr' in METRIC_REGISTRY and 'PSNRLoss' in LOSS_REGISTRY
    assert 'SyntheticEventDeblurDataset' in DATASET_REGISTRY


def test_out_of_package_registration_and_suffix():
    reg = Registry('toy2')

    def fn():
        return 1

    reg.register(fn, suffix='v2')
    assert reg.get('fn_v2')() == 1 and len(reg) == 1


def test_import_basicsr_has_no_side_effects(repo_root):
    code = ('import sys, basicsr, basicsr.archs, basicsr.data, basicsr.losses, basicsr.models, basicsr.metrics\n'
            'from basicsr.utils.registry import ARCH_REGISTRY\n'
            'assert "basicsr.archs.efnet_arch" not in sys.modules, "discovery must wait for first use"\n'
            'print(basicsr.__file__)')
    out = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(repo_root)), 'basicsr must be this repository, not PyPI basicsr'
    code = 'import sys, basicsr; print("torch" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'False'
