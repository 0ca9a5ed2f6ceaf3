"""The in-memory form of a data set: `ClipSet` (one split) and `DataSplits` (train/val/test + noise)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ClipSet:
    """One split, fully loaded: 1 s int16 clips and what each one is."""

    labels: tuple[str, ...]  # the config's labels; targets index into them
    audio: np.ndarray  # (n, clip_samples) int16, padded/cropped to 1 s
    targets: np.ndarray  # (n,) int64
    words: list[str]  # the spoken word ("bed" for an unknown clip, "_silence_" for silence)
    speakers: list[str]
    paths: list[str]  # source file ("" for synthesized silence)

    def __len__(self) -> int:
        return len(self.targets)

    def counts(self) -> dict[str, int]:
        """Clips per label, in label order."""
        c = np.bincount(self.targets, minlength=len(self.labels)) if len(self) else np.zeros(len(self.labels))
        return {lab: int(c[i]) for i, lab in enumerate(self.labels)}

    def subset(self, index: np.ndarray | list[int]) -> ClipSet:
        idx = np.asarray(index, dtype=np.int64)
        return ClipSet(self.labels, self.audio[idx], self.targets[idx], [self.words[i] for i in idx],
                       [self.speakers[i] for i in idx], [self.paths[i] for i in idx])

    def concat(self, other: ClipSet) -> ClipSet:
        return ClipSet(self.labels, np.concatenate([self.audio, other.audio]),
                       np.concatenate([self.targets, other.targets]), self.words + other.words,
                       self.speakers + other.speakers, self.paths + other.paths)

    @staticmethod
    def empty(labels: tuple[str, ...], clip_samples: int) -> ClipSet:
        return ClipSet(tuple(labels), np.zeros((0, clip_samples), np.int16), np.zeros(0, np.int64), [], [], [])


@dataclass
class DataSplits:
    train: ClipSet
    val: ClipSet
    test: ClipSet
    noise: list[np.ndarray]  # background-noise recordings (int16, 16 kHz) for training augmentation
    source: str  # "generated:<dir>" or the Speech Commands directory
    summary: dict[str, Any] = field(default_factory=dict)
