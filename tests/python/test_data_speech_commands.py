"""The Speech Commands loader on a small fake tree: protocol counts, splits, unknown mapping,
silence, bad files; and load_real_clips on the shared real clips."""

from __future__ import annotations

import math
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mamba_kws.audio import write_wav
from mamba_kws.config import SILENCE_LABEL, UNKNOWN_LABEL
from mamba_kws.data import load_real_clips, load_speech_commands, prepare_data
from mamba_kws.errors import DataError

KEYWORDS = ("yes", "no", "up")
OTHERS = ("bed", "cat", "marvin")
SPEAKERS = [f"{i:08x}" for i in range(10)]
VAL_SPEAKERS, TEST_SPEAKERS = set(SPEAKERS[:2]), set(SPEAKERS[2:4])


def _tone(freq: float, n: int = 16000, rate: int = 16000) -> np.ndarray:
    t = np.arange(n) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def make_tree(root: Path, *, lists: bool = True, silence_dir: bool = False, bad: bool = True) -> dict:
    """A Speech Commands v2 layout: every speaker says every keyword twice and each other word once."""
    val, test = [], []
    for wi, word in enumerate(KEYWORDS + OTHERS):
        reps = 2 if word in KEYWORDS else 1
        for s in SPEAKERS:
            for i in range(reps):
                rel = f"{word}/{s}_nohash_{i}.wav"
                n = 16000 if (wi + i) % 3 else 12000  # some short clips: padded
                write_wav(root / rel, _tone(200 + 50 * wi + i, n))
                if s in VAL_SPEAKERS:
                    val.append(rel)
                elif s in TEST_SPEAKERS:
                    test.append(rel)
    if lists:
        (root / "validation_list.txt").write_text("\n".join(val) + "\n")
        (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    rng = np.random.default_rng(0)
    write_wav(root / "_background_noise_" / "white.wav", (rng.standard_normal(16000 * 20) * 3000).astype(np.int16))
    if silence_dir:
        for i in range(30):
            write_wav(root / SILENCE_LABEL / f"noise_{i}.wav", (rng.standard_normal(16000) * 100).astype(np.int16))
    bad_files = {}
    if bad:
        corrupt = root / "yes" / "badbadba_nohash_0.wav"
        corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10)
        truncated = root / "no" / "truncat0_nohash_0.wav"
        write_wav(truncated, _tone(300))
        truncated.write_bytes(truncated.read_bytes()[:5000])
        rate8k = root / "up" / "eightkhz_nohash_0.wav"
        with wave.open(str(rate8k), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(_tone(300, 8000, 8000).tobytes())
        bad_files = {"corrupt": str(corrupt), "truncated": str(truncated), "resampled": str(rate8k)}
    return bad_files


@pytest.fixture
def sc_tree(tmp_path):
    bad = make_tree(tmp_path)
    return tmp_path, bad


def test_protocol_counts_and_splits(sc_tree, tiny_cfg):
    root, bad = sc_tree
    splits = load_speech_commands(root, tiny_cfg, progress=False)
    labels = tiny_cfg.labels
    # keyword clips per split: speakers x keywords present in cfg x 2 (+ the good 8 kHz clip in train)
    expect_kw = {"train": 6 * 3 * 2 + 1, "val": 2 * 3 * 2, "test": 2 * 3 * 2}
    for name, cs in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        counts = cs.counts()
        n_kw = sum(counts[k] for k in KEYWORDS)
        assert n_kw == expect_kw[name], (name, counts)
        assert counts[UNKNOWN_LABEL] == math.ceil(n_kw * tiny_cfg.train.unknown_fraction)
        assert counts[SILENCE_LABEL] == math.ceil(n_kw * tiny_cfg.train.silence_fraction)
        assert cs.audio.shape == (len(cs), tiny_cfg.features.clip_samples) and cs.audio.dtype == np.int16
        assert cs.targets.dtype == np.int64
        for t, w, sp, p in zip(cs.targets, cs.words, cs.speakers, cs.paths, strict=True):
            if w in OTHERS:
                assert labels[t] == UNKNOWN_LABEL
            elif w == SILENCE_LABEL:
                assert labels[t] == SILENCE_LABEL and p == "" and sp == ""
                continue
            else:
                assert labels[t] == w
            assert p.endswith(".wav") and Path(p).parent.name == w
            expected = VAL_SPEAKERS if name == "val" else TEST_SPEAKERS if name == "test" else None
            if expected is not None:
                assert sp in expected
            else:
                assert sp not in VAL_SPEAKERS | TEST_SPEAKERS
    assert splits.summary["splits"]["val"] == splits.val.counts()
    assert splits.source == str(root)
    # silence is made of this split's part of the noise; training noise is the training part only
    assert len(splits.noise) == 1 and len(splits.noise[0]) == int(0.8 * 16000 * 20)


def test_fractions_follow_config(sc_tree, tiny_cfg):
    root, _ = sc_tree
    cfg = replace(tiny_cfg, train=replace(tiny_cfg.train, unknown_fraction=0.3, silence_fraction=0.0))
    splits = load_speech_commands(root, cfg, progress=False)
    counts = splits.train.counts()
    assert counts[UNKNOWN_LABEL] == math.ceil(37 * 0.3)
    assert counts[SILENCE_LABEL] == 0


def test_bad_files_are_listed_not_dropped(sc_tree, tiny_cfg):
    root, bad = sc_tree
    splits = load_speech_commands(root, tiny_cfg, progress=False)
    skipped = {s["path"]: s["reason"] for s in splits.summary["skipped"]}
    assert set(skipped) == {bad["corrupt"], bad["truncated"]}
    assert "truncated" in skipped[bad["truncated"]]
    assert splits.summary["resampled"] == 1
    assert bad["resampled"] in splits.train.paths
    i = splits.train.paths.index(bad["resampled"])
    assert np.abs(splits.train.audio[i, 8000:]).max() > 1000  # 0.5 s at 8 kHz became 1 s at 16 kHz


def test_silence_folder_is_used(tmp_path, tiny_cfg):
    make_tree(tmp_path, silence_dir=True, bad=False)
    splits = load_speech_commands(tmp_path, tiny_cfg, progress=False)
    sil = [p for p, t in zip(splits.train.paths, splits.train.targets, strict=True) if t == 0]
    assert len(sil) == math.ceil(36 * 0.1) and all(Path(p).parent.name == SILENCE_LABEL for p in sil)
    assert splits.summary["silence_from"] == "_silence_ folder"


def test_missing_data_and_lists_are_clear_errors(tmp_path, tiny_cfg):
    with pytest.raises(DataError, match="--download"):
        prepare_data(tiny_cfg, tmp_path / "nowhere", cache_dir=tmp_path, progress=False)
    make_tree(tmp_path, lists=False, bad=False)
    with pytest.raises(DataError, match="validation_list.txt is missing"):
        load_speech_commands(tmp_path, tiny_cfg, progress=False)


def test_prepare_data_reads_a_directory(sc_tree, tiny_cfg):
    root, _ = sc_tree
    splits = prepare_data(tiny_cfg, root, cache_dir=root / "cache", progress=False)
    assert len(splits.train) > len(splits.val) > 0


def test_load_real_clips(shared_sc, tiny_cfg):
    real = load_real_clips("v2_test_dev", tiny_cfg)
    on_disk = {d.name: len(list(d.glob("*.wav"))) for d in (shared_sc / "v2_test_dev").iterdir()}
    assert real.counts() == {lab: on_disk[lab] for lab in tiny_cfg.labels}
    assert real.audio.shape == (sum(on_disk.values()), 16000)
    unk = [w for w, t in zip(real.words, real.targets, strict=True) if t == 1]
    assert UNKNOWN_LABEL not in unk and len(set(unk)) > 5  # words come from manifest.csv
    assert sum(1 for s in real.speakers if s) > 1500
    v1 = load_real_clips("v1_sample", tiny_cfg)
    assert v1.counts()[SILENCE_LABEL] == 0 and len(v1) == sum(1 for _ in (shared_sc / "v1_sample").rglob("*.wav"))
    assert not set(v1.speakers) & set(real.speakers) - {""}  # the README: no shared speakers
    with pytest.raises(DataError, match="real clips not found"):
        load_real_clips("v9", tiny_cfg)
