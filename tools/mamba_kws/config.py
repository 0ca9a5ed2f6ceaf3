"""One source of truth for a model: the YAML file in `models/`.

Every tool (training, export, splitting, header generation, streaming evaluation) loads the
model's YAML through `load_config`, so nothing restates the architecture by hand. Unknown or
mistyped keys are refused with a `ConfigError` that names the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
DEFAULT_CONFIG = MODELS_DIR / "kws_mamba.yaml"

# The 12-class Speech Commands protocol (Warden 2018): 10 keywords, silence, unknown.
SC_KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"
SC_LABELS = (SILENCE_LABEL, UNKNOWN_LABEL, *SC_KEYWORDS)


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class FeatureConfig:
    """The TFLM micro-frontend (pymicro-features on the host, the same C code on the device).

    pymicro-features fixes the window (30 ms), stride (10 ms) and 40 channels; they are listed
    here so that the firmware headers and the streaming tools read them from one place.
    """

    sample_rate: int = 16000
    window_ms: int = 30
    stride_ms: int = 10
    channels: int = 40
    clip_ms: int = 1000

    @property
    def window_samples(self) -> int:
        return self.sample_rate * self.window_ms // 1000

    @property
    def stride_samples(self) -> int:
        return self.sample_rate * self.stride_ms // 1000

    @property
    def clip_samples(self) -> int:
        return self.sample_rate * self.clip_ms // 1000

    @property
    def frames(self) -> int:
        """Feature frames in one clip: 98 for 1 s at 30 ms / 10 ms."""
        return (self.clip_samples - self.window_samples) // self.stride_samples + 1


@dataclass(frozen=True)
class ModelConfig:
    """The Mamba KWS architecture. MCU adaptations are switches; each says why it exists."""

    d_model: int = 32
    n_layers: int = 2
    d_state: int = 8
    # Inner width = expand * d_model. The original Mamba uses 2.
    expand: int = 2
    # Causal depthwise conv width. The original Mamba uses 4.
    d_conv: int = 4
    # Rank of the dt projection; 0 means ceil(d_model / 16) as in the original Mamba.
    dt_rank: int = 0
    # Stem: stack this many 10 ms feature frames into one step (2 -> 20 ms steps, 49 per second).
    # Halving the rate halves scan work and the unrolled graph; streaming then runs one 20 ms hop.
    frame_stack: int = 2
    # dt activation. softplus is the original; relu is cheaper and is an int8 builtin in TFLM.
    dt_activation: str = "softplus"
    # Discretisation of the decay: "exp" is the original exp(dt*A). "sigmoid" uses 2*sigmoid(dt*A),
    # equal to exp at dt*A = 0 and decaying in (0, 1]; TFLM's EXP is float-only but LOGISTIC is int8.
    decay: str = "exp"
    # Activation after the conv and on the gate: silu (original) or hard_swish (int8 builtin).
    activation: str = "silu"
    # Pre-block normalisation: rmsnorm (original), batchnorm (folds into in_proj at export), none.
    norm: str = "rmsnorm"
    # Readout over time: "mean" (whole window) or "last" (the final step; streaming friendly).
    pooling: str = "mean"
    # Initialisation range of dt, as in the original Mamba.
    dt_min: float = 0.001
    dt_max: float = 0.1

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def dt_rank_resolved(self) -> int:
        return self.dt_rank if self.dt_rank > 0 else math.ceil(self.d_model / 16)


_CHOICES = {
    "dt_activation": ("softplus", "relu"),
    "decay": ("exp", "sigmoid"),
    "activation": ("silu", "hard_swish"),
    "norm": ("rmsnorm", "batchnorm", "none"),
    "pooling": ("mean", "last"),
}


@dataclass(frozen=True)
class AugmentConfig:
    time_shift_ms: int = 100
    noise_prob: float = 0.8
    noise_snr_db: tuple[float, float] = (5.0, 30.0)
    spec_freq_masks: int = 2
    spec_freq_width: int = 5
    spec_time_masks: int = 2
    spec_time_width: int = 8


@dataclass(frozen=True)
class FeatureAugmentConfig:
    """Augmentation of precomputed feature maps (no audio to augment): applied per batch in training."""

    time_shift_frames: int = 10  # roll by a uniform +-frames, the gap filled with 0 (digital silence)
    level_db: float = 0.0  # scale the features by 1 + uniform(+-level_db / 20): a louder/quieter channel
    noise_prob: float = 0.0  # mix a noise feature map in at this rate (in the linear domain of the log features)
    noise_snr_db: tuple[float, float] = (0.0, 20.0)
    # Channels 30-39 (4 to 7.5 kHz) of the real feature maps are estimates: with this probability a
    # clip's estimated channels are replaced by the batch's mean there ("mask") or kept ("none").
    high_mask_prob: float = 0.0
    high_from_channel: int = 30


@dataclass(frozen=True)
class SourceConfig:
    """One training source. `kind`:
      generated  the generated speech set (audio; made and cached on first use)
      real       real clips under the data root's speech_commands/ (`subsets`, e.g. v1_sample)
      mltk       the real Speech Commands feature maps under the data root (converted on first use)
      features   a feature-set file (`path`, see mamba_kws.data.feature_sets)
      streams    windows of continuous streams of the speech set's words over noise, with the front end
                 running over the whole stream (warmed up, as on a device): each word's window, the
                 word-free noise between words (silence) and, with a teacher, random cuts (parts of words,
                 transitions) labelled by the teacher alone
    Audio sources are rendered once into `variants` augmented feature maps each (time shift, noise);
    `streams` places `variants` x (speech-set clips) words.
    `weight`: clips drawn from the source per epoch, as a multiple of its size (0.5: half of it).
    `required: false`: a missing source is reported in one line and training goes on without it."""

    kind: str = "generated"
    weight: float = 1.0
    subsets: tuple[str, ...] = ()
    path: str = ""
    variants: int = 4
    required: bool = True


SOURCE_KINDS = ("generated", "real", "mltk", "features", "streams")


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation: a pretrained teacher's soft targets on the audio sources, and a checkpoint
    of this project's own (same front end) on the feature sources, which have no audio to play."""

    teacher: str = ""  # "" = off; a teacher name of mamba_kws.teachers (ensemble, ds_cnn_l, mlperf_float, ...)
    # "" = off; a checkpoint (e.g. a larger model trained by train.py), or several separated by commas (their
    # log posteriors averaged): soft targets on the feature maps of the `mltk` and `features` sources
    # (README: Training). Their training speakers count as the student's.
    features_teacher: str = ""
    weight: float = 0.5  # loss = (1 - weight) * CE(label) + weight * T^2 * KL(teacher || student), where known
    temperature: float = 2.0


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 1
    label_smoothing: float = 0.05
    # Exponential moving average of the weights (Polyak averaging), per optimizer step: validation,
    # best.pt and everything exported use the average. 0 = off; 0.999 averages about the last 1,000 steps.
    ema_decay: float = 0.0
    seed: int = 0
    # Fraction of each training epoch drawn from silence and from unknown words (SC protocol).
    silence_fraction: float = 0.1
    unknown_fraction: float = 0.1
    # Streaming: prepend this many steps (20 ms each) of another clip of the batch (its end) to every
    # training clip, so the Mamba state is not zero when the clip starts, as on a continuous stream;
    # the readout pools the clip's own steps only. 0 = train on isolated 1 s clips (single process).
    stream_context_steps: int = 0
    # The share of batches trained with that context (the others from a zero state, as a clip is scored).
    stream_context_prob: float = 1.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    feature_augment: FeatureAugmentConfig = field(default_factory=FeatureAugmentConfig)
    # What to train on (empty: the generated set alone) and whose validation split selects the
    # checkpoint ("auto": the first source that has one: mltk's speakers, else the generated set's).
    sources: tuple[SourceConfig, ...] = ()
    # Redraw silence and unknown each epoch to silence_fraction / unknown_fraction of the keyword clips.
    balance_classes: bool = True
    select_on: str = "auto"
    distill: DistillConfig = field(default_factory=DistillConfig)


@dataclass(frozen=True)
class QATConfig:
    """Quantisation-aware fine-tuning for the int8 export (tools/train.py --init CKPT --qat)."""

    epochs: int = 6
    lr: float = 5e-4
    # loss = cross-entropy of the float model + match * KL(float posteriors || int8-simulated ones)
    match: float = 2.0
    # strength of the scan-state equalisation applied before fine-tuning (mamba_kws.equalize; 0: off)
    equalize: float = 0.5


@dataclass(frozen=True)
class GeneratedDataConfig:
    """The default data set on a fresh machine: synthetic speech with real noise mixed in."""

    clips_per_keyword: int = 300
    unknown_words: int = 40
    clips_per_unknown_word: int = 12
    silence_clips: int = 300
    seed: int = 0
    # Split by synthetic speaker (voice + variant), like Speech Commands splits by speaker.
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    # TTS engines (mamba_kws/data/tts.py), e.g. [espeak, flite, festival, kokoro]; empty: espeak, flite and
    # festival. One asked for here but not installed is left out with a note (the cache key has what was used).
    engines: tuple[str, ...] = ()


@dataclass(frozen=True)
class KWSConfig:
    name: str = "kws_mamba"
    description: str = ""
    labels: tuple[str, ...] = SC_LABELS
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: GeneratedDataConfig = field(default_factory=GeneratedDataConfig)
    qat: QATConfig = field(default_factory=QATConfig)
    # Free-form sections owned by later tools (export, detection); validated by those tools.
    export: dict[str, Any] = field(default_factory=dict)
    detection: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def steps(self) -> int:
        """Model time steps in one clip after the stem (49 for 98 frames stacked by 2)."""
        return self.features.frames // self.model.frame_stack

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _build(cls: type, data: Any, where: str, source: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{where or 'top level'}' must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{path}' (known: {', '.join(sorted(names))})")
        kwargs[key] = _coerce(hints[key], value, path, source)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - dataclass signature mismatch
        raise ConfigError(f"{source}: {where or 'top level'}: {exc}") from None


def _coerce(hint: Any, value: Any, path: str, source: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path, source)
    origin = get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{path}' must be a list, got {value!r}")
        args = get_args(hint)
        if len(args) > 1 and args[1] is not Ellipsis and len(value) != len(args):
            raise ConfigError(f"{source}: '{path}' must be a list of {len(args)} values, got {value!r}")
        item = args[0]
        return tuple(_coerce(item, v, path, source) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{path}' must be a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{path}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: '{path}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: '{path}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: '{path}' must be a string, got {value!r}")
        return value
    return value


# The allowed range of every number in the train:, data: and qat: sections, by its path:
# (low, high, whether low itself is allowed); None: no bound on that side. NaN fails every range.
_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "train.epochs": (1, None, True),
    "train.batch_size": (1, None, True),
    "train.lr": (0, None, False),
    "train.weight_decay": (0, None, True),
    "train.warmup_epochs": (0, None, True),
    "train.label_smoothing": (0, 1, True),
    "train.ema_decay": (0, 0.9999, True),
    "train.seed": (0, 2**32 - 1, True),
    "train.silence_fraction": (0, None, True),
    "train.unknown_fraction": (0, None, True),
    "train.stream_context_prob": (0, 1, True),
    "train.augment.time_shift_ms": (0, None, True),
    "train.augment.noise_prob": (0, 1, True),
    "train.augment.spec_freq_masks": (0, None, True),
    "train.augment.spec_freq_width": (0, None, True),
    "train.augment.spec_time_masks": (0, None, True),
    "train.augment.spec_time_width": (0, None, True),
    "train.feature_augment.time_shift_frames": (0, None, True),
    "train.feature_augment.level_db": (0, None, True),
    "train.feature_augment.noise_prob": (0, 1, True),
    "train.feature_augment.high_mask_prob": (0, 1, True),
    "train.distill.weight": (0, 1, True),
    "train.distill.temperature": (0, None, False),
    "data.clips_per_keyword": (1, None, True),
    "data.unknown_words": (0, None, True),
    "data.clips_per_unknown_word": (0, None, True),
    "data.silence_clips": (0, None, True),
    "data.seed": (0, 2**32 - 1, True),
    "data.val_fraction": (0, 1, True),
    "data.test_fraction": (0, 1, True),
    "qat.epochs": (1, None, True),
    "qat.lr": (0, None, False),
    "qat.match": (0, None, True),
    "qat.equalize": (0, 1, True),
}


def _check_range(path: str, value: float, source: str) -> None:
    lo, hi, low_ok = _RANGES[path]
    inside = math.isfinite(value) and (hi is None or value <= hi)
    if lo is not None:
        inside = inside and (value >= lo if low_ok else value > lo)
    if not inside:
        want = [f"{'>=' if low_ok else '>'} {lo}"] if lo is not None else []
        want += [f"<= {hi}"] if hi is not None else []
        raise ConfigError(f"{source}: '{path}' must be {' and '.join(want)}, got {value}")


def _validate_ranges(cfg: KWSConfig, source: str) -> None:
    for path in _RANGES:
        node: Any = cfg
        for part in path.split("."):
            node = getattr(node, part)
        _check_range(path, node, source)


def _validate(cfg: KWSConfig, source: str) -> None:
    m = cfg.model
    for key, choices in _CHOICES.items():
        value = getattr(m, key)
        if value not in choices:
            raise ConfigError(f"{source}: 'model.{key}' is '{value}'; choose one of {', '.join(choices)}")
    for key in ("d_model", "n_layers", "d_state", "expand", "d_conv", "frame_stack"):
        if getattr(m, key) < 1:
            raise ConfigError(f"{source}: 'model.{key}' must be >= 1, got {getattr(m, key)}")
    if cfg.features.frames % m.frame_stack:
        raise ConfigError(
            f"{source}: 'model.frame_stack' = {m.frame_stack} does not divide the "
            f"{cfg.features.frames} feature frames of a clip"
        )
    if len(set(cfg.labels)) != len(cfg.labels) or len(cfg.labels) < 2:
        raise ConfigError(f"{source}: 'labels' must be at least two distinct names")
    _validate_ranges(cfg, source)
    t = cfg.train
    for i, src in enumerate(t.sources):
        where = f"train.sources[{i}]"
        if src.kind not in SOURCE_KINDS:
            raise ConfigError(f"{source}: '{where}.kind' is '{src.kind}'; choose one of {', '.join(SOURCE_KINDS)}")
        if not (src.weight >= 0 and math.isfinite(src.weight)):
            raise ConfigError(f"{source}: '{where}.weight' must be a number >= 0, got {src.weight}")
        if src.variants < 1:
            raise ConfigError(f"{source}: '{where}.variants' must be >= 1, got {src.variants}")
        if src.kind == "real" and not src.subsets:
            raise ConfigError(f"{source}: '{where}' of kind real needs 'subsets' (e.g. [v1_sample])")
        if src.kind == "real" and "v2_test_dev" in src.subsets:
            raise ConfigError(f"{source}: '{where}': v2_test_dev is the reported real set, never trained on")
        if src.kind == "features" and not src.path:
            raise ConfigError(f"{source}: '{where}' of kind features needs 'path' (a feature-set .npz)")
    if t.select_on not in ("auto", *SOURCE_KINDS):
        raise ConfigError(f"{source}: 'train.select_on' must be auto or a source kind, got '{t.select_on}'")
    if not 0 <= t.stream_context_steps <= cfg.steps:
        raise ConfigError(f"{source}: 'train.stream_context_steps' must be in [0, {cfg.steps}] (the steps of a "
                          f"clip), got {t.stream_context_steps}")
    if cfg.data.val_fraction + cfg.data.test_fraction >= 1:
        raise ConfigError(f"{source}: 'data.val_fraction' + 'data.test_fraction' must be below 1 (the rest is "
                          f"the training split), got {cfg.data.val_fraction} + {cfg.data.test_fraction}")
    for where, (lo, hi) in (("train.augment.noise_snr_db", t.augment.noise_snr_db),
                            ("train.feature_augment.noise_snr_db", t.feature_augment.noise_snr_db)):
        if not lo <= hi:
            raise ConfigError(f"{source}: '{where}' is [low, high] in dB, got [{lo}, {hi}]")
    if not 0 <= t.feature_augment.high_from_channel <= cfg.features.channels:
        raise ConfigError(f"{source}: 'train.feature_augment.high_from_channel' must be in "
                          f"[0, {cfg.features.channels}], got {t.feature_augment.high_from_channel}")
    if cfg.data.engines:
        from .data.tts import ENGINES

        unknown = [e for e in cfg.data.engines if e not in ENGINES]
        if unknown:
            raise ConfigError(f"{source}: 'data.engines': unknown {', '.join(unknown)} (known: {', '.join(ENGINES)})")
    f = cfg.features
    if (f.sample_rate, f.window_ms, f.stride_ms, f.channels) != (16000, 30, 10, 40):
        raise ConfigError(
            f"{source}: 'features' must be 16000 Hz, 30 ms window, 10 ms stride, 40 channels: "
            "the TFLM micro-frontend (pymicro-features) is fixed to those"
        )


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> KWSConfig:
    cfg = _build(KWSConfig, data or {}, "", source)
    _validate(cfg, source)
    return cfg


def check_config(cfg: KWSConfig, source: str) -> KWSConfig:
    """Validate a config changed in code (e.g. by command-line options) as a loaded one is."""
    _validate(cfg, source)
    return cfg


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...], source: str) -> dict[str, Any]:
    """`key.sub=value` strings (value in YAML: 48, true, [a, b], {kind: mltk}) set into a config dict."""
    out = dict(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source}: override {item!r} must look like section.key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"{source}: override {item!r}: the value is not valid YAML") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: override {item!r}: '{part}' is not a section")
            node[part] = child = dict(child)
            node = child
        node[parts[-1]] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> KWSConfig:
    """Load and validate a model YAML (plus `section.key=value` overrides). Raises ConfigError with one
    clear line."""
    p = Path(path) if path is not None else DEFAULT_CONFIG
    if not p.exists() and not p.suffix:
        candidate = MODELS_DIR / f"{p}.yaml"
        if candidate.exists():
            p = candidate
    if not p.is_file():
        raise ConfigError(f"config file not found: {p} (the configs are in {MODELS_DIR})")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}".splitlines()[0]) from None
    if overrides:
        data = apply_overrides(data or {}, overrides, str(p))
    return config_from_dict(data or {}, str(p))
