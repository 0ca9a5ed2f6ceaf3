"""Model size by measurement: accuracy against model flash, kernel RAM and instructions per 20 ms step.

    python tools/size_table.py runs/sweep/d32 runs/sweep/d40 runs/sweep/d64e1 --json sizes.json --plot sizes.png

For each trained run (a folder with best.pt and summary.json, written by tools/train.py):
  - accuracy: PyTorch float on v2_test_dev (summary.json) and the fused int8 model (the device path:
    mamba_kws.fused quantisation calibrated on the real feature maps where present, run by the C core on the host) on
    the same clips, leaving out any speaker the checkpoint was trained on;
  - model flash: the bytes of the streaming fused int8 .tflite (what the firmware embeds);
  - RAM: the kernels' state + scratch (modules/tflm_mamba *_state_bytes / *_scratch_bytes);
  - instructions per 20 ms step of the optimized int8 kernels on Cortex-M4 (and M3) under QEMU,
    and their share of a hop at --clock-mhz, against the budget (10 %).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import CALIB_CLIPS
from .errors import ArgumentParser, KWSError

BUDGET_SHARE = 0.10  # one step <= 10 % of a 20 ms hop


def measure(run: Path, targets: list[str], calib_clips: int, progress: bool,
            y_bits: int | None = None) -> dict[str, Any]:
    from tqdm import tqdm

    from .calibration import calibration_features
    from .checkpoint import load_checkpoint, read_checkpoint
    from .data import clip_features, load_real_clips
    from .data.sources import filter_trained_speakers
    from .fused import cbind, cgen, qemu
    from .fused import quantize as Q
    from .fused.bench import run_target
    from .fused_tflite import build_int8
    from .model import count_parameters

    ckpt = run / "best.pt"
    model, cfg, _ = load_checkpoint(ckpt)
    summary_path = run / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    fm = Q.float_weights(model)
    qm = Q.quantize_model(fm, calibration_features(cfg, n=calib_clips), rmsnorm=True, y_bits=y_bits)
    flash = len(build_int8(fm, qm, cfg, streaming=True))
    from .paths import have_real_clips

    if have_real_clips("v2_test_dev", "accuracy on the generated test split"):
        clip_set = "v2_test_dev"
        clips, _ = filter_trained_speakers(load_real_clips("v2_test_dev", cfg),
                                           read_checkpoint(ckpt).get("trained_on"))
    else:  # a fresh clone without the real data: the generated set's test split, said in the table
        from .data import prepare_data

        clip_set = "generated test split"
        clips = prepare_data(cfg, None, progress=False).test
    feats = clip_features(clips, cfg)
    lib = cbind.load()
    pred = [int(np.argmax(lib.model_q8(qm, Q.quantize_features(f, qm.in_scale, qm.in_zp))[0]))
            for f in tqdm(feats, desc=f"{run.name}: fused int8", unit="clip", disable=not progress, leave=False)]
    import torch

    with torch.no_grad():
        fpred = model(torch.from_numpy(feats)).argmax(-1).numpy()
    row: dict[str, Any] = {
        "run": str(run), "model": {k: getattr(cfg.model, k) for k in ("d_model", "n_layers", "d_state", "expand")},
        "params": count_parameters(model), "clips": len(clips), "clip_set": clip_set,
        "float_acc": float((fpred == clips.targets).mean()),
        "int8_acc": float((np.array(pred) == clips.targets).mean()),
        "int8_agreement": float((np.array(pred) == fpred).mean()),
        "val_acc": summary.get("best_val_acc"), "epochs": summary.get("epochs"),
        "train_seconds": summary.get("train_seconds"), "flash_bytes": flash, "targets": {},
    }
    x = Q.fake_calibration(cfg, 1, seed=7)[0] if not len(feats) else feats[0]
    with tempfile.TemporaryDirectory(prefix="size_table_") as tmp:
        model_c = Path(tmp) / "model_data.c"
        model_c.write_text(cgen.model_source(fm, qm, x, Q.quantize_features(x, qm.in_scale, qm.in_zp),
                                             with_float=False))
        for name in targets:
            r = run_target(qemu.TARGETS[name], model_c, Path(tmp), qemu.DEFAULT_OPT, "optimized", False, False)
            row["targets"][name] = {"step_instructions": round(r["q8_step_mean"]),
                                    "ram_bytes": r["ram"]["q8_state_bytes"] + r["ram"]["q8_scratch_bytes"]}
    return row


def print_table(rows: list[dict], clock_mhz: float) -> None:
    budget = BUDGET_SHARE * clock_mhz * 1e6 * 0.020
    tnames = sorted({t for r in rows for t in r["targets"]})
    head = (f"{'run':<22} {'d':>3} {'L':>2} {'N':>3} {'E':>2} {'params':>8} {'float':>7} {'int8':>7} {'agree':>7} "
            f"{'flash B':>8} {'RAM B':>6}" + "".join(f" {t + ' instr/step':>22}" for t in tnames))
    print(head)
    print("-" * len(head))
    for r in rows:
        m = r["model"]
        ram = next(iter(r["targets"].values()))["ram_bytes"] if r["targets"] else 0
        cells = ""
        for t in tnames:
            s = r["targets"][t]["step_instructions"]
            share = s / (clock_mhz * 1e6 * 0.020)
            cells += f" {s:>11,} {100 * share:5.1f}% {'ok' if s <= budget else 'over':>4}"
        print(f"{Path(r['run']).name:<22} {m['d_model']:>3} {m['n_layers']:>2} {m['d_state']:>3} {m['expand']:>2} "
              f"{r['params']:>8,} {100 * r['float_acc']:6.2f}% {100 * r['int8_acc']:6.2f}% "
              f"{100 * r['int8_agreement']:6.2f}% {r['flash_bytes']:>8,} {ram:>6,}{cells}")
    clip_set = rows[0].get("clip_set", "v2_test_dev")
    print(f"(accuracy on {rows[0]['clips']} {clip_set} clips; budget: one step <= {budget:,.0f} instructions, "
          f"{100 * BUDGET_SHARE:.0f} % of a 20 ms hop at {clock_mhz:g} MHz)")


def plot(rows: list[dict], path: Path, target: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        s = r["targets"][target]["step_instructions"]
        ax.scatter(s / 1000, 100 * r["int8_acc"], s=r["flash_bytes"] / 200, alpha=0.6)
        ax.annotate(Path(r["run"]).name, (s / 1000, 100 * r["int8_acc"]), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    ax.axvline(128, color="red", ls="--", lw=1, label="budget: 10 % of a 64 MHz hop")
    ax.set_xlabel(f"instructions per 20 ms step on {target} (thousands)")
    ax.set_ylabel(f"fused int8 accuracy on {rows[0].get('clip_set', 'v2_test_dev')} (%)")
    ax.set_title("Model size by measurement (marker area ~ model flash)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="size_table.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders of tools/train.py (each with best.pt)")
    p.add_argument("--targets", default="cortex-m4,cortex-m3", help="QEMU targets (cortex-m4, cortex-m3)")
    p.add_argument("--calib-clips", type=int, default=CALIB_CLIPS,
                   help="feature maps to calibrate int8 on (default: as tools/fused_tflite.py, which makes the "
                        "shipped models)")
    p.add_argument("--clock-mhz", type=float, default=64.0, help="core clock for the budget")
    p.add_argument("--json", default=None, help="write the rows to this JSON file")
    p.add_argument("--plot", default=None, help="write accuracy against instructions to this PNG")
    p.add_argument("--y-bits", type=int, choices=(8, 16), default=None,
                   help="width of the fused kernels' scan output and gate: 8 or 16 (default: "
                        "mamba_kws.fused.quantize.Y_BITS, "
                        "what the shipped models use)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    from .checkpoint import read_checkpoint
    from .fused import qemu

    targets = [t for t in args.targets.split(",") if t]
    bad = [t for t in targets if t not in qemu.TARGETS]
    if bad or not targets:
        raise KWSError(f"--targets: unknown {bad}; choose from {', '.join(qemu.TARGETS)}")
    missing = qemu.toolchain_missing()
    if missing:
        raise KWSError(f"{missing} not found: install gcc-arm-none-eabi and qemu-system-arm (make setup)")
    if args.calib_clips < 1 or not args.clock_mhz > 0:
        raise KWSError(f"--calib-clips must be >= 1 and --clock-mhz > 0, got {args.calib_clips}, {args.clock_mhz}")
    runs = [Path(r) for r in args.runs]
    for r in runs:  # every run's checkpoint is checked before the first (long) measurement
        if not (r / "best.pt").is_file():
            raise KWSError(f"{r}: no best.pt (a run folder of tools/train.py)")
        read_checkpoint(r / "best.pt")
    rows = [measure(r, targets, args.calib_clips, not args.quiet, args.y_bits) for r in runs]
    print_table(rows, args.clock_mhz)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if args.plot:
        plot(rows, Path(args.plot), targets[0])
    return 0
