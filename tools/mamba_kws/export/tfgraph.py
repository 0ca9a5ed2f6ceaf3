"""PyTorch MambaKWS -> a TensorFlow graph of builtin ops with the selective scan unrolled.

Per clip (batch 1, all tensors 2-D so that TFLite emits FULLY_CONNECTED without reshapes):

    feats (1, frames, 40) -RESHAPE-> (L, frame_stack*40) -FC stem-> x (L, d_model)
    per layer (norm folded into in_proj when it is a batchnorm):
        xi  = FC in_proj_x(x)                           (L, d_inner)
        xc  = SiLU(DEPTHWISE_CONV_2D(PAD(xi)))          causal conv, SiLU = xi * LOGISTIC(xi)
        dt  = RELU(FC dt_proj(FC x_proj_dt(xc)))        (L, d_inner)
        B,C = FC x_proj_B(xc), FC x_proj_C(xc)          (L, d_state)
        dtx = dt * xc, then UNPACK over time of dt, dtx, B, C
        for t in 0..L-1 (one step = (d_inner, d_state) tensors only; TFLM reuses their memory):
            h_t = h_{t-1} + TANH(dt_t * A/2) * h_{t-1} + (dt_t x_t) * B_t
                  (decay "sigmoid": 2*sigmoid(v) = 1 + tanh(v/2), so no x2 op and TANH's fixed
                   int8 output scale covers the decay exactly; decay "exp": EXP(dt_t * A) * h_{t-1})
            y_t = SUM(h_t * C_t, axis 1)                (d_inner,)
        y   = PACK(y_t) + xc * D
        z   = SiLU(FC in_proj_z(x))
        x   = x + FC out_proj(y * z)
    final norm (batchnorm: folded into the classifier, the mean over time commutes with it)
    MEAN over time (pooling "last": the last row) -> FC classifier -> logits (1, classes)

With chunks > 1 the same maths is laid out chunk by chunk along time (every layer on steps
[t0, t1), the conv window and h carried to the next chunk, a running pooled sum), so that a cut
between chunks carries only that state.

The steps of the scan read like `mamba_kws.model.ssm_scan_step`. The tensor names carry the
layer (`layer0/scan/t12/...`), so an op TFLM refuses can be named with the layer it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import KWSConfig
from ..model import MambaKWS
from . import ExportError

# The switches this exporter knows how to express, and which of them give an int8 graph TFLM runs.
SUPPORTED = {
    "dt_activation": ("relu", "softplus"),
    "decay": ("sigmoid", "exp"),
    "activation": ("silu", "hard_swish"),
    "norm": ("batchnorm", "rmsnorm", "none"),
    "pooling": ("mean", "last"),
}


@dataclass
class LayerWeights:
    norm: str  # "affine" (batchnorm, folded) | "rmsnorm" | "none"
    rms_eps: float
    in_x_w: np.ndarray  # (d_model, d_inner), transposed for x @ w
    in_x_b: np.ndarray | None
    in_z_w: np.ndarray
    in_z_b: np.ndarray | None
    conv_w: np.ndarray  # (d_conv, d_inner)
    conv_b: np.ndarray
    xdt_w: np.ndarray  # (d_inner, dt_rank)
    xB_w: np.ndarray  # (d_inner, d_state)
    xC_w: np.ndarray
    dtp_w: np.ndarray  # (dt_rank, d_inner)
    dtp_b: np.ndarray
    A: np.ndarray  # (d_inner, d_state), negative
    D: np.ndarray  # (d_inner,)
    out_w: np.ndarray  # (d_inner, d_model)


@dataclass
class ModelWeights:
    stem_w: np.ndarray  # (frame_stack*channels, d_model)
    stem_b: np.ndarray
    layers: list[LayerWeights]
    final_norm: str  # "affine" | "rmsnorm" | "none"
    final_rms: tuple[np.ndarray, float] | None
    cls_w: np.ndarray  # (d_model, classes), final batchnorm folded in
    cls_b: np.ndarray


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _bn_affine(bn: Any) -> tuple[np.ndarray, np.ndarray]:
    """Inference batchnorm y = x * s + c."""
    s = _np(bn.weight) / np.sqrt(_np(bn.running_var) + bn.eps)
    return s, _np(bn.bias) - _np(bn.running_mean) * s


def check_switches(cfg: KWSConfig) -> None:
    m = cfg.model
    for key, ok in SUPPORTED.items():
        if not hasattr(m, key):
            raise ExportError(f"the config has no model.{key}; the exporter needs it (update mamba_kws/config.py)")
        if getattr(m, key) not in ok:
            raise ExportError(f"model.{key} = {getattr(m, key)!r} cannot be exported; choose one of {', '.join(ok)}")


def extract_weights(model: MambaKWS) -> ModelWeights:
    """The numbers of the graph, with every inference-time affine map folded."""
    cfg = model.cfg
    m = cfg.model
    d_in, n, r = m.d_inner, m.d_state, m.dt_rank_resolved
    layers = []
    for layer in model.layers:
        mix = layer.mixer
        w_in = _np(mix.in_proj.weight)  # (2 d_inner, d_model)
        wx, wz = w_in[:d_in].T.copy(), w_in[d_in:].T.copy()  # (d_model, d_inner)
        bx = bz = None
        norm, eps = "none", 0.0
        if m.norm == "batchnorm":
            s, c = _bn_affine(layer.norm.bn)
            bx, bz = c @ wx, c @ wz
            wx, wz = wx * s[:, None], wz * s[:, None]
            norm = "affine"
        elif m.norm == "rmsnorm":
            w = _np(layer.norm.weight)
            wx, wz = wx * w[:, None], wz * w[:, None]
            norm, eps = "rmsnorm", float(layer.norm.eps)
        xp = _np(mix.x_proj.weight)  # (r + 2n, d_inner)
        layers.append(LayerWeights(
            norm=norm, rms_eps=eps, in_x_w=wx, in_x_b=bx, in_z_w=wz, in_z_b=bz,
            conv_w=_np(mix.conv1d.weight)[:, 0, :].T.copy(), conv_b=_np(mix.conv1d.bias),
            xdt_w=xp[:r].T.copy(), xB_w=xp[r:r + n].T.copy(), xC_w=xp[r + n:].T.copy(),
            dtp_w=_np(mix.dt_proj.weight).T.copy(), dtp_b=_np(mix.dt_proj.bias),
            A=_np(mix.A), D=_np(mix.D), out_w=_np(mix.out_proj.weight).T.copy(),
        ))
    cls_w, cls_b = _np(model.classifier.weight).T.copy(), _np(model.classifier.bias)
    final, rms = "none", None
    if m.norm == "batchnorm":
        s, c = _bn_affine(model.norm_f.bn)
        cls_b = cls_b + c @ cls_w
        cls_w = cls_w * s[:, None]
        final = "affine"
    elif m.norm == "rmsnorm":
        final, rms = "rmsnorm", (_np(model.norm_f.weight), float(model.norm_f.eps))
    return ModelWeights(_np(model.stem.weight).T.copy(), _np(model.stem.bias), layers, final, rms, cls_w, cls_b)


def build_tf_function(model: MambaKWS, steps: int | None = None, chunks: int = 1,
                      ranges: dict[str, tuple[float, float]] | None = None) -> Any:
    """A concrete tf.function: float32 features (1, steps*frame_stack, channels) -> logits (1, classes).

    ranges (from `mamba_kws.qat.Int8Sim.calibrate`, keyed like its tensors: "stem", "l0/xc",
    "l1/t12/h", ...) put a FakeQuant op on each of those tensors, so the int8 converter uses these
    ranges instead of its own min/max calibration there. The float graph is the same without them.

    chunks > 1 builds the graph time chunk by time chunk (every layer on steps [t0, t1), then the
    next chunk), so that a cut between chunks carries only h and the conv window of each layer
    and the running pooled sum: what tools/split.py needs to cut along time cheaply.
    """
    from .convert import import_tf

    tf = import_tf()
    cfg = model.cfg
    check_switches(cfg)
    m = cfg.model
    L = steps if steps is not None else cfg.steps
    if L < 1:
        raise ExportError(f"steps must be >= 1, got {L}")
    if not 1 <= chunks <= L:
        raise ExportError(f"time chunks must be in 1..{L} (the steps), got {chunks}")
    k, ch = m.frame_stack, cfg.features.channels
    frames = L * k
    W = extract_weights(model)

    def fq(name: str, x: Any) -> Any:
        if ranges is None or name not in ranges:
            return x
        lo, hi = ranges[name]
        return tf.quantization.fake_quant_with_min_max_args(x, min=min(lo, 0.0), max=max(hi, 0.0), num_bits=8)

    def const(a: np.ndarray) -> Any:
        return tf.constant(np.ascontiguousarray(a, dtype=np.float32))

    def act(x: Any, name: str) -> Any:
        if m.activation == "silu":
            return fq(name, x * tf.sigmoid(x))
        return fq(name, x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0))  # hard_swish: the converter fuses it

    def dt_act(x: Any) -> Any:
        return tf.nn.relu(x) if m.dt_activation == "relu" else tf.nn.softplus(x)

    def decay(v: Any) -> Any:
        if m.decay == "sigmoid":
            return tf.sigmoid(v) * 2.0
        return tf.exp(v)

    def rmsnorm(x: Any, eps: float) -> Any:
        return x * tf.math.rsqrt(tf.reduce_mean(x * x, axis=-1, keepdims=True) + eps)

    def dense(x: Any, w: np.ndarray, b: np.ndarray | None) -> Any:
        y = tf.matmul(x, const(w))
        return y + const(b) if b is not None else y

    def block(x: Any, lw: LayerWeights, i: int, c: int, state: dict) -> Any:
        """Layer i on time chunk c (rows x: (Lc, d_model)); state carries the conv window and h."""
        Lc = int(x.shape[0])
        p = f"l{i}/"
        with tf.name_scope(f"layer{i}/c{c}" if chunks > 1 else f"layer{i}"):
            u = rmsnorm(x, lw.rms_eps) if lw.norm == "rmsnorm" else x
            with tf.name_scope("in_proj_x"):
                xi = fq(p + "xi", dense(u, lw.in_x_w, lw.in_x_b))
            with tf.name_scope("conv1d"):
                d_conv, d_in = lw.conv_w.shape
                win = state.get("win")
                if win is None:  # causal: zeros before the first step
                    xw = tf.pad(xi, [[d_conv - 1, 0], [0, 0]])
                else:  # the last d_conv-1 inputs of the previous chunk
                    xw = tf.concat([win, xi], axis=0)
                if c + 1 < chunks:
                    state["win"] = xw[Lc:]
                y4 = tf.nn.depthwise_conv2d(tf.reshape(xw, (1, Lc + d_conv - 1, 1, d_in)),
                                            const(lw.conv_w.reshape(d_conv, 1, d_in, 1)),
                                            strides=[1, 1, 1, 1], padding="VALID")
                xc = act(fq(p + "conv", tf.reshape(y4, (Lc, d_in)) + const(lw.conv_b)), p + "xc")
            with tf.name_scope("x_proj"):
                dt = fq(p + "dt", dt_act(dense(fq(p + "dtr", dense(xc, lw.xdt_w, None)), lw.dtp_w, lw.dtp_b)))
                Bm = fq(p + "B", dense(xc, lw.xB_w, None))
                Cm = fq(p + "C", dense(xc, lw.xC_w, None))
                dtx = fq(p + "dtx", dt * xc)
            with tf.name_scope("scan"):
                n = lw.A.shape[1]
                h = state.get("h")
                if h is None:  # h_0 = dt_0 B_0 x_0 needs no decay: unstack dt from step 1 (an unused
                    # UNPACK output would keep that UNPACK in float in the int8 graph)
                    dts = [None, *tf.unstack(tf.reshape(dt[1:], (Lc - 1, d_in, 1)), axis=0)] if Lc > 1 else [None]
                else:
                    dts = tf.unstack(tf.reshape(dt, (Lc, d_in, 1)), axis=0)
                dtxs = tf.unstack(tf.reshape(dtx, (Lc, d_in, 1)), axis=0)
                Bs = tf.unstack(tf.reshape(Bm, (Lc, 1, n)), axis=0)
                Cs = tf.unstack(tf.reshape(Cm, (Lc, 1, n)), axis=0)
                A = const(lw.A)
                A_half = const(0.5 * lw.A)
                ys = []
                for j in range(Lc):
                    s = f"{p}t{state['t0'] + j}/"
                    with tf.name_scope(f"t{state['t0'] + j}"):
                        # h_t = Abar_t * h_{t-1} + dt_t * B_t * x_t,  y_t = C_t . h_t
                        bx = fq(s + "bx", dtxs[j] * Bs[j])
                        if h is None:
                            h = bx
                        elif m.decay == "sigmoid":
                            # 2*sigmoid(v) = 1 + tanh(v/2): h + tanh(dt*A/2)*h needs no x2 op, and TANH's
                            # fixed int8 output scale (1/128) covers the decay's range (-1, 0] exactly.
                            dh = fq(s + "dh", tf.tanh(fq(s + "dtA", dts[j] * A_half)) * h)
                            h = fq(s + "h", fq(s + "h1", h + dh) + bx)
                        else:
                            h = decay(dts[j] * A) * h + bx
                        ys.append(tf.reduce_sum(fq(s + "hC", h * Cs[j]), axis=1))
                state["h"] = h
                y = fq(p + "yD", fq(p + "y", tf.stack(ys, axis=0)) + fq(p + "xD", xc * const(lw.D)))
            with tf.name_scope("in_proj_z"):
                z = act(fq(p + "zi", dense(u, lw.in_z_w, lw.in_z_b)), p + "z")
            with tf.name_scope("out_proj"):
                return fq(p + "res", x + fq(p + "out", dense(fq(p + "yz", y * z), lw.out_w, None)))

    bounds = [round(c * L / chunks) for c in range(chunks + 1)]

    @tf.function(input_signature=[tf.TensorSpec((1, frames, ch), tf.float32, name="features")], autograph=False)
    def kws(feats: Any) -> Any:
        with tf.name_scope("stem"):  # all steps at once: its output (L, d_model) is smaller than the input
            x_all = fq("stem", dense(tf.reshape(fq("features", feats), (L, k * ch)), W.stem_w, W.stem_b))
        states = [{} for _ in W.layers]
        pooled = None
        for c in range(chunks):
            t0, t1 = bounds[c], bounds[c + 1]
            x = x_all[t0:t1] if chunks > 1 else x_all
            for i, lw in enumerate(W.layers):
                states[i]["t0"] = t0
                x = block(x, lw, i, c, states[i])
            with tf.name_scope("head"):
                if W.final_norm == "rmsnorm":
                    w, eps = W.final_rms
                    x = rmsnorm(x, eps) * const(w)
                if m.pooling == "mean":  # a running sum over chunks; 1/L is folded into the classifier
                    s = tf.reduce_sum(x, axis=0, keepdims=True) if chunks > 1 else tf.reduce_mean(
                        x, axis=0, keepdims=True)
                    pooled = s if pooled is None else pooled + s
                elif c + 1 == chunks:
                    pooled = x[t1 - t0 - 1:]
        with tf.name_scope("head"):
            if m.pooling == "mean" and chunks > 1:  # a running sum: not the simulation's "pool" tensor
                return fq("logits", dense(pooled, W.cls_w / L, W.cls_b))
            return fq("logits", dense(fq("pool", pooled), W.cls_w, W.cls_b))

    return kws.get_concrete_function()
