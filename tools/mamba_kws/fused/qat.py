"""Quantisation-aware fine-tuning for the fused int8 kernels (the firmware's device path).

`FusedInt8Sim` runs a MambaKWS in PyTorch the way modules/tflm_mamba computes it in int8 (intmodel.py
is the bit-exact oracle; quantize.py sets every scale and zero point). Every tensor the kernels store
in int8 is rounded onto its grid and clipped to its range, with a straight-through gradient; weights
are per-output-channel symmetric int8, as quantize_linear makes them:

    features   int8 at the calibrated input scale               stem, in_proj x/z (batchnorm folded),
    conv       depthwise, int8 weights, int8 output              x_proj dt/B/C, dt_proj, out_proj,
    act        a 256-entry table: f of an int8, rounded          classifier (final batchnorm folded):
    A          A_q20 = round(s_dt A 2^20): the decay the kernel    int8 weights, int8 outputs
               computes from the int8 dt (2 sigmoid(dt A))
    h          float, saturated at the int32 bound of its grid (its grid step is ~2^-20 of its range)
    y, y*g, m, u + m, the pooled mean, logits: int8 at their calibrated scales (y = C.h + D x and
               u + m: each term rounded onto the output grid, then added, as the kernel does);
               y and y*g int16 where the export makes them so (quantize.Y_BITS)

What it leaves in float: h's rounding (a step of about 2^-20 of max|h|), the Q30 table
interpolation of the decay, and the requantisation's rounding mode (halves away from zero instead
of to even). `agreement` measures the simulation against intmodel on real clips.

Ranges come from `quantize_model` on the export's own calibration clips (fused_tflite --calib auto)
and are recomputed from the current weights every few steps during fine-tuning, so what trains is
what the export will produce. `forward(feats, skip_steps)` takes stream context as the float model
does: the leading steps set the state and are left out of the mean.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..model import MambaKWS, activation, discretize_decay, dt_activation
from ..quant import fake_q, fake_q_weight, qlimits
from . import fixed_point as fp
from .quantize import QModel, QuantizeError, float_weights, quantize_model

# The simulation's quantisation points (FusedInt8Sim's float_points): the model's input, the stem's output,
# every int8 tensor of a block (all blocks alike), the decay constant A, the int32 state h, the pooled mean,
# the logits, and all weights.
POINTS = ("features", "stem", "x", "z", "conv", "xc", "dtl", "B", "C", "dt_pre", "dt", "A", "h", "y", "g", "yg",
          "m", "out", "pool", "logits", "weights")

# What the kernels run: other switches have no int8 path in the fused op (rmsnorm is float-only here).
FUSED_QAT_SWITCHES = {"norm": ("batchnorm", "none"), "pooling": ("mean",)}


def fake_q_sum(terms: tuple[torch.Tensor, ...], scale: float, zp: int, bits: int = 8) -> torch.Tensor:
    """int8 (or int16) at (scale, zp) of a sum whose terms the kernel rounds one by one onto the output
    grid (y = C.h + D x, the residual u + m): round each, add, clip; straight-through gradient."""
    acc = sum(_ste(t / scale, torch.round(t / scale)) for t in terms) + zp
    return (torch.clamp(acc, *qlimits(bits)) - zp) * scale


def _ste(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """`value` forward, the gradient of `x` backward."""
    return x + (value - x).detach()


class FusedInt8Sim:
    """The fused int8 kernels of a MambaKWS, simulated in PyTorch (see the module docstring)."""

    def __init__(self, model: MambaKWS, float_points: tuple[str, ...] = ()) -> None:
        """`float_points`: tensors left in float (names of POINTS), to measure what each int8 rounding costs."""
        m = model.cfg.model
        unknown = sorted(set(float_points) - set(POINTS))
        if unknown:
            raise QuantizeError(f"unknown simulation points {unknown}; choose from {', '.join(POINTS)}")
        self.float_points = frozenset(float_points)
        for key, ok in FUSED_QAT_SWITCHES.items():
            if getattr(m, key) not in ok:
                raise QuantizeError(f"fused quantisation-aware training needs model.{key} in {ok}, "
                                    f"got {getattr(m, key)!r}")
        self.model = model
        self.qm: QModel | None = None

    def calibrate(self, feats: np.ndarray, y_bits: int | None = None) -> QModel:
        """Scales and zero points from the current weights on `feats` (n, frames, channels), as the export
        (y_bits: the width of the scan output and gate, default the export's)."""
        was = self.model.training
        self.model.eval()
        try:
            self.qm = quantize_model(float_weights(self.model), feats, y_bits=y_bits)
        finally:
            self.model.train(was)
        return self.qm

    # -- quantisers that a float point skips ----------------------------------------------------------
    def _q(self, name: str, t: torch.Tensor, scale: float, zp: int, bits: int = 8) -> torch.Tensor:
        return t if name in self.float_points else fake_q(t, scale, zp, bits)

    def _qsum(self, name: str, terms: tuple[torch.Tensor, ...], scale: float, zp: int, bits: int = 8) -> torch.Tensor:
        return sum(terms) if name in self.float_points else fake_q_sum(terms, scale, zp, bits)

    def _w(self, w: torch.Tensor) -> torch.Tensor:
        return w if "weights" in self.float_points else fake_q_weight(w)

    # -- the int8 block --------------------------------------------------------------------------
    def _block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        layer = self.model.layers[i]
        mix, qb = layer.mixer, self.qm.blocks[i]
        c = mix.cfg
        sc, zp = qb.scales, qb.zps
        di, n, r = c.d_inner, c.d_state, c.dt_rank_resolved
        q = lambda name, t: self._q(name, t, sc[name], zp[name])  # noqa: E731
        W = mix.in_proj.weight
        b = None
        if c.norm == "batchnorm":  # in_proj (a u + c) = (W a) u + W c
            a, cb = layer.norm.affine()
            b = W @ cb
            W = W * a[None, :]
        xz = F.linear(x, self._w(W), b)
        xi, z = q("x", xz[..., :di]), q("z", xz[..., di:])
        L = x.shape[1]
        kw = self._w(mix.conv1d.weight)  # (d_inner, 1, d_conv)
        conv = F.conv1d(F.pad(xi.transpose(1, 2), (c.d_conv - 1, 0)), kw, mix.conv1d.bias, groups=di)
        xc = q("xc", activation(c.activation, q("conv", conv.transpose(1, 2)[:, :L])))
        xp = mix.x_proj.weight
        dtl = q("dtl", F.linear(xc, self._w(xp[:r])))
        B = q("B", F.linear(xc, self._w(xp[r:r + n])))
        C = q("C", F.linear(xc, self._w(xp[r + n:])))
        dt = q("dt", dt_activation(c.dt_activation, q("dt_pre", F.linear(dtl, self._w(mix.dt_proj.weight),
                                                                          mix.dt_proj.bias))))
        A = mix.A
        s_dt = sc["dt"] * 2.0**20
        if "A" not in self.float_points:
            A = _ste(A, torch.clamp(torch.round(A.detach() * s_dt), fp.A_Q20_MIN, 0) / s_dt)
        dA = discretize_decay(c.decay, dt.unsqueeze(-1) * A)
        dBx = (dt * xc).unsqueeze(-1) * B.unsqueeze(2)
        h_max = fp.H_MAX * sc["h"]
        h = x.new_zeros(x.shape[0], di, n)
        hs = []
        for a_t, u_t in zip(dA.unbind(1), dBx.unbind(1), strict=True):
            h = a_t * h + u_t if "h" in self.float_points else torch.clamp(a_t * h + u_t, -h_max, h_max)
            hs.append(h)
        D = mix.D
        yb = qb.ssm.y_bits
        y = self._qsum("y", ((torch.stack(hs, 1) * C.unsqueeze(2)).sum(-1), xc * D), sc["y"], zp["y"], yb)
        g = q("g", activation(c.activation, z))
        yg = self._q("yg", y * g, sc["yg"], zp["yg"], yb)
        m = q("m", F.linear(yg, self._w(mix.out_proj.weight)))
        return self._qsum("out", (x, m), sc["out"], zp["out"])

    def forward(self, feats: torch.Tensor, skip_steps: int = 0) -> torch.Tensor:
        """Logits (b, classes) of features (b, frames, channels), as the int8 kernels compute them; the
        first `skip_steps` steps only set the state (stream context)."""
        if self.qm is None:
            raise QuantizeError("FusedInt8Sim.calibrate must run before the simulation")
        model, qm = self.model, self.qm
        x = self._q("features", model.stack_frames(feats), qm.in_scale, qm.in_zp)
        b0 = qm.blocks[0] if qm.blocks else None
        u_scale, u_zp = (b0.scales["u"], b0.zps["u"]) if b0 is not None else (qm.logit_scale, qm.logit_zp)
        x = self._q("stem", F.linear(x, self._w(model.stem.weight), model.stem.bias), u_scale, u_zp)
        for i in range(len(model.layers)):
            x = self._block(i, x)
        pooled = self._q("pool", x[:, skip_steps:].mean(1), qm.pool_scale, qm.pool_zp)
        W, b = model.classifier.weight, model.classifier.bias
        if model.cfg.model.norm == "batchnorm":  # the final norm commutes with the mean: W (a p + c) + b
            a, cb = model.norm_f.affine()
            b = b + W @ cb
            W = W * a[None, :]
        return self._q("logits", F.linear(pooled, self._w(W), b), qm.logit_scale, qm.logit_zp)

    __call__ = forward


def _batched(fn, x: np.ndarray, batch: int) -> torch.Tensor:  # noqa: ANN001
    """fn over x (n, frames, channels) in batches, without gradients."""
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    with torch.no_grad():
        return torch.cat([fn(t[i:i + batch]) for i in range(0, len(t), batch)])


def int8_logits(qm: QModel, feats: np.ndarray, lib=None) -> np.ndarray:  # noqa: ANN001
    """The kernels' int8 logits (n, classes) of features (n, frames, channels): the host build of the C
    core through ctypes where `lib` is given (fast), else the bit-exact numpy model (intmodel)."""
    from .intmodel import model_run
    from .quantize import quantize_features

    out = []
    for f in feats:
        fq = quantize_features(f, qm.in_scale, qm.in_zp)
        out.append(lib.model_q8(qm, fq)[0] if lib is not None else model_run(qm, fq)[0])
    return np.asarray(out, np.int64)


def agreement(sim: FusedInt8Sim, feats: np.ndarray, lib=None, batch: int = 256) -> dict[str, float]:  # noqa: ANN001
    """How closely the simulation follows the kernels on `feats`: top-1 agreement and the logits'
    mean and max difference in int8 steps."""
    qm = sim.qm
    ref = int8_logits(qm, feats, lib)
    sim.model.eval()
    got = _batched(sim, feats, batch).numpy()
    steps = got / qm.logit_scale + qm.logit_zp - ref
    return {"clips": len(feats), "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean()),
            "mean_abs_steps": float(np.abs(steps).mean()), "max_abs_steps": float(np.abs(steps).max())}


def rounding_costs(model: MambaKWS, qm: QModel, feats: np.ndarray,
                   groups: tuple[tuple[str, ...], ...] = (), batch: int = 256,
                   context: np.ndarray | None = None) -> list[dict]:
    """What each int8 rounding of the fused kernels costs: the simulation's top-1 agreement with float and
    mean |logit error| with everything int8, then with each point (and each group in `groups`) left in
    float, then with all of them in float (agreement 1 by construction). `qm`: the model's calibrated int8
    form (FusedInt8Sim.calibrate); its scales do not depend on which points stay in float. `context`
    (n, frames, channels): the clips heard just before each of `feats`, as the streaming readout hears them
    (their steps set the state and are left out of the mean, in float and int8 alike)."""
    model.eval()
    skip = 0
    if context is not None:
        if context.shape != feats.shape:
            raise QuantizeError(f"context {context.shape} must match the clips {feats.shape}")
        skip = model.cfg.steps
        feats = np.concatenate([context, feats], axis=1)
    ref = _batched(lambda t: model(t, skip_steps=skip), feats, batch)
    rows = []
    for points in ((), *((p,) for p in POINTS), *groups, POINTS):
        sim = FusedInt8Sim(model, points)
        sim.qm = qm
        out = _batched(lambda t, s=sim: s(t, skip_steps=skip), feats, batch)
        rows.append({"float_points": list(points),
                     "top1_agreement": float((out.argmax(1) == ref.argmax(1)).float().mean()),
                     "mean_abs_logit_error": float((out - ref).abs().mean())})
    return rows
