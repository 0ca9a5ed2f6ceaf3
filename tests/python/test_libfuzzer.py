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


def _build_block(exe: Path, *defines: str) -> Path:
    mod = REPO_ROOT / "modules" / "tflm_mamba"
    subprocess.run(
        [
            "clang", "-std=c99", "-g", "-O1", *defines, "-fsanitize=fuzzer,address,undefined",
            "-fno-sanitize-recover=all", f"-I{mod / 'include'}", *map(str, sorted((mod / "src").glob("*.c"))),
            str(FUZZ_DIR / "fuzz_block.c"), "-o", str(exe), "-lm",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return exe


@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang")
def test_seed_corpus_is_committed_and_reaches_the_kernels(tmp_path: Path) -> None:
    """The shipped model's seed passes the validator and runs; an out-of-range one is refused; and
    the harness is live: built without the validator, the kernels' sanitizers catch that seed."""
    corpus = FUZZ_DIR / "corpus" / "block"
    exe = _build_block(tmp_path / "fuzz_block", "-DFUZZ_BLOCK_VERBOSE")
    for seed, verdict in (("shipped0", "verdict: run"), ("hc_shift_31", "verdict: refused ssm.hc_shift")):
        res = subprocess.run([str(exe), str(corpus / seed)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and verdict in res.stderr, res.stderr[-2000:]
    trusting = _build_block(tmp_path / "fuzz_block_trust_all", "-DFUZZ_BLOCK_TRUST_ALL")
    res = subprocess.run([str(trusting), str(corpus / "hc_shift_31")], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "runtime error: shift exponent" in res.stderr, res.stderr[-2000:]


# ---------------------------------------------------------------- the options parser, case by case


def _bad_options() -> list[tuple[str, bytes, str]]:
    """(case, custom options bytes, what the harness must print) from the shipped model's options."""
    from mamba_kws import fused_tflite as ft

    raw = (FUZZ_DIR / "corpus" / "options" / "shipped0").read_bytes()
    opts = ft.decode_options(raw)
    enc = ft.encode_options
    no = lambda k: enc({x: v for x, v in opts.items() if x != k})  # noqa: E731
    fopts = {k: v for k, v in opts.items() if k not in ft.INT8_OPTION_KEYS + ft.OPTIONAL_INT8_KEYS}
    return [
        ("shipped", raw, "run"),
        ("float block", enc(fopts), "float block"),
        ("empty", b"", "refused custom_options"),
        ("truncated", raw[: len(raw) // 2], "refused custom_options: is not a valid flexbuffer"),
        ("garbage", bytes(range(7, 250, 3)), "refused custom_options"),
        ("bad root width", raw[:-1] + b"\x03", "refused custom_options"),
        ("not a map", enc([1, 2, 3]), "refused custom_options: is not a flexbuffers map"),
        ("unknown key", enc(dict(opts, colour=3)), "refused colour: is not a MAMBA_BLOCK option"),
        ("empty key", enc({**opts, "": 1}), "refused custom_options: has an empty key"),
        ("d_model 2^40", enc(dict(opts, d_model=2**40)), "refused d_model: has the wrong type"),
        ("d_model string", enc(dict(opts, d_model="32")), "refused d_model: has the wrong type"),
        ("d_model 0", enc(dict(opts, d_model=0)), "refused d_model: is a dimension out of range"),
        ("d_state 100000", enc(dict(opts, d_state=100000)), "refused d_state: is a dimension out of range"),
        ("decay cosine", enc(dict(opts, decay="cosine")), "refused decay: has the wrong type"),
        ("stateful int", enc(dict(opts, stateful=1)), "refused stateful: has the wrong type"),
        ("norm_eps nan", enc(dict(opts, norm_eps=float("nan"))), "refused norm_eps: has the wrong type"),
        ("norm_eps missing", no("norm_eps"), "refused norm_eps: is missing"),
        ("version 2", enc(dict(opts, version=2)), "refused version: is not version 1"),
        ("one int8 key missing", no("yg_mult"), "refused yg_mult: is missing"),
        ("int8 key as float", enc(dict(opts, yg_shift=1.5)), "refused yg_shift: is not an int32"),
        ("bx_shift 40", enc(dict(opts, ssm_bx_shift=40)), "refused ssm.bx_shift: is out of range"),
        ("hc_shift 31", enc(dict(opts, ssm_hc_shift=31)), "refused ssm.hc_shift: is out of range"),
        ("res_u_shift -40", enc(dict(opts, res_u_shift=-40)), "refused res_u_shift: is out of range"),
        ("yg_mult INT32_MIN", enc(dict(opts, yg_mult=-(2**31))), "refused yg_mult: is out of range"),
        ("in_zp 128", enc(dict(opts, in_zp=128)), "refused in_zp: is out of range"),
        ("y_bits 16", enc(dict(opts, ssm_y_bits=16)), "run"),
        ("y_bits 12", enc(dict(opts, ssm_y_bits=12)), "refused ssm.y_bits: has no such value"),
        ("y_bits as float", enc(dict(opts, ssm_y_bits=16.0)), "refused ssm_y_bits: is not an int32"),
    ]


@pytest.mark.skipif(not _have_libfuzzer(), reason="needs clang and libflatbuffers-dev (tools/setup_env.sh)")
def test_options_parser_refuses_each_bad_option_by_name(tmp_path: Path) -> None:
    mod = REPO_ROOT / "modules" / "tflm_mamba"
    objs = []
    for src in sorted((mod / "src").glob("*.c")):
        obj = tmp_path / f"{src.stem}.o"
        subprocess.run(
            ["clang", "-std=c99", "-g", "-O1", "-fsanitize=fuzzer-no-link,address,undefined", f"-I{mod / 'include'}",
             "-c", str(src), "-o", str(obj)],
            check=True, capture_output=True,
        )  # fmt: skip
        objs.append(str(obj))
    exe = tmp_path / "fuzz_options"
    subprocess.run(
        ["clang++", "-std=c++17", "-g", "-O1", "-DFUZZ_OPTIONS_VERBOSE", "-DFLATBUFFERS_LOCALE_INDEPENDENT=0",
         "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all", f"-I{mod / 'include'}",
         f"-I{mod / 'tflm'}", str(mod / "tflm" / "mamba_block_options.cc"), str(FUZZ_DIR / "fuzz_options.cc"),
         *objs, "-o", str(exe), "-lm"],
        check=True, capture_output=True,
    )  # fmt: skip
    cases = _bad_options()
    for i, (_, data, _) in enumerate(cases):
        (tmp_path / f"case{i:02d}").write_bytes(data)
    for i, (case, _, want) in enumerate(cases):
        res = subprocess.run([str(exe), str(tmp_path / f"case{i:02d}")], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, (case, res.stderr[-2000:])
        got = [ln for ln in res.stderr.splitlines() if ln.startswith("options: ")]
        assert got and got[0].startswith(f"options: {want}"), (case, got)
