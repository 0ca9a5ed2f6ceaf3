"""Coverage-guided fuzzing outside the contract (libFuzzer, ASan + UBSan), for a fixed small budget.

modules/tflm_mamba/tests/fuzz/run_fuzz.sh builds two harnesses from the committed seed corpus:
fuzz_block (any bytes -> int8 block -> validator -> kernels: refused, or runs clean) and
fuzz_options (any bytes -> MAMBA_BLOCK's options parser -> validator -> one step). Any sanitizer
finding, crash or leak fails the test. `make fuzz FUZZ_SECONDS=600` runs the same for longer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from mamba_kws.config import REPO_ROOT

FUZZ_DIR = REPO_ROOT / "modules" / "tflm_mamba" / "tests" / "fuzz"
SECONDS = 10  # per harness


def _have_libfuzzer() -> bool:
    return shutil.which("clang") is not None and Path("/usr/include/flatbuffers/flexbuffers.h").exists()


@pytest.mark.skipif(not _have_libfuzzer(), reason="needs clang and libflatbuffers-dev (tools/setup_env.sh)")
def test_libfuzzer_finds_nothing(tmp_path: Path) -> None:
    res = subprocess.run(
        ["sh", str(FUZZ_DIR / "run_fuzz.sh"), str(SECONDS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    lines = {m.group(1): m.group(0) for m in re.finditer(r"^(fuzz_\w+): .*$", res.stdout, re.M)}
    assert set(lines) == {"fuzz_block", "fuzz_options"}, out[-2000:]
    for line in lines.values():
        assert "findings 0, rc 0" in line, line
        assert int(re.search(r"executions (\d+)", line).group(1)) > 100, line
    print(res.stdout)


@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang")
def test_seed_corpus_is_committed_and_reaches_the_kernels(tmp_path: Path) -> None:
    """The shipped model's seed passes the validator and runs; an out-of-range one is refused."""
    exe = tmp_path / "fuzz_block"
    mod = REPO_ROOT / "modules" / "tflm_mamba"
    subprocess.run(
        [
            "clang", "-std=c99", "-g", "-O1", "-DFUZZ_BLOCK_VERBOSE", "-fsanitize=fuzzer,address,undefined",
            f"-I{mod / 'include'}", *map(str, sorted((mod / "src").glob("*.c"))), str(FUZZ_DIR / "fuzz_block.c"),
            "-o", str(exe), "-lm",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    corpus = FUZZ_DIR / "corpus" / "block"
    for seed, verdict in (("shipped0", "verdict: run"), ("bx_shift_40", "verdict: refused ssm.bx_shift")):
        res = subprocess.run([str(exe), str(corpus / seed)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and verdict in res.stderr, res.stderr[-2000:]
