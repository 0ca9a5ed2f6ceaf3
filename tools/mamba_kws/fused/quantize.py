"""A MambaKWS as the C core wants it: float32 arrays, and the int8 quantisation of them.

The int8 scheme (fixed_point.h has the formulas):

- weights: symmetric int8 per output channel (zero point 0); biases int32 at s_x * s_w with the
  input zero point folded in (bias - z_x * sum(W row)), as CMSIS-NN does;
- activations: asymmetric int8 per tensor, ranges from running the float model on calibration
  features (min/max, always including 0);
  (both rules: mamba_kws.quant, shared with the training simulations)
- the scan output y and the gate y * act(z): int8 as above, or symmetric int16 (`Y_BITS`, the
  default: one int8 step of y was the largest rounding of the block; ssm_scan.h);
- the SSM state h: int32 at s_h = s_dt s_B s_x 2^-k, k in [-24, 6] chosen so max|h| is near 2^20;
- element-wise functions (SiLU, hard-swish, ReLU, softplus): 256-entry int8 tables;
- the decay: A_q20 = round(s_dt * A * 2^20); exp / 2*sigmoid in Q30 by interpolated tables;
- batchnorm (the default norm) folds into in_proj, the final batchnorm into the classifier
  (it commutes with the mean over time). rmsnorm has no int8 path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import KWSConfig, ModelConfig
from ..model import MambaKWS
from ..quant import RangeError, qparams, qparams16, weight_scales
from .fixed_point import A_Q20_MIN, quantize_multiplier, quantize_multipliers

H_BITS = 20  # max|h| maps to about 2^20: h*C summed over d_state stays inside int32
# The width of the scan output y and of y * act(z) (tm_ssm_q8.y_bits): 8 or 16.
Y_BITS_CHOICES = (8, 16)
Y_BITS = 16


class QuantizeError(ValueError):
    """A model the int8 kernels cannot run (for example rmsnorm)."""


# ---------------------------------------------------------------- float weights


@dataclass
class FloatBlock:
    norm_weight: np.ndarray  # (d_model,) rmsnorm weight or affine scale
    norm_bias: np.ndarray  # (d_model,) affine shift
    norm_eps: float
    in_proj_w: np.ndarray  # (2 d_inner, d_model)
    conv_w: np.ndarray  # (d_inner, d_conv)
    conv_b: np.ndarray
    x_proj_w: np.ndarray  # (dt_rank + 2 d_state, d_inner)
    dt_proj_w: np.ndarray  # (d_inner, dt_rank)
    dt_proj_b: np.ndarray
    A: np.ndarray  # (d_inner, d_state)
    D: np.ndarray
    out_proj_w: np.ndarray  # (d_model, d_inner)


@dataclass
class FloatModel:
    cfg: ModelConfig
    channels: int
    n_classes: int
    stem_w: np.ndarray
    stem_b: np.ndarray
    blocks: list[FloatBlock]
    norm_f_weight: np.ndarray
    norm_f_bias: np.ndarray
    norm_f_eps: float
    cls_w: np.ndarray
    cls_b: np.ndarray


def _f32(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def _norm_params(cfg: ModelConfig, norm: torch.nn.Module) -> tuple[np.ndarray, np.ndarray, float]:
    d = cfg.d_model
    if cfg.norm == "rmsnorm":
        return _f32(norm.weight), np.zeros(d, np.float32), float(norm.eps)
    if cfg.norm == "batchnorm":
        a, c = norm.affine()
        return _f32(a), _f32(c), 0.0
    return np.ones(d, np.float32), np.zeros(d, np.float32), 0.0


def float_weights(model: MambaKWS) -> FloatModel:
    """The float32 arrays of a MambaKWS in the C core's layout (mamba_block.h, mamba_model.h)."""
    cfg = model.cfg.model
    blocks = []
    for layer in model.layers:
        m = layer.mixer
        nw, nb, eps = _norm_params(cfg, layer.norm)
        blocks.append(
            FloatBlock(
                norm_weight=nw,
                norm_bias=nb,
                norm_eps=eps,
                in_proj_w=_f32(m.in_proj.weight),
                conv_w=_f32(m.conv1d.weight[:, 0, :]),
                conv_b=_f32(m.conv1d.bias),
                x_proj_w=_f32(m.x_proj.weight),
                dt_proj_w=_f32(m.dt_proj.weight),
                dt_proj_b=_f32(m.dt_proj.bias),
                A=_f32(m.A),
                D=_f32(m.D),
                out_proj_w=_f32(m.out_proj.weight),
            )
        )
    nw, nb, eps = _norm_params(cfg, model.norm_f)
    return FloatModel(
        cfg=cfg,
        channels=model.cfg.features.channels,
        n_classes=model.cfg.num_classes,
        stem_w=_f32(model.stem.weight),
        stem_b=_f32(model.stem.bias),
        blocks=blocks,
        norm_f_weight=nw,
        norm_f_bias=nb,
        norm_f_eps=eps,
        cls_w=_f32(model.classifier.weight),
        cls_b=_f32(model.classifier.bias),
    )


# ---------------------------------------------------------------- float model with intermediates (float64)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def hard_swish(x: np.ndarray) -> np.ndarray:
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def softplus(x: np.ndarray) -> np.ndarray:
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def act_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    return {"silu": silu, "hard_swish": hard_swish}[name]


def dt_act_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    return {"relu": relu, "softplus": softplus}[name]


def decay_fn(name: str, dt_a: np.ndarray) -> np.ndarray:
    return np.exp(dt_a) if name == "exp" else 2.0 / (1.0 + np.exp(-dt_a))


def _norm(cfg: ModelConfig, w: np.ndarray, b: np.ndarray, eps: float, x: np.ndarray) -> np.ndarray:
    if cfg.norm == "rmsnorm":
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w
    if cfg.norm == "batchnorm":
        return x * w + b
    return x


def block_forward(cfg: ModelConfig, fb: FloatBlock, u: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Residual block over (N, L, d_model) in float64; returns out and every intermediate."""
    di, n, r = cfg.d_inner, cfg.d_state, cfg.dt_rank_resolved
    act, dact = act_fn(cfg.activation), dt_act_fn(cfg.dt_activation)
    v = _norm(cfg, fb.norm_weight, fb.norm_bias, fb.norm_eps, u)
    xz = v @ fb.in_proj_w.T.astype(np.float64)
    x, z = xz[..., :di], xz[..., di:]
    K = cfg.d_conv
    xp = np.concatenate([np.zeros((u.shape[0], K - 1, di)), x], axis=1)
    conv = fb.conv_b + sum(fb.conv_w[:, k] * xp[:, k : k + u.shape[1]] for k in range(K))
    xc = act(conv)
    dbc = xc @ fb.x_proj_w.T.astype(np.float64)
    dtl, B, C = dbc[..., :r], dbc[..., r : r + n], dbc[..., r + n :]
    dt_pre = dtl @ fb.dt_proj_w.T.astype(np.float64) + fb.dt_proj_b
    dt = dact(dt_pre)
    A = fb.A.astype(np.float64)
    h = np.zeros((u.shape[0], di, n))
    ys, hmax = [], 0.0
    for t in range(u.shape[1]):
        dA = decay_fn(cfg.decay, dt[:, t, :, None] * A)
        h = dA * h + (dt[:, t] * xc[:, t])[..., None] * B[:, t, None, :]
        hmax = max(hmax, float(np.abs(h).max()))
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = np.stack(ys, 1) + xc * fb.D
    g = act(z)
    yg = y * g
    m = yg @ fb.out_proj_w.T.astype(np.float64)
    out = u + m
    stats = dict(
        u=u,
        v=v,
        x=x,
        z=z,
        conv=conv,
        xc=xc,
        dtl=dtl,
        B=B,
        C=C,
        dt_pre=dt_pre,
        dt=dt,
        y=y,
        g=g,
        yg=yg,
        m=m,
        out=out,
        hmax=np.array(hmax),
    )
    return out, stats


def stack_frames(feats: np.ndarray, frame_stack: int) -> np.ndarray:
    n, t, c = feats.shape
    t = (t // frame_stack) * frame_stack
    return feats[:, :t].reshape(n, t // frame_stack, frame_stack * c)


def model_forward(fm: FloatModel, feats: np.ndarray) -> tuple[np.ndarray, list[dict[str, np.ndarray]], dict]:
    """Whole model over (N, frames, channels) in float64: logits, per-block stats, model stats."""
    cfg = fm.cfg
    frames = stack_frames(feats.astype(np.float64), cfg.frame_stack)
    x = frames @ fm.stem_w.T.astype(np.float64) + fm.stem_b
    stats = []
    for fb in fm.blocks:
        x, s = block_forward(cfg, fb, x)
        stats.append(s)
    hid = _norm(cfg, fm.norm_f_weight, fm.norm_f_bias, fm.norm_f_eps, x)
    pooled = hid.mean(1) if cfg.pooling == "mean" else hid[:, -1]
    logits = pooled @ fm.cls_w.T.astype(np.float64) + fm.cls_b
    resid_pooled = x.mean(1) if cfg.pooling == "mean" else x[:, -1]
    return (
        logits,
        stats,
        dict(
            frames=frames,
            stem=stats[0]["u"] if stats else x,
            resid=x,
            resid_pooled=resid_pooled,
            hid=hid,
            hid_pooled=pooled,
            logits=logits,
        ),
    )


# ---------------------------------------------------------------- int8 parameters


@dataclass
class QParams:
    scale: float
    zp: int


def asym(values: np.ndarray | float, hi: float | None = None, bits: int = 8) -> QParams:
    """int8 asymmetric parameters for a tensor's range (mamba_kws.quant.qparams: 0 always representable);
    bits 16: symmetric int16 (quant.qparams16)."""
    if hi is None:
        arr = np.asarray(values, dtype=np.float64)
        lo_v, hi_v = float(arr.min()), float(arr.max())
    else:
        lo_v, hi_v = float(values), float(hi)
    try:
        return QParams(*(qparams16 if bits == 16 else qparams)(lo_v, hi_v))
    except RangeError as exc:
        raise QuantizeError(str(exc)) from None


@dataclass
class QLinear:
    W: np.ndarray  # int8 (out, in)
    bias: np.ndarray  # int32 (out,)
    mult: np.ndarray  # int32 (out,)
    shift: np.ndarray  # int32 (out,)
    out_zp: int


@dataclass
class QConv:
    w: np.ndarray  # int8 (d, K)
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    out_zp: int


@dataclass
class QSSM:
    A_q20: np.ndarray  # int32 (d_inner, d_state)
    D_mult: np.ndarray
    D_shift: np.ndarray
    x_zp: int
    dt_zp: int
    B_zp: int
    C_zp: int
    bx_shift: int
    hc_mult: int
    hc_shift: int
    y_zp: int
    y_bits: int = 8  # 8 or 16: y and y * act(z) (ssm_scan.h)


@dataclass
class QRMSNorm:
    in_zp: int
    eps_q: int
    mult: np.ndarray
    shift: np.ndarray
    out_zp: int


@dataclass
class QBlock:
    in_zp: int
    in_proj_x: QLinear
    in_proj_z: QLinear
    conv: QConv
    conv_act_lut: np.ndarray  # int8 (256,)
    x_proj_dt: QLinear
    x_proj_B: QLinear
    x_proj_C: QLinear
    dt_proj: QLinear
    dt_act_lut: np.ndarray
    ssm: QSSM
    gate_act_lut: np.ndarray
    gate_zp: int
    yg_mult: int
    yg_shift: int
    yg_zp: int
    out_proj: QLinear
    res_u_mult: int
    res_u_shift: int
    res_m_mult: int
    res_m_shift: int
    out_zp: int
    norm: QRMSNorm | None = None  # rmsnorm only
    scales: dict[str, float] = field(default_factory=dict)
    zps: dict[str, int] = field(default_factory=dict)  # the zero point of each tensor in `scales` (not "h")


@dataclass
class QModel:
    cfg: ModelConfig
    channels: int
    n_classes: int
    in_scale: float
    in_zp: int
    stem: QLinear
    blocks: list[QBlock]
    pool_mult: int
    pool_shift: int
    pool_zp: int
    cls: QLinear
    logit_scale: float
    logit_zp: int
    norm_f: QRMSNorm | None = None  # rmsnorm only
    pool_scale: float = 0.0  # the pooled int8 vector's scale (pool_zp its zero point)


def quant_rmsnorm(weight: np.ndarray, eps: float, qin: QParams, qout: QParams) -> QRMSNorm:
    """int8 RMSNorm (norm.h): eps_q = round(d eps / s_x^2), M_i = w_i sqrt(d) / (s_y 2^15)."""
    d = len(weight)
    eps_q = int(np.clip(round(d * eps / qin.scale**2), 0, 2**30))
    mult, shift = _mqs(np.asarray(weight, np.float64) * math.sqrt(d) / (qout.scale * 2**15), "norm.mult")
    return QRMSNorm(qin.zp, eps_q, mult, shift, qout.zp)


def quant_linear(W: np.ndarray, b: np.ndarray | None, qin: QParams, qout: QParams, name: str = "linear") -> QLinear:
    """Per-output-channel symmetric weights; the input zero point folded into the bias."""
    W = np.asarray(W, dtype=np.float64)
    s_w = weight_scales(W)
    Wq = np.clip(np.round(W / s_w[:, None]), -127, 127).astype(np.int64)
    bq = np.zeros(W.shape[0], np.int64) if b is None else np.round(np.asarray(b, np.float64) / (qin.scale * s_w))
    bias = bq.astype(np.int64) - qin.zp * Wq.sum(axis=1)
    mult, shift = _mqs(qin.scale * s_w / qout.scale, f"{name}.mult")
    return QLinear(Wq.astype(np.int8), _bias(bias, f"{name}.bias"), mult, shift, qout.zp)


def make_lut(f: Callable[[np.ndarray], np.ndarray], qin: QParams, qout: QParams) -> np.ndarray:
    """lut[q + 128] = clamp(round(f(s_in (q - z_in)) / s_out) + z_out)."""
    q = np.arange(-128, 128, dtype=np.float64)
    v = np.round(f(qin.scale * (q - qin.zp)) / qout.scale) + qout.zp
    return np.clip(v, -128, 127).astype(np.int8)


def _mq(m: float, name: str = "multiplier") -> tuple[int, int]:
    try:
        return quantize_multiplier(float(m))
    except ValueError as e:
        raise QuantizeError(f"{name}: {e}") from None


def _mqs(ms: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return quantize_multipliers(ms)
    except ValueError as e:
        raise QuantizeError(f"{name}: {e}") from None


def _bias(bias: np.ndarray, name: str) -> np.ndarray:
    """int32 biases inside the kernels' bound (no silent clip or wrap)."""
    bias = np.asarray(bias)
    if not np.all(np.isfinite(bias.astype(np.float64))):
        raise QuantizeError(f"{name}: not finite (a NaN or infinite scale or weight)")
    _in_range(name, bias.astype(np.int64), BIAS_RANGE)
    return bias.astype(np.int32)


# ---------------------------------------------------------------- the kernels' contract

# The ranges the int8 kernels assume (modules/tflm_mamba/include/tflm_mamba/mamba_validate.h):
# tm_validate_block_q8 refuses the same values on the device (MAMBA_BLOCK's Prepare).
MAX_DIM = 256
ZP_RANGE = (-128, 127)
SHIFT_RANGE = (-31, 30)
BX_SHIFT_RANGE = (-24, 6)
MULT_RANGE = (-(2**31 - 1), 2**31 - 1)
BIAS_RANGE = (-(2**30), 2**30)
A_Q20_RANGE = (A_Q20_MIN, -A_Q20_MIN)
EPS_Q_RANGE = (0, 2**30)
BLOCK_DIMS = ("d_model", "d_inner", "d_state", "d_conv", "dt_rank")


def _in_range(name: str, value: np.ndarray | int, rng: tuple[int, int]) -> None:
    a = np.asarray(value, dtype=np.int64)
    bad = np.flatnonzero((a < rng[0]) | (a > rng[1]))
    if bad.size:
        i = int(bad[0])
        at = f"[{i}]" if a.ndim else ""
        raise QuantizeError(
            f"{name}{at} = {int(a.reshape(-1)[i])} is outside the int8 kernels' range [{rng[0]}, {rng[1]}] "
            "(mamba_validate.h); the model's scales are out of proportion: check its calibration"
        )


def block_q8_fields(qb: QBlock) -> list[tuple[str, np.ndarray | int, tuple[int, int]]]:
    """Every parameter of an int8 block with its range, named as the C validator names it."""

    def layer(name: str, p: QLinear | QConv) -> list:
        return [
            (f"{name}.bias", p.bias, BIAS_RANGE),
            (f"{name}.mult", p.mult, MULT_RANGE),
            (f"{name}.shift", p.shift, SHIFT_RANGE),
            (f"{name}.out_zp", p.out_zp, ZP_RANGE),
        ]

    s = qb.ssm
    fields: list = [("in_zp", qb.in_zp, ZP_RANGE)]
    for name in ("in_proj_x", "in_proj_z", "conv", "x_proj_dt", "x_proj_B", "x_proj_C", "dt_proj", "out_proj"):
        fields += layer(name, getattr(qb, name))
    fields += [(f"ssm.{k}", getattr(s, k), ZP_RANGE) for k in ("x_zp", "dt_zp", "B_zp", "C_zp", "y_zp")]
    fields += [
        ("ssm.bx_shift", s.bx_shift, BX_SHIFT_RANGE),
        ("ssm.hc_mult", s.hc_mult, MULT_RANGE),
        ("ssm.hc_shift", s.hc_shift, SHIFT_RANGE),
        ("ssm.A_q20", s.A_q20, A_Q20_RANGE),
        ("ssm.D_mult", s.D_mult, MULT_RANGE),
        ("ssm.D_shift", s.D_shift, SHIFT_RANGE),
        ("gate_zp", qb.gate_zp, ZP_RANGE),
        ("yg_mult", qb.yg_mult, MULT_RANGE),
        ("yg_shift", qb.yg_shift, SHIFT_RANGE),
        ("yg_zp", qb.yg_zp, ZP_RANGE),
        ("res_u_mult", qb.res_u_mult, MULT_RANGE),
        ("res_u_shift", qb.res_u_shift, SHIFT_RANGE),
        ("res_m_mult", qb.res_m_mult, MULT_RANGE),
        ("res_m_shift", qb.res_m_shift, SHIFT_RANGE),
        ("out_zp", qb.out_zp, ZP_RANGE),
    ]
    if qb.norm is not None:
        n = qb.norm
        fields += [
            ("norm.in_zp", n.in_zp, ZP_RANGE),
            ("norm.out_zp", n.out_zp, ZP_RANGE),
            ("norm.eps_q", n.eps_q, EPS_Q_RANGE),
            ("norm.mult", n.mult, MULT_RANGE),
            ("norm.shift", n.shift, SHIFT_RANGE),
        ]
    return fields


def check_block_q8(dims: Mapping[str, int], qb: QBlock) -> None:
    """Raise QuantizeError naming the first dimension or parameter outside the kernels' contract.

    dims: d_model, d_inner, d_state, d_conv, dt_rank (a ModelConfig's, or a model's options)."""
    for name in BLOCK_DIMS:
        _in_range(name, int(dims[name]), (1, MAX_DIM))
    if qb.ssm.y_bits not in Y_BITS_CHOICES:
        raise QuantizeError(f"ssm.y_bits = {qb.ssm.y_bits}: the kernels run 8 or 16 (ssm_scan.h)")
    for name, value, rng in block_q8_fields(qb):
        _in_range(name, value, rng)


def block_dims(cfg: ModelConfig) -> dict[str, int]:
    return dict(
        d_model=cfg.d_model, d_inner=cfg.d_inner, d_state=cfg.d_state, d_conv=cfg.d_conv, dt_rank=cfg.dt_rank_resolved
    )


def quantize_block(
    cfg: ModelConfig, fb: FloatBlock, s: dict[str, np.ndarray], q_u: QParams, q_out: QParams | None = None,
    y_bits: int = Y_BITS,
) -> QBlock:
    di = cfg.d_inner
    n, r = cfg.d_state, cfg.dt_rank_resolved
    # The affine norm (batchnorm) folds into in_proj: W (a u + c) = (W a) u + W c.
    a = fb.norm_weight.astype(np.float64) if cfg.norm == "batchnorm" else np.ones(cfg.d_model)
    c = fb.norm_bias.astype(np.float64) if cfg.norm == "batchnorm" else np.zeros(cfg.d_model)
    W_in = fb.in_proj_w.astype(np.float64) * a[None, :]
    b_in = fb.in_proj_w.astype(np.float64) @ c
    norm = None
    if cfg.norm == "rmsnorm":
        q_v = asym(s["v"])
        norm = quant_rmsnorm(fb.norm_weight, fb.norm_eps, q_u, q_v)
        b_in = None
    if y_bits not in Y_BITS_CHOICES:
        raise QuantizeError(f"y_bits {y_bits}: the kernels run {' or '.join(map(str, Y_BITS_CHOICES))}")
    qp = {k: asym(s[k]) for k in ("x", "z", "conv", "xc", "dtl", "B", "C", "dt_pre", "g", "m")}
    qp |= {k: asym(s[k], bits=y_bits) for k in ("y", "yg")}
    qp["dt"] = asym(0.0, float(s["dt"].max())) if cfg.dt_activation == "relu" else asym(s["dt"])
    q_out = q_out or asym(s["out"])
    act, dact = act_fn(cfg.activation), dt_act_fn(cfg.dt_activation)
    q_lin_in = q_v if norm is not None else q_u
    in_x = quant_linear(W_in[:di], None if b_in is None else b_in[:di], q_lin_in, qp["x"], "in_proj_x")
    in_z = quant_linear(W_in[di:], None if b_in is None else b_in[di:], q_lin_in, qp["z"], "in_proj_z")
    # conv: per-channel weights, input = x (zero point folded into the bias)
    s_cw = weight_scales(fb.conv_w)
    cwq = np.clip(np.round(fb.conv_w / s_cw[:, None]), -127, 127).astype(np.int64)
    cb = np.round(fb.conv_b / (qp["x"].scale * s_cw)).astype(np.int64) - qp["x"].zp * cwq.sum(axis=1)
    cm, cs = _mqs(qp["x"].scale * s_cw / qp["conv"].scale, "conv.mult")
    conv = QConv(cwq.astype(np.int8), _bias(cb, "conv.bias"), cm, cs, qp["conv"].zp)
    x_proj = fb.x_proj_w.astype(np.float64)
    # h in units of s_dt s_B s_x 2^-k: the update is a shift; max|h| lands near 2^H_BITS
    prod_scale = qp["dt"].scale * qp["B"].scale * qp["xc"].scale
    k = int(np.clip(np.floor(np.log2(2**H_BITS * prod_scale / max(float(s["hmax"]), 1e-12))), -24, 6))
    s_h = prod_scale * 2.0**-k
    s_dt = qp["dt"].scale
    A_q20 = np.clip(np.round(s_dt * fb.A.astype(np.float64) * 2**20), A_Q20_MIN, 0).astype(np.int32)
    D_mult, D_shift = _mqs(qp["xc"].scale * fb.D.astype(np.float64) / qp["y"].scale, "ssm.D_mult")
    hc = _mq(s_h * qp["C"].scale / qp["y"].scale, "ssm.hc_mult")
    ssm = QSSM(A_q20, D_mult, D_shift, qp["xc"].zp, qp["dt"].zp, qp["B"].zp, qp["C"].zp, k, hc[0], hc[1], qp["y"].zp,
               y_bits)
    yg = _mq(qp["y"].scale * qp["g"].scale / qp["yg"].scale, "yg_mult")
    ru = _mq(q_u.scale / (q_out.scale * 65536), "res_u_mult")
    rm = _mq(qp["m"].scale / (q_out.scale * 65536), "res_m_mult")
    scales = {k: v.scale for k, v in qp.items()} | {"h": s_h, "u": q_u.scale, "out": q_out.scale}
    zps = {k: v.zp for k, v in qp.items()} | {"u": q_u.zp, "out": q_out.zp}
    qb = QBlock(
        in_zp=q_u.zp,
        in_proj_x=in_x,
        in_proj_z=in_z,
        conv=conv,
        conv_act_lut=make_lut(act, qp["conv"], qp["xc"]),
        x_proj_dt=quant_linear(x_proj[:r], None, qp["xc"], qp["dtl"], "x_proj_dt"),
        x_proj_B=quant_linear(x_proj[r : r + n], None, qp["xc"], qp["B"], "x_proj_B"),
        x_proj_C=quant_linear(x_proj[r + n :], None, qp["xc"], qp["C"], "x_proj_C"),
        dt_proj=quant_linear(fb.dt_proj_w, fb.dt_proj_b, qp["dtl"], qp["dt_pre"], "dt_proj"),
        dt_act_lut=make_lut(dact, qp["dt_pre"], qp["dt"]),
        ssm=ssm,
        gate_act_lut=make_lut(act, qp["z"], qp["g"]),
        gate_zp=qp["g"].zp,
        yg_mult=yg[0],
        yg_shift=yg[1],
        yg_zp=qp["yg"].zp,
        out_proj=quant_linear(fb.out_proj_w, None, qp["yg"], qp["m"], "out_proj"),
        res_u_mult=ru[0],
        res_u_shift=ru[1],
        res_m_mult=rm[0],
        res_m_shift=rm[1],
        out_zp=q_out.zp,
        norm=norm,
        scales=scales,
        zps=zps,
    )
    check_block_q8(block_dims(cfg), qb)
    return qb


def quantize_model(
    fm: FloatModel, calib_feats: np.ndarray, rmsnorm: bool = False, y_bits: int | None = None
) -> QModel:
    """int8 model from float weights and calibration features (N, frames, channels); y_bits: the width of
    every block's scan output and gate (8 or 16; None: Y_BITS, what the shipped models use).

    An rmsnorm model quantises only with rmsnorm=True: its int8 form needs QBlock.norm and
    QModel.norm_f (tm_rmsnorm_q8) to be carried over by whoever consumes the QModel, so a
    consumer that predates them (ignoring them would be silently wrong) keeps getting a
    QuantizeError.
    """
    cfg = fm.cfg
    if cfg.norm == "rmsnorm" and not rmsnorm:
        raise QuantizeError(
            "int8 rmsnorm runs in the C kernels (tm_rmsnorm_q8) but this int8 path does not carry it "
            "(quantize_model(..., rmsnorm=True)); use norm: batchnorm or none in the model YAML"
        )
    logits, stats, ms = model_forward(fm, calib_feats)
    q_in = asym(ms["frames"])
    q_res = [asym(stats[0]["u"])] + [asym(s["out"]) for s in stats]
    stem = quant_linear(fm.stem_w, fm.stem_b, q_in, q_res[0], "stem")
    blocks = [
        quantize_block(cfg, fb, s, q_res[i], q_res[i + 1], Y_BITS if y_bits is None else y_bits)
        for i, (fb, s) in enumerate(zip(fm.blocks, stats, strict=True))
    ]
    norm_f = None
    if cfg.norm == "rmsnorm":
        # rmsnorm does not commute with the mean: it runs per step, the pool reads its output
        q_hid = asym(ms["hid"])
        norm_f = quant_rmsnorm(fm.norm_f_weight, fm.norm_f_eps, q_res[-1], q_hid)
        q_pool = asym(ms["hid_pooled"])
        pm = _mq(q_hid.scale / (256.0 * q_pool.scale), "pool_mult")
    else:
        q_pool = asym(ms["resid_pooled"])
        pm = _mq(q_res[-1].scale / (256.0 * q_pool.scale), "pool_mult")
    # final affine norm folded into the classifier: W (a p + c) + b
    if cfg.norm == "batchnorm":
        a, c = fm.norm_f_weight.astype(np.float64), fm.norm_f_bias.astype(np.float64)
    else:
        a, c = np.ones(cfg.d_model), np.zeros(cfg.d_model)
    W_cls = fm.cls_w.astype(np.float64) * a[None, :]
    b_cls = fm.cls_w.astype(np.float64) @ c + fm.cls_b
    q_logit = asym(logits)
    cls = quant_linear(W_cls, b_cls, q_pool, q_logit, "classifier")
    for name, p in (("stem", stem), ("classifier", cls)):
        _in_range(f"{name} inputs", p.W.shape[1], (1, MAX_DIM))
        _in_range(f"{name}.mult", p.mult, MULT_RANGE)
        _in_range(f"{name}.shift", p.shift, SHIFT_RANGE)
    _in_range("pool_mult", pm[0], MULT_RANGE)
    _in_range("pool_shift", pm[1], SHIFT_RANGE)
    return QModel(
        cfg,
        fm.channels,
        fm.n_classes,
        q_in.scale,
        q_in.zp,
        stem,
        blocks,
        pm[0],
        pm[1],
        q_pool.zp,
        cls,
        q_logit.scale,
        q_logit.zp,
        norm_f,
        q_pool.scale,
    )


def quantize_features(feats: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """As tm_quantize_f32: q = clamp(roundf(x / scale) + zp), float32, halves away from zero."""
    v = np.asarray(feats, np.float32) / np.float32(scale)
    r = np.trunc(v)
    r = r + np.where(np.abs(v - r) >= np.float32(0.5), np.sign(v), np.float32(0))
    return np.clip(np.nan_to_num(r + zp, nan=-128.0), -128, 127).astype(np.int8)


def check_model_config(cfg: KWSConfig) -> None:
    if cfg.model.n_layers > 8:
        raise QuantizeError(f"n_layers {cfg.model.n_layers} is more than the kernels' TM_MAX_LAYERS (8)")


def fake_calibration(cfg: KWSConfig, n: int = 16, seed: int = 0) -> np.ndarray:
    """Feature-like calibration input (N, frames, channels): smooth log-mel-ish values in [0, 26]."""
    rng = np.random.default_rng(seed)
    f = cfg.features
    base = rng.uniform(2, 14, size=(n, 1, f.channels))
    wobble = np.cumsum(rng.normal(0, 0.8, size=(n, f.frames, f.channels)), axis=1) * 0.3
    return np.clip(base + wobble + rng.normal(0, 1.0, size=(n, f.frames, f.channels)), 0, 26).astype(np.float32)
