"""Shared fixtures: the repository root and the golden-data folder."""
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO_ROOT.parent / 'shared' / 'golden'


@pytest.fixture
def repo_root():
    """The repository root (where ``basicsr/`` lives)."""
    return REPO_ROOT


@pytest.fixture
def golden_dir():
    """``../shared/golden``; tests using it are skipped when it is absent."""
    if not GOLDEN_DIR.is_dir():
        pytest.skip(f'golden reference data not found at {GOLDEN_DIR}')
    return GOLDEN_DIR
