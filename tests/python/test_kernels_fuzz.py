"""Fuzz the C core's int8 (and float) entry points under AddressSanitizer + UBSan.

modules/tflm_mamba/tests/host/fuzz_q8.c draws random shapes, parameters anywhere inside the
documented contract and extreme inputs; every buffer is malloc'd at exactly the size the
*_bytes functions report, so a read or write past it aborts the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from mamba_kws.fused import cbind
from mamba_kws.fused.cbind import INCLUDE_DIR, MODULE_DIR, sources

CASES = 400


def _build_fuzzer(exe, extra: tuple[str, ...] = ()):
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the C core")
    cmd = [
        "gcc",
        *extra,
        "-std=c99",
        "-O1",
        "-g",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-fsanitize=address,undefined,float-cast-overflow",
        "-fno-sanitize-recover=all",
        "-fno-omit-frame-pointer",
        f"-I{INCLUDE_DIR}",
        *map(str, sources()),
        str(MODULE_DIR / "tests" / "host" / "fuzz_q8.c"),
        "-o",
        str(exe),
        "-lm",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    """The default build: the optimized int8 kernels (their plain-C form on the host)."""
    return _build_fuzzer(tmp_path_factory.mktemp("fuzz") / "fuzz_q8")


@pytest.fixture(scope="module")
def fuzzer_reference(tmp_path_factory):
    return _build_fuzzer(tmp_path_factory.mktemp("fuzz_ref") / "fuzz_q8_ref", cbind.REFERENCE_FLAGS)


def _fuzz(exe, seed: int) -> str:
    res = subprocess.run(
        [str(exe), str(CASES), str(seed)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"},
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith(f"ok {CASES} "), res.stdout
    assert "runtime error" not in res.stderr
    return res.stdout


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzz_int8_entry_points_no_crash_no_ub(fuzzer, fuzzer_reference, seed):
    """No sanitizer error in either build, and the optimized kernels give the reference's integers
    on every random shape and parameter set (the hash of all int8 outputs)."""
    assert _fuzz(fuzzer, seed) == _fuzz(fuzzer_reference, seed)


def test_fuzzer_would_catch_an_overrun(tmp_path):
    """The sanitizer build is live: a one-byte overrun of a *_bytes-sized buffer aborts."""
    src = tmp_path / "overrun.c"
    src.write_text(
        '#include <stdlib.h>\n#include "tflm_mamba/mamba_block.h"\n'
        "int main(void) { tm_block_config c = {8, 16, 4, 4, 1, 0, 0, 0, 0};\n"
        "  char *p = malloc(tm_block_q8_scratch_bytes(&c)); volatile char x = p[tm_block_q8_scratch_bytes(&c)];\n"
        "  (void)x; free(p); return 0; }\n"
    )
    exe = tmp_path / "overrun"
    subprocess.run(
        [
            "gcc",
            "-std=c99",
            "-g",
            "-fsanitize=address",
            f"-I{INCLUDE_DIR}",
            *map(str, sources()),
            str(src),
            "-o",
            str(exe),
            "-lm",
        ],
        check=True,
        capture_output=True,
    )
    res = subprocess.run([str(exe)], capture_output=True, text=True)
    assert res.returncode != 0 and "heap-buffer-overflow" in res.stderr
