"""The clips every int8 path calibrates its ranges on: one owner for both device paths.

Both int8 deployments set their activation ranges from a float pass over calibration clips: the fused
kernels (`fused.quantize.quantize_model`: tools/fused_tflite.py, size_table.py, compare_paths.py,
train.py --qat fused) and the paper's unrolled builtin-op graph (`qat.Int8Sim.calibrate`: tools/export.py,
compare_paths.py, train.py --qat). They calibrate on the same clips, chosen here:

    generated   the default: the generated set's training clips (synthetic speech mixed with real noise),
                rendered by the device's own front end, and made the same on every machine (the built-in
                default data), so that a user's export calibrates as ours did
    mltk        the real feature maps' training split (speakers of no reported set; converted features,
                so not quite the device front end's, and only where the data root has them)
    auto        mltk where the data root has it, else generated
    <subset>    a real-clip subset of <data root>/speech_commands (v1_sample); never v2_test_dev,
                the reported set
    fake        feature-like noise (tests of the kernels only; no data needed)

Each draw is seeded (seed 0): the same source and count give the same clips in every tool.
"""

from __future__ import annotations

import numpy as np

from .config import KWSConfig
from .errors import KWSError

DEFAULT = "generated"
REPORTED = "v2_test_dev"  # never a calibration set: it is what every accuracy is reported on
CALIB_CLIPS = 128  # clips by default: the shipped models of both paths, and every tool that measures them


class CalibrationError(KWSError):
    """A calibration source that cannot be used."""


def resolve(source: str) -> str:
    """The concrete source of `source` ("auto": mltk where the data root has it, else generated)."""
    if source == REPORTED:
        raise CalibrationError(f"{REPORTED} is the reported real set: calibrate on mltk, generated or v1_sample")
    if source != "auto":
        return source
    from .paths import mltk_dir

    return "mltk" if (mltk_dir() / "spectrograms.zip").is_file() else "generated"


def draw(n_total: int, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of n of n_total items (all of them when n >= n_total), seeded."""
    if n < 1:
        raise CalibrationError(f"calibration needs at least one clip, got {n}")
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:n])


def calibration_features(cfg: KWSConfig, source: str = DEFAULT, n: int = CALIB_CLIPS, seed: int = 0) -> np.ndarray:
    """(n, frames, channels) float features of `source` (see the module docstring) to calibrate on."""
    from .fused.quantize import fake_calibration

    source = resolve(source)
    if source == "fake":
        return fake_calibration(cfg, n=n)
    from .data import clip_features

    if source == "generated":
        from .data import prepare_data

        train = prepare_data(cfg, None, progress=False).train
        return clip_features(train.subset(draw(len(train), n, seed)), cfg)
    if source == "mltk":
        from .data.feature_sets import TRAIN_SPLIT, load_feature_set
        from .data.mltk import ensure_mltk_features

        fs = load_feature_set(ensure_mltk_features(progress=False), tuple(cfg.labels), cfg.features.frames,
                              cfg.features.channels, split=TRAIN_SPLIT)
        return np.asarray(fs.feats[draw(len(fs), n, seed)], np.float32)
    from .data.speech_commands import load_real_clips

    clips = load_real_clips(source, cfg)
    return clip_features(clips.subset(draw(len(clips), n, seed)), cfg)


HELP = (f"int8 calibration clips, the same for both int8 paths (mamba_kws.calibration): 'generated' (the generated "
        f"set's training clips, through the device front end; the default), 'mltk' (the real feature maps' training "
        f"split), 'auto' (mltk where the data root has it, else generated), a real-clip subset of <data root>/"
        f"speech_commands (v1_sample), or 'fake' (synthetic features; tests only) (default {DEFAULT})")
