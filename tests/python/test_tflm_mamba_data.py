"""tests/tflm_mamba's data (src/test_data.h, src/test_models.h, models/*.tflite) is what
tests/tflm_mamba/gen_test_data.py writes: regenerated here and compared byte for byte."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "tests" / "tflm_mamba"


def _gen():
    spec = importlib.util.spec_from_file_location("gen_test_data", SUITE / "gen_test_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_test_data_is_current() -> None:
    files = _gen().render()
    assert sorted(files) == ["models/block_bad.tflite", "models/block_step.tflite", "models/block_whole.tflite",
                             "src/test_data.h", "src/test_models.h"]
    stale = [rel for rel, data in files.items() if not (SUITE / rel).is_file() or (SUITE / rel).read_bytes() != data]
    assert stale == [], f"run python tests/tflm_mamba/gen_test_data.py: {stale} differ"


def test_the_build_embeds_the_models() -> None:
    cmake = (SUITE / "CMakeLists.txt").read_text()
    assert "generate_inc_file_for_target" in cmake
    op_test = (SUITE / "src" / "op_test.cc").read_text()
    for name in _gen().MODELS:
        assert f"{name}.inc" in op_test and name in cmake
