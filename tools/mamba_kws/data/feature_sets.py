"""Precomputed feature maps as a training source (microWakeWord trains from precomputed spectrograms
the same way): `FeatureSet` and its `.npz` file.

A feature-set file holds, for N clips:

    feats        (N, 98, 40) float16   micro-frontend features in pymicro-features units
    labels       (N,) int              index into label_names; -1: no label (a teacher's soft target only)
    label_names  (K,) str              class names (mapped onto the model's labels by name; a name the
                                       model does not have becomes `_unknown_`)
    words        (N,) str              the spoken word ("" or the label when unknown)
    speakers     (N,) str              "" when there is none (noise)
    split        (N,) str              "training" / "validation" (others are ignored)
    soft         (N, C) float16        optional: teacher posteriors in the order of soft_labels
    soft_labels  (C,) str              with soft

Any tool that writes this layout makes a source `train.py` can mix in (`sources:` in the model YAML).
Files are written uncompressed, so loading is a read, not a decompression.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import UNKNOWN_LABEL
from ..errors import DataError

TRAIN_SPLIT, VAL_SPLIT = "training", "validation"
REQUIRED = ("feats", "labels", "label_names", "words", "speakers", "split")


@dataclass
class FeatureSet:
    """Feature maps with their labels; targets index the model's labels."""

    name: str
    labels: tuple[str, ...]
    feats: np.ndarray  # (n, frames, channels) float16 or float32
    targets: np.ndarray  # (n,) int64; -1 = no hard label (soft target only)
    words: np.ndarray  # (n,) str
    speakers: np.ndarray  # (n,) str
    soft: np.ndarray | None = None  # (n, len(labels)) float32 teacher posteriors, or None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, index: np.ndarray) -> FeatureSet:
        idx = np.asarray(index, np.int64)
        return FeatureSet(self.name, self.labels, self.feats[idx], self.targets[idx], self.words[idx],
                          self.speakers[idx], None if self.soft is None else self.soft[idx], dict(self.info))

    def counts(self) -> dict[str, int]:
        t = self.targets[self.targets >= 0]
        c = np.bincount(t, minlength=len(self.labels))
        return {lab: int(c[i]) for i, lab in enumerate(self.labels)}

    @staticmethod
    def concat(name: str, parts: list[FeatureSet]) -> FeatureSet:
        if not parts:
            raise ValueError("nothing to concatenate")
        soft = None
        if all(p.soft is not None for p in parts):
            soft = np.concatenate([p.soft for p in parts])
        return FeatureSet(name, parts[0].labels, np.concatenate([p.feats for p in parts]),
                          np.concatenate([p.targets for p in parts]), np.concatenate([p.words for p in parts]),
                          np.concatenate([p.speakers for p in parts]), soft)


def map_labels(names: list[str], labels: tuple[str, ...]) -> np.ndarray:
    """Index map from a file's class names to the model's labels (unknown names -> _unknown_, else -1)."""
    out = []
    for n in names:
        if n in labels:
            out.append(labels.index(n))
        elif UNKNOWN_LABEL in labels:
            out.append(labels.index(UNKNOWN_LABEL))
        else:
            out.append(-1)
    return np.asarray(out, np.int64)


def save_feature_set(path: Path, feats: np.ndarray, labels: np.ndarray, label_names: list[str],
                     words: list[str] | np.ndarray, speakers: list[str] | np.ndarray, split: list[str] | np.ndarray,
                     soft: np.ndarray | None = None, soft_labels: list[str] | None = None) -> None:
    """Write a feature-set file (atomically: a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(feats=np.asarray(feats, np.float16), labels=np.asarray(labels, np.int16),
                  label_names=np.asarray(label_names), words=np.asarray(words), speakers=np.asarray(speakers),
                  split=np.asarray(split))
    if soft is not None:
        arrays["soft"] = np.asarray(soft, np.float16)
        arrays["soft_labels"] = np.asarray(soft_labels)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_feature_set(path: Path, labels: tuple[str, ...], frames: int, channels: int,
                     split: str | None = None, name: str | None = None) -> FeatureSet:
    """Read a feature-set file and map it onto the model's labels; `split` keeps only that split."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"feature set not found: {path}")
    try:
        z = np.load(path, allow_pickle=False)
        missing = [k for k in REQUIRED if k not in z.files]
        if missing:
            raise DataError(f"{path}: not a feature-set file (missing {', '.join(missing)})")
        feats = z["feats"]
        label_names = [str(s) for s in z["label_names"]]
        raw = z["labels"].astype(np.int64)
        words, speakers, splits = z["words"], z["speakers"], z["split"]
        soft = z["soft"].astype(np.float32) if "soft" in z.files else None
        soft_labels = [str(s) for s in z["soft_labels"]] if soft is not None else []
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz feature set ({exc})") from None
    n = len(raw)
    if feats.ndim != 3 or feats.shape[1:] != (frames, channels):
        raise DataError(f"{path}: feats must be (N, {frames}, {channels}), got {feats.shape}")
    if not all(len(a) == n for a in (feats, words, speakers, splits)):
        raise DataError(f"{path}: feats, labels, words, speakers and split differ in length")
    if n and (raw.min() < -1 or raw.max() >= len(label_names)):
        raise DataError(f"{path}: a label index is outside label_names")
    if not np.isfinite(feats).all():
        raise DataError(f"{path}: feats hold NaN or infinite values")
    targets = np.where(raw >= 0, map_labels(label_names, labels)[np.maximum(raw, 0)], -1) if n else raw
    if soft is None and (targets < 0).any():
        raise DataError(f"{path}: clips without a label need soft targets")
    if soft is not None:
        if soft.shape != (n, len(soft_labels)) or set(soft_labels) != set(labels):
            raise DataError(f"{path}: soft targets must be (N, {len(labels)}) over the model's labels")
        soft = soft[:, [soft_labels.index(lab) for lab in labels]]
    keep = np.arange(n) if split is None else np.flatnonzero(splits == split)
    fs = FeatureSet(name or path.stem, tuple(labels), feats[keep], targets[keep], words[keep], speakers[keep],
                    None if soft is None else soft[keep], {"path": str(path), "split": split})
    return fs
