"""Where the project finds its data: one data root, one cache, one teachers folder.

Every tool resolves paths through these functions, so nothing else in the code names a folder of
any particular machine.

- data root (inputs; may be read-only): `--data-root DIR`, else `$KWS_DATA`, else `<repo>/data`.
  Layout below it, each part optional:
      speech_commands/            real clips: <subset>/<label>/*.wav, manifest.csv, _background_noise_/
      speech_commands_mltk/       spectrograms.zip + mapping_W.npy (precomputed real feature maps)
- cache (what the tools make; writable): `--cache DIR`, else `$KWS_CACHE`, else `<repo>/data`.
      generated/<key>/            the generated speech set
      features/<name>.npz         converted feature sets
      teacher_cache/<key>.npz     distillation soft targets
      kokoro/                     the optional Kokoro TTS model and voices (tools/gen_data.py --setup-kokoro)
- teachers (pretrained 12-class models for distillation and baselines): `--teachers DIR`, else
  `$KWS_TEACHERS`, else `<data root>/teachers`.

`make` and `.ci/run` point the variables at our machines' shared folder when it exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import REPO_ROOT

DATA_ENV = "KWS_DATA"
CACHE_ENV = "KWS_CACHE"
TEACHERS_ENV = "KWS_TEACHERS"
DEFAULT_DATA = REPO_ROOT / "data"

SPEECH_COMMANDS = "speech_commands"
MLTK = "speech_commands_mltk"


def _pick(option: str | Path | None, env: str, default: Path) -> Path:
    if option:
        return Path(option).expanduser()
    value = os.environ.get(env, "").strip()
    return Path(value).expanduser() if value else default


def data_root(option: str | Path | None = None) -> Path:
    """The data root: the option, else $KWS_DATA, else <repo>/data."""
    return _pick(option, DATA_ENV, DEFAULT_DATA)


def cache_dir(option: str | Path | None = None) -> Path:
    """Where tools write what they make: the option, else $KWS_CACHE, else <repo>/data."""
    return _pick(option, CACHE_ENV, DEFAULT_DATA)


def speech_commands_dir(root: str | Path | None = None) -> Path:
    """The real Speech Commands clips (`v2_test_dev/`, `v1_sample/`, `_background_noise_/`)."""
    return data_root(root) / SPEECH_COMMANDS


def mltk_dir(root: str | Path | None = None) -> Path:
    """The Speech Commands spectrogram set that `mamba_kws.data.features` converts."""
    return data_root(root) / MLTK


def teachers_dir(option: str | Path | None = None, root: str | Path | None = None) -> Path:
    """The pretrained teachers: the option, else $KWS_TEACHERS, else <data root>/teachers."""
    return _pick(option, TEACHERS_ENV, data_root(root) / "teachers")


def describe() -> str:
    """One line for error messages: how to point the tools at data."""
    return (f"set ${DATA_ENV} (or --data-root) to a folder holding {SPEECH_COMMANDS}/ and {MLTK}/; "
            f"now {data_root()}")


def have_real_clips(subset: str, instead: str) -> bool:
    """Whether the data root holds the real-clip subset; where it does not, one note saying so and what the
    tool does `instead`, so that a fresh clone with nothing beside it goes on."""
    if (speech_commands_dir() / subset).is_dir():
        return True
    print(f"note: no real clips {subset} ({describe()}): {instead}")
    return False
