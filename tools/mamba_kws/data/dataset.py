"""Clips -> micro-frontend features: `clip_features` (no augmentation, for evaluation) and
`augment_audio` (the audio-domain augmentation used when audio sources are rendered for training,
mamba_kws.data.render).

Audio augmentation of one clip (cfg.train.augment), in order:
  1. time shift by a uniform +-time_shift_ms, the gap filled with zeros;
  2. with probability noise_prob, a random slice of a random noise recording mixed in at an SNR
     uniform in noise_snr_db (relative to the clip's rms); silence clips instead get the noise at a
     random low volume (uniform 0..0.1 of the recording's level, as TensorFlow's input_data.py).
Every draw comes from the numpy Generator passed in, so a seeded generator gives the same clip.
Feature-domain augmentation (SpecAugment and more) is applied per batch in training
(mamba_kws.data.sources.augment_batch).
"""

from __future__ import annotations

import numpy as np

from ..config import AugmentConfig, KWSConfig
from ..features import compute_batch
from .clips import ClipSet
from .noise import mix_at_snr, random_slice, to_int16


def clip_features(clips: ClipSet, cfg: KWSConfig) -> np.ndarray:
    """(n, frames, channels) float32 features of the clips, no augmentation."""
    if len(clips) == 0:
        return np.zeros((0, cfg.features.frames, cfg.features.channels), np.float32)
    return compute_batch(clips.audio, cfg.features).astype(np.float32)


def augment_audio(clip: np.ndarray, is_silence: bool, noise: list[np.ndarray], a: AugmentConfig, rate: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Steps 1-2 of the module's augmentation on one int16 clip: time shift, then background noise."""
    x = clip.astype(np.float32)
    n = len(x)
    max_shift = a.time_shift_ms * rate // 1000
    shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift > 0 else 0
    if shift > 0:
        x = np.concatenate([np.zeros(shift, np.float32), x[: n - shift]])
    elif shift < 0:
        x = np.concatenate([x[-shift:], np.zeros(-shift, np.float32)])
    if noise:
        use = rng.random() < a.noise_prob
        k = int(rng.integers(len(noise)))
        bg = random_slice(rng, noise[k], n)
        if is_silence:
            x = x + bg * np.float32(rng.uniform(0.0, 0.1))
        elif use:
            lo, hi = a.noise_snr_db
            x = mix_at_snr(x, bg, float(rng.uniform(lo, hi)))
    return to_int16(x)
