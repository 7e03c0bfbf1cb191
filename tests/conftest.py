"""Shared fixtures: the repository root, one torch thread; the report header says whether the full golden set is beside
it."""
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO_ROOT.parent / 'shared' / 'golden'


@pytest.fixture
def repo_root():
    """The repository root (where ``basicsr/`` lives)."""
    return REPO_ROOT


@pytest.fixture(scope='module')
def one_torch_thread():
    """One torch thread for a module (restored afterwards): ONNX Runtime and torch otherwise compete for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_report_header(config):
    """Says whether the extra checks against the full golden set (``../shared/golden``) are collected."""
    state = 'present: extra equivalence checks collected' if GOLDEN_DIR.is_dir() else 'absent: only the in-repo set'
    return f'full golden set {GOLDEN_DIR}: {state}'
