"""Host streaming inference: continuous int16 audio in, one posterior vector per 20 ms hop out.

The front end runs continuously (its noise estimate and gain control carry across the stream, as
on the device). Every hop (frame_stack = 2 feature frames of 10 ms) gives one model step. Readouts:

    window       the whole-window model (98 frames = 1 s, mean pooling) run every hop on the last
                 1 s of frames, from a zero state each time: the baseline, 49 steps of work a hop.
    stream_mean  the streaming model: one `step` a hop, the Mamba state carried forever (O(1)),
                 the classifier on the mean of the last 49 step outputs (a ring buffer; the
                 classifier is linear, so this is also the mean of the last 49 step logits).
    stream_last  the streaming model, classifier on the current step's output only.

Where they agree: from a reset state, `stream_mean` after exactly 49 hops sees the same 98 frames
through the same causal computation as `window` on that first window, so the scores are equal to
float tolerance. After that they differ by design: the window model forgets everything older than
1 s (it restarts from a zero state on each window), while the streaming state h and the conv window
carry information from the whole past; the step outputs in the ring buffer are therefore not the
ones the window model would compute for the same frames.

Hop i (0-based) covers frames 2i, 2i + 1; its decision is available at sample 320 i + 640
(frame j ends at 160 j + 480): `hop_end_sample`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .config import KWSConfig
from .features import FeatureExtractor
from .model import MambaKWS

READOUTS = ("window", "stream_mean", "stream_last")


def hop_end_sample(hop: np.ndarray | int, cfg: KWSConfig) -> np.ndarray | int:
    """The audio sample at which hop `hop`'s posteriors can be computed (end of its last frame)."""
    f = cfg.features
    k = cfg.model.frame_stack
    return (np.asarray(hop) * k + (k - 1)) * f.stride_samples + f.window_samples


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class StreamingKWS:
    """Push audio, get posteriors: the streaming model (`stream_mean`/`stream_last`) or the
    whole-window baseline (`window`), one hop at a time exactly as a device would run them."""

    def __init__(self, model: MambaKWS, cfg: KWSConfig, readout: str = "stream_mean") -> None:
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.model = model.eval()
        self.cfg = cfg
        self.readout = readout
        self.k = cfg.model.frame_stack
        self.window_steps = cfg.steps  # 49
        self.window_frames = cfg.features.frames  # 98
        self.fe = FeatureExtractor(cfg.features)
        self.reset()

    def reset(self) -> None:
        self.fe.reset()
        self.state = self.model.init_state(1)
        self._pending = np.zeros((0, self.cfg.features.channels), np.float32)
        self._frames = np.zeros((self.window_frames, self.cfg.features.channels), np.float32)  # last 1 s
        self._ring = torch.zeros(self.window_steps, self.cfg.model.d_model)  # last 49 step outputs
        self._ring_sum = torch.zeros(self.cfg.model.d_model)
        self.hops = 0

    @torch.no_grad()
    def step_hop(self, frames: np.ndarray) -> np.ndarray:
        """One hop from its `frame_stack` frames (k, channels) -> posteriors (classes,)."""
        self._frames = np.concatenate([self._frames[self.k :], frames])
        if self.readout == "window":
            logits = self.model(torch.from_numpy(self._frames)[None])[0]
        else:
            h, self.state = self.model.step(torch.from_numpy(frames.reshape(1, -1)), self.state)
            h = h[0]
            if self.readout == "stream_last":
                logits = self.model.classifier(h)
            else:
                slot = self.hops % self.window_steps
                self._ring_sum += h - self._ring[slot]
                self._ring[slot] = h
                n = min(self.hops + 1, self.window_steps)
                logits = self.model.classifier(self._ring_sum / n)
        self.hops += 1
        return softmax(logits.numpy().astype(np.float64))

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Feed int16 samples (any chunk size); posteriors of the hops they complete, (n, classes)."""
        frames = np.concatenate([self._pending, self.fe.push(audio)])
        n = len(frames) // self.k
        self._pending = frames[n * self.k :]
        out = [self.step_hop(frames[i * self.k : (i + 1) * self.k]) for i in range(n)]
        return np.stack(out) if out else np.zeros((0, self.cfg.num_classes))


# ------------------------------------------------------------------ batch versions for long streams
# The same computations over a whole stream's features at once (tests check they equal StreamingKWS).


def stream_features(audio: np.ndarray, cfg: KWSConfig, chunk: int = 16000 * 60,
                    progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Features of a continuous stream from one front end: (frames, channels)."""
    fe = FeatureExtractor(cfg.features)
    parts = []
    for i in range(0, len(audio), chunk):
        parts.append(fe.push(audio[i : i + chunk]))
        if progress:
            progress(min(chunk, len(audio) - i))
    return np.concatenate(parts) if parts else np.zeros((0, cfg.features.channels), np.float32)


@torch.no_grad()
def stream_step_outputs(model: MambaKWS, cfg: KWSConfig, feats: np.ndarray, chunk_steps: int = 4096,
                        progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Per-hop outputs of the streaming model (hidden after norm_f), state carried across the whole
    stream: (hops, d_model). Runs in chunks with `step`-equivalent state hand-over."""
    x = model.stack_frames(torch.from_numpy(np.ascontiguousarray(feats))[None])[0]  # (hops, k * channels)
    state = model.init_state(1)
    outs = []
    for i in range(0, len(x), chunk_steps):
        h, state = _encode_chunk(model, x[i : i + chunk_steps], state)
        outs.append(h)
        if progress:
            progress(len(h))
    return torch.cat(outs).numpy() if outs else np.zeros((0, cfg.model.d_model), np.float32)


def _encode_chunk(model: MambaKWS, x: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
    """`step` over a chunk of hops, vectorised where the computation allows (projections, conv)."""
    from .model import BlockState, activation, ssm_scan_step

    u = model.stem(x)[None]  # (1, L, d_model)
    new_state = []
    for layer, s in zip(model.layers, state, strict=True):
        blk = layer.mixer
        c = blk.cfg
        xz = blk.in_proj(layer.norm(u))
        xi, z = xz.chunk(2, dim=-1)  # (1, L, d_inner)
        seq = torch.cat([s.conv, xi.transpose(1, 2)], dim=-1)  # (1, d_inner, d_conv - 1 + L)
        conv = torch.nn.functional.conv1d(seq, blk.conv1d.weight, blk.conv1d.bias, groups=c.d_inner)
        xc = activation(c.activation, conv.transpose(1, 2))  # (1, L, d_inner)
        dt, B, C = blk.ssm_inputs(xc)
        h = s.h
        A = blk.A
        ys = []
        for t in range(xc.shape[1]):
            h = ssm_scan_step(h, xc[:, t], dt[:, t], A, B[:, t], c.decay)
            ys.append((h * C[:, t].unsqueeze(1)).sum(-1))
        y = torch.stack(ys, dim=1) + xc * blk.D
        u = u + blk.out_proj(y * activation(c.activation, z))
        new_state.append(BlockState(conv=seq[..., seq.shape[-1] - (c.d_conv - 1) :], h=h))
    return model.norm_f(u)[0], new_state


@torch.no_grad()
def stream_posteriors(model: MambaKWS, cfg: KWSConfig, feats: np.ndarray, readout: str,
                      batch: int = 512, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Posteriors (hops, classes) of one readout over a whole stream's features, from a reset state."""
    n_steps = cfg.steps
    if readout == "window":
        k = cfg.model.frame_stack
        hops = len(feats) // k
        pad = np.concatenate([np.zeros((cfg.features.frames - k, feats.shape[1]), np.float32), feats[: hops * k]])
        wins = np.lib.stride_tricks.sliding_window_view(pad, cfg.features.frames, axis=0)[::k]  # (hops, C, 98)
        out = []
        for i in range(0, hops, batch):
            w = torch.from_numpy(np.array(wins[i : i + batch].transpose(0, 2, 1)))
            out.append(model(w).numpy())
            if progress:
                progress(len(w))
        logits = np.concatenate(out) if out else np.zeros((0, cfg.num_classes), np.float32)
    elif readout in ("stream_mean", "stream_last"):
        h = stream_step_outputs(model, cfg, feats, progress=progress).astype(np.float64)
        if readout == "stream_mean":
            c = np.cumsum(np.vstack([np.zeros((1, h.shape[1])), h]), axis=0)
            idx = np.arange(1, len(h) + 1)
            lo = np.maximum(0, idx - n_steps)
            h = (c[idx] - c[lo]) / (idx - lo)[:, None]
        logits = model.classifier(torch.from_numpy(h.astype(np.float32))).numpy()
    else:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    return softmax(logits.astype(np.float64))


# ------------------------------------------------------------------ compute per hop


def clip_posteriors_every_hop(classify: Callable[[np.ndarray], np.ndarray], audio: np.ndarray, cfg: KWSConfig,
                              hops: int, batch: int = 500,
                              progress: Callable[[int], None] | None = None) -> np.ndarray:
    """A classifier of 1 s clips ((N, samples) int16 -> (N, classes) posteriors, e.g. a pretrained teacher)
    run every hop on the last second of raw audio, as `window` runs the model: hop i's clip ends at
    `hop_end_sample(i)` (zeros before the stream began). -> (hops, classes)."""
    n = cfg.features.sample_rate  # one second
    padded = np.concatenate([np.zeros(n, np.int16), np.asarray(audio, np.int16)])
    ends = np.asarray(hop_end_sample(np.arange(hops), cfg), np.int64) + n
    if hops and ends[-1] > len(padded):
        raise ValueError(f"{hops} hops need {ends[-1] - n} samples of audio, got {len(audio)}")
    out = []
    for i in range(0, hops, batch):
        e = ends[i : i + batch]
        out.append(np.asarray(classify(padded[e[:, None] - n + np.arange(n)[None]]), np.float64))
        if progress:
            progress(len(e))
    return np.concatenate(out) if out else np.zeros((0, cfg.num_classes))


def macs_per_step(cfg: KWSConfig) -> dict[str, int]:
    """Multiply-accumulates of one model step (stem + blocks + norm_f), counted from the shapes.
    Elementwise products count 1 MAC each; activations (silu, sigmoid, relu) are counted apart."""
    m = cfg.model
    d, di, n, r, kc = m.d_model, m.d_inner, m.d_state, m.dt_rank_resolved, m.d_conv
    stem = cfg.features.channels * m.frame_stack * d
    norm = d  # batchnorm / rmsnorm: one multiply-add per channel (batchnorm folds at export)
    block = (
        norm
        + d * 2 * di  # in_proj
        + di * kc  # causal depthwise conv
        + di * (r + 2 * n)  # x_proj
        + r * di  # dt_proj
        + di * n  # dt * A
        + di * n * 2  # h = Abar h + (dt x) B   (dt*x: di, folded in below)
        + di  # dt * x
        + di * n  # y = C . h
        + di  # + D x
        + di  # y * act(z)
        + di * d  # out_proj
    )
    acts = m.n_layers * (3 * di + di * n)  # silu(x), silu(z), dt act, decay per (d, n)
    return {"macs": stem + m.n_layers * block + norm, "activations": acts}


def live_ms_per_hop(model: MambaKWS, cfg: KWSConfig, readout: str, hops: int = 100) -> float:
    """Measured host time of one live hop (`StreamingKWS.step_hop`, batch 1), median over `hops`."""
    import time

    rng = np.random.default_rng(0)
    s = StreamingKWS(model, cfg, readout)
    frames = rng.uniform(0, 20, (hops + 10, cfg.model.frame_stack, cfg.features.channels)).astype(np.float32)
    times = []
    for i, f in enumerate(frames):
        t0 = time.perf_counter()
        s.step_hop(f)
        if i >= 10:  # warm-up
            times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def macs_per_hop(cfg: KWSConfig, readout: str) -> int:
    """MACs to produce one hop's logits with a readout (softmax not counted)."""
    step = macs_per_step(cfg)["macs"]
    cls = cfg.model.d_model * cfg.num_classes
    if readout == "window":
        return cfg.steps * step + cfg.steps * cfg.model.d_model + cls  # 49 steps, mean pool, classifier
    if readout == "stream_mean":
        return step + 2 * cfg.model.d_model + cls  # ring-buffer running sum (+ new, - oldest), classifier
    return step + cls
