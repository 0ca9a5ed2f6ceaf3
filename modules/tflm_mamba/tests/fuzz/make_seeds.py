"""Write the seed corpora of the libFuzzer harnesses (committed; rerun after a format change).

    .venv/bin/python modules/tflm_mamba/tests/fuzz/make_seeds.py

corpus/block/    fuzz_block.c's layout: the shipped fused model's blocks as they are (the
                 validator accepts them), and a few with one field out of range
corpus/options/  MAMBA_BLOCK custom options: the shipped blocks', a float block's, and broken ones
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[3] / "tools"))

from mamba_kws import fused_tflite as ft  # noqa: E402
from mamba_kws.config import REPO_ROOT  # noqa: E402

SCALARS = ft.INT8_OPTION_KEYS  # the order fuzz_block.c reads them in
ENUMS = {
    "decay": {"exp": 0, "sigmoid": 1},
    "dt_activation": {"relu": 0, "softplus": 1},
    "activation": {"silu": 0, "hard_swish": 1},
    "norm": {"none": 0, "rmsnorm": 1, "affine": 2},
}


def shipped_blocks() -> list[tuple[bytes, dict, dict[str, np.ndarray]]]:
    """(raw options, options, const tensors) of every MAMBA_BLOCK in the shipped fused models."""
    return [blk for name in ("fused_int8.tflite", "fused_stream_int8.tflite")
            for blk in ft.read_blocks((REPO_ROOT / "app" / "model" / name).read_bytes())]


def block_seed(opts: dict, t: dict[str, np.ndarray], flags: int = 0x1FFF, steps: int = 2) -> bytes:
    """One input of fuzz_block.c: header, then the pool in the order the harness reads it."""
    head = struct.pack("<5i", *(int(opts[k]) for k in ("d_model", "d_inner", "d_state", "d_conv", "dt_rank")))
    head += struct.pack("<4b", *(ENUMS[k][opts[k]] for k in ENUMS))
    head += struct.pack(f"<{len(SCALARS)}i", *(int(opts[k]) for k in SCALARS))
    head += struct.pack("<3i", 0, 0, 0)  # the rmsnorm scalars (norm none)
    flags |= (1 << 13) if int(opts.get("ssm_y_bits", 8)) == 16 else 0  # fuzz_block.c: bit 13 = y_bits 16
    head += struct.pack("<IB", flags, steps - 1)
    pool = b""
    for layer in ft.INT8_LAYERS:
        p = t[f"{layer}_params"].astype("<i4")
        pool += t[f"{layer}_W"].astype(np.int8).tobytes() + p[0].tobytes() + p[1].tobytes() + p[2].tobytes()
    D = t["D"].astype("<i4")
    pool += t["luts"].astype(np.int8).tobytes() + t["A_q20"].astype("<i4").tobytes() + D[0].tobytes()
    pool += D[1].tobytes()
    dm = int(opts["d_model"])
    pool += np.zeros(2 * dm, "<i4").tobytes()  # rmsnorm mult, shift
    pool += np.random.default_rng(0).integers(-128, 128, steps * dm).astype(np.int8).tobytes()  # u
    return head + pool


def main() -> int:
    blocks = shipped_blocks()
    bdir, odir = HERE / "corpus" / "block", HERE / "corpus" / "options"
    bdir.mkdir(parents=True, exist_ok=True)
    odir.mkdir(parents=True, exist_ok=True)
    raw, opts, t = blocks[0]
    seeds = {
        "shipped0": block_seed(opts, t),
        "shipped_stream": block_seed(blocks[-1][1], blocks[-1][2], steps=1),
        "bx_shift_40": block_seed(dict(opts, ssm_bx_shift=40), t),
        "hc_shift_31": block_seed(dict(opts, ssm_hc_shift=31), t),
        "A_q20_raw": block_seed(opts, dict(t, A_q20=np.full_like(t["A_q20"], -(2**31))), flags=0x1FFF & ~(1 << 9)),
        "small_zero": struct.pack("<5i4b", 4, 8, 4, 4, 1, 1, 0, 0, 0) + bytes(4 * 29) + struct.pack("<IB", 0x1FFF, 3),
        "dims_huge": struct.pack("<5i", 2**31 - 1, 65536, 65536, 2, 1)
        + bytes(4 + 4 * 29)
        + struct.pack("<IB", 1 << 31, 0),
    }
    for name, data in seeds.items():
        (bdir / name).write_bytes(data)
    fopts = {k: v for k, v in opts.items() if k not in ft.INT8_OPTION_KEYS + ft.OPTIONAL_INT8_KEYS}
    oseeds = {
        "shipped0": raw,
        "shipped_stream": blocks[-1][0],
        "float_block": ft.encode_options(fopts),
        "unknown_key": ft.encode_options(dict(opts, colour=3)),
        "bx_shift_40": ft.encode_options(dict(opts, ssm_bx_shift=40)),
        "d_model_2_40": ft.encode_options(dict(opts, d_model=2**40)),
        "truncated": raw[: len(raw) // 2],
    }
    for name, data in oseeds.items():
        (odir / name).write_bytes(data)
    print(f"{len(seeds)} block seeds in {bdir}, {len(oseeds)} option seeds in {odir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
