"""Reading and writing 16 kHz mono 16-bit WAV clips, with one clear error for bad files."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """A WAV file that cannot be used; the message names the file and why."""


def read_wav(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return the clip as int16 mono at `sample_rate`. Other rates are resampled, stereo is
    averaged; a corrupt, truncated or non-PCM file raises AudioError."""
    p = Path(path)
    try:
        with wave.open(str(p), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{p}: not a readable PCM WAV file ({str(exc) or 'the file ends early'})") from None
    except OSError as exc:
        raise AudioError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if width != 2:
        raise AudioError(f"{p}: {8 * width}-bit samples; only 16-bit PCM is supported")
    if channels < 1:
        raise AudioError(f"{p}: no audio channels")
    frames = len(raw) // (2 * channels)
    if frames < n:
        raise AudioError(f"{p}: truncated: header says {n} samples, file holds {frames}")
    audio = np.frombuffer(raw[: frames * 2 * channels], dtype="<i2").reshape(-1, channels)
    audio = audio.mean(axis=1) if channels > 1 else audio[:, 0].astype(np.float64)
    if rate != sample_rate:
        if rate < 8000:
            raise AudioError(f"{p}: sample rate {rate} Hz is too low (need {sample_rate} Hz)")
        g = np.gcd(rate, sample_rate)
        audio = resample_poly(audio, sample_rate // g, rate // g)
    return np.clip(np.round(audio), -32768, 32767).astype(np.int16)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    a = np.asarray(audio)
    if a.dtype != np.int16:
        a = np.clip(np.round(a.astype(np.float64) * (32767.0 if np.abs(a).max(initial=0) <= 1.0 else 1.0)),
                    -32768, 32767).astype(np.int16)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(a.tobytes())


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Pad with zeros (centred) or crop (centred) to exactly `length` samples."""
    n = len(audio)
    if n == length:
        return audio
    if n > length:
        start = (n - length) // 2
        return audio[start : start + length]
    pad = length - n
    return np.pad(audio, (pad // 2, pad - pad // 2))
