"""The integer maths of modules/tflm_mamba/include/tflm_mamba/fixed_point.h, bit-exact in numpy.

    real = scale * (q - zero_point)
    rq32(acc, m, s) = floor((acc * m + 2^(30 - s)) / 2^(31 - s)), saturated to int32,
                      with M = m * 2^(s - 31) the real rescaling factor.

Arrays are int64 (exact for every product the C code forms); results are clamped like the C.
"""

from __future__ import annotations

import math

import numpy as np

Q30_ONE = 1 << 30
LOG2E_Q30 = round(2**30 / math.log(2))
EXP2_NEG_TABLE = np.array([round(2**30 * 2 ** (-k / 256)) for k in range(257)], dtype=np.int64)
TWO_SIGMOID_TABLE = np.array([round(2**30 * 2 / (1 + math.exp(k / 16))) for k in range(257)], dtype=np.int64)
RSQRT_TABLE = [round(2**28 / math.sqrt(0.5 + k / 128)) for k in range(193)]
# The optimized scan's sigmoid decay (src/ssm_scan_q8_opt.c): per interval k = 0..255 the pair
# 2 (t_k - 2^30), (t_k - t_{k+1}) * 32 of TWO_SIGMOID_TABLE, then 256 pairs (-2^31, 0) for the
# arguments past -16 (Abar = 0), interleaved.
TWO_SIGMOID_DA_TABLE = np.array(
    [
        v
        for k in range(256)
        for v in (
            2 * (int(TWO_SIGMOID_TABLE[k]) - Q30_ONE),
            (int(TWO_SIGMOID_TABLE[k]) - int(TWO_SIGMOID_TABLE[k + 1])) * 32,
        )
    ]
    + [-(2**31), 0] * 256,
    dtype=np.int64,
)
H_MAX = (1 << 30) - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1
# A_q20 * (q_dt - z_dt) must fit int32: |q_dt - z_dt| <= 255.
A_Q20_MIN = -((2**31 - 1) // 255)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """Real factor m -> (Q31 multiplier, shift) with m = multiplier * 2^(shift - 31), shift in [-31, 30]."""
    if not math.isfinite(m):
        raise ValueError(f"requantisation factor {m} is not finite (a NaN or infinite scale)")
    if m == 0.0:
        return 0, 0
    mant, exp = math.frexp(m)
    q = round(mant * 2**31)
    if abs(q) == 2**31:
        q //= 2
        exp += 1
    if exp > 30:
        raise ValueError(f"requantisation factor {m:g} is too large for a Q31 multiplier")
    if exp < -31:
        q = round(m * 2**62)
        exp = -31
    return int(q), int(exp)


def quantize_multipliers(ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(m)) for m in np.asarray(ms, dtype=np.float64).ravel()]
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    return mult, shift


def sat32(v: np.ndarray) -> np.ndarray:
    return np.clip(v, I32_MIN, I32_MAX)


def sat8(v: np.ndarray) -> np.ndarray:
    return np.clip(v, -128, 127)


def rq32(acc: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    acc = np.asarray(acc, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    total = 31 - np.asarray(shift, dtype=np.int64)
    prod = acc * mult
    return sat32((prod + (np.int64(1) << (total - 1))) >> total)


def rq8(acc: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int, zp: int) -> np.ndarray:
    return sat8(np.int64(zp) + rq32(acc, mult, shift))


def exp_neg_q30(x_q20: np.ndarray) -> np.ndarray:
    x = np.asarray(x_q20, dtype=np.int64)
    y = ((-x) * LOG2E_Q30 + (1 << 29)) >> 30
    ipart = y >> 20
    f = y & 0xFFFFF
    idx = np.clip(f >> 12, 0, 255)
    frac = f & 0xFFF
    t0 = EXP2_NEG_TABLE[idx]
    t1 = EXP2_NEG_TABLE[idx + 1]
    v = t0 - (((t0 - t1) * frac + 2048) >> 12)
    sh = np.clip(ipart, 0, 62)
    shifted = np.where(sh == 0, v, (v + (np.int64(1) << np.maximum(sh - 1, 0))) >> sh)
    out = np.where(ipart >= 31, 0, shifted)
    return np.where(x >= 0, Q30_ONE, out)


def two_sigmoid_neg_q30(x_q20: np.ndarray) -> np.ndarray:
    x = np.asarray(x_q20, dtype=np.int64)
    u = -x
    idx = np.clip(u >> 16, 0, 255)
    frac = u & 0xFFFF
    t0 = TWO_SIGMOID_TABLE[idx]
    t1 = TWO_SIGMOID_TABLE[idx + 1]
    v = t0 - (((t0 - t1) * frac + 32768) >> 16)
    v = np.where(u >= (16 << 20), 0, v)
    return np.where(x >= 0, Q30_ONE, v)


def div_round(num: np.ndarray, den: int) -> np.ndarray:
    num = np.asarray(num, dtype=np.int64)
    pos = (num * 2 + den) // (2 * den)
    neg = -(((-num) * 2 + den) // (2 * den))
    return np.where(num >= 0, pos, neg)


def mulhi_round(a: int, b: int) -> int:
    return (a * b + (1 << 31)) >> 32


def rsqrt_q30(v: int) -> int:
    """About round(2^30 / sqrt(v)) for an integer v >= 1 (tm_rsqrt_q30)."""
    u = max(int(v), 1)
    lz = 32 - u.bit_length() - 1  # zeros above bit 30
    e = lz & ~1
    m = u << e
    off = m - (1 << 29)
    idx = off >> 23
    frac = (off >> 11) & 0xFFF
    t0, t1 = RSQRT_TABLE[idx], RSQRT_TABLE[idx + 1]
    g = t0 - mulhi_round((t0 - t1) * 256, frac * 4096)
    half = e // 2
    return g << (half - 13) if half >= 13 else (g + (1 << (12 - half))) >> (13 - half)


def table_from_c_source(text: str, name: str) -> list[int]:
    """The values of `const int32_t name[257] = {...};` in src/fixed_point.c (to check both agree);
    a table of structs (`{{a, b}, ...}`) gives its fields in order."""
    start = text.index(f"{name}[")
    body = text[text.index("{", start) + 1 : text.index("};", start)]
    return [int(v) for v in body.replace("{", " ").replace("}", " ").split(",") if v.strip()]
