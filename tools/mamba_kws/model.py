"""Mamba keyword spotting in PyTorch, written to read like the paper (Gu & Dao 2023).

    features (B, 98, 40) --stem--> (B, L=49, d_model) --N x [x + Mamba(norm(x))]--> norm
        --pool over time--> Linear --> logits (B, 12)

A Mamba block (mamba-minimal's structure):

    x, z  = in_proj(u)                                  (B, L, d_inner) each
    x     = act(conv1d(x))                              causal depthwise conv, width d_conv
    dt, B, C = x_proj(x)                                dt: (B, L, dt_rank), B, C: (B, L, d_state)
    dt    = dt_act(dt_proj(dt))                         (B, L, d_inner)
    y     = selective_scan(x, dt, A = -exp(A_log), B, C, D)
    out   = out_proj(y * act(z))

Selective scan, for each step t (the discretisation of h' = A h + B x):

    h_t = Abar_t * h_{t-1} + dt_t * B_t * x_t        Abar_t = exp(dt_t * A)  (decay = "exp")
    y_t = C_t . h_t + D * x_t

Everything is causal, so `step` runs the same weights one 20 ms step at a time with a state of
fixed size (conv window + h), which is what the firmware's streaming path does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import KWSConfig, ModelConfig


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "silu":
        return F.silu(x)
    if name == "hard_swish":
        return F.hardswish(x)
    raise ValueError(f"unknown activation {name!r}")


def dt_activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "softplus":
        return F.softplus(x)
    if name == "relu":
        return F.relu(x)
    raise ValueError(f"unknown dt activation {name!r}")


def discretize_decay(name: str, dt_a: torch.Tensor) -> torch.Tensor:
    """Abar from dt*A (dt >= 0, A < 0, so dt*A <= 0). Both choices are 1 at 0 and fall to 0."""
    if name == "exp":
        return torch.exp(dt_a)
    if name == "sigmoid":
        return 2.0 * torch.sigmoid(dt_a)
    raise ValueError(f"unknown decay {name!r}")


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class ChannelBatchNorm(nn.Module):
    """BatchNorm over the last (channel) axis; at inference an affine map that folds into in_proj."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.transpose(1, 2)).transpose(1, 2)

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, c) with norm(x) = a x + c at inference (running statistics): what the int8 paths fold."""
        bn = self.bn
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return a, bn.bias - bn.running_mean * a


def make_norm(kind: str, d: int) -> nn.Module:
    if kind == "rmsnorm":
        return RMSNorm(d)
    if kind == "batchnorm":
        return ChannelBatchNorm(d)
    return nn.Identity()


@dataclass
class BlockState:
    """Streaming state of one Mamba block: the conv window and the SSM state h."""

    conv: torch.Tensor  # (B, d_inner, d_conv - 1): the last inputs of the causal conv
    h: torch.Tensor  # (B, d_inner, d_state)


class MambaBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d_in, n, r = cfg.d_inner, cfg.d_state, cfg.dt_rank_resolved
        self.in_proj = nn.Linear(cfg.d_model, 2 * d_in, bias=False)
        self.conv1d = nn.Conv1d(d_in, d_in, kernel_size=cfg.d_conv, groups=d_in, padding=cfg.d_conv - 1)
        self.x_proj = nn.Linear(d_in, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, d_in, bias=True)
        # S4D-real initialisation: A = -[1, 2, ..., n] for every channel.
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32).repeat(d_in, 1)))
        self.D = nn.Parameter(torch.ones(d_in))
        self.out_proj = nn.Linear(d_in, cfg.d_model, bias=False)
        self._init_dt()

    def _init_dt(self) -> None:
        """dt starts log-uniform in [dt_min, dt_max] (original Mamba), inverted through dt_act."""
        cfg = self.cfg
        dt = torch.exp(
            torch.rand(cfg.d_inner) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min)
        )
        with torch.no_grad():
            if cfg.dt_activation == "softplus":
                self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            else:
                self.dt_proj.bias.copy_(dt)
            std = cfg.dt_rank_resolved**-0.5
            nn.init.uniform_(self.dt_proj.weight, -std, std)

    @property
    def A(self) -> torch.Tensor:
        return -torch.exp(self.A_log)

    def ssm_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """dt (.., d_inner), B and C (.., d_state) from the conv output x (.., d_inner)."""
        n, r = self.cfg.d_state, self.cfg.dt_rank_resolved
        dt, B, C = self.x_proj(x).split([r, n, n], dim=-1)
        dt = dt_activation(self.cfg.dt_activation, self.dt_proj(dt))
        return dt, B, C

    def conv_branch(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x = act(causal conv1d(in_proj_x u)) (the scan's input) and the gate's pre-activation z."""
        L = u.shape[1]
        x, z = self.in_proj(u).chunk(2, dim=-1)
        x = self.conv1d(x.transpose(1, 2))[..., :L].transpose(1, 2)
        return activation(self.cfg.activation, x), z

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x, z = self.conv_branch(u)
        dt, B, C = self.ssm_inputs(x)
        y = selective_scan(x, dt, self.A, B, C, self.D, self.cfg.decay)
        return self.out_proj(y * activation(self.cfg.activation, z))

    def init_state(self, batch: int = 1) -> BlockState:
        cfg = self.cfg
        dev = self.D.device
        return BlockState(
            conv=torch.zeros(batch, cfg.d_inner, cfg.d_conv - 1, device=dev),
            h=torch.zeros(batch, cfg.d_inner, cfg.d_state, device=dev),
        )

    def step(self, u: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState]:
        """One time step: u (B, d_model) -> (B, d_model); the state is updated, not grown."""
        x, z = self.in_proj(u).chunk(2, dim=-1)
        window = torch.cat([state.conv, x.unsqueeze(-1)], dim=-1)  # (B, d_inner, d_conv)
        x = (window * self.conv1d.weight.squeeze(1)).sum(-1) + self.conv1d.bias
        x = activation(self.cfg.activation, x)
        dt, B, C = self.ssm_inputs(x)
        h = ssm_scan_step(state.h, x, dt, self.A, B, self.cfg.decay)
        y = (h * C.unsqueeze(1)).sum(-1) + self.D * x
        out = self.out_proj(y * activation(self.cfg.activation, z))
        return out, BlockState(conv=window[..., 1:], h=h)


def ssm_scan_step(
    h: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, decay: str
) -> torch.Tensor:
    """h_t = Abar_t * h_{t-1} + dt_t * B_t * x_t, with h (b, d, n), x and dt (b, d), B (b, n)."""
    dA = discretize_decay(decay, dt.unsqueeze(-1) * A)
    return dA * h + (dt * x).unsqueeze(-1) * B.unsqueeze(1)


def selective_scan(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    decay: str = "exp",
) -> torch.Tensor:
    """The selective scan written plainly (sequential over time; L is 49, so this is cheap).

    x, dt: (b, l, d); A: (d, n); B, C: (b, l, n); D: (d,). Returns y: (b, l, d).
    """
    b, length, d = x.shape
    # Abar_t and dt_t * B_t * x_t for every step at once; only the recurrence itself is a loop
    # (over unbound views: indexing x[:, t] instead costs a full-size zero tensor per step in backward).
    dA = discretize_decay(decay, dt.unsqueeze(-1) * A)  # (b, l, d, n)
    dBx = (dt * x).unsqueeze(-1) * B.unsqueeze(2)  # (b, l, d, n)
    h = x.new_zeros(b, d, A.shape[1])
    hs = []
    for a_t, u_t in zip(dA.unbind(1), dBx.unbind(1), strict=True):
        h = a_t * h + u_t
        hs.append(h)
    return (torch.stack(hs, dim=1) * C.unsqueeze(2)).sum(-1) + x * D


class ResidualBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm = make_norm(cfg.norm, cfg.d_model)
        self.mixer = MambaBlock(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))

    def step(self, x: torch.Tensor, state: BlockState) -> tuple[torch.Tensor, BlockState]:
        norm_in = x.unsqueeze(1)
        y, state = self.mixer.step(self.norm(norm_in).squeeze(1), state)
        return x + y, state


class MambaKWS(nn.Module):
    """The whole keyword spotter. Input: micro-frontend features (B, frames, channels)."""

    def __init__(self, cfg: KWSConfig) -> None:
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        self.stem = nn.Linear(cfg.features.channels * m.frame_stack, m.d_model)
        self.layers = nn.ModuleList(ResidualBlock(m) for _ in range(m.n_layers))
        self.norm_f = make_norm(m.norm, m.d_model)
        self.classifier = nn.Linear(m.d_model, cfg.num_classes)

    def stack_frames(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T // k, k * C): k consecutive 10 ms frames become one step."""
        k = self.cfg.model.frame_stack
        b, t, c = feats.shape
        t = (t // k) * k
        return feats[:, :t].reshape(b, t // k, k * c)

    def encode(self, feats: torch.Tensor) -> torch.Tensor:
        """Per-step hidden states (B, L, d_model) after the final norm."""
        x = self.stem(self.stack_frames(feats))
        for layer in self.layers:
            x = layer(x)
        return self.norm_f(x)

    def forward(self, feats: torch.Tensor, skip_steps: int = 0) -> torch.Tensor:
        """Logits (B, classes). `skip_steps` leading steps run through the blocks (they set the
        state) but are left out of the pooling: training with context before each clip."""
        x = self.encode(feats)[:, skip_steps:]
        x = x.mean(dim=1) if self.cfg.model.pooling == "mean" else x[:, -1]
        return self.classifier(x)

    def step_logits(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits of a per-step readout (B, L, classes): the classifier applied at every step."""
        return self.classifier(self.encode(feats))

    def init_state(self, batch: int = 1) -> list[BlockState]:
        return [layer.mixer.init_state(batch) for layer in self.layers]

    def step(self, frames: torch.Tensor, state: list[BlockState]) -> tuple[torch.Tensor, list[BlockState]]:
        """One step: frames (B, frame_stack * channels) -> hidden (B, d_model) after norm_f."""
        x = self.stem(frames)
        new_state = []
        for layer, s in zip(self.layers, state, strict=True):
            x, s = layer.step(x, s)
            new_state.append(s)
        return self.norm_f(x.unsqueeze(1)).squeeze(1), new_state


def build_model(cfg: KWSConfig) -> MambaKWS:
    return MambaKWS(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
