"""Scan-state equalisation: rescale the SSM state h so that one int8 scale per tensor fits it better.

In the unrolled int8 graph every step's h_t (d_inner, d_state) is one tensor with one scale. Its
channels differ by 10-50x in range (default model: largest |h| 34, rms 1.1), so quiet channels keep
few int8 levels, and the error feeds back into h_{t+1} for 49 steps.

The scan has a free rank-1 reparametrisation. With a (d_inner,) > 0 and b (d_state,) > 0,

    h'[i,n] = h[i,n] / (a[i] b[n])
    dt'     = dt / a            relu(w u + c) / a = relu(w/a u + c/a): folded into dt_proj
    A'      = A * a             A_log' = A_log + log a, so dt' A' = dt A: the decay is unchanged
    B'      = B / b,  C' = C * b        folded into the x_proj rows
    h'_t    = decay(dt' A') h'_{t-1} + (dt' x) B'        the same recurrence
    y'      = sum_n h' C' = y / a,  D' = D / a: y' + x D' = (y + x D) / a
    out_proj columns * a        out_proj(y' * z) is the original output

so the float model computes the same logits (to rounding), while h', dt x, y and y*z have more
even channels. a and b are fitted to the calibration set's max |h[i,n]| in log space
(log M = log a + log b, least squares), then softened to a^s, b^s: s = 0.5 balances h against
the other tensors a rescales (dt, y, y*z), as in SmoothQuant's migration strength; the idea is
cross-layer equalisation (Nagel et al., 2019) applied to the scan. It needs a positively
homogeneous dt activation (relu); with softplus only b is used.
"""

from __future__ import annotations

import numpy as np
import torch

from .model import MambaKWS, ssm_scan_step


def state_ranges(model: MambaKWS, feats: np.ndarray, batch: int = 50) -> list[np.ndarray]:
    """max |h_t[i, n]| over the clips and steps of feats (n, frames, channels), one (d_inner, d_state) per layer."""
    ranges = [np.zeros((layer.mixer.cfg.d_inner, layer.mixer.cfg.d_state), np.float32) for layer in model.layers]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for s in range(0, len(feats), batch):
            x = model.stem(model.stack_frames(torch.from_numpy(np.asarray(feats[s:s + batch], np.float32))))
            for i, layer in enumerate(model.layers):
                mix = layer.mixer
                xc, _ = mix.conv_branch(layer.norm(x))
                dt, B, _ = mix.ssm_inputs(xc)
                h = xc.new_zeros(xc.shape[0], mix.cfg.d_inner, mix.cfg.d_state)
                for t in range(xc.shape[1]):
                    h = ssm_scan_step(h, xc[:, t], dt[:, t], mix.A, B[:, t], mix.cfg.decay)
                    ranges[i] = np.maximum(ranges[i], h.abs().amax(0).numpy())
                x = layer(x)
    model.train(was_training)
    return ranges


def fit_scales(m: np.ndarray, strength: float = 0.5, use_a: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """a (d_inner,), b (d_state,) with a[i] b[n] ~ m[i, n]^strength (geometric mean 1 each)."""
    lm = np.log(np.maximum(m, 1e-6 * max(float(m.max()), 1e-12)))
    la = lm.mean(1) - lm.mean() if use_a else np.zeros(m.shape[0])
    lb = (lm - la[:, None]).mean(0)
    lb = lb - lb.mean()
    return np.exp(strength * la).astype(np.float32), np.exp(strength * lb).astype(np.float32)


def equalize_model(model: MambaKWS, feats: np.ndarray, strength: float = 0.5) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rescale every layer's scan state in place (see the module docstring); returns the (a, b) used."""
    use_a = model.cfg.model.dt_activation == "relu"
    scales = []
    with torch.no_grad():
        for layer, m in zip(model.layers, state_ranges(model, feats), strict=True):
            a_np, b_np = fit_scales(m, strength, use_a)
            a, b = torch.from_numpy(a_np), torch.from_numpy(b_np)
            mix = layer.mixer
            n, r = mix.cfg.d_state, mix.cfg.dt_rank_resolved
            mix.dt_proj.weight /= a[:, None]
            mix.dt_proj.bias /= a
            mix.A_log += torch.log(a)[:, None]
            mix.x_proj.weight[r:r + n] /= b[:, None]
            mix.x_proj.weight[r + n:] *= b[:, None]
            mix.D /= a
            mix.out_proj.weight *= a[None, :]
            scales.append((a_np, b_np))
    return scales
