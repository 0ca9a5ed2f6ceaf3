"""Training data for keyword spotting.

- clips.py: `ClipSet` (one split in memory) and `DataSplits` (train/val/test + noise).
- speech_commands.py: Speech Commands v2 directories with TensorFlow's protocol; `load_real_clips`.
- generate.py + tts.py: the generated default set (synthetic speakers + real noise), cached.
- kokoro.py: the optional Kokoro-82M engine of tts.py (set-up, voices and blends, synthesis).
- download.py: the official archive, resumable and hash-checked.
- dataset.py: `clip_features` and the audio augmentation `augment_audio`.
- feature_sets.py: `FeatureSet`, precomputed feature maps (.npz) as a training source.
- mltk.py: the real Speech Commands feature maps, converted from their spectrogram JPEGs.
- render.py: audio sources rendered once into augmented feature maps (+ teacher targets), cached.
- sources.py: `build_training_data`, every source of the model YAML mixed by weight, batch augmentation.
- prepare.py: `prepare_data`, the one entry point training uses.
"""

from .clips import ClipSet, DataSplits
from .dataset import augment_audio, clip_features
from .download import download_speech_commands
from .generate import ensure_generated
from .prepare import prepare_data
from .speech_commands import load_real_clips, load_speech_commands

__all__ = [
    "ClipSet", "DataSplits", "augment_audio", "clip_features", "download_speech_commands",
    "ensure_generated", "load_real_clips", "load_speech_commands", "prepare_data",
]
