"""FeatureDataset: shapes, evaluation features = clip_features, augmentation that is deterministic
in (seed, epoch, index) and actually changes the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mamba_kws.config import SILENCE_LABEL
from mamba_kws.data import ClipSet, FeatureDataset, clip_features
from torch.utils.data import DataLoader


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


def test_eval_dataset_is_clip_features(clips, tiny_cfg):
    ds = FeatureDataset(clips, tiny_cfg)
    feats = clip_features(clips, tiny_cfg)
    assert feats.shape == (len(clips), tiny_cfg.features.frames, tiny_cfg.features.channels)
    assert feats.dtype == np.float32 and feats.max() > 5
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.dtype == torch.float32 and isinstance(y, int) and y == int(clips.targets[i])
        assert torch.equal(x, torch.from_numpy(feats[i]))


def test_augmentation_is_deterministic_and_changes_input(clips, noise, tiny_cfg):
    plain = clip_features(clips, tiny_cfg)
    a = FeatureDataset(clips, tiny_cfg, noise=noise, train=True, seed=3)
    b = FeatureDataset(clips, tiny_cfg, noise=noise, train=True, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    for i in range(len(clips)):
        xa, ya = a[i]
        xb, yb = b[i]
        assert xa.shape == (tiny_cfg.features.frames, tiny_cfg.features.channels) and ya == yb
        assert torch.equal(xa, xb)
        assert not np.allclose(xa.numpy(), plain[i])
    x2 = a[0][0]
    a.set_epoch(3)
    assert not torch.equal(a[0][0], x2)
    c = FeatureDataset(clips, tiny_cfg, noise=noise, train=True, seed=4)
    c.set_epoch(2)
    assert not torch.equal(c[0][0], x2)


def test_augment_steps(clips, noise, tiny_cfg):
    ds = FeatureDataset(clips, tiny_cfg, noise=noise, train=True, seed=0)
    rng = np.random.default_rng(0)
    kw = int(np.nonzero(clips.targets == 2)[0][0])
    shifted = [ds.augment_audio(clips.audio[kw], 2, np.random.default_rng(s)) for s in range(20)]
    peaks = {int(np.argmax(np.abs(s.astype(np.float64)))) for s in shifted}
    assert len(peaks) > 5  # the word moves in time
    max_shift = tiny_cfg.train.augment.time_shift_ms * 16
    assert all(abs(p - int(np.argmax(np.abs(clips.audio[kw].astype(np.float64))))) <= max_shift + 400
               for p in peaks)
    sil = int(np.nonzero(clips.targets == 0)[0][0])
    louder = [np.std(ds.augment_audio(clips.audio[sil], 0, np.random.default_rng(s))) for s in range(10)]
    assert max(louder) > 2 * np.std(clips.audio[sil])  # silence gets background noise
    f = clip_features(clips, tiny_cfg)[kw]
    masked = ds.spec_augment(f, rng)
    assert masked.shape == f.shape and (masked != f).any()


def test_loader_workers_give_the_same_batches(clips, noise, tiny_cfg):
    def batches(workers: int) -> list[torch.Tensor]:
        ds = FeatureDataset(clips, tiny_cfg, noise=noise, train=True, seed=0)
        ds.set_epoch(1)
        loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=workers,
                            generator=torch.Generator().manual_seed(0))
        return [x for x, _ in loader]

    for x0, x2 in zip(batches(0), batches(2), strict=True):
        assert torch.equal(x0, x2)
