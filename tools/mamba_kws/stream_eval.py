"""Streaming keyword detection on continuous audio: detection rate, false alarms per hour, latency,
and a DET curve, for the whole-window model run every hop and for the streaming model.

    python tools/stream_eval.py --checkpoint runs/kws_mamba/best.pt --minutes 60 --out runs/kws_mamba/stream

Streams: real background noise (the held-out *test* tenth of each `_background_noise_` recording, in
random pieces, never used in training) with words placed at random times, `--gap` seconds apart
(clip edge to clip edge, no overlap). The words are real clips of v2_test_dev (keywords and unknown
words of speakers the checkpoint was never trained on) and/or the
generated test split. One stream per SNR (speech rms over the word's active part vs noise rms);
`--minutes` is split evenly between them. Everything is drawn from `--seed`: same seed, same streams.
`--teachers ds_cnn_l,...` adds the pretrained teachers (mamba_kws.teachers) as readouts on the same
streams: each run every hop on the last second of audio, as `window` runs our model, scored by the same
policy: what a user would get from the model they would pick instead. The `device` readout is what the
firmware hears: its fused int8 streaming image (tools/fused_tflite.py --int8 --streaming from the
checkpoint, or `--device-image`) run hop by hop as app/src/inference.cc runs it (mamba_kws.firmware.
ImageModel: TFLM builtins, the C core's MAMBA_BLOCK, the float stream_mean readout).

Scoring: a detection of keyword k at time t is a hit when a not-yet-detected event of k has
speech_start <= t <= speech_end + tolerance; every other detection (wrong word, an unknown word,
a repeat, background) is a false alarm. Latency = t - speech_end of the hit event. The policy is
mamba_kws.detection (the YAML's `detection:` section); the DET curve re-runs it at many
thresholds over the stored posteriors.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .calibration import CALIB_CLIPS
from .calibration import DEFAULT as CALIB_DEFAULT
from .checkpoint import load_checkpoint
from .config import SILENCE_LABEL, UNKNOWN_LABEL, KWSConfig
from .data.clips import ClipSet
from .data.noise import noise_part, read_noise_dir
from .data.streams import Event, Stream, build_stream
from .detection import detect_offline, detection_params, smooth, with_threshold
from .errors import ArgumentParser, DataError, KWSError
from .paths import describe, have_real_clips
from .stream import (
    READOUTS,
    clip_posteriors_every_hop,
    hop_end_sample,
    live_ms_per_hop,
    macs_per_hop,
    stream_features,
    stream_posteriors,
)
from .teachers import macs as teacher_macs

# ------------------------------------------------------------------------------------ scoring


def score(detections: list, stream: Stream, cfg: KWSConfig, tolerance_s: float = 1.0) -> dict[str, Any]:
    """Hits, false alarms and latencies of `detections` (mamba_kws.detection.Detection) on `stream`."""
    sr = stream.sample_rate
    tol = int(tolerance_s * sr)
    kws = [e for e in stream.events if e.name not in (SILENCE_LABEL, UNKNOWN_LABEL)]
    starts = np.array([e.speech_start for e in kws], np.int64)
    hit = np.zeros(len(kws), bool)
    latencies: list[float] = []
    false_alarms = 0
    hit_sources: list[str] = []
    for d in detections:
        t = int(hop_end_sample(d.hop, cfg))
        j = int(np.searchsorted(starts, t, side="right")) - 1  # the last keyword that started before t
        if j >= 0 and not hit[j] and kws[j].label == d.label and t <= kws[j].speech_end + tol:
            hit[j] = True
            latencies.append((t - kws[j].speech_end) / sr)
            hit_sources.append(kws[j].source)
        else:
            false_alarms += 1
    return {"keywords": len(kws), "hits": int(hit.sum()), "false_alarms": false_alarms, "hours": stream.hours,
            "latencies": latencies,
            "by_source": {src: {"keywords": sum(e.source == src for e in kws),
                                "hits": int(sum(h for h, e in zip(hit, kws, strict=True) if e.source == src))}
                          for src in sorted({e.source for e in kws})}}


def pool_scores(scores: list[dict[str, Any]]) -> dict[str, Any]:
    kw = sum(s["keywords"] for s in scores)
    hits = sum(s["hits"] for s in scores)
    fa = sum(s["false_alarms"] for s in scores)
    hours = sum(s["hours"] for s in scores)
    lat = [x for s in scores for x in s["latencies"]]
    by_source: dict[str, dict[str, float]] = {}
    for s in scores:
        for src, v in s["by_source"].items():
            d = by_source.setdefault(src, {"keywords": 0, "hits": 0})
            d["keywords"] += v["keywords"]
            d["hits"] += v["hits"]
    for d in by_source.values():
        d["detection_rate"] = d["hits"] / d["keywords"] if d["keywords"] else float("nan")
    return {"keywords": kw, "hits": hits, "false_alarms": fa, "hours": hours,
            "detection_rate": hits / kw if kw else float("nan"),
            "false_alarms_per_hour": fa / hours if hours else float("nan"),
            "latency_median_s": float(np.median(lat)) if lat else None,
            "latency_p90_s": float(np.percentile(lat, 90)) if lat else None, "by_source": by_source}


def det_curve(posteriors: list[np.ndarray], streams: list[Stream], cfg: KWSConfig, params: dict,
              thresholds: np.ndarray, tolerance_s: float) -> list[dict[str, Any]]:
    """The policy at every threshold over stored posteriors: [{threshold, detection_rate, fa/h, ...}]."""
    smoothed = [smooth(p, params["window_hops"]) for p in posteriors]
    rows = []
    for thr in thresholds:
        p = with_threshold(params, float(thr))
        scores = [score(detect_offline(post, p, smoothed=s), st, cfg, tolerance_s)
                  for post, s, st in zip(posteriors, smoothed, streams, strict=True)]
        r = pool_scores(scores)
        r["threshold"] = float(thr)
        rows.append(r)
    return rows


def rate_at_fa(curve: list[dict[str, Any]], fa_per_hour: float) -> dict[str, Any] | None:
    """The best operating point with at most `fa_per_hour` false alarms an hour (None if none)."""
    ok = [r for r in curve if r["false_alarms_per_hour"] <= fa_per_hour]
    if not ok:
        return None
    return max(ok, key=lambda r: (r["detection_rate"], -r["threshold"]))


# ------------------------------------------------------------------------------------ data


def load_pools(cfg: KWSConfig, which: list[str], trained_on: dict | None,
               cache: Path | None) -> tuple[ClipSet, list[str]]:
    from .data.sources import filter_trained_speakers
    from .data.speech_commands import load_real_clips

    pools: list[ClipSet] = []
    sources: list[str] = []
    if "real" in which and not have_real_clips("v2_test_dev", "the streams use the generated test split's words"):
        which = list(dict.fromkeys("generated" if s == "real" else s for s in which))
    for src in which:
        if src == "real":
            cs, _ = filter_trained_speakers(load_real_clips("v2_test_dev", cfg), trained_on)
        elif src == "generated":
            from .data import prepare_data

            cs = prepare_data(cfg, "generated", cache_dir=cache, progress=False).test
        else:
            raise KWSError(f"--clips: unknown source {src!r} (use real, generated or real,generated)")
        keep = np.flatnonzero([cs.labels[t] != SILENCE_LABEL for t in cs.targets])
        cs = cs.subset(keep)
        pools.append(cs)
        sources += [src] * len(cs)
    pool = pools[0]
    for cs in pools[1:]:
        pool = pool.concat(cs)
    return pool, sources


def load_noise() -> list[np.ndarray]:
    """The test part of the data root's noise recordings; else the whole of the excerpts that ship with the
    project (too short to split: the streams then hear noise that the generated set also used)."""
    from .data.generate import BUILTIN_NOISE, noise_folder

    folder = noise_folder()
    recs = read_noise_dir(folder)
    if not recs:
        raise DataError(f"no background noise in {folder}; {describe()}")
    if folder == BUILTIN_NOISE:
        print(f"note: no noise recordings under the data root: the streams use the {len(recs)} excerpts that ship "
              "with the project, whole (the generated set mixed in parts of them too)")
        return [a for _, a in recs]
    return [noise_part(a, "test") for _, a in recs]


# ------------------------------------------------------------------------------------ CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = ArgumentParser(
        prog="stream_eval.py",
        description="Keyword detection on long continuous streams: detection rate, false alarms per hour, "
                    "latency and a DET curve for the whole-window model run every hop and the streaming model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, help="trained checkpoint (runs/<name>/best.pt)")
    p.add_argument("--minutes", type=float, default=60.0, help="total stream length, split evenly over the SNRs")
    p.add_argument("--seed", type=int, default=0, help="seed of the streams (same seed -> same streams)")
    p.add_argument("--snr", default="5,10,20", help="comma-separated SNRs in dB, one stream each")
    p.add_argument("--clips", default="real", help="word sources: real (v2_test_dev), generated (test split) or both")
    p.add_argument("--readouts", default=None,
                   help=f"comma-separated, of {', '.join(ALL_READOUTS)} (default: all; device: the firmware's int8 "
                        "streaming image, left out of the default for a model the fused int8 kernels cannot run)")
    p.add_argument("--device-image", default=None,
                   help="the fused int8 streaming .tflite the `device` readout runs, e.g. "
                        "app/model/fused_stream_int8.tflite (default: written from the checkpoint into --out, "
                        "as tools/fused_tflite.py --int8 --streaming does)")
    p.add_argument("--teachers", default="",
                   help="comma-separated pretrained teachers to score on the same streams as extra readouts (run "
                        "every hop on the last 1 s of audio, same policy), e.g. ds_cnn_l,mlperf_int8; "
                        "from --teachers-dir or $KWS_TEACHERS")
    p.add_argument("--teachers-dir", default=None, help="folder of the teachers' model files")
    p.add_argument("--gap", default="2,5", help="min,max seconds between words (clip edge to clip edge)")
    p.add_argument("--tolerance", type=float, default=1.0, help="seconds after a keyword's end a detection may come")
    p.add_argument("--cache", default=None, help="data cache for the generated set (default <repo>/data)")
    p.add_argument("--out", default=None, help="output folder (default <checkpoint dir>/stream)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise KWSError(f"{what}: expected comma-separated numbers, got {text!r}") from None
    if not values or not all(np.isfinite(values)):
        raise KWSError(f"{what}: expected comma-separated finite numbers, got {text!r}")
    return values


CLIP_SOURCES = ("real", "generated")
DEVICE = "device"
ALL_READOUTS = (*READOUTS, DEVICE)


def device_image(ckpt: Path, cfg: KWSConfig, image: str | None, out: Path, explicit: bool) -> Path | None:
    """The firmware's streaming image for the `device` readout: `image`, else written from the checkpoint into
    `out`. None (with a note) when the model has no int8 fused form and the readout was not asked for by name."""
    from .fused_tflite import FusedExportError, export

    if image is not None:
        return Path(image)
    if cfg.model.norm == "rmsnorm":
        if explicit:
            raise KWSError("--readouts device: a model with norm: rmsnorm has no fused int8 streaming image "
                           "(the int8 kernels fold batchnorm only)")
        print("note: no device readout: a model with norm: rmsnorm has no fused int8 streaming image")
        return None
    path = out / "device_stream_int8.tflite"
    try:
        export(ckpt, None, path, int8=True, streaming=True, calib=CALIB_DEFAULT, calib_clips=CALIB_CLIPS)
    except FusedExportError as exc:
        raise KWSError(f"device readout: {exc}") from None
    return path


def device_posteriors(image: Any, feats: np.ndarray, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Posteriors (hops, classes) of a firmware image (mamba_kws.firmware.ImageModel) over a stream's features,
    from a reset, one hop of frame_stack frames at a time."""
    k = image.cfg.model.frame_stack
    image.reset()
    out = []
    for i in range(0, len(feats) // k * k, k):
        out.append(image.hop(feats[i:i + k]))
        if progress:
            progress(1)
    return np.asarray(out, np.float64).reshape(-1, len(image.cfg.labels))


def teacher_readouts(text: str, folder: Path | None, labels: tuple[str, ...]) -> list[str]:
    """The `--teachers` names that can run here (mamba_kws.teachers.present), checked before any work: an
    unknown name or a model with other labels raises KWSError."""
    from .teachers import check_labels, present

    names = present(list(dict.fromkeys(t for t in text.split(",") if t)), folder)
    if names:
        check_labels(labels)
    return names


def teacher_classifier(name: str, folder: Path | None, labels: tuple[str, ...]) -> Callable[[np.ndarray], np.ndarray]:
    """A teacher as a 1 s clip classifier with the model's label order."""
    from .teachers import load_teacher, to_labels

    teacher = load_teacher(name, folder)
    return lambda clips: to_labels(teacher(clips), labels)


def check_args(args: argparse.Namespace) -> tuple[list[float], tuple[float, float], list[str], list[str]]:
    """The options as values (SNRs, gap, readouts, clip sources); a bad one raises KWSError naming it.
    `--teachers` is checked by `teacher_readouts`."""
    snrs = _floats(args.snr, "--snr")
    gap = _floats(args.gap, "--gap")
    if len(gap) != 2 or not 0 < gap[0] <= gap[1]:
        raise KWSError(f"--gap: expected min,max seconds with 0 < min <= max, got {args.gap!r}")
    if not (np.isfinite(args.minutes) and args.minutes > 0):
        raise KWSError(f"--minutes must be > 0, got {args.minutes}")
    if not (np.isfinite(args.tolerance) and args.tolerance >= 0):
        raise KWSError(f"--tolerance must be >= 0 seconds, got {args.tolerance}")
    if not 0 <= args.seed < 2**32:
        raise KWSError(f"--seed must be in [0, 2**32), got {args.seed}")
    readouts = list(ALL_READOUTS) if args.readouts is None else [r for r in args.readouts.split(",") if r]
    bad = [r for r in readouts if r not in ALL_READOUTS]
    if bad or not readouts:
        raise KWSError(f"--readouts: unknown {', '.join(bad) or 'none given'} (choose from {', '.join(ALL_READOUTS)})")
    if args.device_image is not None and not Path(args.device_image).is_file():
        raise KWSError(f"--device-image {args.device_image}: no such file")
    clips = [c for c in args.clips.split(",") if c]
    bad = [c for c in clips if c not in CLIP_SOURCES]
    if bad or not clips:
        raise KWSError(f"--clips: unknown {', '.join(bad) or 'none given'} (use real, generated or real,generated)")
    return snrs, (gap[0], gap[1]), readouts, clips


def plot_det(curves: dict[str, list[dict]], path: Path, title: str, marks: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for name, curve in curves.items():
        # The best miss rate reachable with at most x false alarms an hour (what rate_at_fa reports):
        # the lower envelope of the thresholds' points, sorted by false alarms.
        pts = sorted((max(r["false_alarms_per_hour"], 1e-2), 1 - r["detection_rate"]) for r in curve)
        fa = np.array([p[0] for p in pts])
        miss = np.minimum.accumulate(np.array([p[1] for p in pts]))
        (line,) = ax.step(fa, miss, where="post", label=name)
        ax.plot(fa, [p[1] for p in pts], ".", ms=2, alpha=0.35, color=line.get_color())
        thr = marks.get(name)
        if thr is not None:
            r = min(curve, key=lambda r: abs(r["threshold"] - thr))
            ax.plot(max(r["false_alarms_per_hour"], 1e-2), 1 - r["detection_rate"], "o", color=line.get_color(),
                    mfc="none", ms=9)
    ax.axvline(1.0, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour (0 drawn at 0.01)")
    ax.set_ylabel("miss rate (line: best at <= x FA/h; dots: thresholds)")
    ax.set_ylim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(title="readout (circle: YAML threshold)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    snrs, gap, readouts, clips = check_args(args)
    torch.set_num_threads(max(1, args.threads))
    ckpt = Path(args.checkpoint)
    model, cfg, meta = load_checkpoint(ckpt)
    params = detection_params(cfg)
    tdir = Path(args.teachers_dir) if args.teachers_dir else None
    teachers = teacher_readouts(args.teachers, tdir, tuple(cfg.labels))
    out = Path(args.out) if args.out else ckpt.parent / "stream"
    out.mkdir(parents=True, exist_ok=True)

    image = None
    if DEVICE in readouts:
        from .firmware import FirmwareError, ImageModel

        path = device_image(ckpt, cfg, args.device_image, out, explicit=args.readouts is not None)
        if path is None:
            readouts.remove(DEVICE)
        else:
            try:
                image = ImageModel(cfg, path, "stream")
            except FirmwareError as exc:
                raise KWSError(f"--device-image {path}: {exc}") from None

    pool, sources = load_pools(cfg, clips, meta.get("trained_on"), Path(args.cache) if args.cache else None)
    noise = load_noise()
    seconds = args.minutes * 60 / len(snrs)
    rng = np.random.default_rng(args.seed)
    streams = [build_stream(pool, sources, noise, seconds, snr, rng, (gap[0], gap[1]), sample_rate=16000)
               for snr in snrs]

    total = sum(len(s.audio) for s in streams)
    feats = []
    with tqdm(total=total, desc="front end", unit="sample", unit_scale=True, disable=args.quiet) as bar:
        for s in streams:
            feats.append(stream_features(s.audio, cfg, progress=bar.update))
    posts: dict[str, list[np.ndarray]] = {}
    seconds_per_hop: dict[str, float] = {}
    stream_hops = [len(f) // cfg.model.frame_stack for f in feats]
    hops = sum(stream_hops)
    for ro in readouts:
        t0 = time.perf_counter()
        with tqdm(total=hops, desc=f"model {ro}", unit="hop", unit_scale=True, disable=args.quiet) as bar:
            if ro == DEVICE:
                posts[ro] = [device_posteriors(image, f, progress=bar.update) for f in feats]
            else:
                posts[ro] = [stream_posteriors(model, cfg, f, ro, progress=bar.update) for f in feats]
        seconds_per_hop[ro] = (time.perf_counter() - t0) / max(hops, 1)
    for name in teachers:
        hear = teacher_classifier(name, tdir, tuple(cfg.labels))
        t0 = time.perf_counter()
        with tqdm(total=hops, desc=f"teacher {name}", unit="hop", unit_scale=True, disable=args.quiet) as bar:
            posts[name] = [clip_posteriors_every_hop(hear, s.audio, cfg, n, progress=bar.update)
                           for s, n in zip(streams, stream_hops, strict=True)]
        seconds_per_hop[name] = (time.perf_counter() - t0) / max(hops, 1)

    thresholds = np.unique(np.concatenate([np.linspace(0.05, 0.95, 91), 1 - np.logspace(-6, np.log10(0.05), 33),
                                           [params["thresholds"][params["fires"].index(1)]]]))
    curves: dict[str, list[dict]] = {}
    results: dict[str, Any] = {}
    for ro in tqdm(list(posts), desc="DET curves", disable=args.quiet):
        curves[ro] = det_curve(posts[ro], streams, cfg, params, thresholds, args.tolerance)
        per_snr = {}
        for s, p in zip(streams, posts[ro], strict=True):
            per_snr[f"{s.snr_db:g}"] = pool_scores([score(detect_offline(p, params), s, cfg, args.tolerance)])
        yaml_point = pool_scores([score(detect_offline(p, params), s, cfg, args.tolerance)
                                  for s, p in zip(streams, posts[ro], strict=True)])
        at1 = rate_at_fa(curves[ro], 1.0)
        at10 = rate_at_fa(curves[ro], 10.0)
        results[ro] = {
            "yaml_policy": yaml_point, "per_snr": per_snr,
            "at_1_fa_per_hour": at1, "at_10_fa_per_hour": at10,
            "macs_per_hop": (macs_per_hop(cfg, "stream_mean") if ro == DEVICE else
                             macs_per_hop(cfg, ro) if ro in READOUTS else teacher_macs(ro, tdir)),
            "host_ms_per_hop_batched": 1000 * seconds_per_hop[ro],
            # teachers: one batched 1 s inference a hop; the device image: a host emulation; neither timed live
            "host_ms_per_hop_live": live_ms_per_hop(model, cfg, ro) if ro in READOUTS else None,
            "kind": "model" if ro in READOUTS else (DEVICE if ro == DEVICE else "teacher"),
        }

    default_thr = params["thresholds"][params["fires"].index(1)]
    title = (f"{cfg.name} ({ckpt}), {args.minutes:g} min, SNR {args.snr} dB, words: {args.clips}, "
             f"seed {args.seed}")
    plot_det(curves, out / "det.png", title, {ro: default_thr for ro in curves})
    report = {
        "checkpoint": str(ckpt), "config": cfg.name, "detection": params, "seed": args.seed, "snr_db": snrs,
        "clips": args.clips, "minutes": args.minutes, "tolerance_s": args.tolerance, "teachers": teachers,
        "device_image": None if image is None else str(path),
        "streams": [{"snr_db": s.snr_db, "seconds": len(s.audio) / s.sample_rate, "events": len(s.events),
                     "keywords": sum(e.name not in (SILENCE_LABEL, UNKNOWN_LABEL) for e in s.events)}
                    for s in streams],
        "results": results, "det": curves,
    }
    (out / "stream_eval.json").write_text(json.dumps(report, indent=1, default=_json_default))
    print_summary(report, out)
    return 0


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, Event):
        return asdict(x)
    return str(x)


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def print_summary(report: dict, out: Path) -> None:
    st = report["streams"]
    print(f"\nstreams: {sum(s['seconds'] for s in st) / 3600:.2f} h, {sum(s['keywords'] for s in st)} keywords, "
          f"{sum(s['events'] - s['keywords'] for s in st)} unknown words, SNR {report['snr_db']} dB, "
          f"words: {report['clips']}, seed {report['seed']}")
    thr = report["detection"]["thresholds"][report["detection"]["fires"].index(1)]
    head = (f"{'readout':<12} {'det@thr' + format(thr, '.2f'):>11} {'FA/h':>7} {'lat med':>8} "
            f"{'det@1FA/h':>10} {'(thr)':>6} {'det@10FA/h':>10} {'MACs/hop':>9} {'ms/hop':>7}")
    note = "ms/hop: host, live hop by hop (batch 1), median; batched throughput in the JSON"
    if report.get("device_image"):
        note += f"; device: the firmware's int8 streaming image {report['device_image']} (host emulation, not timed)"
    if report.get("teachers"):
        note += "; teachers: pretrained baselines, each run every hop on the last 1 s of audio (front end not in MACs)"
    print("-" * len(head))
    print(head)
    print("-" * len(head))
    for ro, r in report["results"].items():
        y = r["yaml_policy"]
        a = r["at_1_fa_per_hour"]
        b = r["at_10_fa_per_hour"]
        print(f"{ro:<12} {_fmt(y['detection_rate'], '.3f'):>11} {_fmt(y['false_alarms_per_hour'], '.1f'):>7} "
              f"{_fmt(y['latency_median_s'], '.2f'):>8} {_fmt(a and a['detection_rate'], '.3f'):>10} "
              f"{_fmt(a and a['threshold'], '.3f'):>6} {_fmt(b and b['detection_rate'], '.3f'):>10} "
              f"{r['macs_per_hop']:>9,} {_fmt(r['host_ms_per_hop_live'], '.3f'):>7}")
    print("-" * len(head))
    for ro, r in report["results"].items():
        parts = [f"{snr} dB: {_fmt(v['detection_rate'], '.2f')} / {_fmt(v['false_alarms_per_hour'], '.0f')} FA/h"
                 for snr, v in r["per_snr"].items()]
        print(f"{ro:<12} per SNR (YAML threshold): " + "; ".join(parts))
    print(note)
    print(f"outputs: {out / 'stream_eval.json'}, {out / 'det.png'}")
