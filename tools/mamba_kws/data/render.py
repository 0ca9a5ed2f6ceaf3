"""Audio sources rendered into feature maps once, so training mixes everything as features.

A `ClipSet` becomes a `FeatureSet` of `variants` copies of each clip: copy 0 as it is, the others with
the audio augmentation of `mamba_kws.data.dataset` (time shift, background noise at a random SNR),
each through the micro-frontend. With a teacher, every copy also gets the teacher's posteriors on the
very audio the features came from (distillation targets). The result is cached in
<cache>/features/render_<key>.npz; the key hashes the audio, the labels, the augmentation, the seed,
the number of copies and the teacher, so a change to any of them renders again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..config import SILENCE_LABEL, KWSConfig
from ..features import compute_batch
from .clips import ClipSet
from .dataset import augment_audio
from .feature_sets import FeatureSet, load_feature_set, save_feature_set

RENDER_VERSION = 1
CHUNK = 512


def render_key(clips: ClipSet, cfg: KWSConfig, variants: int, seed: int, teacher: str) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(clips.audio).tobytes())
    h.update(np.asarray(clips.targets, np.int64).tobytes())
    h.update(json.dumps({"labels": list(clips.labels), "augment": dataclasses.asdict(cfg.train.augment),
                         "variants": variants, "seed": seed, "teacher": teacher, "version": RENDER_VERSION},
                        sort_keys=True).encode())
    return h.hexdigest()[:16]


def render_clips(clips: ClipSet, cfg: KWSConfig, noise: list[np.ndarray], *, variants: int, seed: int,
                 cache: Path, name: str, teacher: str = "", progress: bool = True) -> FeatureSet:
    """`variants` feature maps per clip (+ teacher posteriors when `teacher`), cached."""
    key = render_key(clips, cfg, variants, seed, teacher)
    path = Path(cache) / "features" / f"render_{name}_{key}.npz"
    fc = cfg.features
    if not path.is_file():
        silence = clips.labels.index(SILENCE_LABEL) if SILENCE_LABEL in clips.labels else -1
        noise = [np.asarray(n, np.float32) for n in noise if len(n)]
        n = len(clips)
        feats = np.zeros((n * variants, fc.frames, fc.channels), np.float16)
        soft = np.zeros((n * variants, len(clips.labels)), np.float32) if teacher else None
        predict = None
        if teacher:
            from ..teachers import load_teacher, to_labels

            member = load_teacher(teacher)

            def predict(a: np.ndarray) -> np.ndarray:
                return to_labels(member(a), clips.labels)

        bar = tqdm(total=n * variants, desc=f"rendering {name}" + (f" + {teacher} targets" if teacher else ""),
                   unit="clip", disable=not progress, leave=False)
        for v in range(variants):
            for lo in range(0, n, CHUNK):
                idx = range(lo, min(n, lo + CHUNK))
                if v == 0:
                    audio = clips.audio[lo : idx.stop]
                else:
                    audio = np.stack([augment_audio(clips.audio[i], int(clips.targets[i]) == silence, noise,
                                                    cfg.train.augment, fc.sample_rate,
                                                    np.random.default_rng([seed, v, i])) for i in idx])
                rows = slice(v * n + lo, v * n + idx.stop)
                feats[rows] = compute_batch(audio, fc).astype(np.float16)
                if predict is not None:
                    soft[rows] = predict(audio)
                bar.update(len(idx))
        bar.close()
        tile = np.tile
        save_feature_set(path, feats, tile(clips.targets, variants), list(clips.labels),
                         tile(np.asarray(clips.words), variants), tile(np.asarray(clips.speakers), variants),
                         np.full(n * variants, "training"), soft, list(clips.labels) if teacher else None)
    return load_feature_set(path, tuple(clips.labels), fc.frames, fc.channels, name=name)


def render_streams(clips: ClipSet, cfg: KWSConfig, noise: list[np.ndarray], *, words: int, seed: int, cache: Path,
                   name: str, teacher: str = "", progress: bool = True) -> FeatureSet:
    """Windows of warm-front-end streams of `clips` (mamba_kws.data.streams.stream_windows), with the
    teacher's posteriors on the audio under each window when `teacher`; random cuts only with a teacher."""
    from .streams import stream_windows

    key = render_key(clips, cfg, words, seed, teacher)
    h = hashlib.sha256(key.encode())
    for n in noise:
        h.update(np.ascontiguousarray(n).tobytes()[:1 << 20])
    path = Path(cache) / "features" / f"streams_{name}_{h.hexdigest()[:16]}.npz"
    fc = cfg.features
    if not path.is_file():
        if progress:
            print(f"rendering {words} words of {name} as streams" + (f" + {teacher} targets" if teacher else ""))
        sw = stream_windows(clips, noise, cfg, seed, words, cuts_per_word=1 if teacher else 0)
        soft = None
        if teacher:
            from ..teachers import load_teacher, to_labels

            member = load_teacher(teacher)
            parts = []
            for lo in tqdm(range(0, len(sw.audio), CHUNK), desc=f"{teacher} on stream windows", unit="chunk",
                           disable=not progress, leave=False):
                parts.append(to_labels(member(sw.audio[lo : lo + CHUNK]), clips.labels))
            soft = np.concatenate(parts)
        save_feature_set(path, sw.feats, sw.targets, list(clips.labels), sw.kinds, np.full(len(sw.kinds), ""),
                         np.full(len(sw.kinds), "training"), soft, list(clips.labels) if teacher else None)
    return load_feature_set(path, tuple(clips.labels), fc.frames, fc.channels, name=name)
