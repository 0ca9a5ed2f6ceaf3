"""clip_features shapes and values; the audio augmentation is deterministic for a seed and actually
changes the input (time shift, noise for silence)."""

from __future__ import annotations

import numpy as np
import pytest
from mamba_kws.config import SILENCE_LABEL
from mamba_kws.data import ClipSet, augment_audio, clip_features


@pytest.fixture(scope="module")
def clips(tiny_cfg):
    """Twelve clips: chirps for the keywords, low noise for silence."""
    rng = np.random.default_rng(0)
    n = tiny_cfg.features.clip_samples
    t = np.arange(n) / 16000
    audio, targets = [], []
    for i, label in enumerate(tiny_cfg.labels):
        if label == SILENCE_LABEL:
            a = rng.standard_normal(n) * 30
        else:
            env = np.exp(-(((t - 0.5) / 0.15) ** 2))
            a = 6000 * env * np.sin(2 * np.pi * (300 + 150 * i) * t * (1 + t)) + rng.standard_normal(n) * 30
        audio.append(np.clip(a, -32768, 32767).astype(np.int16))
        targets.append(i)
    labels = tuple(tiny_cfg.labels)
    return ClipSet(labels, np.stack(audio), np.asarray(targets, np.int64), list(labels), ["s"] * len(labels),
                   [""] * len(labels))


@pytest.fixture(scope="module")
def noise():
    return [(np.random.default_rng(1).standard_normal(16000 * 5) * 2000).astype(np.int16)]


def test_clip_features(clips, tiny_cfg):
    from mamba_kws.features import compute_features

    feats = clip_features(clips, tiny_cfg)
    assert feats.shape == (len(clips), tiny_cfg.features.frames, tiny_cfg.features.channels)
    assert feats.dtype == np.float32 and feats.max() > 5
    for i in (0, 5):
        assert np.array_equal(feats[i], compute_features(clips.audio[i], tiny_cfg.features))


def _aug(clips, i, noise, cfg, seed):
    return augment_audio(clips.audio[i], clips.labels[clips.targets[i]] == SILENCE_LABEL, noise, cfg.train.augment,
                         16000, np.random.default_rng(seed))


def test_augmentation_is_deterministic_and_changes_input(clips, noise, tiny_cfg):
    for i in range(len(clips)):
        a, b = _aug(clips, i, noise, tiny_cfg, [3, i]), _aug(clips, i, noise, tiny_cfg, [3, i])
        assert a.dtype == np.int16 and a.shape == clips.audio[i].shape and np.array_equal(a, b)
        assert not np.array_equal(a, clips.audio[i])
    assert not np.array_equal(_aug(clips, 2, noise, tiny_cfg, 1), _aug(clips, 2, noise, tiny_cfg, 2))


def test_augment_steps(clips, noise, tiny_cfg):
    kw = int(np.nonzero(clips.targets == 2)[0][0])
    shifted = [_aug(clips, kw, noise, tiny_cfg, s) for s in range(20)]
    peaks = {int(np.argmax(np.abs(s.astype(np.float64)))) for s in shifted}
    assert len(peaks) > 5  # the word moves in time
    max_shift = tiny_cfg.train.augment.time_shift_ms * 16
    assert all(abs(p - int(np.argmax(np.abs(clips.audio[kw].astype(np.float64))))) <= max_shift + 400
               for p in peaks)
    sil = int(np.nonzero(clips.targets == 0)[0][0])
    louder = [np.std(_aug(clips, sil, noise, tiny_cfg, s)) for s in range(10)]
    assert max(louder) > 2 * np.std(clips.audio[sil])  # silence gets background noise
