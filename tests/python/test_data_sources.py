"""Training sources: feature-set files, the MLTK conversion (checked against the real front end on
paired WAVs), rendering audio with teacher targets, the per-epoch mix, batch augmentation, the
distillation loss and the speaker filter of reports."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
import torch
from mamba_kws.config import SC_LABELS, UNKNOWN_LABEL, FeatureAugmentConfig, config_from_dict, load_config
from mamba_kws.data.clips import ClipSet
from mamba_kws.data.feature_sets import FeatureSet, load_feature_set, save_feature_set
from mamba_kws.data.sources import TrainingData, augment_batch, filter_trained_speakers
from mamba_kws.errors import DataError

FRAMES, CHANNELS = 98, 40


def _fake_set(path, n=20, names=("yes", "no", "cat", "_silence_"), splits=("training", "validation")):
    rng = np.random.default_rng(0)
    feats = rng.uniform(0, 20, (n, FRAMES, CHANNELS)).astype(np.float16)
    labels = np.arange(n) % len(names)
    save_feature_set(path, feats, labels, list(names), [names[i] for i in labels], [f"s{i % 5}" for i in range(n)],
                     [splits[i % len(splits)] for i in range(n)])
    return feats, labels


def test_feature_set_round_trip_maps_labels_by_name(tmp_path, tiny_cfg):
    feats, labels = _fake_set(tmp_path / "f.npz")
    fs = load_feature_set(tmp_path / "f.npz", tiny_cfg.labels, FRAMES, CHANNELS)
    assert len(fs) == 20 and np.array_equal(fs.feats, feats)
    names = [tiny_cfg.labels[t] for t in fs.targets]
    assert names[:4] == ["yes", "no", UNKNOWN_LABEL, "_silence_"]  # "cat" is not a label: unknown
    train = load_feature_set(tmp_path / "f.npz", tiny_cfg.labels, FRAMES, CHANNELS, split="training")
    assert len(train) == 10 and np.array_equal(train.feats, feats[::2]) and train.speakers[1] == "s2"
    assert fs.counts()["yes"] == 5


@pytest.mark.parametrize("breakage, message", [
    ("missing", "feature set not found"),
    ("not_npz", "not a readable"),
    ("shape", "must be (N, 98, 40)"),
    ("nan", "NaN"),
    ("keys", "missing"),
])
def test_bad_feature_set_is_one_clear_error(tmp_path, tiny_cfg, breakage, message):
    p = tmp_path / "bad.npz"
    if breakage == "not_npz":
        p.write_bytes(b"hello")
    elif breakage == "shape":
        save_feature_set(p, np.zeros((2, 50, 40)), [0, 1], ["yes", "no"], ["yes", "no"], ["a", "b"], ["training"] * 2)
    elif breakage == "nan":
        f = np.zeros((2, FRAMES, CHANNELS))
        f[1, 3, 4] = np.nan
        save_feature_set(p, f, [0, 1], ["yes", "no"], ["yes", "no"], ["a", "b"], ["training"] * 2)
    elif breakage == "keys":
        np.savez(p, feats=np.zeros((1, FRAMES, CHANNELS)))
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_feature_set(p, tiny_cfg.labels, FRAMES, CHANNELS)


def _zip_of(tmp_path, images: dict[str, np.ndarray]):
    from PIL import Image

    zpath = tmp_path / "spectrograms.zip"
    rows = []
    with zipfile.ZipFile(zpath, "w") as z:
        for name, img in images.items():
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=95)
            z.writestr(name, buf.getvalue())
            label = name.split("/")[1]
            rows.append({"file": name, "split": name.split("/")[0], "label": label, "word": label,
                         "speaker": "spk", "source_repo": "", "source_commit": "", "source_path": "", "sha256": ""})
        text = io.StringIO()
        w = csv.DictWriter(text, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        z.writestr("manifest.csv", text.getvalue())
    return zpath


def test_mltk_conversion_of_a_small_archive(tmp_path, tiny_cfg, shared_mltk):
    from mamba_kws.data.mltk import convert_mltk

    rng = np.random.default_rng(0)
    speech = np.zeros((FRAMES, CHANNELS), np.uint8)
    speech[30:70] = rng.integers(60, 200, (40, CHANNELS))
    images = {"training/yes/a.jpg": speech, "validation/no/b.jpg": speech[::-1].copy(),
              "training/_silence_/c.jpg": np.zeros((FRAMES, CHANNELS), np.uint8)}
    _zip_of(tmp_path, images)
    (tmp_path / "mapping_W.npy").write_bytes((shared_mltk / "mapping_W.npy").read_bytes())
    out = convert_mltk(tmp_path, tmp_path / "out.npz", progress=False)
    fs = load_feature_set(out, tiny_cfg.labels, FRAMES, CHANNELS)
    assert [tiny_cfg.labels[t] for t in fs.targets] == ["yes", "no", "_silence_"]
    assert fs.feats.dtype == np.float16
    f = fs.feats.astype(np.float32)
    assert (f[2] == 0).all()  # an all-black image is digital silence: features 0
    assert f[0, 30:70].mean() > 5 and (f[0, :25] == 0).all()  # speech where the image has it, 0 before
    again = convert_mltk(tmp_path, tmp_path / "again.npz", progress=False)
    assert np.array_equal(np.load(again)["feats"], np.load(out)["feats"])  # deterministic


def test_mltk_conversion_matches_the_real_front_end(shared_mltk, shared_sc):
    """Real JPEGs converted against pymicro-features of the very same WAVs (centre-padded, as the JPEG
    generator padded them): the data set's README measured correlation 0.97 below 4 kHz, 0.81 above."""
    from mamba_kws.data.mltk import jpegs_to_features
    from mamba_kws.features import compute_features
    from PIL import Image

    rows = list(csv.DictReader((shared_mltk / "dev_pairs" / "manifest.csv").open()))[::40][:40]
    W = np.load(shared_mltk / "mapping_W.npy")
    J = np.stack([np.asarray(Image.open(shared_mltk / "dev_pairs" / r["jpg"])) for r in rows])
    Q = jpegs_to_features(J, W)
    P = []
    for r in rows:
        from mamba_kws.audio import read_wav

        a = np.trim_zeros(read_wav(shared_sc / "v2_test_dev" / r["wav"]), "b")[:16000]
        left = (16000 - len(a)) // 2
        P.append(compute_features(np.pad(a, (left, 16000 - len(a) - left)).astype(np.int16)))
    P = np.stack(P)
    low = np.corrcoef(Q[..., :30].ravel(), P[..., :30].ravel())[0, 1]
    high = np.corrcoef(Q[..., 30:].ravel(), P[..., 30:].ravel())[0, 1]
    assert low > 0.95 and 0.7 < high < low, (low, high)


def _clips(cfg, n=6):
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal((n, 16000)) * np.linspace(0, 3000, 16000)).astype(np.int16)
    targets = np.arange(n) % len(cfg.labels)
    return ClipSet(tuple(cfg.labels), audio, targets.astype(np.int64), ["w"] * n, [f"p{i}" for i in range(n)],
                   [""] * n)


def test_render_variants_are_cached_and_variant_zero_is_the_clip(tmp_path, tiny_cfg):
    from mamba_kws.data import clip_features
    from mamba_kws.data.render import render_clips

    clips = _clips(tiny_cfg)
    noise = [(np.random.default_rng(2).standard_normal(48000) * 1000).astype(np.int16)]
    fs = render_clips(clips, tiny_cfg, noise, variants=3, seed=0, cache=tmp_path, name="t", progress=False)
    assert len(fs) == 18 and fs.soft is None
    plain = clip_features(clips, tiny_cfg)
    assert np.allclose(fs.feats[:6].astype(np.float32), plain, atol=0.02)  # float16 storage
    assert not np.allclose(fs.feats[6:12].astype(np.float32), plain, atol=0.5)  # augmented copies differ
    assert np.array_equal(fs.targets, np.tile(clips.targets, 3))
    files = list((tmp_path / "features").glob("render_t_*.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    again = render_clips(clips, tiny_cfg, noise, variants=3, seed=0, cache=tmp_path, name="t", progress=False)
    assert files[0].stat().st_mtime_ns == stamp and np.array_equal(again.feats, fs.feats)
    render_clips(clips, tiny_cfg, noise, variants=2, seed=0, cache=tmp_path, name="t", progress=False)
    assert len(list((tmp_path / "features").glob("render_t_*.npz"))) == 2  # another key


def test_render_with_a_teacher_stores_its_posteriors(tmp_path, shared_sc, teachers_ready):
    from mamba_kws.data import load_real_clips
    from mamba_kws.data.render import render_clips

    cfg = load_config("tiny")
    real = load_real_clips("v2_test_dev", cfg)
    clips = real.subset(np.arange(0, len(real), 50))
    fs = render_clips(clips, cfg, [], variants=1, seed=0, cache=tmp_path, name="r", teacher="mlperf_float",
                      progress=False)
    assert fs.soft is not None and fs.soft.shape == (len(clips), 12)
    assert np.allclose(fs.soft.sum(1), 1, atol=0.02)
    assert (fs.soft.argmax(1) == clips.targets).mean() > 0.8  # the teacher hears these clips


def test_epoch_mix_follows_the_weights(tiny_cfg):
    labels = tuple(tiny_cfg.labels)

    def fs(name, n):
        return FeatureSet(name, labels, np.zeros((n, FRAMES, CHANNELS), np.float16), np.zeros(n, np.int64),
                          np.array([""] * n), np.array([""] * n))

    data = TrainingData(labels, [fs("a", 100), fs("b", 40)], [0.5, 2.0], fs("v", 4), "v", {}, None, [])
    idx = data.epoch_index(0, seed=1)
    assert len(idx) == 50 + 80 and data.steps_per_epoch(10) == 13
    assert (idx < 100).sum() == 50 and len(set(idx[idx < 100].tolist())) == 50  # without replacement
    assert np.bincount(idx[idx >= 100] - 100, minlength=40).tolist() == [2] * 40  # each clip twice
    assert np.array_equal(idx, data.epoch_index(0, seed=1))
    assert not np.array_equal(idx, data.epoch_index(1, seed=1))


def test_augment_batch_steps():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(8, FRAMES, CHANNELS)
    x[:, 40:60] = 10.0
    none = FeatureAugmentConfig(time_shift_frames=0)
    assert torch.equal(augment_batch(x.clone(), none, (0, 0, 0, 0), gen), x)
    shifted = augment_batch(x.clone(), FeatureAugmentConfig(time_shift_frames=10), (0, 0, 0, 0), gen)
    starts = {int((row.sum(1) > 0).nonzero()[0]) for row in shifted}
    assert len(starts) > 2 and all(30 <= s <= 50 for s in starts)
    assert torch.allclose(shifted.sum(dim=(1, 2)), x.sum(dim=(1, 2)))  # the word stays whole
    noise = torch.full_like(x, 5.0)
    mixed = augment_batch(x.clone(), FeatureAugmentConfig(time_shift_frames=0, noise_prob=1.0,
                                                          noise_snr_db=(0.0, 0.0)), (0, 0, 0, 0), gen, noise)
    # equal energy at 0 dB: 2.5 ln(e^(x/2.5) + e^(n/2.5)); the word stays louder than the noise
    expect = 2.5 * torch.log(torch.exp(x / 2.5) + torch.exp(noise / 2.5))
    assert torch.allclose(mixed, expect, atol=1e-4)
    hi = augment_batch(x.clone() + torch.arange(CHANNELS).float(),
                       FeatureAugmentConfig(time_shift_frames=0, high_mask_prob=1.0), (0, 0, 0, 0), gen)
    assert torch.allclose(hi[:, :, 30:], hi[:1, :1, 30:].expand(8, FRAMES, 10))  # one value per channel
    masked = augment_batch(x.clone(), none, (2, 5, 2, 8), gen)
    assert (masked != x).any()


def test_distillation_loss():
    from mamba_kws.train import kws_loss

    cfg = load_config("tiny")
    logits = torch.randn(6, 12, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, -1, 5])
    soft = torch.softmax(torch.randn(6, 12), 1)
    has = torch.tensor([False, False, True, True, True, False])
    ce = torch.nn.functional.cross_entropy(logits[y >= 0], y[y >= 0], label_smoothing=cfg.train.label_smoothing)
    none = torch.zeros(6, dtype=torch.bool)
    assert torch.allclose(kws_loss(logits, y, soft, none, cfg), ce)  # no teacher targets: labels only
    from dataclasses import replace

    dcfg = replace(cfg, train=replace(cfg.train, distill=replace(cfg.train.distill, teacher="ensemble",
                                                                 weight=1.0, temperature=1.0)))
    at_teacher = kws_loss(torch.log(soft), torch.full((6,), -1), soft, torch.ones(6, dtype=torch.bool), dcfg)
    assert at_teacher.abs() < 1e-5  # KL of the teacher with itself
    kws_loss(logits, y, soft, has, dcfg).backward()
    assert logits.grad is not None and logits.grad[4].abs().sum() > 0  # an unlabelled clip learns from the teacher


def test_reports_leave_out_trained_speakers(tiny_cfg):
    clips = _clips(tiny_cfg)
    kept, dropped = filter_trained_speakers(clips, {"speakers": ["p1", "p4", "zz"]})
    assert dropped == 2 and kept.speakers == ["p0", "p2", "p3", "p5"]
    assert filter_trained_speakers(clips, None)[1] == 0


def test_config_sources_and_overrides(tmp_path):
    cfg = load_config("tiny", ["train.sources=[{kind: mltk, weight: 0.5}, {kind: real, subsets: [v1_sample]}]",
                               "model.d_model=24", "train.distill.teacher=ensemble"])
    assert [s.kind for s in cfg.train.sources] == ["mltk", "real"] and cfg.train.sources[0].weight == 0.5
    assert cfg.model.d_model == 24 and cfg.train.distill.teacher == "ensemble"
    from mamba_kws.config import ConfigError

    for bad, msg in [("train.sources=[{kind: nope}]", "kind"),
                     ("train.sources=[{kind: real, subsets: [v2_test_dev]}]", "never trained on"),
                     ("train.sources=[{kind: real}]", "subsets"),
                     ("train.sources=[{kind: mltk, weight: -1}]", "weight"),
                     ("model", "section.key=value")]:
        with pytest.raises(ConfigError, match=msg):
            load_config("tiny", [bad])
    assert config_from_dict({}).labels == SC_LABELS


def test_epoch_rebalances_silence_and_unknown(tiny_cfg):
    labels = tuple(tiny_cfg.labels)
    unk, sil, yes = labels.index(UNKNOWN_LABEL), labels.index("_silence_"), labels.index("yes")
    targets = np.array([unk] * 300 + [sil] * 5 + [yes] * 100, np.int64)
    n = len(targets)
    fs = FeatureSet("a", labels, np.zeros((n, FRAMES, CHANNELS), np.float16), targets, np.array([""] * n),
                    np.array([""] * n))
    data = TrainingData(labels, [fs], [1.0], fs, "a", {}, None, [], class_fractions={unk: 0.1, sil: 0.2})
    idx = data.epoch_index(0, seed=0)
    counts = np.bincount(targets[idx], minlength=len(labels))
    assert counts[yes] == 100 and counts[unk] == 10 and counts[sil] == 20  # silence drawn 4 times over
    other = data.epoch_index(1, seed=0)
    assert set(idx[targets[idx] == unk]) != set(other[targets[other] == unk])  # other unknown clips next epoch


def test_stream_windows_from_a_warm_front_end(tiny_cfg):
    from mamba_kws.data.streams import stream_windows
    from mamba_kws.features import compute_features

    rng = np.random.default_rng(0)
    n = 12
    audio = np.zeros((n, 16000), np.int16)
    audio[:, 6000:10000] = (rng.standard_normal((n, 4000)) * 3000).astype(np.int16)  # a "word" mid-clip
    labels = tuple(tiny_cfg.labels)
    targets = np.array([labels.index("yes"), labels.index("_unknown_")] * (n // 2), np.int64)
    clips = ClipSet(labels, audio, targets, ["yes", "cat"] * (n // 2), [""] * n, [""] * n)
    noise = [(rng.standard_normal(16000 * 20) * 1000).astype(np.int16)]
    w = stream_windows(clips, noise, tiny_cfg, seed=0, words=30, cuts_per_word=1)
    kinds = list(w.kinds)
    assert kinds.count("word") == 30 and kinds.count("cut") == 30 and kinds.count("noise") > 5
    assert w.feats.shape[1:] == (98, 40) and w.audio.shape[1] == 16000
    words = w.targets[w.kinds == "word"]
    assert set(words) <= {labels.index("yes"), labels.index("_unknown_")}
    assert (w.targets[w.kinds == "cut"] == -1).all()
    assert (w.targets[w.kinds == "noise"] == labels.index("_silence_")).all()
    # warm: a window's features differ from the same audio through a fresh front end (whose noise
    # estimate starts at zero, so the first frames of noise come out loud)
    i = int(np.flatnonzero(w.kinds == "noise")[0])
    cold = compute_features(w.audio[i], tiny_cfg.features)
    assert cold[:5].mean() > w.feats[i, :5].astype(np.float32).mean() + 10
    again = stream_windows(clips, noise, tiny_cfg, seed=0, words=30, cuts_per_word=1)
    assert np.array_equal(again.feats, w.feats)


def test_unlabelled_clips_need_soft_targets(tiny_cfg, tmp_path):
    p = tmp_path / "w.npz"
    save_feature_set(p, np.zeros((2, FRAMES, CHANNELS)), [-1, 0], ["yes"], ["", "yes"], ["", ""], ["training"] * 2)
    with pytest.raises(DataError, match="soft targets"):
        load_feature_set(p, tiny_cfg.labels, FRAMES, CHANNELS)
    soft = np.full((2, 12), 1 / 12)
    save_feature_set(p, np.zeros((2, FRAMES, CHANNELS)), [-1, 0], ["yes"], ["", "yes"], ["", ""], ["training"] * 2,
                     soft, list(tiny_cfg.labels))
    fs = load_feature_set(p, tiny_cfg.labels, FRAMES, CHANNELS)
    assert fs.targets.tolist() == [-1, tiny_cfg.labels.index("yes")] and fs.soft.shape == (2, 12)


def test_features_teacher_labels_feature_maps_and_lends_its_speakers(tmp_path, tiny_cfg):
    """train.distill.features_teacher: a checkpoint's posteriors become the soft targets of a feature
    source (cached), its training speakers become the student's, and a teacher of other labels is refused."""
    from conftest import seeded_model
    from mamba_kws.checkpoint import save_checkpoint
    from mamba_kws.data.sources import build_training_data
    from mamba_kws.model import build_model

    path = tmp_path / "set.npz"
    _fake_set(path)
    teacher = seeded_model(tiny_cfg)
    ckpt = tmp_path / "teacher.pt"
    save_checkpoint(ckpt, teacher, tiny_cfg, trained_on={"speakers": ["t1", "t2"]})
    cfg = load_config("tiny", [f"train.sources=[{{kind: features, path: '{path}'}}]",
                               f"train.distill.features_teacher='{ckpt}'"])
    cache = tmp_path / "cache"
    data = build_training_data(cfg, cache=cache, progress=False, real_eval=False)
    fs = data.sets[0]
    assert fs.soft is not None and data.has_soft.all()
    with torch.no_grad():
        want = torch.softmax(teacher(torch.from_numpy(fs.feats.astype(np.float32))), dim=1).numpy()
    np.testing.assert_allclose(fs.soft, want, atol=1e-3)
    assert {"t1", "t2"} <= set(data.trained_on["speakers"])
    cached = list((cache / "teacher_cache").glob("*.npz"))
    assert len(cached) == 1
    with np.load(cached[0]) as z:  # the second build reads the cache: overwrite it and see that come back
        np.savez(cached[0], soft=np.full_like(z["soft"], 1 / len(cfg.labels)))
    again = build_training_data(cfg, cache=cache, progress=False, real_eval=False)
    np.testing.assert_allclose(again.sets[0].soft, 1 / len(cfg.labels), atol=1e-3)

    torch.manual_seed(1)
    second = build_model(tiny_cfg).eval()
    ckpt2 = tmp_path / "teacher2.pt"
    save_checkpoint(ckpt2, second, tiny_cfg, trained_on={"speakers": ["t3"]})
    two = load_config("tiny", [f"train.sources=[{{kind: features, path: '{path}'}}]",
                               f"train.distill.features_teacher='{ckpt},{ckpt2}'"])
    data = build_training_data(two, cache=cache, progress=False, real_eval=False)
    with torch.no_grad():
        x = torch.from_numpy(data.sets[0].feats.astype(np.float32))
        logp = (torch.log_softmax(teacher(x), 1) + torch.log_softmax(second(x), 1)) / 2
    np.testing.assert_allclose(data.sets[0].soft, torch.softmax(logp, 1).numpy(), atol=1e-3)
    assert {"t1", "t2", "t3"} <= set(data.trained_on["speakers"])

    other_labels = load_config("tiny", ["labels=[_silence_, _unknown_, 'yes', 'no']"])
    save_checkpoint(ckpt, seeded_model(other_labels), other_labels)
    with pytest.raises(DataError, match="other labels"):
        build_training_data(cfg, cache=tmp_path / "cache2", progress=False, real_eval=False)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="features_teacher.*not a readable checkpoint"):
        build_training_data(cfg, cache=tmp_path / "cache2", progress=False, real_eval=False)
