"""The int8 quantisation scheme, in one place, for both device paths.

- Activations: asymmetric int8 per tensor. A calibrated range [lo, hi] is widened to hold 0, and
  scale = (hi - lo) / 255, zero point = round(-128 - lo / scale) clipped to int8 (TFLite's rule).
- Weights: symmetric int8 per output channel, scale = max |w| / 127, values in [-127, 127].
- int16 activations (the fused kernels' scan output and gate, `Y_BITS`): symmetric, zero point 0,
  scale = max |x| / 32767, values in [-32767, 32767] (TFLite's int16 rule).
- Fake quantisers (for quantisation-aware training): round onto that grid and clip, with the
  gradient passed straight through inside the range.

The fused kernels' exporter (fused/quantize.py) computes its integer parameters from `qparams` and
`weight_scales`; the two training simulations (qat.Int8Sim for the builtin-op graph, fused/qat.py
for the fused kernels) quantise with `fake_q`, `fake_q_range` and `fake_q_weight`. What is specific
to a path stays there: the TFLite converter's fixed LOGISTIC/TANH output ranges and shared PACK
scales in qat.py, the kernels' term-by-term requantisation and int32 state in fused/qat.py.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MIN_RANGE = 1e-6  # a constant tensor still gets a nonzero scale


class RangeError(ValueError):
    """A range that no int8 grid can hold (NaN or infinite)."""


def qparams(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of asymmetric int8 for the range [lo, hi] (widened to hold 0)."""
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RangeError(f"a tensor's range [{lo}, {hi}] is not finite: the float model or its calibration is broken")
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < MIN_RANGE:
        hi = lo + MIN_RANGE
    scale = (hi - lo) / 255.0
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


INT16_MAX = 32767


def qparams16(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point 0) of symmetric int16 for the range [lo, hi]."""
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RangeError(f"a tensor's range [{lo}, {hi}] is not finite: the float model or its calibration is broken")
    return max(abs(lo), abs(hi), MIN_RANGE) / INT16_MAX, 0


def qlimits(bits: int) -> tuple[int, int]:
    """The integer range of an activation of `bits` (8: asymmetric int8, 16: symmetric int16)."""
    return (-INT16_MAX, INT16_MAX) if bits == 16 else (-128, 127)


def weight_scales(w: np.ndarray) -> np.ndarray:
    """Per-output-channel (first axis) scales of symmetric int8 weights: max |row| / 127."""
    w = np.asarray(w, np.float64)
    return np.maximum(np.abs(w.reshape(w.shape[0], -1)).max(axis=1), 1e-12) / 127.0


def fake_q(x: torch.Tensor, scale: float, zp: int, bits: int = 8) -> torch.Tensor:
    """Asymmetric int8 at (scale, zp) (or int16, `qlimits`): round, clip; gradient straight through inside."""
    return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zp), *qlimits(bits))


def fake_q_range(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Asymmetric int8 on the range [lo, hi] (qparams' rule)."""
    return fake_q(x, *qparams(lo, hi))


def fake_q_weight(w: torch.Tensor, axis: int = 0) -> torch.Tensor:
    """Symmetric int8 per channel along `axis` (weight_scales' rule), straight-through gradient."""
    dims = [d for d in range(w.dim()) if d != axis]
    scale = (w.detach().abs().amax(dim=dims) / 127.0).clamp_min(1e-12)
    zp = torch.zeros_like(scale, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(w, scale, zp, axis, -127, 127)
