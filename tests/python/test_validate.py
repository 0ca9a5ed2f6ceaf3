"""The kernels' contract, checked by the C validator (mamba_validate.h) and kept by the quantiser.

The shipped fused models pass the validator as MAMBA_BLOCK's Prepare would run it (options and
const tensors read back from the .tflite); every out-of-contract value the validator must refuse
is refused with its field named; the quantiser raises instead of writing such a value.
"""

from __future__ import annotations

import ctypes as C
import math

import numpy as np
import pytest
from mamba_kws import fused_tflite as ft
from mamba_kws.config import REPO_ROOT
from mamba_kws.fused import cbind
from mamba_kws.fused.fixed_point import quantize_multiplier
from mamba_kws.fused.quantize import QSSM, QBlock, QConv, QLinear, QuantizeError, check_block_q8

SHIPPED = ("fused_int8.tflite", "fused_stream_int8.tflite")


@pytest.fixture(scope="module")
def core():
    return cbind.load(sanitize=False)


def _blocks(data: bytes) -> list[tuple[dict, dict[str, np.ndarray]]]:
    """(options, {input name: const tensor}) of every MAMBA_BLOCK of a .tflite."""
    return [(opts, tensors) for _, opts, tensors in ft.read_blocks(data)]


def _shipped_blocks():
    blocks = []
    for name in SHIPPED:
        path = REPO_ROOT / "app" / "model" / name
        for k, b in enumerate(_blocks(path.read_bytes())):
            blocks.append(pytest.param(*b, id=f"{name}-block{k}"))
    return blocks


@pytest.mark.parametrize(("opts", "tensors"), _shipped_blocks())
def test_shipped_models_pass_the_validator(core, opts, tensors) -> None:
    keep = cbind._Keep()
    bc = cbind.block_config_from_options(opts)
    w = cbind.q8_block_struct_from_model(keep, opts, tensors)
    verdict = core.validate_block_q8(bc, w)
    assert verdict.ok, str(verdict)
    v, state, scratch = core.validate_block_sizes(bc)
    assert v.ok and state == core.lib.tm_block_q8_state_bytes(C.byref(bc))
    assert scratch == core.lib.tm_block_q8_scratch_bytes(C.byref(bc))


# ---------------------------------------------------------------- out of contract: refused, named


def _shipped(core):
    opts, tensors = _blocks((REPO_ROOT / "app" / "model" / SHIPPED[0]).read_bytes())[0]
    return opts, {k: v.copy() for k, v in tensors.items()}


def _verdict(core, opts: dict, tensors: dict) -> cbind.Validation:
    keep = cbind._Keep()
    return core.validate_block_q8(
        cbind.block_config_from_options(opts), cbind.q8_block_struct_from_model(keep, opts, tensors)
    )


I32_MIN, I32_MAX = -(2**31), 2**31 - 1
BAD_OPTIONS = [
    # (option key, bad value, field the validator names)
    ("d_model", 0, "d_model"),
    ("d_model", 257, "d_model"),
    ("d_inner", -5, "d_inner"),
    ("d_state", 100000, "d_state"),
    ("d_conv", I32_MAX, "d_conv"),
    ("dt_rank", I32_MIN, "dt_rank"),
    ("decay", "cosine", "decay"),
    ("norm", "layer", "norm"),
    ("in_zp", 128, "in_zp"),
    ("out_zp", -129, "out_zp"),
    ("ssm_y_zp", I32_MAX, "ssm.y_zp"),
    ("ssm_y_bits", 12, "ssm.y_bits"),
    ("ssm_y_bits", 0, "ssm.y_bits"),
    ("ssm_bx_shift", 7, "ssm.bx_shift"),
    ("ssm_bx_shift", -25, "ssm.bx_shift"),
    ("ssm_hc_shift", 31, "ssm.hc_shift"),
    ("ssm_hc_shift", -40, "ssm.hc_shift"),
    ("ssm_hc_mult", I32_MIN, "ssm.hc_mult"),
    ("yg_shift", 31, "yg_shift"),
    ("res_u_shift", -32, "res_u_shift"),
    ("res_m_mult", I32_MIN, "res_m_mult"),
    ("gate_zp", 1000, "gate_zp"),
    ("conv_out_zp", -1000, "conv.out_zp"),
]


@pytest.mark.parametrize(("key", "value", "field"), BAD_OPTIONS)
def test_bad_option_is_refused_and_named(core, key, value, field) -> None:
    opts, tensors = _shipped(core)
    opts[key] = value
    verdict = _verdict(core, opts, tensors)
    assert not verdict.ok and verdict.field == field, str(verdict)


BAD_TENSORS = [
    # (tensor, row of a [3, out] params tensor or None, bad value, field)
    ("in_proj_x_params", 0, 2**30 + 1, "in_proj_x.bias"),
    ("out_proj_params", 0, -(2**30) - 1, "out_proj.bias"),
    ("conv_params", 0, I32_MAX, "conv.bias"),
    ("dt_proj_params", 1, I32_MIN, "dt_proj.mult"),
    ("x_proj_B_params", 2, 31, "x_proj_B.shift"),
    ("x_proj_C_params", 2, -32, "x_proj_C.shift"),
    ("A_q20", None, -(I32_MAX // 255) - 1, "ssm.A_q20"),
    ("A_q20", None, I32_MIN, "ssm.A_q20"),
    ("D", 1, 40, "ssm.D_shift"),
    ("D", 0, I32_MIN, "ssm.D_mult"),
]


@pytest.mark.parametrize(("name", "row", "value", "field"), BAD_TENSORS)
def test_bad_const_tensor_value_is_refused_and_named(core, name, row, value, field) -> None:
    opts, tensors = _shipped(core)
    t = tensors[name]
    flat = t[row] if row is not None else t.reshape(-1)
    idx = len(flat) - 1  # the last element: the scan reaches every value
    flat[idx] = value
    verdict = _verdict(core, opts, tensors)
    assert not verdict.ok and verdict.field == field, str(verdict)
    assert verdict.value == value


def test_sizes_are_checked_not_wrapped(core) -> None:
    """Dimensions past the cap are refused before any byte count is formed."""
    for dims in ((256, 256, 256, 256, 256), (2**31 - 1,) * 5, (1, 2**16, 2**16, 2, 1)):
        bc = cbind.BlockConfig(*dims, 0, 0, 0, 0)
        v, _, _ = core.validate_block_sizes(bc)
        if max(dims) <= 256:
            assert v.ok
        else:
            assert not v.ok and v.status == "is a dimension out of range"
    bc = cbind.BlockConfig(256, 256, 256, 256, 256, 0, 0, 0, 1)
    v, state, scratch = core.validate_block_sizes(bc)
    assert v.ok and state == 4 * 256 * 256 + 256 * 255 and scratch == 6 * 256 + 256 + 2 * 256 + 2 * 256


# ---------------------------------------------------------------- the quantiser keeps the contract


@pytest.mark.parametrize("m", [math.nan, math.inf, -math.inf])
def test_quantize_multiplier_refuses_a_non_finite_factor(m) -> None:
    with pytest.raises(ValueError, match="not finite"):
        quantize_multiplier(m)


def _qblock(opts: dict, t: dict[str, np.ndarray]) -> QBlock:
    """The QBlock a model's options and const tensors hold (the quantiser's form)."""

    def layer(name: str, cls: type = QLinear):
        p = t[f"{name}_params"].astype(np.int64)
        return cls(t[f"{name}_W"], p[0], p[1], p[2], opts[f"{name}_out_zp"])

    D = t["D"].astype(np.int64)
    ssm = QSSM(
        t["A_q20"].astype(np.int64),
        D[0],
        D[1],
        *(opts[f"ssm_{k}"] for k in ("x_zp", "dt_zp", "B_zp", "C_zp", "bx_shift", "hc_mult", "hc_shift", "y_zp")),
        opts.get("ssm_y_bits", 8),
    )
    luts = t["luts"]
    return QBlock(
        opts["in_zp"], layer("in_proj_x"), layer("in_proj_z"), layer("conv", QConv), luts[0], layer("x_proj_dt"),
        layer("x_proj_B"), layer("x_proj_C"), layer("dt_proj"), luts[1], ssm, luts[2],
        *(opts[k] for k in ("gate_zp", "yg_mult", "yg_shift", "yg_zp")), layer("out_proj"),
        *(opts[k] for k in ("res_u_mult", "res_u_shift", "res_m_mult", "res_m_shift", "out_zp")),
    )  # fmt: skip


def test_check_block_q8_refuses_what_the_validator_refuses(core) -> None:
    """check_block_q8 (the quantiser's last step) refuses every bad value above, naming the same field."""
    opts, tensors = _shipped(core)
    check_block_q8(opts, _qblock(opts, tensors))  # the shipped block itself is fine
    for key, value, field in BAD_OPTIONS:
        if key in ft.INT8_OPTION_KEYS + ft.OPTIONAL_INT8_KEYS or key.startswith("d_"):
            bad = dict(opts, **{key: value})
            with pytest.raises(QuantizeError, match=f"^{field.replace('.', '[.]')}"):
                check_block_q8(bad, _qblock(bad, tensors))
    for name, row, value, field in BAD_TENSORS:
        bad_t = {k: v.copy() for k, v in tensors.items()}
        t = bad_t[name]
        (t[row] if row is not None else t.reshape(-1))[-1] = value
        with pytest.raises(QuantizeError, match=f"^{field.replace('.', '[.]')}"):
            check_block_q8(opts, _qblock(opts, bad_t))


def test_quantiser_raises_instead_of_clipping_a_bias_or_using_a_nan_scale() -> None:
    from mamba_kws.fused.quantize import QParams, asym, quant_linear

    W = np.eye(4)
    qin, qout = QParams(1e-6, 0), QParams(0.1, 0)
    with pytest.raises(QuantizeError, match=r"^in_proj_x\.bias\[0\] = \d+ is outside"):
        quant_linear(W, np.full(4, 1e6), qin, qout, "in_proj_x")  # 1e6 / (1e-6 s_w): past 2^30
    with pytest.raises(QuantizeError, match=r"^dt_proj\.mult: .*not finite"):
        quant_linear(W, None, qin, QParams(math.nan, 0), "dt_proj")
    with pytest.raises(QuantizeError, match="not finite"):
        asym(np.array([0.0, math.inf]))
    ok = quant_linear(W, np.full(4, 0.5), QParams(0.01, 3), qout, "ok")
    assert ok.bias.dtype == np.int32 and np.all(np.abs(ok.bias) <= 2**30)
