"""Continuous audio for streaming: a noise bed with words placed at random times (`build_stream`).

Used twice: `tools/stream_eval.py` scores detection on streams of held-out words over the test part of
the noise recordings, and training cuts feature windows from streams of training words over the
training part (`stream_windows`), with the front end running over the whole stream as on a device:
its noise reduction and gain control are warmed up, not restarted for every clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import SILENCE_LABEL, UNKNOWN_LABEL
from ..errors import DataError
from .clips import ClipSet
from .noise import rms, to_int16

NOISE_RMS = 300.0  # noise bed level (int16 units, about -40 dBFS); words are scaled to the SNR


@dataclass
class Event:
    start: int  # first sample of the 1 s clip in the stream
    speech_start: int  # active part of the word (energy based), stream samples
    speech_end: int
    label: int  # index into the config's labels (_unknown_ for an unknown word)
    name: str
    word: str
    source: str  # "real" or "generated"
    speaker: str


@dataclass
class Stream:
    audio: np.ndarray  # int16
    events: list[Event]
    snr_db: float
    sample_rate: int

    @property
    def hours(self) -> float:
        return len(self.audio) / self.sample_rate / 3600.0


def speech_extent(clip: np.ndarray, sample_rate: int = 16000, floor_db: float = 20.0) -> tuple[int, int]:
    """(start, end) samples of the active part: 10 ms frames within `floor_db` of the loudest one."""
    a = np.asarray(clip, np.float64)
    n = sample_rate // 100
    frames = a[: len(a) // n * n].reshape(-1, n)
    e = np.sqrt(np.mean(frames**2, axis=1) + 1e-9)
    active = np.flatnonzero(e >= e.max() * 10 ** (-floor_db / 20))
    return int(active[0] * n), int((active[-1] + 1) * n)


def noise_bed(noise: list[np.ndarray], length: int, rng: np.random.Generator,
              piece_s: tuple[float, float] = (1.5, 4.0), sample_rate: int = 16000) -> np.ndarray:
    """`length` samples of noise at NOISE_RMS: random pieces of the recordings, 20 ms cross-fades."""
    parts = [np.asarray(x, np.float32) / max(rms(x), 1e-6) for x in noise if len(x) > sample_rate]
    if not parts:
        raise DataError("no usable background-noise recording (need > 1 s each)")
    fade = sample_rate // 50
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out = np.zeros(length + fade, np.float32)
    pos = 0
    while pos < length:
        src = parts[int(rng.integers(len(parts)))]
        n = min(int(rng.uniform(*piece_s) * sample_rate), len(src)) + fade
        s = int(rng.integers(0, len(src) - n + 1)) if len(src) > n else 0
        piece = src[s : s + n].copy()
        n = len(piece)
        if pos > 0:
            piece[:fade] *= ramp
        piece[-fade:] *= ramp[::-1]
        end = min(pos + n, len(out))
        out[pos:end] += piece[: end - pos]
        pos += n - fade
    return out[:length] * np.float32(NOISE_RMS)


def build_stream(pool: ClipSet, sources: list[str], noise: list[np.ndarray], seconds: float, snr_db: float,
                 rng: np.random.Generator, gap_s: tuple[float, float] = (2.0, 5.0), keyword_fraction: float = 0.75,
                 sample_rate: int = 16000) -> Stream:
    """A stream of `seconds` with words of `pool` (keywords and unknown words; `sources[i]` names
    clip i's origin) at random non-overlapping times over a noise bed, every word at `snr_db`."""
    length = int(seconds * sample_rate)
    audio = noise_bed(noise, length, rng, sample_rate=sample_rate)
    labels = pool.labels
    unk = labels.index(UNKNOWN_LABEL)
    kw_idx = np.flatnonzero([labels[t] not in (SILENCE_LABEL, UNKNOWN_LABEL) for t in pool.targets])
    unk_idx = np.flatnonzero(pool.targets == unk)
    if len(kw_idx) == 0:
        raise DataError("no keyword clips to place in the stream")
    clip_len = pool.audio.shape[1]
    events: list[Event] = []
    pos = int(rng.uniform(*gap_s) * sample_rate)
    while pos + clip_len <= length:
        use_kw = len(unk_idx) == 0 or rng.random() < keyword_fraction
        i = int(rng.choice(kw_idx if use_kw else unk_idx))
        clip = pool.audio[i].astype(np.float32)
        s0, s1 = speech_extent(clip, sample_rate)
        gain = NOISE_RMS * 10 ** (snr_db / 20) / max(rms(clip[s0:s1]), 1e-6)
        gain = min(gain, 32000.0 / max(float(np.abs(clip).max()), 1.0))  # no clipping
        audio[pos : pos + clip_len] += clip * np.float32(gain)
        t = int(pool.targets[i])
        events.append(Event(pos, pos + s0, pos + s1, t, labels[t], pool.words[i], sources[i], pool.speakers[i]))
        pos += clip_len + int(rng.uniform(*gap_s) * sample_rate)
    return Stream(to_int16(audio), events, float(snr_db), sample_rate)


@dataclass
class StreamWindows:
    """Feature windows cut from streams, with the audio each one covers (for a teacher)."""

    feats: np.ndarray  # (n, frames, channels) float16, from the front end run over the whole stream
    audio: np.ndarray  # (n, clip samples) int16: the audio under each window
    targets: np.ndarray  # (n,) int64; -1 = no label (a random cut: only a teacher can say)
    kinds: np.ndarray  # (n,) str: "word" (a whole word, its label), "noise" (no speech: silence), "cut"


def stream_windows(pool: ClipSet, noise: list[np.ndarray], cfg, seed: int, words: int,  # noqa: ANN001
                   cuts_per_word: int = 1, shift_frames: int = 10) -> StreamWindows:
    """Windows of streams made of `words` words of `pool` over `noise` (SNR 5-30 dB, 0.3-3 s apart):
    each word's own 1 s window (shifted by up to +-shift_frames, labelled with the word), every 1 s of
    word-free noise between them (labelled silence), and `cuts_per_word` windows cut at random
    (unlabelled). The front end runs over each whole stream, so every window sees a warmed-up noise
    reduction and gain control, as on a device that has been listening for a while."""
    from ..features import FeatureExtractor

    fc = cfg.features
    rng = np.random.default_rng([seed, 4177])
    labels = pool.labels
    sil = labels.index(SILENCE_LABEL) if SILENCE_LABEL in labels else -1
    keep = np.flatnonzero([labels[t] != SILENCE_LABEL for t in pool.targets])
    pool = pool.subset(keep)
    hop, win = fc.stride_samples, fc.clip_samples
    per_stream = 200  # words per stream: long enough to warm up, short enough to vary the SNR often
    feats, audio, targets, kinds = [], [], [], []
    done = 0
    while done < words:
        n = min(per_stream, words - done)
        seconds = n * (fc.clip_ms / 1000 + 1.7) + 3
        s = build_stream(pool, ["train"] * len(pool), noise, seconds, float(rng.uniform(5, 30)), rng,
                         gap_s=(0.3, 3.0), keyword_fraction=0.8, sample_rate=fc.sample_rate)
        f = FeatureExtractor(fc).push(s.audio)  # frame k covers samples [k hop, k hop + window)
        total = len(f) - fc.frames
        picks: list[tuple[int, int, str]] = []  # (first frame, target, kind)
        busy = np.zeros(len(s.audio) // hop + 1, bool)
        for j, e in enumerate(s.events):
            busy[e.speech_start // hop : e.speech_end // hop + 1] = True
            if j >= n:
                continue
            picks.append((e.start // hop + int(rng.integers(-shift_frames, shift_frames + 1)), e.label, "word"))
            picks += [(int(rng.integers(0, total + 1)), -1, "cut") for _ in range(cuts_per_word)]
        k = fc.frames  # word-free seconds of noise, once the front end has run for a second
        while sil >= 0 and k + fc.frames <= total:
            if busy[k : k + fc.frames].any():
                k += 10
            else:
                picks.append((k, sil, "noise"))
                k += fc.frames
        for k, target, kind in picks:
            k = int(np.clip(k, 0, total))
            feats.append(f[k : k + fc.frames].astype(np.float16))
            audio.append(s.audio[k * hop : k * hop + win])
            targets.append(target)
            kinds.append(kind)
        done += min(n, len(s.events))
        if not s.events:
            raise DataError("no words fit in a training stream")
    return StreamWindows(np.stack(feats), np.stack(audio).astype(np.int16), np.asarray(targets, np.int64),
                         np.asarray(kinds))
