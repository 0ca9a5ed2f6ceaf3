"""Evaluate a checkpoint: per-class accuracy (JSON) and a confusion-matrix PNG.

    python tools/evaluate.py --checkpoint runs/kws_mamba/best.pt            # generated test split + real clips
    python tools/evaluate.py --checkpoint ... --data /path/to/speech_commands_v0.02
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .config import KWSConfig
from .errors import ArgumentParser


@torch.no_grad()
def predict(model: torch.nn.Module, feats: np.ndarray, device: torch.device | str = "cpu", batch: int = 256,
            desc: str | None = None) -> np.ndarray:
    """Logits for (n, frames, channels) features; a progress bar named `desc` when given."""
    from tqdm import tqdm

    model.eval()
    out = []
    for i in tqdm(range(0, len(feats), batch), desc=desc, unit="batch", disable=desc is None):
        x = torch.from_numpy(np.asarray(feats[i : i + batch], np.float32)).to(device)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    return float((logits.argmax(1) == targets).mean()) if len(targets) else float("nan")


def confusion_matrix(targets: np.ndarray, preds: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (targets, preds), 1)
    return cm


def report_from_logits(logits: np.ndarray, targets: np.ndarray, labels: tuple[str, ...]) -> dict:
    preds = logits.argmax(1)
    cm = confusion_matrix(targets, preds, len(labels))
    per_class = {
        lab: {"n": int(cm[i].sum()), "accuracy": float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None}
        for i, lab in enumerate(labels)
    }
    return {
        "n": int(len(targets)),
        "accuracy": float((preds == targets).mean()) if len(targets) else float("nan"),
        "per_class": per_class,
        "labels": list(labels),
        "confusion": cm.tolist(),
    }


def plot_confusion(report: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(report["confusion"], dtype=np.float64)
    labels = report["labels"]
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(f"{title}: accuracy {report['accuracy']:.3f} (n={report['n']})")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def evaluate_clips(model: torch.nn.Module, cfg: KWSConfig, clips, out: Path, name: str,
                   device: torch.device | str = "cpu") -> dict:
    """Evaluate on a ClipSet; writes out/eval_<name>.json and out/confusion_<name>.png."""
    from .data import clip_features

    feats = clip_features(clips, cfg)
    logits = predict(model, feats, torch.device(device))
    report = report_from_logits(logits, clips.targets, tuple(cfg.labels))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"eval_{name}.json").write_text(json.dumps(report, indent=2))
    plot_confusion(report, out / f"confusion_{name}.png", f"{cfg.name} on {name}")
    return report


def print_report(name: str, report: dict) -> None:
    print(f"\n{name}: accuracy {report['accuracy']:.4f} on {report['n']} clips")
    for lab, r in report["per_class"].items():
        acc = "  -  " if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        print(f"  {lab:<10} {acc}  (n={r['n']})")


def print_side_by_side(name: str, reports: dict[str, dict]) -> None:
    """Per-class accuracy of several models on the same clips, one column each."""
    first = next(iter(reports.values()))
    width = max(12, *(len(m) + 2 for m in reports))
    print(f"\n{name}: {first['n']} clips")
    print(f"  {'class':<10} {'n':>5}" + "".join(f"{m:>{width}}" for m in reports))
    for lab, r in first["per_class"].items():
        cells = []
        for rep in reports.values():
            acc = rep["per_class"][lab]["accuracy"]
            cells.append(f"{'-' if acc is None else f'{acc:.3f}':>{width}}")
        print(f"  {lab:<10} {r['n']:>5}" + "".join(cells))
    print(f"  {'accuracy':<10} {first['n']:>5}" + "".join(f"{rep['accuracy']:>{width}.4f}" for rep in reports.values()))


def teacher_reports(names: list[str], clips: Any, labels: tuple[str, ...]) -> dict[str, dict]:
    """The pretrained teachers (mamba_kws.teachers) scored on the same clips."""
    from .teachers import load_teacher, to_labels

    return {n: report_from_logits(to_labels(load_teacher(n)(clips.audio), labels), clips.targets, labels)
            for n in names}


def load_clip_folder(path: Path, cfg: KWSConfig) -> Any:
    """A folder of <label>/*.wav clips (labels outside the model's become _unknown_) as a ClipSet."""
    from .data import load_real_clips

    return load_real_clips(path.name, cfg, root=path.parent)


def main(argv: list[str] | None = None) -> int:
    from .data import load_real_clips, prepare_data
    from .data.sources import filter_trained_speakers
    from .errors import DataError

    p = ArgumentParser(prog="evaluate.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by train.py (e.g. runs/<name>/best.pt)")
    p.add_argument("--data", default="generated",
                   help="test split to score: 'generated', a Speech Commands v2 directory, or '' for none")
    p.add_argument("--cache", default=None, help="data cache (default $KWS_CACHE, else <repo>/data)")
    p.add_argument("--real", default="v2_test_dev",
                   help="comma-separated real clips to score: subsets of <data root>/speech_commands "
                        "(v2_test_dev, v1_sample) or folders of <label>/*.wav ('' for none)")
    p.add_argument("--teachers", default="",
                   help="also score these pretrained models on the same real clips, side by side "
                        "(comma-separated: ds_cnn_l, ds_cnn_s, mlperf_float, mlperf_int8, ensemble; folder from "
                        "$KWS_TEACHERS)")
    p.add_argument("--out", default=None, help="output directory (default: the checkpoint's directory)")
    args = p.parse_args(argv)
    from .teachers import present

    teachers = present([t for t in args.teachers.split(",") if t])

    model, cfg, meta = load_checkpoint(args.checkpoint)
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    if args.data:
        source = None if args.data == "generated" else Path(args.data)
        splits = prepare_data(cfg, source, cache_dir=args.cache)
        print_report("test", evaluate_clips(model, cfg, splits.test, out, "test"))
    trained_on = meta.get("trained_on") or {}
    for item in filter(None, args.real.split(",")):
        folder = Path(item)
        if folder.is_dir():
            clips, name = load_clip_folder(folder.resolve(), cfg), folder.resolve().name
        elif "/" in item or item.startswith("."):
            raise DataError(f"--real {item}: no such folder")
        else:
            from .paths import have_real_clips

            if not have_real_clips(item, "skipped (or score any folder of <label>/*.wav with --real PATH)"):
                continue
            if item in (trained_on.get("sources") or ()):
                raise DataError(f"{args.checkpoint} was trained on {item}: it cannot be scored on it")
            clips, name = load_real_clips(item, cfg), item
        clips, dropped = filter_trained_speakers(clips, trained_on)
        if dropped:
            print(f"{name}: left out {dropped} clips of speakers the checkpoint was trained or selected on")
        report = evaluate_clips(model, cfg, clips, out, name)
        if teachers:
            side = {cfg.name: report, **teacher_reports(teachers, clips, tuple(cfg.labels))}
            (out / f"eval_{name}_teachers.json").write_text(json.dumps(side, indent=2))
            print_side_by_side(name, side)
        else:
            print_report(name, report)
    print(f"\nreports and confusion matrices in {out}")
    return 0
