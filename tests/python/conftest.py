"""Shared fixtures. Tests are fast by default: tiny configs, a few steps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def _missing(what: str, env: str) -> None:
    """Data a test needs is absent: a failure in CI or where the variable points somewhere (the data must be
    there), a skip that says what to set on a fresh clone with no data beside it."""
    if os.environ.get("CI") == "true" or env in os.environ:
        pytest.fail(what)
    pytest.skip(f"{what} (a fresh clone without the data; CI has it)")


@pytest.fixture(scope="session")
def shared_sc() -> Path:
    """The real Speech Commands clips under the data root ($KWS_DATA/speech_commands; `make test` sets it)."""
    from mamba_kws.paths import describe, speech_commands_dir

    sc = speech_commands_dir()
    if not (sc / "v2_test_dev").is_dir():
        _missing(f"real clips missing at {sc}: {describe()}", "KWS_DATA")
    return sc


@pytest.fixture(scope="session")
def shared_mltk() -> Path:
    """The Speech Commands spectrogram set under the data root ($KWS_DATA/speech_commands_mltk)."""
    from mamba_kws.paths import describe, mltk_dir

    d = mltk_dir()
    if not (d / "spectrograms.zip").is_file():
        _missing(f"spectrogram set missing at {d}: {describe()}", "KWS_DATA")
    return d


@pytest.fixture(scope="session")
def teachers_ready() -> Path:
    """The pretrained teachers ($KWS_TEACHERS; `make test` sets it)."""
    from mamba_kws.paths import teachers_dir
    from mamba_kws.teachers import available

    if not available("ensemble"):
        _missing(f"teacher models missing at {teachers_dir()}: set $KWS_TEACHERS", "KWS_TEACHERS")
    return teachers_dir()


@pytest.fixture(scope="session")
def tiny_cfg():
    from mamba_kws.config import load_config

    return load_config(REPO / "models" / "tiny.yaml")


def seeded_model(cfg):
    """An untrained model (seed 0) with non-trivial batchnorm statistics, so that folding is tested."""
    import torch
    from mamba_kws.model import build_model

    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model


@pytest.fixture(scope="session")
def seeded():
    """`seeded_model` for tests: seeded(cfg) -> model."""
    return seeded_model


FEATURE_MAX = 26.0  # the micro-frontend's features lie in about [0, 26]


def random_features(cfg, n: int, seed: int, steps: int | None = None):
    """n random feature windows (n, frames, channels), float32; `steps` model steps long if given."""
    import numpy as np

    rng = np.random.default_rng(seed)
    frames = cfg.features.frames if steps is None else steps * cfg.model.frame_stack
    return rng.uniform(0, FEATURE_MAX, (n, frames, cfg.features.channels)).astype(np.float32)
