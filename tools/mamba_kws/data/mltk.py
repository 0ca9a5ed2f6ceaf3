"""Real Speech Commands v0.02 feature maps from the MLTK spectrogram set (features only, no audio).

Input, under the data root (`mamba_kws.paths.mltk_dir()`): `spectrograms.zip` (98 x 40 8-bit JPEGs of
2,294 training/validation speakers + background noise, with `manifest.csv`) and `mapping_W.npy`.
Output: a feature-set file (`mamba_kws.data.feature_sets`) in the cache, `features/sc_mltk.npz`, made
once (about a minute) and reused.

The JPEGs are the TFLM micro-frontend as MLTK configured it (0-4 kHz filterbank, no noise reduction,
no PCAN, log; J = clip(0.3041 F - 56.7, 0, 255)) on the clip centre-padded to 1 s. The conversion
into pymicro-features units (the project's front end: 125-7500 Hz, noise reduction and PCAN on):

1. per frame, L = [J, J == 0, 1] @ W (W: ridge regression fitted on paired WAVs) is the log
   filterbank output with pymicro's filterbank but no noise reduction/PCAN; frames whose largest
   pixel is <= 3 are the digital silence of the padding (L = 0);
2. s = exp(L / 64) / 8 is the filterbank amplitude;
3. TFLM's noise reduction, PCAN and log, in float, from a fresh state per clip; / 25.6.

Fidelity (the data set's README): correlation 0.94 with pymicro-features of the same WAVs, 0.97 in
channels 0-29 (below 4 kHz) but only 0.81 in channels 30-39, which the JPEGs do not hold (estimated
from the lower bands).
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import DataError
from ..paths import cache_dir, describe, mltk_dir
from .feature_sets import save_feature_set

LABEL_NAMES = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_silence_", "_unknown_"]
FRAMES, CHANNELS = 98, 40
BATCH = 512
OUT_NAME = "sc_mltk"
# Channels 30-39 (4 to 7.5 kHz) are estimated from the lower bands: the JPEGs keep nothing above 4 kHz.
ESTIMATED_CHANNELS = (30, 40)

# TFLM micro-frontend constants as pymicro-features sets them.
SMOOTHING_BITS = 10
CORRECTION_BITS = 3  # input_correction_bits = msb(fft size 512) - 1 - (scale shift 6)
EVEN_SMOOTHING, ODD_SMOOTHING, MIN_SIGNAL_REMAINING = 0.025, 0.06, 0.05
PCAN_STRENGTH, PCAN_OFFSET, PCAN_GAIN_BITS = 0.95, 80.0, 21
FLOAT_SCALE = 25.6  # pymicro-features float = uint16 / 25.6


def jpeg_to_filterbank_log(J: np.ndarray, W: np.ndarray) -> np.ndarray:
    """J (N, 98, 40) pixels -> L (N, 98, 40): TFLM's log filterbank output without noise reduction/PCAN."""
    J = J.astype(np.float64)
    X = np.concatenate([J, (J == 0).astype(np.float64), np.ones(J.shape[:2] + (1,))], axis=-1)
    L = X @ W
    L[J.max(axis=2) <= 3] = 0.0  # frames of the centre padding (digital silence)
    return np.clip(L, 0, 65535)


def noise_reduction_pcan_log(s: np.ndarray) -> np.ndarray:
    """s (N, T, C) filterbank amplitudes -> pymicro-features float features (N, T, C), float32.

    TFLM noise_reduction.c, pcan_gain_control.c and log_scale.c in float, frame by frame:
      estimate <- k * s_up + (1 - k) * estimate          (s_up = s * 2^10, k = 0.025 even / 0.06 odd)
      signal    = max((s_up - min(estimate, s_up)) / 2^10, 0.05 * s)
      gain      = min(2^21 * (estimate / 2^7 + 80)^-0.95, 32767)
      snr       = signal * gain / 2^6
      shrunk    = snr^2 / 2^20 if snr < 2^13 else snr / 64 - 64
      feature   = 64 * ln(8 * shrunk) (0 where 8 * shrunk <= 1), clipped to 65535, / 25.6
    """
    n, t_len, c = s.shape
    k = np.where(np.arange(c) % 2 == 0, EVEN_SMOOTHING, ODD_SMOOTHING)[None]
    in_bits = SMOOTHING_BITS - CORRECTION_BITS
    snr_shift = PCAN_GAIN_BITS - CORRECTION_BITS - 12
    estimate = np.zeros((n, c))
    out = np.zeros((n, t_len, c), np.float32)
    for t in range(t_len):
        s_up = s[:, t] * (1 << SMOOTHING_BITS)
        estimate = s_up * k + estimate * (1 - k)
        signal = np.maximum((s_up - np.minimum(estimate, s_up)) / (1 << SMOOTHING_BITS),
                            s[:, t] * MIN_SIGNAL_REMAINING)
        gain = np.minimum((1 << PCAN_GAIN_BITS) * (estimate / (1 << in_bits) + PCAN_OFFSET) ** (-PCAN_STRENGTH),
                          32767)
        snr = signal * gain / (1 << snr_shift)
        shrunk = np.where(snr < (2 << 12), snr * snr / (1 << 20), snr / 64.0 - 64.0)
        v = shrunk * (1 << CORRECTION_BITS)
        out[:, t] = np.where(v > 1, 64.0 * np.log(np.maximum(v, 1)), 0.0)
    return np.minimum(out, 65535) / FLOAT_SCALE


def jpegs_to_features(J: np.ndarray, W: np.ndarray) -> np.ndarray:
    """J (N, 98, 40) uint8 pixels -> (N, 98, 40) float32 in pymicro-features units."""
    L = jpeg_to_filterbank_log(J, W)
    s = np.exp(L / 64.0) / (1 << CORRECTION_BITS)
    s[L == 0] = 0.0
    return noise_reduction_pcan_log(s)


def _read_jpeg(data: bytes, name: str) -> np.ndarray:
    from PIL import Image

    J = np.asarray(Image.open(io.BytesIO(data)))
    if J.shape != (FRAMES, CHANNELS):
        raise DataError(f"{name}: expected a {FRAMES}x{CHANNELS} grayscale JPEG, got {J.shape}")
    return J


def convert_mltk(src: Path, out: Path, progress: bool = True) -> Path:
    """spectrograms.zip + mapping_W.npy in `src` -> feature-set file `out`."""
    zpath, wpath = src / "spectrograms.zip", src / "mapping_W.npy"
    for p in (zpath, wpath):
        if not p.is_file():
            raise DataError(f"{p} not found: the real feature maps need {zpath.name} and {wpath.name}; {describe()}")
    W = np.load(wpath)
    if W.shape != (2 * CHANNELS + 1, CHANNELS):
        raise DataError(f"{wpath}: expected an {2 * CHANNELS + 1} x {CHANNELS} matrix, got {W.shape}")
    try:
        with zipfile.ZipFile(zpath) as z:
            rows = list(csv.DictReader(io.TextIOWrapper(z.open("manifest.csv"), encoding="utf-8")))
            rows = [r for r in rows if r["label"] in LABEL_NAMES]
            feats = np.zeros((len(rows), FRAMES, CHANNELS), np.float16)
            bar = tqdm(total=len(rows), desc="converting feature maps", unit="clip", disable=not progress)
            for i in range(0, len(rows), BATCH):
                J = np.stack([_read_jpeg(z.read(r["file"]), r["file"]) for r in rows[i : i + BATCH]])
                feats[i : i + BATCH] = jpegs_to_features(J, W).astype(np.float16)
                bar.update(len(J))
            bar.close()
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DataError(f"{zpath}: not a readable spectrogram archive ({exc})") from None
    labels = np.array([LABEL_NAMES.index(r["label"]) for r in rows], np.int16)
    save_feature_set(out, feats, labels, LABEL_NAMES, [r["word"] for r in rows], [r["speaker"] for r in rows],
                     [r["split"] for r in rows])
    return out


def ensure_mltk_features(cache: Path | None = None, root: Path | None = None, progress: bool = True) -> Path:
    """The converted feature-set file, made on first use in <cache>/features/sc_mltk.npz."""
    out = cache_dir(cache) / "features" / f"{OUT_NAME}.npz"
    if out.is_file():
        return out
    src = mltk_dir(root)
    if progress:
        print(f"converting the real feature maps of {src} into {out} (once, about a minute)")
    return convert_mltk(src, out, progress=progress)
