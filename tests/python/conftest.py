"""Shared fixtures. Tests are fast by default: tiny configs, a few steps."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_SC = REPO.parent / "shared" / "data" / "speech_commands"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_sc() -> Path:
    """The real Speech Commands clips beside the repo (../shared/data/speech_commands)."""
    if not SHARED_SC.is_dir():
        pytest.fail(f"real clips missing at {SHARED_SC}: the project's shared/ must be beside the repo")
    return SHARED_SC


@pytest.fixture(scope="session")
def tiny_cfg():
    from mamba_kws.config import load_config

    return load_config(REPO / "models" / "tiny.yaml")
