"""Float and int8 weights as C source (const arrays + the structs of mamba_model.h).

Used by the bare-metal harness (modules/tflm_mamba/harness) and the benchmark; the output is
a build artefact, never committed.
"""

from __future__ import annotations

import numpy as np

from .cbind import _ENUMS
from .quantize import FloatBlock, FloatModel, QBlock, QLinear, QModel, QRMSNorm


class _Emitter:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lines: list[str] = []
        self.n = 0

    def array(self, ctype: str, values: np.ndarray) -> str:
        name = f"{self.prefix}_{self.n}"
        self.n += 1
        flat = np.asarray(values).ravel()
        if ctype == "float":
            items = [_hexfloat(float(v)) for v in flat.astype(np.float32)]
        else:
            items = [str(int(v)) for v in flat]
        body = ",".join(items) or "0"
        self.lines.append(f"static const {ctype} {name}[{max(len(items), 1)}] = {{{body}}};")
        return name


def _hexfloat(v: float) -> str:
    # C99 hex float literal: exact
    return f"{v.hex()}f" if v != 0.0 else "0.0f"


def _linear(e: _Emitter, p: QLinear) -> str:
    return (
        f"{{ .W = {e.array('int8_t', p.W)}, .bias = {e.array('int32_t', p.bias)}, "
        f".mult = {e.array('int32_t', p.mult)}, .shift = {e.array('int32_t', p.shift)}, .out_zp = {p.out_zp} }}"
    )


def _rmsnorm(e: _Emitter, p: QRMSNorm | None) -> str:
    if p is None:
        return "{ 0 }"
    return (
        f"{{ .in_zp = {p.in_zp}, .eps_q = {p.eps_q}, .mult = {e.array('int32_t', p.mult)}, "
        f".shift = {e.array('int32_t', p.shift)}, .out_zp = {p.out_zp} }}"
    )


def _q8_block(e: _Emitter, qb: QBlock) -> str:
    s, c = qb.ssm, qb.conv
    conv = (
        f"{{ .w = {e.array('int8_t', c.w)}, .bias = {e.array('int32_t', c.bias)}, "
        f".mult = {e.array('int32_t', c.mult)}, .shift = {e.array('int32_t', c.shift)}, .out_zp = {c.out_zp} }}"
    )
    ssm = (
        f"{{ .A_q20 = {e.array('int32_t', s.A_q20)}, .D_mult = {e.array('int32_t', s.D_mult)}, "
        f".D_shift = {e.array('int32_t', s.D_shift)}, .x_zp = {s.x_zp}, .dt_zp = {s.dt_zp}, .B_zp = {s.B_zp}, "
        f".C_zp = {s.C_zp}, .bx_shift = {s.bx_shift}, .hc_mult = {s.hc_mult}, "
        f".hc_shift = {s.hc_shift}, .y_zp = {s.y_zp}, .y_bits = {s.y_bits} }}"
    )
    return (
        f"{{ .in_zp = {qb.in_zp}, .in_proj_x = {_linear(e, qb.in_proj_x)}, .in_proj_z = {_linear(e, qb.in_proj_z)},"
        f" .conv = {conv}, .conv_act_lut = {e.array('int8_t', qb.conv_act_lut)},"
        f" .x_proj_dt = {_linear(e, qb.x_proj_dt)}, .x_proj_B = {_linear(e, qb.x_proj_B)},"
        f" .x_proj_C = {_linear(e, qb.x_proj_C)}, .dt_proj = {_linear(e, qb.dt_proj)},"
        f" .dt_act_lut = {e.array('int8_t', qb.dt_act_lut)}, .ssm = {ssm},"
        f" .gate_act_lut = {e.array('int8_t', qb.gate_act_lut)}, .gate_zp = {qb.gate_zp},"
        f" .yg_mult = {qb.yg_mult}, .yg_shift = {qb.yg_shift}, .yg_zp = {qb.yg_zp},"
        f" .out_proj = {_linear(e, qb.out_proj)}, .res_u_mult = {qb.res_u_mult}, .res_u_shift = {qb.res_u_shift},"
        f" .res_m_mult = {qb.res_m_mult}, .res_m_shift = {qb.res_m_shift}, .out_zp = {qb.out_zp},"
        f" .norm = {_rmsnorm(e, qb.norm)} }}"
    )


def _f32_block(e: _Emitter, fb: FloatBlock) -> str:
    f = lambda a: e.array("float", a)  # noqa: E731
    return (
        f"{{ .norm_weight = {f(fb.norm_weight)}, .norm_bias = {f(fb.norm_bias)}, "
        f".norm_eps = {_hexfloat(float(np.float32(fb.norm_eps)))}, .in_proj_w = {f(fb.in_proj_w)}, "
        f".conv_w = {f(fb.conv_w)}, .conv_b = {f(fb.conv_b)}, .x_proj_w = {f(fb.x_proj_w)}, "
        f".dt_proj_w = {f(fb.dt_proj_w)}, .dt_proj_b = {f(fb.dt_proj_b)}, .A = {f(fb.A)}, .D = {f(fb.D)}, "
        f".out_proj_w = {f(fb.out_proj_w)} }}"
    )


def model_config_c(fm: FloatModel | QModel) -> str:
    c = fm.cfg
    return (
        f"{{ .block = {{ .d_model = {c.d_model}, .d_inner = {c.d_inner}, .d_state = {c.d_state}, "
        f".d_conv = {c.d_conv}, .dt_rank = {c.dt_rank_resolved}, .decay = (tm_decay){_ENUMS['decay'][c.decay]}, "
        f".dt_activation = (tm_dt_activation){_ENUMS['dt_activation'][c.dt_activation]}, "
        f".activation = (tm_activation){_ENUMS['activation'][c.activation]}, "
        f".norm = (tm_norm){_ENUMS['norm'][c.norm]} }}, .n_layers = {c.n_layers}, .channels = {fm.channels}, "
        f".frame_stack = {c.frame_stack}, .n_classes = {fm.n_classes}, "
        f".pooling = (tm_pooling){_ENUMS['pooling'][c.pooling]}, .pool_window = 0 }}"
    )


def model_source(fm: FloatModel, qm: QModel, feats: np.ndarray, feats_q: np.ndarray, with_float: bool = True) -> str:
    """A C file defining tm_h_cfg, tm_h_q8, tm_h_feats_q8 and (with_float) tm_h_f32, tm_h_feats_f32.

    Without the float path the harness is built with -DTM_HARNESS_INT8_ONLY (qemu.build(int8_only=True)):
    a model whose float32 weights would not fit the board's flash."""
    e = _Emitter("tm_h")
    qblocks = ", ".join(_q8_block(e, b) for b in qm.blocks)
    f = lambda a: e.array("float", a)  # noqa: E731
    q8 = (
        f"{{ .in_scale = {_hexfloat(float(np.float32(qm.in_scale)))}, .in_zp = {qm.in_zp}, "
        f".stem = {_linear(e, qm.stem)}, .blocks = tm_h_q8_blocks, .pool_mult = {qm.pool_mult}, "
        f".pool_shift = {qm.pool_shift}, .pool_zp = {qm.pool_zp}, .cls = {_linear(e, qm.cls)}, "
        f".logit_scale = {_hexfloat(float(np.float32(qm.logit_scale)))}, .logit_zp = {qm.logit_zp}, "
        f".norm_f = {_rmsnorm(e, qm.norm_f)} }}"
    )
    fq = e.array("int8_t", feats_q)
    float_defs = []
    if with_float:
        fblocks = ", ".join(_f32_block(e, b) for b in fm.blocks)
        f32 = (
            f"{{ .stem_w = {f(fm.stem_w)}, .stem_b = {f(fm.stem_b)}, .blocks = tm_h_f32_blocks, "
            f".norm_f_weight = {f(fm.norm_f_weight)}, .norm_f_bias = {f(fm.norm_f_bias)}, "
            f".norm_f_eps = {_hexfloat(float(np.float32(fm.norm_f_eps)))}, "
            f".cls_w = {f(fm.cls_w)}, .cls_b = {f(fm.cls_b)} }}"
        )
        fe = f(feats)
        float_defs = [
            f"static const tm_block_f32_weights tm_h_f32_blocks[] = {{ {fblocks} }};",
            f"const tm_model_f32_weights tm_h_f32 = {f32};",
            f"const float *const tm_h_feats_f32 = {fe};",
        ]
    out = [
        "/* Generated by mamba_kws.fused.cgen: do not edit, do not commit. */",
        '#include "model_data.h"',
        *e.lines,
        f"static const tm_block_q8_weights tm_h_q8_blocks[] = {{ {qblocks} }};",
        f"const tm_model_config tm_h_cfg = {model_config_c(fm)};",
        f"const tm_model_q8_weights tm_h_q8 = {q8};",
        f"const int8_t *const tm_h_feats_q8 = {fq};",
        *float_defs,
        f"const int32_t tm_h_steps = {feats.shape[0] // fm.cfg.frame_stack};",
        "",
    ]
    return "\n".join(out)
