"""A bit-exact numpy model of the int8 kernels (modules/tflm_mamba/src/*_q8.c, fixed_point.h).

Written from the same equations, independently of the C, as the oracle of the tests: every
intermediate is an int64 array and every rounding/saturation is the C's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import qlimits
from . import fixed_point as fp
from .quantize import QSSM, QBlock, QConv, QLinear, QModel

H_MAX = fp.H_MAX


def linear(p: QLinear, x: np.ndarray) -> np.ndarray:
    acc = p.bias.astype(np.int64) + p.W.astype(np.int64) @ np.asarray(x, np.int64)
    return fp.rq8(acc, p.mult, p.shift, p.out_zp)


def lut(table: np.ndarray, q: np.ndarray) -> np.ndarray:
    return table.astype(np.int64)[np.asarray(q, np.int64) + 128]


@dataclass
class BlockState:
    conv: np.ndarray  # (d_inner, d_conv - 1) int64 raw int8 values
    h: np.ndarray  # (d_inner, d_state) int64


def block_state(qb: QBlock, d_inner: int, d_conv: int, d_state: int) -> BlockState:
    return BlockState(
        np.full((d_inner, d_conv - 1), qb.in_proj_x.out_zp, np.int64), np.zeros((d_inner, d_state), np.int64)
    )


def conv_step(p: QConv, state: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    window = np.concatenate([state, np.asarray(u, np.int64)[:, None]], axis=1)
    acc = p.bias.astype(np.int64) + (p.w.astype(np.int64) * window).sum(axis=1)
    return fp.rq8(acc, p.mult, p.shift, p.out_zp), window[:, 1:]


def ssm_step(
    p: QSSM, decay: str, x: np.ndarray, dt: np.ndarray, B: np.ndarray, C: np.ndarray, h: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    xd = x - p.x_zp
    dtd = dt - p.dt_zp
    arg = p.A_q20.astype(np.int64) * dtd[:, None]
    abar = fp.two_sigmoid_neg_q30(arg) if decay == "sigmoid" else fp.exp_neg_q30(arg)
    v = (dtd * xd)[:, None] * (B - p.B_zp)[None, :]
    k = p.bx_shift
    bx = v << k if k >= 0 else (v + (1 << (-k - 1))) >> (-k)
    h = np.clip(((h * abar + (1 << 29)) >> 30) + bx, -H_MAX - 1, H_MAX)
    acc = (h * (C - p.C_zp)[None, :]).sum(axis=1)
    y = p.y_zp + fp.rq32(fp.sat32(acc), p.hc_mult, p.hc_shift) + fp.rq32(xd, p.D_mult, p.D_shift)
    return np.clip(y, *qlimits(p.y_bits)), h  # ssm_scan.h: tm_y_min, tm_y_max


def rmsnorm(p, x: np.ndarray) -> np.ndarray:
    r = np.asarray(x, np.int64) - p.in_zp
    R = fp.rsqrt_q30(int((r * r).sum()) + p.eps_q)
    t = (r * R + (1 << 14)) >> 15
    return fp.rq8(t, p.mult, p.shift, p.out_zp)


def block_step(cfg, qb: QBlock, st: BlockState, u: np.ndarray) -> np.ndarray:
    u = np.asarray(u, np.int64)
    v = rmsnorm(qb.norm, u) if cfg.norm == "rmsnorm" else u
    x = linear(qb.in_proj_x, v)
    z = linear(qb.in_proj_z, v)
    xc, st.conv = conv_step(qb.conv, st.conv, x)
    xc = lut(qb.conv_act_lut, xc)
    dtl = linear(qb.x_proj_dt, xc)
    B = linear(qb.x_proj_B, xc)
    C = linear(qb.x_proj_C, xc)
    dt = lut(qb.dt_act_lut, linear(qb.dt_proj, dtl))
    y, st.h = ssm_step(qb.ssm, cfg.decay, xc, dt, B, C, st.h)
    g = lut(qb.gate_act_lut, z) - qb.gate_zp
    yg = np.clip(qb.yg_zp + fp.rq32((y - qb.ssm.y_zp) * g, qb.yg_mult, qb.yg_shift), *qlimits(qb.ssm.y_bits))
    m = linear(qb.out_proj, yg)
    a = fp.rq32((u - qb.in_zp) * 65536, qb.res_u_mult, qb.res_u_shift)
    b = fp.rq32((m - qb.out_proj.out_zp) * 65536, qb.res_m_mult, qb.res_m_shift)
    return fp.sat8(qb.out_zp + a + b)


def block_run(cfg, qb: QBlock, u: np.ndarray, st: BlockState | None = None) -> np.ndarray:
    st = st or block_state(qb, cfg.d_inner, cfg.d_conv, cfg.d_state)
    return np.stack([block_step(cfg, qb, st, u[t]) for t in range(u.shape[0])])


def model_run(qm: QModel, feats_q: np.ndarray, pool_window: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """int8 features (L * frame_stack, channels) -> (int8 logits, int8 hidden per step (L, d_model)).

    pool_window W > 0: the mean is over the last W steps only (tm_model_config.pool_window)."""
    cfg = qm.cfg
    k = cfg.frame_stack
    L = feats_q.shape[0] // k
    frames = np.asarray(feats_q[: L * k], np.int64).reshape(L, k * qm.channels)
    states = [block_state(qb, cfg.d_inner, cfg.d_conv, cfg.d_state) for qb in qm.blocks]
    zp = qm.blocks[-1].out_zp if qm.blocks else qm.stem.out_zp
    pool = np.zeros(cfg.d_model, np.int64)
    hidden = []
    for t in range(L):
        x = linear(qm.stem, frames[t])
        for qb, st in zip(qm.blocks, states, strict=True):
            x = block_step(cfg, qb, st, x)
        if cfg.norm == "rmsnorm":
            x = rmsnorm(qm.norm_f, x)
            zp = qm.norm_f.out_zp
        hidden.append(x)
        pool = (x - zp) if cfg.pooling == "last" else fp.sat32(pool + (x - zp))
    W = pool_window if cfg.pooling == "mean" else 0
    if W > 0 and L > 0:
        pool = (np.array(hidden[-W:], np.int64) - zp).sum(axis=0)
    count = 1 if cfg.pooling == "last" or L == 0 else (min(L, W) if W > 0 else L)
    mean256 = fp.div_round(fp.sat32(pool * 256), count)
    pooled = fp.rq8(mean256, qm.pool_mult, qm.pool_shift, qm.pool_zp)
    return linear(qm.cls, pooled), np.array(hidden)
