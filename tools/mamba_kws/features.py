"""The TFLM micro-frontend, through pymicro-features, so training sees what the device computes.

The front end (FFT filterbank, noise reduction, PCAN gain control, log scale) is fixed at 40
channels, 30 ms windows and 10 ms strides: 98 frames for a 1 s clip. pymicro-features returns
the device's uint16 features scaled by 1/25.6 (a float in about [0, 26]); the firmware applies
the same scale, so the model's input is identical on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pymicro_features import MicroFrontend

from .config import FeatureConfig

# pymicro-features' float = device uint16 * FEATURE_SCALE (TFLM micro_speech uses the same 1/25.6).
FEATURE_SCALE = 1.0 / 25.6


class FeatureExtractor:
    """Streaming wrapper: feed int16 audio in any chunk size, get 10 ms feature frames out."""

    def __init__(self, cfg: FeatureConfig | None = None) -> None:
        self.cfg = cfg or FeatureConfig()
        self._fe = MicroFrontend()
        self._pending = b""

    def reset(self) -> None:
        self._fe.reset()
        self._pending = b""

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Feed int16 samples; returns the frames completed by them, shape (n, channels)."""
        data = self._pending + np.asarray(audio, dtype=np.int16).tobytes()
        hop = 2 * self.cfg.stride_samples
        out: list[list[float]] = []
        pos = 0
        while len(data) - pos >= hop:
            res = self._fe.process_samples(data[pos : pos + hop])
            pos += res.samples_read * 2
            if res.features:
                out.append(res.features)
        self._pending = data[pos:]
        if not out:
            return np.zeros((0, self.cfg.channels), dtype=np.float32)
        return np.asarray(out, dtype=np.float32)


def compute_features(audio: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Features of one clip from a fresh front end: (frames, channels) float32."""
    return FeatureExtractor(cfg).push(audio)


def compute_batch(clips: Iterable[np.ndarray], cfg: FeatureConfig | None = None) -> np.ndarray:
    """Features of equal-length clips, stacked: (n, frames, channels)."""
    ex = FeatureExtractor(cfg)
    feats = []
    for clip in clips:
        ex.reset()
        feats.append(ex.push(clip))
    return np.stack(feats) if feats else np.zeros((0, 0, 0), dtype=np.float32)
