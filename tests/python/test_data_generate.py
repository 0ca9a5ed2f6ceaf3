"""The generated data set on the tiny config: Speech Commands layout, split by speaker,
byte-identical for the same seed (whatever the worker count), cached."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mamba_kws.audio import read_wav
from mamba_kws.config import SILENCE_LABEL
from mamba_kws.data import generate as gen_mod
from mamba_kws.data import prepare_data
from mamba_kws.data.generate import COMPLETE, ensure_generated, generate, keywords_of, unknown_words
from mamba_kws.data.speech_commands import speaker_of
from mamba_kws.data.tts import available_engines
from mamba_kws.errors import DataError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != COMPLETE}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tiny_set(cache, tiny_cfg):
    return ensure_generated(tiny_cfg, cache, progress=False, workers=2)


def _micro(cfg, seed: int):
    """A few clips per word: enough to exercise every engine and the silence jobs."""
    return replace(cfg, data=replace(cfg.data, clips_per_keyword=2, unknown_words=2, clips_per_unknown_word=2,
                                     silence_clips=4, seed=seed))


def test_layout_counts_and_speaker_split(tiny_set, tiny_cfg):
    root, summary = tiny_set
    d = tiny_cfg.data
    for word in keywords_of(tiny_cfg):
        assert len(list((root / word).glob("*_nohash_*.wav"))) == d.clips_per_keyword
    unk = unknown_words(tiny_cfg)
    assert len(unk) == d.unknown_words and not set(unk) & set(tiny_cfg.labels)
    for word in unk:
        assert len(list((root / word).glob("*.wav"))) == d.clips_per_unknown_word
    assert len(list((root / SILENCE_LABEL).glob("*.wav"))) == d.silence_clips
    noise = sorted(p.name for p in (root / "_background_noise_").glob("*.wav"))
    from mamba_kws.paths import speech_commands_dir

    # the data root's noise recordings, or where it has none, the excerpts that ship with the project
    wanted = {"doing_the_dishes", "exercise_bike", "running_tap"}
    if not (speech_commands_dir() / "_background_noise_").is_dir():
        wanted = {f"{w}_8s" for w in wanted}
    assert {f"{w}.wav" for w in wanted} <= set(noise)
    val = (root / "validation_list.txt").read_text().split()
    test = (root / "testing_list.txt").read_text().split()
    assert val and test and not set(val) & set(test)
    every = [str(p.relative_to(root)) for p in root.glob("*/*.wav") if p.parent.name != "_background_noise_"]
    train = set(every) - set(val) - set(test)
    spk = {name: {speaker_of(Path(r).name) for r in rels if "_nohash_" in r}
           for name, rels in (("train", train), ("val", val), ("test", test))}
    assert not spk["train"] & spk["val"] and not spk["train"] & spk["test"] and not spk["val"] & spk["test"]
    assert len(spk["train"]) >= 4 and summary["speakers"]["val"] == len(spk["val"])
    assert len(summary["speakers_by_engine"]) >= 2  # at least espeak and flite voices


def test_clips_are_one_second_with_speech(tiny_set, tiny_cfg):
    root, _ = tiny_set
    for p in sorted((root / "yes").glob("*.wav"))[:8]:
        a = read_wav(p).astype(np.float64)
        assert len(a) == tiny_cfg.features.clip_samples
        frames = np.sqrt(np.mean(a.reshape(-1, 160) ** 2, axis=1))
        assert frames.max() > 4 * np.median(frames)  # a word stands out of the noise
    sil = read_wav(sorted((root / SILENCE_LABEL).glob("*.wav"))[0])
    assert len(sil) == tiny_cfg.features.clip_samples


def test_same_seed_same_bytes_other_seed_differs(tiny_cfg, tmp_path):
    every = available_engines()  # piper too where it is installed
    generate(_micro(tiny_cfg, 0), tmp_path / "a", workers=2, progress=False, engines=every)
    generate(_micro(tiny_cfg, 0), tmp_path / "b", workers=0, progress=False, engines=every)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) > 30 and a == b
    generate(_micro(tiny_cfg, 1), tmp_path / "c", workers=0, progress=False, engines=("espeak", "flite"))
    c = _files(tmp_path / "c")
    clips = [k for k in c if not k.startswith("_background_noise_") and k.endswith(".wav")]
    assert sum(a.get(k) != c[k] for k in clips) > len(clips) // 2


def test_cache_hit_and_loader(tiny_set, tiny_cfg, cache, monkeypatch):
    root, summary = tiny_set
    assert (root / COMPLETE).is_file() and root.parent == cache / "generated"
    assert json.loads((root / COMPLETE).read_text())["clips"] == summary["clips"]

    def boom(*args, **kwargs):
        raise AssertionError("generated again despite a complete cache")

    monkeypatch.setattr(gen_mod, "generate", boom)
    splits = prepare_data(tiny_cfg, None, cache_dir=cache, progress=False)
    assert splits.source == f"generated:{root}"
    assert all(c > 0 for c in splits.train.counts().values())
    assert len(splits.val) > 0 and len(splits.test) > 0
    assert not set(splits.train.speakers) & (set(splits.val.speakers) | set(splits.test.speakers)) - {""}
    assert len(splits.noise) == 5 and splits.summary["skipped"] == []


def test_bad_requests_are_clear_errors(tiny_cfg, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(DataError, match="not a generated data set"):
        generate(_micro(tiny_cfg, 0), tmp_path / "mine", workers=0, progress=False)
    assert (tmp_path / "mine" / "thesis.txt").exists()
    with pytest.raises(DataError, match="no background noise"):
        generate(_micro(tiny_cfg, 0), tmp_path / "x", workers=0, progress=False, noise_dir=tmp_path / "none")
    with pytest.raises(DataError, match="not available"):
        generate(_micro(tiny_cfg, 0), tmp_path / "y", workers=0, progress=False, engines=("mbrola",))
    too_many = replace(tiny_cfg, data=replace(tiny_cfg.data, unknown_words=500))
    with pytest.raises(DataError, match="unknown_words"):
        generate(too_many, tmp_path / "z", workers=0, progress=False)
