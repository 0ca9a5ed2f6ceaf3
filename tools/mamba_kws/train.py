"""Train a Mamba keyword spotter: `python tools/train.py --config models/kws_mamba.yaml`.

Data: the sources of the model YAML (`train.sources`): the generated speech set (made and cached on
first use), real clips, the real Speech Commands feature maps, any feature-set file; each with its
weight, all mixed as feature maps (mamba_kws.data.sources). With `train.distill.teacher`, the audio
sources also carry the teachers' posteriors (soft targets). The checkpoint is selected on a validation
split (`train.select_on`) and reported on the real clips of <data root>/speech_commands/v2_test_dev,
never trained on; clips of any speaker the model was trained or selected on are left out of reports.

Runs on one CPU/GPU, or several with torchrun (DDP):
    torchrun --nproc_per_node=4 tools/train.py --device cuda
Writes <out>/{last.pt, best.pt, history.json, summary.json, eval_*.json, confusion_*.png}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from .checkpoint import read_checkpoint, save_checkpoint
from .config import REPO_ROOT, KWSConfig, check_config, load_config
from .errors import ArgumentParser, KWSError
from .evaluate import accuracy, evaluate_clips, predict
from .model import build_model, count_parameters

# --qat: the int8 simulation's ranges come from the export's calibration clips (tools/export.py --calib
# default), recomputed on the current weights every QAT_RECALIBRATE_STEPS steps.
QAT_RECALIBRATE_STEPS = 20
QAT_TARGETS = ("builtin", "fused")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = ArgumentParser(
        prog="train.py",
        description="Train a Mamba keyword-spotting model on micro-frontend features, from the sources of "
                    "its YAML (generated speech, real clips, real feature maps), optionally distilled from "
                    "pretrained teachers.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--config", default=str(REPO_ROOT / "models" / "kws_mamba.yaml"),
                   help="model YAML (models/<name>.yaml or a name)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.d_model=48 --set train.distill.teacher=ensemble "
                        "(repeatable; the value is YAML)")
    p.add_argument("--data", default="generated",
                   help="the speech set: 'generated' (synthetic speech + noise, cached) or a Speech Commands v2 "
                        "directory")
    p.add_argument("--download", action="store_true",
                   help="download the official Speech Commands v0.02 archive into the cache and use it as the "
                        "speech set")
    p.add_argument("--data-root", default=None,
                   help="where data sets are read (default $KWS_DATA, else <repo>/data; README: Data)")
    p.add_argument("--cache", default=None,
                   help="where generated/converted data go (default $KWS_CACHE, else <repo>/data)")
    p.add_argument("--teachers", default=None,
                   help="folder of the pretrained teachers (default $KWS_TEACHERS, else <data root>/teachers)")
    p.add_argument("--out", default=None, help="run directory (default runs/<config name>)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="training device")
    p.add_argument("--epochs", type=int, default=None, help="override train.epochs (with --qat: qat.epochs)")
    p.add_argument("--lr", type=float, default=None, help="override train.lr (with --qat: qat.lr)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps (smoke tests)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt if it exists")
    p.add_argument("--workers", type=int, default=1, help="(kept for compatibility; batches are made in-process)")
    p.add_argument("--no-real-eval", action="store_true",
                   help="skip the report on the real clips of <data root>/speech_commands/v2_test_dev")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per process (the model is small: 1 is fastest, see README)")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (fine-tuning; its model must match --config)")
    p.add_argument("--qat", nargs="?", const="builtin", default=None, choices=QAT_TARGETS,
                   help="quantisation-aware fine-tuning for an int8 device path (the config's qat: section); needs "
                        "--init; batchnorm frozen. 'builtin' (the default with a bare --qat): through a simulation "
                        "of the paper's unrolled builtin-op graph (mamba_kws.qat; no stream context). 'fused': "
                        "through a simulation of the fused int8 kernels the firmware runs (mamba_kws.fused.qat), "
                        "with the config's stream context")
    p.add_argument("--qat-match", type=float, default=None, metavar="WEIGHT",
                   help="with --qat: train the float model (cross-entropy) plus WEIGHT x the KL divergence of the "
                        "simulated int8 posteriors from the float ones (0: cross-entropy of the int8 simulation; "
                        "default qat.match)")
    p.add_argument("--qat-equalize", type=float, default=None, metavar="STRENGTH",
                   help="with --qat: first rescale the scan state channels (mamba_kws.equalize; exact in float) "
                        "with this strength in [0, 1] (0: off; default qat.equalize)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training step (about 2x faster on CPU after a few minutes of compiling: "
                        "worth it for full runs)")
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


# ----------------------------------------------------------------------------- schedule and loss

def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up, then cosine decay to 5% of the base rate."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def kws_loss(logits: torch.Tensor, y: torch.Tensor, soft: torch.Tensor, has_soft: torch.Tensor,
             cfg: KWSConfig) -> torch.Tensor:
    """Cross-entropy on the labels; where a teacher's posteriors are known, mixed with distillation:
    (1 - w) CE + w T^2 KL(teacher^(1/T) || student / T) (Hinton et al. 2015). Clips without a label
    (y = -1) learn from the teacher alone."""
    tc = cfg.train
    hard = y >= 0
    ce = torch.zeros_like(logits[:, 0])
    if hard.any():
        ce[hard] = F.cross_entropy(logits[hard], y[hard], label_smoothing=tc.label_smoothing, reduction="none")
    d = tc.distill
    if not has_soft.any():
        return ce[hard].mean() if hard.any() else logits.sum() * 0
    t = d.temperature
    target = F.log_softmax(torch.log(soft.clamp_min(1e-8)) / t, dim=1)
    kl = F.kl_div(F.log_softmax(logits / t, dim=1), target, log_target=True, reduction="none").sum(1) * t * t
    w = torch.where(has_soft, torch.where(hard, d.weight, 1.0), 0.0)
    per = (1 - w) * ce + w * kl
    return per.mean()


def context_logits(model: torch.nn.Module, x: torch.Tensor, context_steps: int) -> torch.Tensor:
    """train.stream_context_steps: logits of each clip after the last `context_steps` steps of the
    previous clip in the batch, pooling over the clip's own steps only (the state carries over).
    `model` may be the DDP wrapper: the call goes through its forward, so gradients stay in sync."""
    return model(with_context(model, x, context_steps), skip_steps=context_steps)


def with_context(model: torch.nn.Module, x: torch.Tensor, context_steps: int) -> torch.Tensor:
    """Each clip of the batch preceded by the last `context_steps` steps of the previous one."""
    if context_steps <= 0:
        return x
    core = model
    while not hasattr(core, "cfg"):  # through the DDP and torch.compile wrappers
        core = getattr(core, "_orig_mod", None) or core.module
    k = core.cfg.model.frame_stack
    context = x.roll(1, dims=0)[:, x.shape[1] - context_steps * k :]
    return torch.cat([context, x], dim=1)


# ----------------------------------------------------------------------------- the steps of a run

@dataclass
class Run:
    """What the steps of one training run share."""

    args: argparse.Namespace
    cfg: KWSConfig
    rank: int
    world: int
    device: torch.device
    out: Path

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(args: argparse.Namespace) -> Run:
    """Step 1: the config (with --set, --qat, --epochs, --lr applied), devices, output folder."""
    if args.data_root:
        os.environ["KWS_DATA"] = str(args.data_root)
    if args.teachers:
        os.environ["KWS_TEACHERS"] = str(args.teachers)
    cfg: KWSConfig = load_config(args.config, args.overrides)
    if args.qat:  # fine-tuning: the qat: section's schedule, the CLI's overrides
        q = cfg.qat
        q = replace(q, match=q.match if args.qat_match is None else args.qat_match,
                    equalize=q.equalize if args.qat_equalize is None else args.qat_equalize)
        cfg = replace(cfg, qat=q, train=replace(cfg.train, epochs=q.epochs, lr=q.lr))
    if args.epochs is not None:
        cfg = replace(cfg, train=replace(cfg.train, epochs=args.epochs))
    if args.lr is not None:
        cfg = replace(cfg, train=replace(cfg.train, lr=args.lr))
    check_config(cfg, f"{args.config} with the command-line options")
    tc = cfg.train
    if args.max_steps is not None and args.max_steps < 1:
        raise KWSError(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.qat and not args.init:
        raise KWSError("--qat fine-tunes a trained model: give it one with --init runs/<name>/best.pt")
    if args.init:  # a checkpoint that is unreadable or of another model fails now, before the data are made
        from .checkpoint import load_checkpoint

        load_checkpoint(args.init, cfg)
    torch.set_num_threads(max(1, args.threads))
    rank, world, device = _dist_setup(args.device)
    if args.qat and world > 1:
        raise KWSError("--qat fine-tuning runs in one process (it is short); start it without torchrun")
    out = Path(args.out) if args.out else REPO_ROOT / "runs" / cfg.name
    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed)
    return Run(args, cfg, rank, world, device, out)


def load_data(run: Run):  # noqa: ANN201 - mamba_kws.data.sources.TrainingData
    """Step 2: every training source as feature maps, the validation split, the clips to report on."""
    from .data.sources import build_training_data

    args = run.args
    speech = None if args.data == "generated" else Path(args.data)

    def build(progress: bool):  # noqa: ANN202
        return build_training_data(run.cfg, speech=speech, download=args.download, cache=args.cache,
                                   progress=progress, real_eval=not args.no_real_eval)

    data = build(not args.quiet) if run.main else None
    if run.world > 1:  # rank 0 makes and caches everything first; the others then read the cache
        dist.barrier()
        if not run.main:
            data = build(False)
    if data.steps_per_epoch(run.cfg.train.batch_size, run.world) < 1:
        raise KWSError(f"{sum(len(s) for s in data.sets)} training clips make no full batch of "
                       f"{run.cfg.train.batch_size} per process: lower train.batch_size or add data")
    return data


def build_model_and_optimizer(run: Run) -> tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer, object]:
    """Step 3: the model (from --init if given), its DDP wrapper, AdamW, and the int8 simulation (--qat)."""
    from .checkpoint import load_checkpoint

    cfg, args = run.cfg, run.args
    model = build_model(cfg).to(run.device)
    if args.init:
        init_model, _, _ = load_checkpoint(args.init, cfg)
        model.load_state_dict(init_model.state_dict())
    sim = None
    if args.qat:  # both simulations calibrate on the clips their export calibrates on (mamba_kws.calibration)
        from .calibration import calibration_features

        calib = calibration_features(cfg)
    if args.qat == "fused":
        from .fused.qat import FusedInt8Sim
        from .fused.quantize import QuantizeError

        try:
            fsim = FusedInt8Sim(model)
        except QuantizeError as exc:
            raise KWSError(str(exc)) from None
        sim = (fsim, calib)
    elif args.qat:
        from .equalize import equalize_model
        from .qat import Int8Sim

        if cfg.qat.equalize > 0:
            equalize_model(model, calib, cfg.qat.equalize)
        sim = (Int8Sim(model), calib)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if run.world > 1 else model
    if args.compile and not args.qat:
        ddp = torch.compile(ddp, dynamic=False)  # one graph per input length (with and without context)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    return model, ddp, opt, sim


def _with_context(prob: float, seed: int, step: int) -> bool:
    """Whether this step's batch gets stream context (the same answer in every DDP process)."""
    return prob >= 1 or (prob > 0 and np.random.default_rng([seed, 31, step]).random() < prob)


class WeightAverage:
    """train.ema_decay: an exponential moving average of the model's parameters and float buffers
    (batchnorm statistics), updated after every optimizer step (Polyak averaging, as timm's ModelEmaV2)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        import copy

        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # shorter memory in the first steps
        for avg, cur in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(cur.detach(), alpha=1 - d)
            else:
                avg.copy_(cur)


def _without_epochs(config: dict | None) -> dict:
    c = {k: dict(v) if isinstance(v, dict) else v for k, v in (config or {}).items()}
    c.get("train", {}).pop("epochs", None)
    return c


def train_loop(run: Run, data, model: torch.nn.Module, ddp: torch.nn.Module, opt: torch.optim.Optimizer,
               sim) -> tuple[list[dict], int, float, float]:  # noqa: ANN001
    """Step 4: epochs of mixed, augmented batches; the best validation accuracy is kept as best.pt."""
    cfg, args, tc = run.cfg, run.args, run.cfg.train
    a = tc.augment
    spec = (a.spec_freq_masks, a.spec_freq_width, a.spec_time_masks, a.spec_time_width)
    steps_per_epoch = data.steps_per_epoch(tc.batch_size, run.world)
    total_steps = tc.epochs * steps_per_epoch
    if args.max_steps is not None:
        total_steps = min(total_steps, args.max_steps)
    warmup = min(total_steps // 2, tc.warmup_epochs * steps_per_epoch)
    val_feats = data.val.feats.astype(np.float32)
    extra = {"data_source": data.summary.get("speech_set", {}).get("source", ""), "trained_on": data.trained_on}

    start_epoch, step, best_acc, history, resumed_ema = 0, 0, -1.0, [], None
    last_path, best_path = run.out / "last.pt", run.out / "best.pt"
    if args.resume and last_path.exists():
        state = read_checkpoint(last_path)
        if _without_epochs(state.get("config")) != _without_epochs(cfg.to_dict()):
            raise KWSError(f"{last_path} was trained with another config; resume with the same --config and "
                           "--set values (only --epochs may change), or start a new --out")
        missing = [k for k in ("model", "optimizer", "epoch", "step") if k not in state]
        if missing:
            raise KWSError(f"{last_path} cannot be resumed: it has no {', '.join(missing)} (a best.pt, not the "
                           "last.pt train.py writes?); start a new --out, or fine-tune it with --init")
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise KWSError(f"{last_path} cannot be resumed: its weights or optimizer state do not fit the model "
                           f"({str(exc).splitlines()[0][:120]})") from None
        start_epoch, step = state["epoch"] + 1, state["step"]
        if start_epoch >= tc.epochs:
            raise KWSError(f"{last_path} has already trained {start_epoch} of {tc.epochs} epochs: nothing to "
                           f"resume; pass --epochs above {start_epoch} to train on")
        best_acc, history, resumed_ema = state.get("best_val_acc", -1.0), state.get("history", []), state.get("ema")
        if run.main:
            print(f"resuming from {last_path} at epoch {start_epoch}")

    ema = WeightAverage(model, tc.ema_decay) if tc.ema_decay > 0 and sim is None else None
    if ema is not None and resumed_ema is not None:
        ema.model.load_state_dict(resumed_ema)
    scored = ema.model if ema is not None else model  # what validation selects and best.pt holds
    t0 = time.time()
    start_step = step
    for epoch in range(start_epoch, tc.epochs):
        if step >= total_steps:
            break
        ddp.train()
        if sim is not None:
            from .qat import freeze_batchnorm

            freeze_batchnorm(model)
        loss_sum, correct, seen = 0.0, 0.0, 0.0
        batches = data.batches(epoch, tc.batch_size, tc.seed, tc.feature_augment, spec, run.rank, run.world)
        bar = tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{tc.epochs}",
                   disable=args.quiet or not run.main, leave=False, unit="batch")
        for x, y, soft, has_soft in bar:
            if step >= total_steps:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, warmup, tc.lr)
            x, y, soft, has_soft = (t.to(run.device) for t in (x, y, soft, has_soft))
            if sim is not None:  # QAT: the float model and its int8 simulation on the same batch
                int8, calib = sim
                if (step - start_step) % QAT_RECALIBRATE_STEPS == 0:
                    int8.calibrate(calib)  # the export's ranges, on the current weights
                # the fused kernels run with the stream context the firmware sees; the exported builtin-op
                # graph sees one window from a zero state
                fused_ctx = args.qat == "fused" and _with_context(tc.stream_context_prob, tc.seed, step)
                ctx = tc.stream_context_steps if fused_ctx else 0
                xin = with_context(model, x, ctx)
                logits = model(xin, skip_steps=ctx)
                sim_logits = int8(xin, skip_steps=ctx) if ctx else int8(xin)
                if cfg.qat.match > 0:  # pull the int8 posteriors onto the float ones (KL)
                    loss = kws_loss(logits, y, soft, has_soft, cfg) + cfg.qat.match * F.kl_div(
                        F.log_softmax(sim_logits, 1), F.log_softmax(logits.detach(), 1), log_target=True,
                        reduction="batchmean")
                else:
                    loss = kws_loss(sim_logits, y, soft, has_soft, cfg)
            else:
                ctx = tc.stream_context_steps if _with_context(tc.stream_context_prob, tc.seed, step) else 0
                logits = context_logits(ddp, x, ctx) if ctx > 0 else ddp(x)
                loss = kws_loss(logits, y, soft, has_soft, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if ema is not None:
                ema.update(model, step)
            step += 1
            labelled = y >= 0
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y)[labelled].sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        loss_sum, correct, seen = _all_reduce_sum([loss_sum, correct, seen], run.device)
        val_acc = accuracy(predict(scored, val_feats, run.device), data.val.targets)
        row = {"epoch": epoch + 1, "step": step, "train_loss": loss_sum / max(seen, 1),
               "train_acc": correct / max(seen, 1), "val_acc": val_acc, "seconds": round(time.time() - t0, 1)}
        history.append(row)
        if run.main:
            if not args.quiet:
                print(f"epoch {epoch + 1:3d}  loss {row['train_loss']:.4f}  train {row['train_acc']:.3f}  "
                      f"val {val_acc:.3f}  ({row['seconds']:.0f} s)")
            if val_acc > best_acc:
                best_acc = val_acc
                save_checkpoint(best_path, scored, cfg, epoch=epoch, step=step, metrics={"val_acc": val_acc},
                                **extra)
            last_extra = extra if ema is None else {**extra, "ema": ema.model.state_dict()}
            save_checkpoint(last_path, model, cfg, epoch=epoch, step=step, optimizer=opt.state_dict(),
                            best_val_acc=best_acc, history=history, **last_extra)
    if run.main and not best_path.exists():
        save_checkpoint(best_path, scored, cfg, epoch=-1, step=step, metrics={}, **extra)
    return history, step, best_acc, time.time() - t0


def report(run: Run, data, history: list[dict], step: int, best_acc: float, seconds: float,
           n_params: int) -> dict:  # noqa: ANN001
    """Step 5: the best checkpoint on the generated test split and the real clips; summary.json."""
    from .calibration import DEFAULT as CALIB_DEFAULT
    from .calibration import resolve as resolve_calibration
    from .data.sources import filter_trained_speakers

    cfg = run.cfg
    best_model = build_model(cfg)
    best_model.load_state_dict(read_checkpoint(run.out / "best.pt")["model"])
    best_model.to(run.device).eval()
    reports, dropped = {}, {}
    for name, clips in data.reports.items():
        clips, dropped[name] = filter_trained_speakers(clips, data.trained_on)
        reports[name] = evaluate_clips(best_model, cfg, clips, run.out, name, run.device)
    summary = {
        "config": cfg.name, "params": n_params, "epochs": len(history), "steps": step,
        "train_seconds": round(seconds, 1), "best_val_acc": best_acc, "selected_on": data.val_name,
        "sources": data.summary.get("sources", []), "notes": data.summary.get("notes", []),
        "train_clips": int(sum(len(s) for s in data.sets)), "init": run.args.init, "qat": run.args.qat or False,
        "qat_calibration": resolve_calibration(CALIB_DEFAULT) if run.args.qat else None,
        "distill": cfg.train.distill.teacher, "distill_features": cfg.train.distill.features_teacher,
        "report_clips_dropped": dropped,
        **{f"{k}_acc": v["accuracy"] for k, v in reports.items()},
    }
    (run.out / "history.json").write_text(json.dumps(history, indent=2))
    (run.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print_summary(summary, run.out)
    return summary


def train(args: argparse.Namespace) -> dict:
    run = setup(args)
    data = load_data(run)
    model, ddp, opt, sim = build_model_and_optimizer(run)
    history, step, best_acc, seconds = train_loop(run, data, model, ddp, opt, sim)
    if run.world > 1:
        dist.barrier()
    summary = report(run, data, history, step, best_acc, seconds, count_parameters(model)) if run.main else {}
    if run.world > 1:
        dist.destroy_process_group()
    return summary


def print_summary(summary: dict, out: Path) -> None:
    rows = [
        ("config", summary["config"]),
        ("parameters", f"{summary['params']:,}"),
        ("epochs / steps", f"{summary['epochs']} / {summary['steps']}"),
        ("training time", f"{summary['train_seconds']:.0f} s"),
        (f"best val accuracy ({summary['selected_on']})", f"{summary['best_val_acc']:.4f}"),
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
