"""Clips -> micro-frontend features for training: `FeatureDataset` (with on-the-fly augmentation)
and `clip_features` (no augmentation, for evaluation).

Training augmentation, in order (cfg.train.augment):
  1. time shift by a uniform +-time_shift_ms, the gap filled with zeros;
  2. with probability noise_prob, a random slice of a random noise recording mixed in at an SNR
     uniform in noise_snr_db (relative to the clip's rms); silence clips instead get the noise at a
     random low volume (uniform 0..0.1 of the recording's level, as TensorFlow's input_data.py);
  3. features (mamba_kws.features.compute_features, the TFLM micro-frontend);
  4. SpecAugment: spec_freq_masks bands of up to spec_freq_width channels and spec_time_masks spans of
     up to spec_time_width frames set to the clip's mean feature value.
Every random draw comes from numpy's Generator seeded with (seed, epoch, index), so a batch is the
same whatever the worker count or order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import SILENCE_LABEL, KWSConfig
from ..features import compute_batch, compute_features
from .clips import ClipSet
from .noise import mix_at_snr, random_slice, to_int16


def clip_features(clips: ClipSet, cfg: KWSConfig) -> np.ndarray:
    """(n, frames, channels) float32 features of the clips, no augmentation."""
    if len(clips) == 0:
        return np.zeros((0, cfg.features.frames, cfg.features.channels), np.float32)
    return compute_batch(clips.audio, cfg.features).astype(np.float32)


class FeatureDataset(Dataset):
    """(features (frames, channels) float32 tensor, target int) per clip."""

    def __init__(self, clips: ClipSet, cfg: KWSConfig, noise: list[np.ndarray] | None = None,
                 train: bool = False, seed: int = 0) -> None:
        self.clips, self.cfg, self.train, self.seed = clips, cfg, train, seed
        self.noise = [np.asarray(n, np.float32) for n in (noise or []) if len(n)]
        self.aug = cfg.train.augment
        self.epoch = 0
        self.silence = clips.labels.index(SILENCE_LABEL) if SILENCE_LABEL in clips.labels else -1
        self._feats = None if train else clip_features(clips, cfg)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of this epoch (call before iterating)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        target = int(self.clips.targets[index])
        if self._feats is not None:
            return torch.from_numpy(self._feats[index]), target
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        audio = self.augment_audio(self.clips.audio[index], target, rng)
        feats = compute_features(audio, self.cfg.features)
        return torch.from_numpy(self.spec_augment(feats, rng)), target

    def augment_audio(self, clip: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
        a = self.aug
        x = clip.astype(np.float32)
        n = len(x)
        max_shift = a.time_shift_ms * self.cfg.features.sample_rate // 1000
        shift = int(rng.integers(-max_shift, max_shift + 1)) if max_shift > 0 else 0
        if shift > 0:
            x = np.concatenate([np.zeros(shift, np.float32), x[: n - shift]])
        elif shift < 0:
            x = np.concatenate([x[-shift:], np.zeros(-shift, np.float32)])
        if self.noise:
            use = rng.random() < a.noise_prob
            k = int(rng.integers(len(self.noise)))
            bg = random_slice(rng, self.noise[k], n)
            if target == self.silence:
                x = x + bg * np.float32(rng.uniform(0.0, 0.1))
            elif use:
                lo, hi = a.noise_snr_db
                x = mix_at_snr(x, bg, float(rng.uniform(lo, hi)))
        return to_int16(x)

    def spec_augment(self, feats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a = self.aug
        f = feats.copy()
        frames, channels = f.shape
        fill = f.mean() if f.size else 0.0
        for _ in range(a.spec_freq_masks):
            w = int(rng.integers(0, a.spec_freq_width + 1))
            s = int(rng.integers(0, max(1, channels - w + 1)))
            f[:, s : s + w] = fill
        for _ in range(a.spec_time_masks):
            w = int(rng.integers(0, a.spec_time_width + 1))
            s = int(rng.integers(0, max(1, frames - w + 1)))
            f[s : s + w, :] = fill
        return f
