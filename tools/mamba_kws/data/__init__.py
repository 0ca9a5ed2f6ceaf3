"""Training data for keyword spotting.

- clips.py: `ClipSet` (one split in memory) and `DataSplits` (train/val/test + noise).
- speech_commands.py: Speech Commands v2 directories with TensorFlow's protocol; `load_real_clips`.
- generate.py + tts.py: the generated default set (synthetic speakers + real noise), cached.
- kokoro.py: the optional Kokoro-82M engine of tts.py (set-up, voices and blends, synthesis).
- download.py: the official archive, resumable and hash-checked.
- dataset.py: `FeatureDataset` (features + on-the-fly augmentation) and `clip_features`.
- prepare.py: `prepare_data`, the one entry point training uses.
"""

from .clips import ClipSet, DataSplits
from .dataset import FeatureDataset, clip_features
from .download import download_speech_commands
from .generate import ensure_generated
from .prepare import prepare_data
from .speech_commands import load_real_clips, load_speech_commands

__all__ = [
    "ClipSet", "DataSplits", "FeatureDataset", "clip_features", "download_speech_commands",
    "ensure_generated", "load_real_clips", "load_speech_commands", "prepare_data",
]
