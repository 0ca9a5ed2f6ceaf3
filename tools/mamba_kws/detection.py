"""The detection policy: from per-hop posteriors to keyword detections. One source for the host
tools and the firmware (which gets `detection_params` through a generated header).

Parameters come from the model YAML's `detection:` section:

    hop_ms          the model's step (frame_stack * stride_ms = 20 ms); one posterior vector a hop
    smoothing_ms    posteriors are averaged over the last W = smoothing_ms / hop_ms hops
    threshold       a keyword fires when its smoothed posterior >= its threshold ...
    thresholds      ... per keyword (`{yes: 0.8}`), else `threshold`
    suppression_ms  after a detection nothing fires for S = suppression_ms / hop_ms hops

For each hop t, with p_t the softmax posteriors:

    s_t = (1 / W') * sum_{i = t - W' + 1 .. t} p_i         W' = min(W, hops seen since reset)
    k_t = argmax_{k keyword, s_t[k] >= thr[k]} s_t[k]      (_silence_ and _unknown_ never fire)
    fire k_t unless a detection happened in the last S hops

`Detector` runs this one hop at a time (as the firmware does); `detect_offline` runs the same
policy over a stored (hops, classes) array, fast enough to sweep many thresholds for a DET curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import SILENCE_LABEL, UNKNOWN_LABEL, ConfigError, KWSConfig

NON_KEYWORDS = (SILENCE_LABEL, UNKNOWN_LABEL)
DEFAULTS = {"hop_ms": 20, "smoothing_ms": 200, "threshold": 0.7, "thresholds": {}, "suppression_ms": 1000}


@dataclass(frozen=True)
class Detection:
    hop: int  # index of the hop (0-based since reset) at which the keyword fired
    label: int  # index into the config's labels
    name: str
    score: float  # the smoothed posterior that crossed the threshold


def _hops(ms: Any, hop_ms: int, key: str, minimum: int) -> int:
    if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
        raise ConfigError(f"detection.{key} must be a number of milliseconds >= 0, got {ms!r}")
    n = int(round(ms / hop_ms))
    if abs(n * hop_ms - ms) > 1e-6:
        raise ConfigError(f"detection.{key} = {ms} is not a multiple of detection.hop_ms = {hop_ms}")
    if n < minimum:
        raise ConfigError(f"detection.{key} = {ms} must be at least {minimum} hop(s) of {hop_ms} ms")
    return n


def _threshold(value: Any, key: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 < value <= 1.0:
        raise ConfigError(f"detection.{key} must be a probability in (0, 1], got {value!r}")
    return float(value)


def detection_params(cfg: KWSConfig) -> dict[str, Any]:
    """The resolved policy: what the firmware header generator and `Detector` use.

    Returns {"hop_ms", "window_hops" (W), "suppression_hops" (S), "labels", "fires" (1 for a keyword,
    0 for _silence_/_unknown_, label order), "thresholds" (float per label, label order; 1.0 where the
    label never fires)}.
    Raises ConfigError naming the key for an unusable section.
    """
    sec = dict(DEFAULTS)
    unknown = set(cfg.detection) - set(DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown key 'detection.{sorted(unknown)[0]}' (known: {', '.join(sorted(DEFAULTS))})")
    sec.update(cfg.detection)
    hop_ms = sec["hop_ms"]
    step_ms = cfg.features.stride_ms * cfg.model.frame_stack
    if hop_ms != step_ms:
        raise ConfigError(f"detection.hop_ms = {hop_ms} must equal the model step "
                          f"(features.stride_ms * model.frame_stack = {step_ms} ms)")
    window = _hops(sec["smoothing_ms"], hop_ms, "smoothing_ms", 1)
    suppression = _hops(sec["suppression_ms"], hop_ms, "suppression_ms", 0)
    default = _threshold(sec["threshold"], "threshold")
    per_kw = sec["thresholds"] or {}
    if not isinstance(per_kw, dict):
        raise ConfigError(f"detection.thresholds must be a mapping keyword -> threshold, got {per_kw!r}")
    keywords = [lab for lab in cfg.labels if lab not in NON_KEYWORDS]
    for kw, value in per_kw.items():
        if kw not in keywords:
            raise ConfigError(f"detection.thresholds.{kw}: not a keyword of this model ({', '.join(keywords)})")
        _threshold(value, f"thresholds.{kw}")
    fires = [0 if lab in NON_KEYWORDS else 1 for lab in cfg.labels]
    thresholds = [float(per_kw.get(lab, default)) if f else 1.0 for lab, f in zip(cfg.labels, fires, strict=True)]
    return {
        "hop_ms": int(hop_ms),
        "window_hops": window,
        "suppression_hops": suppression,
        "labels": list(cfg.labels),
        "fires": fires,
        "thresholds": thresholds,
    }


def with_threshold(params: dict[str, Any], threshold: float) -> dict[str, Any]:
    """The same policy with every keyword's threshold set to `threshold` (for DET sweeps)."""
    out = dict(params)
    out["thresholds"] = [float(threshold) if f else 1.0 for f in params["fires"]]
    return out


class Detector:
    """The policy one hop at a time: `update(posteriors)` -> Detection or None. Pure numpy."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.labels = list(params["labels"])
        self.window = int(params["window_hops"])
        self.suppression = int(params["suppression_hops"])
        self.fires = np.asarray(params["fires"], dtype=bool)
        # A label that never fires gets an unreachable threshold.
        self.thresholds = np.where(self.fires, np.asarray(params["thresholds"], np.float64), math.inf)
        self.reset()

    def reset(self) -> None:
        self._ring = np.zeros((self.window, len(self.labels)), np.float64)
        self._sum = np.zeros(len(self.labels), np.float64)
        self._seen = 0
        self._hop = -1
        self._quiet = 0  # hops left in which nothing may fire

    @property
    def smoothed(self) -> np.ndarray:
        return self._sum / max(1, min(self._seen, self.window))

    def update(self, posteriors: np.ndarray) -> Detection | None:
        p = np.asarray(posteriors, dtype=np.float64).reshape(-1)
        if p.shape[0] != len(self.labels):
            raise ValueError(f"expected {len(self.labels)} posteriors, got {p.shape[0]}")
        self._hop += 1
        slot = self._seen % self.window
        self._sum += p - self._ring[slot]
        self._ring[slot] = p
        self._seen += 1
        if self._quiet > 0:
            self._quiet -= 1
            return None
        s = self.smoothed
        over = s >= self.thresholds
        if not over.any():
            return None
        k = int(np.argmax(np.where(over, s, -math.inf)))
        self._quiet = self.suppression
        return Detection(self._hop, k, self.labels[k], float(s[k]))


def smooth(posteriors: np.ndarray, window: int) -> np.ndarray:
    """The moving average `Detector` keeps, for a whole (hops, classes) array at once."""
    p = np.asarray(posteriors, dtype=np.float64)
    c = np.cumsum(np.vstack([np.zeros((1, p.shape[1])), p]), axis=0)
    idx = np.arange(1, len(p) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)[:, None]


def detect_offline(posteriors: np.ndarray, params: dict[str, Any],
                   smoothed: np.ndarray | None = None) -> list[Detection]:
    """`Detector` over a whole (hops, classes) array from a reset state; same detections, much faster.
    Pass `smoothed` (from `smooth`) to reuse it across thresholds."""
    s = smooth(posteriors, int(params["window_hops"])) if smoothed is None else smoothed
    fires = np.asarray(params["fires"], dtype=bool)
    thr = np.where(fires, np.asarray(params["thresholds"], np.float64), math.inf)
    over = s >= thr
    candidates = np.flatnonzero(over.any(axis=1))
    out: list[Detection] = []
    free_from = 0
    for t in candidates:
        if t < free_from:
            continue
        k = int(np.argmax(np.where(over[t], s[t], -math.inf)))
        out.append(Detection(int(t), k, params["labels"][k], float(s[t, k])))
        free_from = t + int(params["suppression_hops"]) + 1
    return out
