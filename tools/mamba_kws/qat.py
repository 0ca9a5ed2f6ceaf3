"""Quantisation-aware fine-tuning for the paper's int8 path (the unrolled builtin-op graph).

Post-training int8 of the unrolled graph (export/tfgraph.py) gives every tensor one scale, set by
its calibration min/max. The scan's tensors are heavy-tailed (max/rms of h is about 30 on the
default model), so the quiet values keep few int8 levels and the errors accumulate over 49 steps:
top-1 agreement with float was 92.5 %. Fine-tuning through a simulation of that int8 graph lets
the weights learn to live with it.

`Int8Sim.forward` computes what export/tfgraph.py builds, tensor for tensor, and passes every tensor
the int8 graph stores through a fake quantiser (round to the tensor's grid, clip to its range; the
gradient passes straight through inside the range):

    activations   per-tensor asymmetric int8, range = running min/max of the tensor; the scan's
                  per-step tensors (t0, t1, ...) each have their own range, as in the graph
    fixed ranges  LOGISTIC output: scale 1/256, zero point -128; TANH output: 1/128, 0 (TFLM's)
    PACK          y_t of all steps share one range (PACK needs one scale for inputs and output)
    weights       per-output-channel symmetric int8 (FULLY_CONNECTED, DEPTHWISE_CONV_2D); the
                  scan's constants A/2 and D per-tensor, as the converter stores them
    batchnorm     frozen (running statistics) and folded into in_proj / the classifier, as exported

The quantisers are mamba_kws.quant's (the scheme both device paths share); this module adds what is
the converter's own. The simulation is for training only; the deployed int8 model is still made by the TFLite
converter from the float weights (tools/export.py), and checked there against PyTorch float.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .errors import KWSError
from .model import MambaKWS
from .quant import fake_q, fake_q_range, fake_q_weight

# What the simulation mirrors; other switches have no int8 graph in TFLM (EXP, RSQRT are float-only).
QAT_SWITCHES = {"decay": ("sigmoid",), "norm": ("batchnorm", "none"), "dt_activation": ("relu", "softplus"),
                "activation": ("silu", "hard_swish"), "pooling": ("mean", "last")}


RANGE_POLICIES = ("mse", "minmax")
CALIB_SAMPLES = 4096  # values kept per tensor and calibration batch (plus its min and max)
CLIP_STEPS = 16  # candidate clipping factors c in [0.25, 1]


def choose_range(v: torch.Tensor, policy: str) -> tuple[float, float]:
    """The (lo, hi) of one tensor from its calibration values (see Int8Sim.calibrate)."""
    lo, hi = float(v.min()), float(v.max())
    if policy == "minmax":
        return lo, hi
    best, best_err = (lo, hi), float("inf")
    for c in torch.linspace(0.25, 1.0, CLIP_STEPS).tolist():
        err = float((fake_q_range(v, c * lo, c * hi) - v).pow(2).mean())
        if err < best_err:
            best, best_err = (c * lo, c * hi), err
    return best


class QATError(KWSError):
    """The model cannot be fine-tuned for int8 (a switch the int8 graph cannot express)."""


class Int8Sim:
    """The unrolled int8 graph of a MambaKWS, simulated in PyTorch (see the module docstring)."""

    def __init__(self, model: MambaKWS, quantize: bool = True) -> None:
        m = model.cfg.model
        for key, ok in QAT_SWITCHES.items():
            if getattr(m, key) not in ok:
                raise QATError(f"quantisation-aware training needs model.{key} in {ok}, "
                               f"got {getattr(m, key)!r} (the int8 graph has no such op in TFLM)")
        self.model = model
        self.quantize = quantize  # False: the same graph in float (a check that it mirrors the model)
        self.ranges: dict[str, tuple[float, float]] = {}
        self._samples: dict[str, list[torch.Tensor]] | None = None  # while calibrating

    def calibrate(self, feats: Any, policy: str = "mse", batch: int = 50,
                  seed: int = 0) -> dict[str, tuple[float, float]]:
        """Set every tensor's range from a float pass over feats (n, frames, channels), as the
        converter's calibration does: "minmax" = the converter's own rule; "mse" = the clipped range
        [c lo, c hi], c in [0.25, 1], with the least squared int8 error on the calibration values
        (heavy-tailed tensors trade a little clipping for a finer grid). Returns the ranges."""
        if policy not in RANGE_POLICIES:
            raise QATError(f"unknown range policy {policy!r}; choose one of {', '.join(RANGE_POLICIES)}")
        gen = torch.Generator().manual_seed(seed)
        self._samples, self._gen = {}, gen
        try:
            with torch.no_grad():
                for s in range(0, len(feats), batch):
                    self.forward(torch.as_tensor(feats[s:s + batch]))
            self.ranges = {name: choose_range(torch.cat(v), policy) for name, v in self._samples.items()}
        finally:
            self._samples = None
        return self.ranges

    # -- quantisers ----------------------------------------------------------------------------
    def q(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if not self.quantize:
            return x
        if self._samples is not None:  # calibrating: record, pass the float value on
            flat = x.detach().reshape(-1)
            keep = flat[torch.randperm(flat.numel(), generator=self._gen)[:CALIB_SAMPLES]]
            self._samples.setdefault(name, []).append(torch.cat([keep, flat.min()[None], flat.max()[None]]))
            return x
        return fake_q_range(x, *self.ranges[name])

    def const(self, x: torch.Tensor) -> torch.Tensor:
        """A constant operand of MUL (A/2, D): per-tensor int8 on its own min/max, as the converter stores it."""
        if not self.quantize or self._samples is not None:
            return x
        return fake_q_range(x, float(x.detach().min()), float(x.detach().max()))

    def _fixed(self, y: torch.Tensor, scale: float, zp: int) -> torch.Tensor:
        if not self.quantize or self._samples is not None:
            return y
        return fake_q(y, scale, zp)

    def sigmoid(self, x: torch.Tensor) -> torch.Tensor:
        return self._fixed(torch.sigmoid(x), 1.0 / 256, -128)

    def tanh(self, x: torch.Tensor) -> torch.Tensor:
        return self._fixed(torch.tanh(x), 1.0 / 128, 0)

    def act(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if self.model.cfg.model.activation == "silu":
            return self.q(name, x * self.sigmoid(x))
        return self.q(name, F.hardswish(x))

    def weight(self, w: torch.Tensor, axis: int) -> torch.Tensor:
        return fake_q_weight(w, axis) if self.quantize and self._samples is None else w

    def fc(self, x: torch.Tensor, w_out_in: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """FULLY_CONNECTED with int8 per-output-channel weights (w as (out, in))."""
        return F.linear(x, self.weight(w_out_in, 0), b)

    # -- the graph -----------------------------------------------------------------------------
    def block(self, i: int, layer: Any, x: torch.Tensor) -> torch.Tensor:
        mix = layer.mixer
        c = mix.cfg
        d_in, n, r = c.d_inner, c.d_state, c.dt_rank_resolved
        L = x.shape[1]
        p = f"l{i}/"
        w_in = mix.in_proj.weight  # (2 d_inner, d_model)
        wx, wz = w_in[:d_in], w_in[d_in:]
        bx = bz = None
        if c.norm == "batchnorm":  # folded: in_proj(x * s + c) = (W * s) x + W c
            s, cb = layer.norm.affine()
            bx, bz = wx @ cb, wz @ cb
            wx, wz = wx * s[None, :], wz * s[None, :]
        xi = self.q(p + "xi", self.fc(x, wx, bx))
        # causal depthwise conv (PAD + DEPTHWISE_CONV_2D, bias fused), SiLU
        kw = self.weight(mix.conv1d.weight, 0)  # (d_inner, 1, d_conv)
        conv = F.conv1d(F.pad(xi.transpose(1, 2), (c.d_conv - 1, 0)), kw, mix.conv1d.bias, groups=d_in)
        xc = self.act(p + "xc", self.q(p + "conv", conv.transpose(1, 2)))
        xp = mix.x_proj.weight  # (r + 2n, d_inner)
        dtr = self.q(p + "dtr", self.fc(xc, xp[:r]))
        dt = self.fc(dtr, mix.dt_proj.weight, mix.dt_proj.bias)
        dt = self.q(p + "dt", F.relu(dt) if c.dt_activation == "relu" else F.softplus(dt))
        B = self.q(p + "B", self.fc(xc, xp[r:r + n]))
        C = self.q(p + "C", self.fc(xc, xp[r + n:]))
        dtx = self.q(p + "dtx", dt * xc)
        A_half = self.const(0.5 * mix.A)
        h = None
        ys = []
        for t in range(L):
            # h_t = h_{t-1} + tanh(dt_t A / 2) h_{t-1} + (dt_t x_t) B_t      (2 sigmoid(v) = 1 + tanh(v/2))
            s = f"{p}t{t}/"
            bxt = self.q(s + "bx", dtx[:, t, :, None] * B[:, t, None, :])
            if h is None:
                h = bxt
            else:
                dec = self.tanh(self.q(s + "dtA", dt[:, t, :, None] * A_half))
                h = self.q(s + "h1", h + self.q(s + "dh", dec * h))
                h = self.q(s + "h", h + bxt)
            ys.append((self.q(s + "hC", h * C[:, t, None, :])).sum(-1))
        y = self.q(p + "y", torch.stack(ys, dim=1))  # SUM outputs share PACK's one scale
        D = self.const(mix.D)
        y = self.q(p + "yD", y + self.q(p + "xD", xc * D))
        z = self.act(p + "z", self.q(p + "zi", self.fc(x, wz, bz)))
        out = self.q(p + "out", self.fc(self.q(p + "yz", y * z), mix.out_proj.weight))
        return self.q(p + "res", x + out)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits (b, classes) of features (b, frames, channels), as the int8 graph computes them."""
        model = self.model
        mc = model.cfg.model
        x = self.q("features", model.stack_frames(feats))
        x = self.q("stem", self.fc(x, model.stem.weight, model.stem.bias))
        for i, layer in enumerate(model.layers):
            x = self.block(i, layer, x)
        pooled = self.q("pool", x.mean(1) if mc.pooling == "mean" else x[:, -1])
        w, b = model.classifier.weight, model.classifier.bias
        if mc.norm == "batchnorm":  # the final norm folded into the classifier
            s, cb = model.norm_f.affine()
            b = b + w @ cb
            w = w * s[None, :]
        return self.q("logits", self.fc(pooled, w, b))

    __call__ = forward


def freeze_batchnorm(model: MambaKWS) -> None:
    """Batchnorm in eval mode (running statistics, as folded in the export) while the rest trains."""
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.eval()
