"""Background noise: reading the `_background_noise_` folder, keeping its parts apart per split,
and mixing a noise slice into a clip at a chosen SNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio import AudioError, read_wav

NOISE_DIR = "_background_noise_"
# Each noise recording is cut in time: the first 80 % feeds training (augmentation and training
# silence), the next 10 % validation silence, the last 10 % test silence. No noise is in two splits.
NOISE_PARTS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}


def read_noise_dir(folder: Path, skipped: list[dict] | None = None) -> list[tuple[str, np.ndarray]]:
    """(path, int16 audio) of every readable .wav in `folder`, sorted by name. Unreadable files go to
    `skipped` as {"path", "reason"}."""
    out = []
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob("*.wav")):
        try:
            out.append((str(p), read_wav(p)))
        except AudioError as exc:
            if skipped is not None:
                skipped.append({"path": str(p), "reason": str(exc)})
    return out


def noise_part(audio: np.ndarray, split: str) -> np.ndarray:
    lo, hi = NOISE_PARTS[split]
    n = len(audio)
    return audio[int(lo * n) : int(hi * n)]


def random_slice(rng: np.random.Generator, noise: np.ndarray, length: int) -> np.ndarray:
    """A random `length`-sample slice of `noise` (tiled if the recording is shorter), float32."""
    a = np.asarray(noise, dtype=np.float32)
    if len(a) == 0:
        return np.zeros(length, np.float32)
    if len(a) < length:
        a = np.tile(a, length // len(a) + 1)
    start = int(rng.integers(0, len(a) - length + 1))
    return a[start : start + length]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float, ref_rms: float | None = None) -> np.ndarray:
    """signal + noise scaled so that 20 log10(rms(signal) / rms(noise)) = snr_db. `ref_rms` replaces
    rms(signal) (e.g. the rms of the speech part only). float32 out, not clipped."""
    s = np.asarray(signal, dtype=np.float32)
    ref = rms(s) if ref_rms is None else ref_rms
    n_rms = rms(noise)
    if ref <= 0 or n_rms <= 0:
        return s.copy()
    gain = ref / (n_rms * 10 ** (snr_db / 20))
    return s + noise.astype(np.float32) * np.float32(gain)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)
