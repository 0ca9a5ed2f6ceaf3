"""Train a Mamba keyword spotter: `python tools/train.py --config models/kws_mamba.yaml`.

Data: the generated set by default (synthetic speech + real noise, made and cached on first use),
a Speech Commands v2 directory with --data, or the official archive with --download. The real
clips in <data root>/speech_commands/v2_test_dev are never trained on; they are reported.

Runs on one CPU/GPU, or several with torchrun (DDP):
    torchrun --nproc_per_node=4 tools/train.py --device cuda
Writes runs/<name>/{last.pt, best.pt, history.json, eval_*.json, confusion_*.png}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from .checkpoint import read_checkpoint, save_checkpoint
from .config import REPO_ROOT, KWSConfig, load_config
from .data.clips import ClipSet
from .errors import KWSError
from .model import build_model, count_parameters

# --qat: the int8 simulation's ranges come from the export's calibration clips (tools/export.py --calib
# default), recomputed on the current weights every QAT_RECALIBRATE_STEPS steps.
QAT_CALIB_CLIPS = 200
QAT_RECALIBRATE_STEPS = 20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train a Mamba keyword-spotting model on micro-frontend features.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", default=str(REPO_ROOT / "models" / "kws_mamba.yaml"),
                   help="model YAML (models/<name>.yaml or a name)")
    p.add_argument("--data", default="generated",
                   help="'generated' (synthetic speech + real noise, cached) or a Speech Commands v2 directory")
    p.add_argument("--download", action="store_true",
                   help="download the official Speech Commands v0.02 archive into --cache first")
    p.add_argument("--cache", default=str(REPO_ROOT / "data"), help="where data sets are generated/downloaded")
    p.add_argument("--out", default=None, help="run directory (default runs/<config name>)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training device")
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs (with --qat: qat.epochs)")
    p.add_argument("--lr", type=float, default=None, help="override train.lr (with --qat: qat.lr)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps (smoke tests)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt if it exists")
    p.add_argument("--workers", type=int, default=1, help="data-loader worker processes")
    p.add_argument("--no-real-eval", action="store_true",
                   help="skip the evaluation on the real clips of <data root>/speech_commands")
    p.add_argument("--real-train", default="v1_sample",
                   help="comma-separated real subsets of <data root>/speech_commands added to the training "
                        "set ('' for none); their speakers are not in v2_test_dev")
    p.add_argument("--real-finetune", type=float, default=0.0, metavar="FRACTION",
                   help="also train on this fraction of v2_test_dev's speakers (split by speaker hash) and "
                        "report accuracy on the other, held-out speakers only")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per process (the model is small: 1 is fastest, see README)")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (fine-tuning; its model must match --config)")
    p.add_argument("--qat", action="store_true",
                   help="quantisation-aware fine-tuning for the int8 export (the config's qat: section): train "
                        "through a simulation of the unrolled int8 graph (mamba_kws.qat); needs --init; batchnorm "
                        "frozen, no stream context")
    p.add_argument("--qat-match", type=float, default=None, metavar="WEIGHT",
                   help="with --qat: train the float model (cross-entropy) plus WEIGHT x the KL divergence of the "
                        "simulated int8 posteriors from the float ones (0: cross-entropy of the int8 simulation; "
                        "default qat.match)")
    p.add_argument("--qat-equalize", type=float, default=None, metavar="STRENGTH",
                   help="with --qat: first rescale the scan state channels (mamba_kws.equalize; exact in float) "
                        "with this strength in [0, 1] (0: off; default qat.equalize)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- distributed helpers

def _dist_setup(device: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device == "cuda" and not torch.cuda.is_available():
        raise KWSError("--device cuda asked for, but torch sees no CUDA device (use --device cpu)")
    if world > 1:
        backend = "nccl" if device == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def _all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    if not (dist.is_available() and dist.is_initialized()):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


# ----------------------------------------------------------------------------- schedule

def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up, then cosine decay to 5% of the base rate."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def predict(model: torch.nn.Module, feats: np.ndarray, device: torch.device, batch: int = 256) -> np.ndarray:
    """Logits for (n, frames, channels) features."""
    model.eval()
    out = []
    for i in range(0, len(feats), batch):
        x = torch.from_numpy(feats[i : i + batch]).to(device)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    return float((logits.argmax(1) == targets).mean()) if len(targets) else float("nan")


# ----------------------------------------------------------------------------- training

def train(args: argparse.Namespace) -> dict:
    from .data import FeatureDataset, clip_features, prepare_data
    from .evaluate import evaluate_clips

    cfg: KWSConfig = load_config(args.config)
    if args.qat:  # fine-tuning: the qat: section's schedule, the CLI's overrides
        q = cfg.qat
        q = replace(q, match=q.match if args.qat_match is None else args.qat_match,
                    equalize=q.equalize if args.qat_equalize is None else args.qat_equalize)
        if not 0 <= q.equalize <= 1 or q.match < 0:
            raise KWSError(f"--qat-equalize must be in [0, 1] and --qat-match >= 0, got {q.equalize}, {q.match}")
        cfg = replace(cfg, qat=q, train=replace(cfg.train, epochs=q.epochs, lr=q.lr))
    if args.epochs is not None:
        cfg = replace(cfg, train=replace(cfg.train, epochs=args.epochs))
    if args.lr is not None:
        cfg = replace(cfg, train=replace(cfg.train, lr=args.lr))
    tc = cfg.train
    torch.set_num_threads(max(1, args.threads))
    rank, world, device = _dist_setup(args.device)
    if not 0 <= tc.stream_context_steps <= cfg.steps:
        raise KWSError(f"train.stream_context_steps must be between 0 and {cfg.steps}, got {tc.stream_context_steps}")
    main_proc = rank == 0
    out = Path(args.out) if args.out else REPO_ROOT / "runs" / cfg.name
    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed)

    source = None if args.data == "generated" else Path(args.data)
    if main_proc or world == 1:
        splits = prepare_data(cfg, source, download=args.download, cache_dir=Path(args.cache),
                              progress=not args.quiet)
    if world > 1:
        dist.barrier()
        if not main_proc:
            splits = prepare_data(cfg, source, download=False, cache_dir=Path(args.cache), progress=False)

    generated_train = splits.train  # the export's int8 calibration clips come from here
    real_eval: dict[str, ClipSet] = {}
    if not args.no_real_eval or args.real_train or args.real_finetune > 0:
        splits.train, real_eval = add_real_clips(splits.train, cfg, args)
        if args.no_real_eval:
            real_eval = {}
    train_ds = FeatureDataset(splits.train, cfg, noise=splits.noise, train=True, seed=tc.seed)
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=tc.seed) \
        if world > 1 else None
    gen = torch.Generator().manual_seed(tc.seed)
    loader = DataLoader(train_ds, batch_size=tc.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=args.workers, drop_last=True, generator=gen,
                        persistent_workers=False)
    val_feats = clip_features(splits.val, cfg)

    model = build_model(cfg).to(device)
    n_params = count_parameters(model)
    if args.qat and world > 1:
        raise KWSError("--qat fine-tuning runs in one process (it is short); start it without torchrun")
    if args.qat and not args.init:
        raise KWSError("--qat fine-tunes a trained model: give it one with --init runs/<name>/best.pt")
    if args.init:
        from .checkpoint import load_checkpoint

        init_model, _, _ = load_checkpoint(args.init, cfg)
        model.load_state_dict(init_model.state_dict())
    sim, calib = None, None
    if args.qat:
        from .equalize import equalize_model
        from .export.pipeline import calibration_features
        from .qat import Int8Sim

        calib = calibration_features(generated_train, cfg, QAT_CALIB_CLIPS)
        if cfg.qat.equalize > 0:
            equalize_model(model, calib, cfg.qat.equalize)
        sim = Int8Sim(model)
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    steps_per_epoch = max(1, len(loader))
    total_steps = tc.epochs * steps_per_epoch
    if args.max_steps is not None:
        total_steps = min(total_steps, args.max_steps)
    warmup = min(total_steps // 2, tc.warmup_epochs * steps_per_epoch)

    start_epoch, step, best_acc, history = 0, 0, -1.0, []
    last_path, best_path = out / "last.pt", out / "best.pt"
    if args.resume and last_path.exists():
        state = read_checkpoint(last_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        best_acc, history = state.get("best_val_acc", -1.0), state.get("history", [])
        if main_proc:
            print(f"resuming from {last_path} at epoch {start_epoch}")

    t0 = time.time()
    start_step = step
    for epoch in range(start_epoch, tc.epochs):
        if step >= total_steps:
            break
        train_ds.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        ddp_model.train()
        if sim is not None:
            from .qat import freeze_batchnorm

            freeze_batchnorm(model)
        loss_sum, correct, seen = 0.0, 0.0, 0.0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{tc.epochs}", disable=args.quiet or not main_proc,
                   leave=False, unit="batch")
        for x, y in bar:
            if step >= total_steps:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, warmup, tc.lr)
            x, y = x.to(device), y.to(device)
            ctx = tc.stream_context_steps
            if sim is not None:  # the exported int8 graph sees one window from a zero state: no context
                if (step - start_step) % QAT_RECALIBRATE_STEPS == 0:
                    sim.calibrate(calib, "mse")  # the export's ranges, on the current weights
                logits = model(x)
                loss = F.cross_entropy(logits, y, label_smoothing=tc.label_smoothing)
                if cfg.qat.match > 0:  # pull the int8 graph's posteriors onto the float ones (KL)
                    loss = loss + cfg.qat.match * F.kl_div(F.log_softmax(sim(x), 1), F.log_softmax(
                        logits.detach(), 1), log_target=True, reduction="batchmean")
                else:
                    loss = F.cross_entropy(sim(x), y, label_smoothing=tc.label_smoothing)
            else:
                logits = context_logits(ddp_model, x, ctx) if ctx > 0 else ddp_model(x)
                loss = F.cross_entropy(logits, y, label_smoothing=tc.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        loss_sum, correct, seen = _all_reduce_sum([loss_sum, correct, seen], device)
        val_acc = accuracy(predict(model, val_feats, device), splits.val.targets)
        row = {"epoch": epoch + 1, "step": step, "train_loss": loss_sum / max(seen, 1),
               "train_acc": correct / max(seen, 1), "val_acc": val_acc, "seconds": round(time.time() - t0, 1)}
        history.append(row)
        if main_proc:
            if not args.quiet:
                print(f"epoch {epoch + 1:3d}  loss {row['train_loss']:.4f}  train {row['train_acc']:.3f}  "
                      f"val {val_acc:.3f}  ({row['seconds']:.0f} s)")
            if val_acc > best_acc:
                best_acc = val_acc
                save_checkpoint(best_path, model, cfg, epoch=epoch, step=step,
                                metrics={"val_acc": val_acc}, data_source=splits.source)
            save_checkpoint(last_path, model, cfg, epoch=epoch, step=step, optimizer=opt.state_dict(),
                            best_val_acc=best_acc, history=history, data_source=splits.source)
    train_seconds = time.time() - t0
    if world > 1:
        dist.barrier()
    summary: dict = {}
    if main_proc:
        if not best_path.exists():
            save_checkpoint(best_path, model, cfg, epoch=-1, step=step, metrics={}, data_source=splits.source)
        best_model = build_model(cfg)
        best_model.load_state_dict(read_checkpoint(best_path)["model"])
        best_model.to(device).eval()
        reports = {"test": evaluate_clips(best_model, cfg, splits.test, out, "test", device)}
        for name, clips in real_eval.items():
            reports[name] = evaluate_clips(best_model, cfg, clips, out, name, device)
        summary = {
            "config": cfg.name, "params": n_params, "epochs": len(history), "steps": step,
            "train_seconds": round(train_seconds, 1), "best_val_acc": best_acc,
            "data": splits.source, "data_summary": splits.summary, "train_clips": len(splits.train),
            "real_train": args.real_train, "real_finetune": args.real_finetune,
            "init": args.init, "qat": bool(args.qat),
            **{f"{k}_acc": v["accuracy"] for k, v in reports.items()},
        }
        (out / "history.json").write_text(json.dumps(history, indent=2))
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        print_summary(summary, out)
    if world > 1:
        dist.destroy_process_group()
    return summary


def context_logits(model: torch.nn.Module, x: torch.Tensor, context_steps: int) -> torch.Tensor:
    """train.stream_context_steps: logits of each clip after the last `context_steps` steps of the
    previous clip in the batch, pooling over the clip's own steps only (the state carries over).
    `model` may be the DDP wrapper: the call goes through its forward, so gradients stay in sync."""
    core = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    k = core.cfg.model.frame_stack
    context = x.roll(1, dims=0)[:, x.shape[1] - context_steps * k :]
    return model(torch.cat([context, x], dim=1), skip_steps=context_steps)


def speaker_fraction(speaker: str) -> float:
    """A stable number in [0, 1) per speaker (as Speech Commands' hash-based split)."""
    return int(hashlib.sha1(speaker.encode()).hexdigest()[:8], 16) / 0x1_0000_0000


def concat_clips(a: ClipSet, b: ClipSet) -> ClipSet:
    return ClipSet(a.labels, np.concatenate([a.audio, b.audio]), np.concatenate([a.targets, b.targets]),
                   a.words + b.words, a.speakers + b.speakers, a.paths + b.paths)


def add_real_clips(train_set: ClipSet, cfg: KWSConfig, args: argparse.Namespace) -> tuple[ClipSet, dict]:
    """Add the real training supplement (and, with --real-finetune, part of v2_test_dev's speakers)
    to the training set; return it with the real clips to report on, none of them trained on."""
    from .data import load_real_clips

    for subset in filter(None, args.real_train.split(",")):
        if subset == "v2_test_dev":
            raise KWSError("v2_test_dev is the reported real set: use --real-finetune to train on part of it")
        train_set = concat_clips(train_set, load_real_clips(subset, cfg))
    real = load_real_clips("v2_test_dev", cfg)
    if args.real_finetune <= 0:
        return train_set, {"v2_test_dev": real}
    if not 0 < args.real_finetune < 1:
        raise KWSError(f"--real-finetune must be a fraction between 0 and 1, got {args.real_finetune}")
    tune = np.array([speaker_fraction(s) < args.real_finetune for s in real.speakers])
    return concat_clips(train_set, real.subset(np.flatnonzero(tune))), \
        {"v2_test_dev_heldout": real.subset(np.flatnonzero(~tune))}


def print_summary(summary: dict, out: Path) -> None:
    rows = [
        ("config", summary["config"]),
        ("parameters", f"{summary['params']:,}"),
        ("epochs / steps", f"{summary['epochs']} / {summary['steps']}"),
        ("training time", f"{summary['train_seconds']:.0f} s"),
        ("best val accuracy", f"{summary['best_val_acc']:.4f}"),
    ]
    rows += [(f"{k[:-4]} accuracy", f"{v:.4f}") for k, v in summary.items()
             if k.endswith("_acc") and k != "best_val_acc"]
    rows.append(("outputs", str(out)))
    width = max(len(k) for k, _ in rows)
    print("\n" + "-" * (width + 30))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print("-" * (width + 30))


def main(argv: list[str] | None = None) -> int:
    train(parse_args(argv))
    return 0
