"""The training sources of a model (`train.sources` in its YAML), loaded and mixed as feature maps.

    data = build_training_data(cfg, ...)        # every source as a FeatureSet, plus validation and reports
    for x, y, soft, has_soft in data.batches(epoch, batch_size, rank, world): ...

Kinds (config.SourceConfig): the speech set (`generated`, or a Speech Commands directory given by
--data / --download), real clips (`real`), the real feature maps (`mltk`), any feature-set file
(`features`). Audio sources are rendered into feature maps once (mamba_kws.data.render), with teacher
posteriors when distillation is on; feature sources have no audio, so no pretrained teacher can hear
them, but a checkpoint of this project can (`train.distill.features_teacher`, targets cached).

Each epoch draws weight x size clips from every source (without replacement up to its size), shuffles
them together, and each batch is augmented in the feature domain (`augment_batch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import SILENCE_LABEL, UNKNOWN_LABEL, FeatureAugmentConfig, KWSConfig, SourceConfig
from ..errors import DataError
from ..paths import cache_dir, describe
from .clips import ClipSet
from .feature_sets import TRAIN_SPLIT, VAL_SPLIT, FeatureSet, load_feature_set
from .noise import noise_part, read_noise_dir
from .render import render_clips, render_streams

# One feature unit of pymicro-features is 64 / 25.6 = 2.5 natural-log units of the PCAN output:
# v = 2.5 ln(8 s), so 8 s = exp(v / 2.5) is the linear domain in which noise adds.
LOG_UNIT = 2.5
DEFAULT_SOURCES = (SourceConfig(kind="generated"),)


@dataclass
class TrainingData:
    labels: tuple[str, ...]
    sets: list[FeatureSet]  # one per loaded source
    weights: list[float]
    val: FeatureSet  # model selection
    val_name: str
    reports: dict[str, ClipSet]  # audio clips to report on through the real front end (never trained on)
    speech_train: ClipSet | None  # the speech set's training clips (audio): int8 calibration, QAT
    noise: list[np.ndarray]  # training noise recordings (audio)
    trained_on: dict = field(default_factory=dict)  # what real data was trained on: sources and speakers
    summary: dict = field(default_factory=dict)
    class_fractions: dict[int, float] = field(default_factory=dict)  # class -> share of keyword clips per epoch

    def __post_init__(self) -> None:
        self.offsets = np.cumsum([0] + [len(s) for s in self.sets])
        self.feats = np.concatenate([s.feats for s in self.sets]) if self.sets else None
        self.targets = np.concatenate([s.targets for s in self.sets]).astype(np.int64)
        n, c = len(self.targets), len(self.labels)
        self.soft = np.zeros((n, c), np.float32)
        self.has_soft = np.zeros(n, bool)
        for s, lo in zip(self.sets, self.offsets[:-1], strict=True):
            if s.soft is not None:
                self.soft[lo : lo + len(s)] = s.soft
                self.has_soft[lo : lo + len(s)] = True
        noise = [i for i, t in enumerate(self.targets) if t >= 0 and self.labels[t] == SILENCE_LABEL]
        self.noise_index = np.asarray(noise, np.int64)

    def epoch_index(self, epoch: int, seed: int) -> np.ndarray:
        """The clips of one epoch: weight x size from every source; then, if `class_fractions` is set,
        silence and unknown redrawn to those fractions of the keyword clips (the Speech Commands
        protocol: the sources' own shares, e.g. 25 % unknown in the real feature maps, would teach
        the model a prior that real use does not have); shuffled together."""
        rng = np.random.default_rng([seed, 7919, epoch])
        parts = []
        for s, w, lo in zip(self.sets, self.weights, self.offsets[:-1], strict=True):
            parts.append(lo + _draw(rng, len(s), int(round(w * len(s)))))
        index = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if self.class_fractions:
            t = self.targets[index]
            special = np.isin(t, list(self.class_fractions))
            n_kw = int(((t >= 0) & ~special).sum())
            keep = [index[~special]]
            for cls, frac in self.class_fractions.items():
                pool = index[t == cls]  # this epoch's draw of the class, with the source weights
                if len(pool):
                    keep.append(pool[_draw(rng, len(pool), int(round(frac * n_kw)))])
            index = np.concatenate(keep)
        return index[rng.permutation(len(index))]

    def steps_per_epoch(self, batch: int, world: int = 1) -> int:
        return len(self.epoch_index(0, 0)) // (batch * world)

    def batches(self, epoch: int, batch: int, seed: int, aug: FeatureAugmentConfig, spec: tuple[int, int, int, int],
                rank: int = 0, world: int = 1):  # noqa: ANN201 - a generator of tensors
        """(x, y, soft, has_soft) batches of one epoch, augmented (drop_last; DDP: this rank's share)."""
        index = self.epoch_index(epoch, seed)
        per_rank = len(index) // world
        index = index[rank * per_rank : (rank + 1) * per_rank]
        gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch * 7 + rank)
        for b in range(len(index) // batch):
            idx = np.sort(index[b * batch : (b + 1) * batch])
            x = torch.from_numpy(self.feats[idx].astype(np.float32))
            noise = None
            if aug.noise_prob > 0 and len(self.noise_index):
                pick = self.noise_index[torch.randint(len(self.noise_index), (len(idx),), generator=gen).numpy()]
                noise = torch.from_numpy(self.feats[np.sort(pick)].astype(np.float32))
            x = augment_batch(x, aug, spec, gen, noise)
            yield (x, torch.from_numpy(self.targets[idx]), torch.from_numpy(self.soft[idx]),
                   torch.from_numpy(self.has_soft[idx]))


def _draw(rng: np.random.Generator, n: int, want: int) -> np.ndarray:
    """`want` indices of range(n): whole permutations, then part of one (no repeats up to n)."""
    if n == 0 or want <= 0:
        return np.zeros(0, np.int64)
    whole, rest = divmod(want, n)
    return np.concatenate([rng.permutation(n) for _ in range(whole)] + [rng.permutation(n)[:rest]]).astype(np.int64)


def augment_batch(x: torch.Tensor, a: FeatureAugmentConfig, spec: tuple[int, int, int, int],
                  gen: torch.Generator, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Feature-domain augmentation of a batch (B, T, C), in order:
    1. time shift: each clip moves by a uniform +-time_shift_frames, the gap filled with 0;
    2. level: features scaled by 1 + uniform(+-level_db / 20);
    3. noise: with noise_prob, a noise feature map mixed in the linear domain at a uniform SNR;
    4. the estimated high channels replaced by the batch mean there, with high_mask_prob;
    5. SpecAugment `spec` = (freq masks, max width, time masks, max width), filled with the clip mean."""
    b, t, c = x.shape
    if a.time_shift_frames > 0:
        s = torch.randint(-a.time_shift_frames, a.time_shift_frames + 1, (b, 1), generator=gen)
        src = torch.arange(t).unsqueeze(0) - s  # frame i shows frame i - s
        valid = (src >= 0) & (src < t)
        x = torch.gather(x, 1, src.clamp(0, t - 1).unsqueeze(-1).expand(b, t, c)) * valid.unsqueeze(-1)
    if a.level_db > 0:
        x = x * (1 + (torch.rand(b, 1, 1, generator=gen) * 2 - 1) * a.level_db / 20)
    if noise is not None and a.noise_prob > 0:
        use = (torch.rand(b, 1, 1, generator=gen) < a.noise_prob).float()
        lo, hi = a.noise_snr_db
        snr = lo + torch.rand(b, 1, 1, generator=gen) * (hi - lo)
        gain = 10 ** (-snr / 10) * use
        mixed = LOG_UNIT * torch.log(torch.exp(x / LOG_UNIT) + gain * torch.exp(noise / LOG_UNIT))
        floor = LOG_UNIT * math.log1p(0.0)  # 0: where both are at the floor, stay there
        x = torch.where(use.bool().expand_as(x), mixed.clamp_min(floor), x)
    if a.high_mask_prob > 0 and a.high_from_channel < c:
        hi_ch = slice(a.high_from_channel, c)
        use = (torch.rand(b, 1, 1, generator=gen) < a.high_mask_prob)
        mean = x[:, :, hi_ch].mean(dim=(0, 1), keepdim=True).expand(b, t, c - a.high_from_channel)
        x[:, :, hi_ch] = torch.where(use, mean, x[:, :, hi_ch])
    fm, fw, tm, tw = spec
    if (fm and fw) or (tm and tw):
        fill = x.mean(dim=(1, 2), keepdim=True)
        keep = torch.ones(b, t, c, dtype=torch.bool)
        ch, fr = torch.arange(c), torch.arange(t)
        for _ in range(fm):
            w = torch.randint(0, fw + 1, (b, 1), generator=gen)
            s0 = (torch.rand(b, 1, generator=gen) * (c - w + 1)).long()
            keep &= ~((ch >= s0) & (ch < s0 + w)).unsqueeze(1)
        for _ in range(tm):
            w = torch.randint(0, tw + 1, (b, 1), generator=gen)
            s0 = (torch.rand(b, 1, generator=gen) * (t - w + 1)).long()
            keep &= ~((fr >= s0) & (fr < s0 + w)).unsqueeze(2)
        x = torch.where(keep, x, fill)
    return x


def _note(summary: dict, text: str, progress: bool) -> None:
    summary.setdefault("notes", []).append(text)
    if progress:
        print(f"note: {text}")


def build_training_data(cfg: KWSConfig, *, speech: str | Path | None = None, download: bool = False,
                        cache: Path | None = None, progress: bool = True, real_eval: bool = True) -> TrainingData:
    """Load every source of cfg.train.sources (the generated set alone when none are listed)."""
    from ..data import load_real_clips, prepare_data

    cache = cache_dir(cache)
    t = cfg.train
    teacher = t.distill.teacher
    fc = cfg.features
    labels = tuple(cfg.labels)
    sources = t.sources or DEFAULT_SOURCES
    sets: list[FeatureSet] = []
    weights: list[float] = []
    summary: dict = {"sources": []}
    trained_on: dict = {"sources": [], "speakers": set()}
    val_sets: dict[str, FeatureSet] = {}
    reports: dict[str, ClipSet] = {}
    speech_train = None
    noise: list[np.ndarray] = []
    from .generate import noise_folder

    sc_noise = read_noise_dir(noise_folder())
    if sc_noise:
        noise = [noise_part(a, "train") for _, a in sc_noise]

    def add(src: SourceConfig, fs: FeatureSet, real: bool) -> None:
        sets.append(fs)
        weights.append(src.weight)
        summary["sources"].append({"kind": src.kind, "name": fs.name, "clips": len(fs), "weight": src.weight,
                                   "soft_targets": fs.soft is not None, "counts": fs.counts()})
        if real:
            trained_on["sources"].append(fs.name)
            trained_on["speakers"] |= {str(s) for s in fs.speakers if s}

    if teacher:
        from ..teachers import available

        if not available(teacher):
            from ..paths import TEACHERS_ENV, teachers_dir

            _note(summary, f"no teacher models in {teachers_dir()} (set ${TEACHERS_ENV}): training without "
                           "distillation", progress)
            teacher = ""
    for src in sources:
        try:
            if src.kind == "generated":
                splits = prepare_data(cfg, speech, download=download, cache_dir=cache, progress=progress)
                speech_train = splits.train
                noise = splits.noise or noise
                generated = speech is None and not download
                name = "generated" if generated else "speech_commands"
                fs = render_clips(splits.train, cfg, noise, variants=src.variants, seed=t.seed, cache=cache,
                                  name=name, teacher=teacher, progress=progress)
                add(src, fs, real=not generated)
                val_sets[src.kind] = render_clips(splits.val, cfg, [], variants=1, seed=t.seed, cache=cache,
                                                  name=f"{name}_val", progress=progress)
                reports["test"] = splits.test
                summary["speech_set"] = {"source": splits.source, **splits.summary}
            elif src.kind == "streams":
                if speech_train is None:
                    raise DataError("a streams source cuts windows from the speech set: list a source of "
                                    "kind generated before it")
                fs = render_streams(speech_train, cfg, noise, words=src.variants * len(speech_train), seed=t.seed,
                                    cache=cache, name="streams", teacher=teacher, progress=progress)
                add(src, fs, real=speech is not None or download)
            elif src.kind == "real":
                for subset in src.subsets:
                    clips = load_real_clips(subset, cfg)
                    fs = render_clips(clips, cfg, noise, variants=src.variants, seed=t.seed, cache=cache,
                                      name=subset, teacher=teacher, progress=progress)
                    add(src, fs, real=True)
            elif src.kind in ("mltk", "features"):
                if src.kind == "mltk":
                    from .mltk import ensure_mltk_features

                    path = ensure_mltk_features(cache, progress=progress)
                else:
                    path = Path(src.path)
                name = path.stem
                fs = load_feature_set(path, labels, fc.frames, fc.channels, split=TRAIN_SPLIT, name=name)
                if t.distill.features_teacher and fs.soft is None:
                    fs.soft, teacher_speakers = feature_teacher_targets(fs, path, t.distill.features_teacher, cfg,
                                                                        cache, progress)
                    trained_on["speakers"] |= teacher_speakers
                    _note(summary, f"{name}: soft targets of {t.distill.features_teacher} (its "
                                   f"{len(teacher_speakers)} training and selection speakers count as ours)", progress)
                elif teacher and fs.soft is None:
                    _note(summary, f"{name}: no audio, so no teacher targets (trained on its labels)", progress)
                add(src, fs, real=True)
                val = load_feature_set(path, labels, fc.frames, fc.channels, split=VAL_SPLIT, name=f"{name}_val")
                if len(val):
                    val_sets[src.kind] = val
                    trained_on["speakers"] |= {str(s) for s in val.speakers if s}  # selected on: not for reports
        except DataError as exc:
            if src.required:
                raise
            _note(summary, f"source {src.kind} skipped: {exc}", progress)
    if not sets:
        raise DataError(f"no training source could be loaded; {describe()}")
    if t.distill.features_teacher and not any(s["kind"] in ("mltk", "features") for s in summary["sources"]):
        _note(summary, "train.distill.features_teacher is set, but no mltk or features source was loaded", progress)
    if t.select_on == "auto":
        order = [k for k in ("mltk", "features", "generated") if k in val_sets]
    else:
        order = [t.select_on] if t.select_on in val_sets else []
    if not order:
        raise DataError(f"no validation clips for train.select_on = {t.select_on}")
    if real_eval:
        try:
            reports["v2_test_dev"] = load_real_clips("v2_test_dev", cfg)
        except DataError as exc:
            _note(summary, f"no real test clips to report on ({exc})", progress)
    trained_on["speakers"] = sorted(trained_on["speakers"])
    fractions = {labels.index(lab): f for lab, f in ((SILENCE_LABEL, t.silence_fraction),
                                                       (UNKNOWN_LABEL, t.unknown_fraction)) if lab in labels}
    data = TrainingData(labels, sets, weights, val_sets[order[0]], order[0], reports, speech_train, noise,
                        trained_on, summary, fractions if t.balance_classes else {})
    summary["validation"] = {"source": order[0], "clips": len(data.val)}
    return data


def feature_teacher_targets(fs: FeatureSet, path: Path, checkpoints: str, cfg: KWSConfig, cache: Path,
                            progress: bool = True) -> tuple[np.ndarray, set[str]]:
    """The posteriors of one checkpoint, or of several separated by commas (their log posteriors averaged,
    as the `ensemble` teacher), on the feature maps of `fs` (no augmentation, from a zero state), cached in
    teacher_cache/ under the checkpoints' and the feature file's identity; and the speakers the teachers were
    trained or selected on (what they know, the student inherits: evaluation leaves them out too)."""
    import hashlib

    from ..checkpoint import load_checkpoint
    from ..errors import CheckpointError
    from ..evaluate import predict

    paths = [Path(c.strip()).expanduser() for c in str(checkpoints).split(",") if c.strip()]
    models, speakers, digest = [], set(), hashlib.sha256()
    for ckpt in paths:
        try:
            model, tcfg, state = load_checkpoint(ckpt)
        except CheckpointError as exc:
            raise DataError(f"train.distill.features_teacher: {exc}") from None
        if tuple(tcfg.labels) != tuple(cfg.labels) or tcfg.features != cfg.features:
            raise DataError(f"train.distill.features_teacher: {ckpt} has other labels or another front end "
                            "than this model; train the teacher with the same labels and features")
        models.append(model)
        speakers |= {str(s) for s in ((state.get("trained_on") or {}).get("speakers") or ())}
        digest.update(ckpt.read_bytes())
    st = Path(path).stat()
    digest.update(repr((str(Path(path).resolve()), st.st_size, st.st_mtime_ns, fs.name, len(fs),
                        tuple(cfg.labels))).encode())
    out = cache / "teacher_cache" / f"{digest.hexdigest()[:16]}.npz"
    if out.is_file():
        with np.load(out) as z:
            return z["soft"].astype(np.float32), speakers
    logp = [torch.log_softmax(torch.from_numpy(predict(m, fs.feats, batch=512,
                                                       desc=f"{p.parent.name or p.name} on {fs.name}" if progress
                                                       else None)), dim=1) for m, p in zip(models, paths, strict=True)]
    probs = torch.softmax(torch.stack(logp).mean(0), dim=1).numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    soft = probs.astype(np.float16)  # as cached: the first run trains on what later runs read back
    np.savez(tmp, soft=soft)
    tmp.replace(out)
    return soft.astype(np.float32), speakers


def filter_trained_speakers(clips: ClipSet, trained_on: dict | None) -> tuple[ClipSet, int]:
    """Drop the clips of speakers a checkpoint was trained or selected on; (kept clips, dropped count)."""
    speakers = set((trained_on or {}).get("speakers") or ())
    if not speakers:
        return clips, 0
    keep = np.array([s not in speakers for s in clips.speakers], bool)
    return clips.subset(np.flatnonzero(keep)), int((~keep).sum())
