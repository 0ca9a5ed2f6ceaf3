"""Speech Commands v2 directories in their standard layout, read with TensorFlow's protocol.

Layout: `<word>/<speaker>_nohash_<i>.wav`, `validation_list.txt` and `testing_list.txt` (paths
relative to the root; every other clip is training), `_background_noise_/*.wav`, and optionally
a `_silence_/` folder of ready-made silence clips.

Protocol (tensorflow/examples/speech_commands/input_data.py): the keywords of `cfg.labels` are kept;
every other word becomes `_unknown_`; per split, `_unknown_` and `_silence_` are sampled to
`cfg.train.unknown_fraction` / `silence_fraction` of the number of keyword clips. Silence comes from
the `_silence_/` folder if there is one, else from slices of the background noise at random volumes
(each noise recording is cut in time so that no noise is in two splits, see noise.py).
"""

from __future__ import annotations

import csv
import math
import wave
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..audio import AudioError, fit_length, read_wav
from ..config import SILENCE_LABEL, UNKNOWN_LABEL, KWSConfig, load_config
from ..errors import DataError
from ..paths import describe, speech_commands_dir
from .clips import ClipSet, DataSplits
from .noise import NOISE_DIR, noise_part, random_slice, read_noise_dir, to_int16

SPLITS = ("train", "val", "test")
LIST_FILES = {"val": "validation_list.txt", "test": "testing_list.txt"}
SELECT_SEED = 59185  # input_data.py's RANDOM_SEED: the same subset whatever the training seed
HOW_TO_GET = ("use the generated default (--data generated), point --data at a Speech Commands v2 "
              "directory, or pass --download to fetch the official archive")


def speaker_of(filename: str) -> str:
    """`<speaker>_nohash_<i>.wav` -> `<speaker>`; "" when the name has no `_nohash_`."""
    return filename.split("_nohash_")[0] if "_nohash_" in filename else ""


def _word_from_name(name: str) -> str:
    """`[prefix_]<word>_<speaker>_nohash_<i>.wav` (the unknown clips of the real test set) -> `<word>`."""
    if "_nohash_" not in name:
        return ""
    parts = name.split("_nohash_")[0].split("_")
    return parts[-2] if len(parts) >= 2 else ""


def _read_list(root: Path, split: str) -> set[str]:
    p = root / LIST_FILES[split]
    if not p.is_file():
        raise DataError(f"{root}: {LIST_FILES[split]} is missing; a Speech Commands v2 directory has "
                        "validation_list.txt and testing_list.txt (the speaker-hash splits)")
    return {line.strip().replace("\\", "/") for line in p.read_text().splitlines() if line.strip()}


class _Reader:
    """Reads clips, resampling other rates and listing (never crashing on) bad files."""

    def __init__(self, clip_samples: int, sample_rate: int) -> None:
        self.clip_samples, self.sample_rate = clip_samples, sample_rate
        self.skipped: list[dict[str, str]] = []
        self.resampled = 0

    def read(self, path: Path) -> np.ndarray | None:
        try:
            with wave.open(str(path), "rb") as w:
                rate = w.getframerate()
            audio = read_wav(path, self.sample_rate)
        except AudioError as exc:
            self.skipped.append({"path": str(path), "reason": str(exc)})
            return None
        except (wave.Error, EOFError, OSError) as exc:
            why = str(exc) or "the file ends early"
            self.skipped.append({"path": str(path), "reason": f"not a readable PCM WAV file ({why})"})
            return None
        if rate != self.sample_rate:
            self.resampled += 1
        if len(audio) == 0:
            self.skipped.append({"path": str(path), "reason": "empty clip"})
            return None
        return fit_length(audio, self.clip_samples)


def _scan(root: Path) -> dict[str, list[str]]:
    """word folder -> sorted relative paths of its .wav files."""
    words: dict[str, list[str]] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if d.name == NOISE_DIR or d.name.startswith("."):
            continue
        files = sorted(f"{d.name}/{f.name}" for f in d.iterdir() if f.suffix.lower() == ".wav")
        if files:
            words[d.name] = files
    return words


def load_speech_commands(root: str | Path, cfg: KWSConfig, *, progress: bool = True,
                         source: str | None = None) -> DataSplits:
    """Read a Speech Commands v2 directory into train/val/test `ClipSet`s with the TF protocol."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"Speech Commands directory not found: {root}; {HOW_TO_GET}")
    lists = {s: _read_list(root, s) for s in LIST_FILES}
    words = _scan(root)
    if not words:
        raise DataError(f"{root}: no <word>/*.wav clips found; {HOW_TO_GET}")
    labels = tuple(cfg.labels)
    keywords = [lab for lab in labels if lab not in (SILENCE_LABEL, UNKNOWN_LABEL)]
    fs = cfg.features
    reader = _Reader(fs.clip_samples, fs.sample_rate)

    # Which file goes where: (relative path, word, split) in three pools.
    pools: dict[str, dict[str, list[tuple[str, str]]]] = {s: {"kw": [], "unk": [], "sil": []} for s in SPLITS}
    for word, files in words.items():
        kind = "kw" if word in keywords else "sil" if word == SILENCE_LABEL else "unk"
        for rel in files:
            split = "val" if rel in lists["val"] else "test" if rel in lists["test"] else "train"
            pools[split][kind].append((rel, word))

    noise_skipped: list[dict[str, str]] = []
    noise = read_noise_dir(root / NOISE_DIR, noise_skipped)
    reader.skipped.extend(noise_skipped)
    has_silence_dir = SILENCE_LABEL in words
    summary: dict = {"source": source or str(root), "splits": {}, "speakers": {}, "skipped": reader.skipped,
                     "resampled": 0, "unknown_available": {}, "silence_from":
                     "_silence_ folder" if has_silence_dir else f"{NOISE_DIR} slices"}
    out: dict[str, ClipSet] = {}
    for si, split in enumerate(SPLITS):
        rng = np.random.default_rng([SELECT_SEED, si])
        pool = pools[split]
        n_kw = len(pool["kw"])
        chosen: list[tuple[str, str]] = list(pool["kw"])
        if UNKNOWN_LABEL in labels:
            n_unk = min(len(pool["unk"]), math.ceil(n_kw * cfg.train.unknown_fraction))
            order = rng.permutation(len(pool["unk"]))[:n_unk]
            chosen += [pool["unk"][i] for i in sorted(order)]
            summary["unknown_available"][split] = len(pool["unk"])
        n_sil = math.ceil(n_kw * cfg.train.silence_fraction) if SILENCE_LABEL in labels else 0
        if has_silence_dir:
            order = rng.permutation(len(pool["sil"]))[:n_sil]
            chosen += [pool["sil"][i] for i in sorted(order)]
            n_sil = 0

        audio, targets, wlist, speakers, paths = [], [], [], [], []
        bar = tqdm(chosen, desc=f"reading {split}", unit="clip", disable=not progress, leave=False)
        for rel, word in bar:
            a = reader.read(root / rel)
            if a is None:
                continue
            label = word if word in labels else UNKNOWN_LABEL
            if label not in labels:
                continue
            audio.append(a)
            targets.append(labels.index(label))
            wlist.append(word)
            speakers.append(speaker_of(Path(rel).name))
            paths.append(str(root / rel))
        # Silence from background-noise slices of this split's part of each recording.
        if n_sil and noise:
            for _ in range(n_sil):
                k = int(rng.integers(len(noise)))
                part = noise_part(noise[k][1], split)
                gain = 0.0 if rng.random() < 0.1 else 10 ** rng.uniform(-2.0, 0.0)
                audio.append(to_int16(random_slice(rng, part, fs.clip_samples) * gain))
                targets.append(labels.index(SILENCE_LABEL))
                wlist.append(SILENCE_LABEL)
                speakers.append("")
                paths.append("")
        elif n_sil:
            summary.setdefault("notes", []).append(
                f"{split}: no {SILENCE_LABEL} folder and no {NOISE_DIR} recordings: no silence clips")
        if audio:
            cs = ClipSet(labels, np.stack(audio).astype(np.int16), np.asarray(targets, np.int64),
                         wlist, speakers, paths)
        else:
            cs = ClipSet.empty(labels, fs.clip_samples)
        out[split] = cs
        summary["splits"][split] = cs.counts()
        summary["speakers"][split] = len({s for s in cs.speakers if s})
    summary["resampled"] = reader.resampled
    if len(out["train"]) == 0:
        raise DataError(f"{root}: no training clips of the keywords {', '.join(keywords)}")
    train_noise = [noise_part(a, "train") for _, a in noise]
    return DataSplits(out["train"], out["val"], out["test"], train_noise, source or str(root), summary)


def load_real_clips(subset: str = "v2_test_dev", cfg: KWSConfig | None = None,
                    root: Path | None = None) -> ClipSet:
    """The real clips of <data root>/speech_commands/<subset> (`v2_test_dev` or `v1_sample`):
    <label>/*.wav folders; words and speakers from manifest.csv. Other sample rates (8 kHz and up) are
    resampled and stereo averaged (mamba_kws.audio.read_wav); any other file that cannot be read is a
    DataError naming it, since a scored set must not lose clips silently."""
    cfg = cfg or load_config()
    base = Path(root) if root is not None else speech_commands_dir()
    folder = base / subset
    if not folder.is_dir():
        raise DataError(f"real clips not found: {folder} (subsets: v2_test_dev, v1_sample); {describe()}")
    meta: dict[str, tuple[str, str]] = {}
    manifest = base / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="") as f:
            for row in csv.DictReader(f):
                meta[row["path"]] = (row.get("word", ""), row.get("speaker", ""))
    labels = tuple(cfg.labels)
    fs = cfg.features
    reader = _Reader(fs.clip_samples, fs.sample_rate)
    audio, targets, words, speakers, paths = [], [], [], [], []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        label = d.name if d.name in labels else UNKNOWN_LABEL
        if label not in labels:
            continue
        for p in sorted(d.glob("*.wav")):
            a = reader.read(p)
            if a is None:
                reason = reader.skipped[-1]["reason"]
                raise DataError(f"{reason if str(p) in reason else f'{p}: {reason}'} (fix or remove the file)")
            word, speaker = meta.get(f"{subset}/{d.name}/{p.name}", (d.name, ""))
            if word in ("", UNKNOWN_LABEL):
                word = _word_from_name(p.name) or d.name
            audio.append(a)
            targets.append(labels.index(label))
            words.append(word)
            speakers.append(speaker or speaker_of(p.name))
            paths.append(str(p))
    if not audio:
        raise DataError(f"{folder}: no readable clips of the labels {', '.join(labels)}")
    return ClipSet(labels, np.stack(audio), np.asarray(targets, np.int64), words, speakers, paths)
