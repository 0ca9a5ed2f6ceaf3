"""Benchmark of the fused Mamba kernels on Cortex-M3 and Cortex-M4 under QEMU.

Builds the C core with the bare-metal harness (modules/tflm_mamba/harness) for each target,
runs it with `qemu-system-arm -icount shift=0` and prints instructions per 1 s inference
(49 steps) and per streaming step, flash bytes of the kernel code, RAM of state and scratch,
float32 vs int8.

How instructions are counted: with -icount shift=0 QEMU advances its virtual clock by exactly
1 ns per executed guest instruction, and the harness reads SysTick (processor clock) around
each call. Debian's qemu-system-arm 7.2 ships no TCG plugins (no libinsn.so), so the ratio of
SysTick ticks to instructions is measured on the target itself: a loop of 2,000,000
instructions (subs/bne) is timed first. Figures are instruction counts (+-1 tick, i.e. 40-80
instructions per measurement); a real core's cycles are instructions x CPI (about 1-1.5 on a
Cortex-M4 for this code: loads and multiply-accumulates mostly single-cycle, taken branches 2-4).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..config import REPO_ROOT, load_config
from ..paths import speech_commands_dir
from . import cgen, qemu
from . import quantize as Q


def _model(args: argparse.Namespace):
    """The trained checkpoint (--checkpoint, else runs/<name>/best.pt if present), else the untrained model."""
    cfg = load_config(args.config)
    ckpt = Path(args.checkpoint) if args.checkpoint else REPO_ROOT / "runs" / cfg.name / "best.pt"
    if ckpt.is_file() or args.checkpoint:
        from ..checkpoint import load_checkpoint

        model, cfg, _ = load_checkpoint(ckpt, cfg if args.config else None)
        return model.eval(), cfg, f"checkpoint {ckpt}"
    from ..model import build_model

    torch.manual_seed(0)
    return build_model(cfg).eval(), cfg, f"untrained {cfg.name} (torch seed 0; no checkpoint at {ckpt})"


def kernel_flash(objs: list[Path]) -> dict[str, int]:
    """Flash bytes of the kernel code by path: int8, float32, and shared (tables, helpers)."""
    sizes = qemu.symbol_sizes(objs)
    out = {"int8": 0, "float32": 0, "shared": 0}
    for name, size in sizes.items():
        if "q8" in name or name in ("tm_exp2_neg_table", "tm_two_sigmoid_table", "tm_rsqrt_table", "tm_quantize_f32"):
            out["int8"] += size
        elif "f32" in name:
            out["float32"] += size
        else:
            out["shared"] += size
    return out


def weight_bytes(fm: Q.FloatModel, qm: Q.QModel) -> tuple[int, int]:
    def nbytes(obj) -> int:
        if isinstance(obj, np.ndarray):
            return obj.nbytes
        if isinstance(obj, list):
            return sum(nbytes(o) for o in obj)
        if hasattr(obj, "__dataclass_fields__"):
            return sum(nbytes(getattr(obj, f)) for f in obj.__dataclass_fields__ if f != "cfg")
        return 0

    return nbytes(fm), nbytes(qm)




def _clip_features(paths: list[Path], cfg) -> np.ndarray:
    from ..audio import fit_length, read_wav
    from ..features import compute_batch

    clips = [fit_length(read_wav(p), cfg.features.clip_samples) for p in paths]
    return compute_batch(clips, cfg.features)


def real_clip_accuracy(model, cfg, n_clips: int) -> dict | None:
    """Top-1 accuracy of PyTorch, the C float32 kernel and the C int8 kernel on real clips.

    int8 is calibrated on v1_sample (the training supplement), scored on v2_test_dev (every
    k-th clip so that all labels appear): no clip is used for both.
    """
    import csv

    from tqdm import tqdm

    from . import cbind

    manifest = speech_commands_dir() / "manifest.csv"
    if not manifest.is_file() or n_clips <= 0:
        return None
    rows = list(csv.DictReader(manifest.open()))
    calib = [speech_commands_dir() / r["path"] for r in rows if r["path"].startswith("v1_sample/")]
    test = [r for r in rows if r["path"].startswith("v2_test_dev/") and r["label"] in cfg.labels]
    test = test[:: max(1, len(test) // n_clips)][:n_clips]
    fm = Q.float_weights(model)
    qm = Q.quantize_model(fm, _clip_features(calib, cfg), rmsnorm=True)
    lib = cbind.load()
    feats = _clip_features([speech_commands_dir() / r["path"] for r in test], cfg)
    labels = np.array([cfg.labels.index(r["label"]) for r in test])
    with torch.no_grad():
        torch_pred = model(torch.from_numpy(feats)).argmax(-1).numpy()
    f_pred, q_pred = [], []
    for f in tqdm(feats, desc="real clips", unit="clip"):
        f_pred.append(int(np.argmax(lib.model_f32(fm, f)[0])))
        q_pred.append(int(np.argmax(lib.model_q8(qm, Q.quantize_features(f, qm.in_scale, qm.in_zp))[0])))
    f_pred, q_pred = np.array(f_pred), np.array(q_pred)
    return {
        "clips": len(test),
        "calibration_clips": len(calib),
        "acc_torch": float((torch_pred == labels).mean()),
        "acc_c_f32": float((f_pred == labels).mean()),
        "acc_c_int8": float((q_pred == labels).mean()),
        "agree_int8_float": float((q_pred == f_pred).mean()),
        "agree_f32_torch": float((f_pred == torch_pred).mean()),
    }


def _bench_data(cfg) -> tuple[np.ndarray, np.ndarray, str]:
    """Calibration features and the one input the targets run: real clips when the shared data
    set is there (calibration v1_sample, input the first v2_test_dev 'yes'), else feature-like noise."""
    import csv

    manifest = speech_commands_dir() / "manifest.csv"
    if manifest.is_file():
        rows = list(csv.DictReader(manifest.open()))
        calib = [speech_commands_dir() / r["path"] for r in rows if r["path"].startswith("v1_sample/")]
        clip = next((speech_commands_dir() / r["path"] for r in rows if r["path"].startswith("v2_test_dev/yes/")), None)
        if calib and clip is not None:
            return _clip_features(calib, cfg), _clip_features([clip], cfg)[0], f"input {clip.name} (real 'yes')"
    return Q.fake_calibration(cfg, 16), Q.fake_calibration(cfg, 1, seed=7)[0], "input: feature-like noise"


def run_target(target: qemu.Target, model_c: Path, work: Path, opt: str) -> dict:
    elf, objs = qemu.build(target, model_c, work / target.name, opt=opt)
    r = qemu.run(target, elf, timeout=300)
    ipt = r["calib_instructions"][0] / r["calib_ticks"][0]  # instructions per SysTick tick
    steps = r["steps"][0]

    def instr(key: str) -> float:
        return r[key][0] * ipt

    return {
        "target": target.name,
        "machine": target.machine,
        "instructions_per_tick": ipt,
        "q8_inference": instr("ticks_q8_run"),
        "q8_step_mean": instr("ticks_q8_steps") / steps,
        "q8_step_max": instr("ticks_q8_step_max"),
        "q8_block_step": instr("ticks_q8_block_steps") / steps,
        "f32_inference": instr("ticks_f32_run"),
        "f32_step_mean": instr("ticks_f32_steps") / steps,
        "flash": kernel_flash(objs),
        "ram": {
            k: r[k][0]
            for k in (
                "q8_state_bytes",
                "q8_scratch_bytes",
                "f32_state_bytes",
                "f32_scratch_bytes",
                "q8_block_state_bytes",
                "q8_block_scratch_bytes",
            )
        },
        "elf": qemu.elf_sections(elf),
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench_kernels.py",
        description="Instructions, flash and RAM of the fused Mamba kernels (float32 and int8) on Cortex-M3 "
        "and Cortex-M4 under QEMU (see the module docstring for the counting method).",
    )
    ap.add_argument("--config", default=None, help="model YAML (default models/kws_mamba.yaml)")
    ap.add_argument("--checkpoint", default=None, help="trained checkpoint (default runs/<name>/best.pt if present)")
    ap.add_argument("--targets", nargs="+", default=list(qemu.TARGETS), choices=list(qemu.TARGETS))
    ap.add_argument("--opt", default="-O2", help="optimisation flag of the cross build (default -O2)")
    ap.add_argument("--clock-mhz", type=float, default=64.0, help="core clock for the budget (default 64)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument(
        "--clips",
        type=int,
        default=300,
        help="real v2_test_dev clips for the host accuracy check of the kernels (0: skip; default 300)",
    )
    args = ap.parse_args(argv)
    missing = qemu.toolchain_missing()
    if missing:
        raise qemu.QemuError(f"{missing} not found (apt install gcc-arm-none-eabi qemu-system-arm)")

    model, cfg, source = _model(args)
    hop_ms = float(cfg.detection.get("hop_ms", 20))
    hop_cycles = args.clock_mhz * 1e6 * hop_ms / 1000
    budget = hop_cycles * 0.10
    fm = Q.float_weights(model)
    calib, feats, data_note = _bench_data(cfg)
    qm = Q.quantize_model(fm, calib, rmsnorm=True)
    fq = Q.quantize_features(feats, qm.in_scale, qm.in_zp)
    fw, qw = weight_bytes(fm, qm)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_kernels_") as tmp:
        work = Path(tmp)
        (work / "model_data.c").write_text(cgen.model_source(fm, qm, feats, fq))
        from tqdm import tqdm

        for name in tqdm(args.targets, desc="qemu", unit="target"):
            results.append(run_target(qemu.TARGETS[name], work / "model_data.c", work, args.opt))

    m = cfg.model
    print(f"model: {source}; {data_note}")
    print(
        f"  d_model {m.d_model}, {m.n_layers} layers, d_state {m.d_state}, expand {m.expand}, d_conv {m.d_conv}, "
        f"decay {m.decay}, dt {m.dt_activation}, act {m.activation}, norm {m.norm}; "
        f"{results[0]['steps'] if results else cfg.steps} steps per 1 s window"
    )
    print(
        "method: qemu-system-arm -icount shift=0 (1 ns of virtual time per guest instruction) + SysTick, "
        "ticks->instructions calibrated on a 2,000,000-instruction loop; cross build arm-none-eabi-gcc "
        f"{args.opt}; M4 with -mfpu=fpv4-sp-d16 hard float + DSP (SMLAD/SMMULR), M3 soft float"
    )
    print()
    hdr = (
        f"{'target':<11} {'path':<7} {'per 1 s (49 steps)':>19} {'per step':>10} {'step max':>9} "
        f"{'per block step':>15} {'% of hop':>9} {'vs budget':>10}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        print(
            f"{r['target']:<11} {'int8':<7} {r['q8_inference']:>19,.0f} {r['q8_step_mean']:>10,.0f} "
            f"{r['q8_step_max']:>9,.0f} {r['q8_block_step']:>15,.0f} "
            f"{r['q8_step_mean'] / hop_cycles:>9.1%} {r['q8_step_mean'] / budget:>10.2f}"
        )
        print(
            f"{r['target']:<11} {'float32':<7} {r['f32_inference']:>19,.0f} {r['f32_step_mean']:>10,.0f} "
            f"{'':>9} {'':>15} {r['f32_step_mean'] / hop_cycles:>9.1%} {r['f32_step_mean'] / budget:>10.2f}"
        )
    print(
        f"(instructions; '% of hop' = per step / {hop_cycles:,.0f} cycles of a {hop_ms:g} ms hop at "
        f"{args.clock_mhz:g} MHz taking 1 instruction = 1 cycle; the goal is < 10%, 'vs budget' = per step / "
        f"{budget:,.0f}; step = stem + all blocks + pooling update, the streaming work per hop)"
    )
    print()
    print(
        f"{'target':<11} {'kernel flash int8':>18} {'float32':>8} {'shared':>7} {'weights int8':>13} "
        f"{'float32':>8} {'RAM state+scratch int8':>23} {'float32':>8}"
    )
    for r in results:
        f, ram = r["flash"], r["ram"]
        print(
            f"{r['target']:<11} {f['int8']:>18,} {f['float32']:>8,} {f['shared']:>7,} {qw:>13,} {fw:>8,} "
            f"{ram['q8_state_bytes']:>13,} + {ram['q8_scratch_bytes']:<7,} "
            f"{ram['f32_state_bytes']:>5,} + {ram['f32_scratch_bytes']:,}"
        )
    print(
        "(bytes; kernel flash from arm-none-eabi-nm over the C core's objects; RAM from the *_bytes functions; "
        "weights: the arrays the structs point to, int8 incl. int32 biases/multipliers and tables)"
    )
    acc = real_clip_accuracy(model, cfg, args.clips)
    if acc:
        print()
        print(
            f"real clips (host build of the same C): {acc['clips']} v2_test_dev clips, int8 calibrated on "
            f"{acc['calibration_clips']} v1_sample clips"
        )
        print(
            f"  top-1 accuracy  PyTorch {acc['acc_torch']:.1%}   C float32 {acc['acc_c_f32']:.1%}   "
            f"C int8 {acc['acc_c_int8']:.1%}"
        )
        print(
            f"  agreement       C float32 vs PyTorch {acc['agree_f32_torch']:.1%}   "
            f"C int8 vs C float32 {acc['agree_int8_float']:.1%}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "model": source,
                    "budget_cycles": budget,
                    "results": results,
                    "weights_bytes": {"int8": qw, "float32": fw},
                    "real_clips": acc,
                },
                indent=2,
            )
        )
        print(f"wrote {args.json}")
    return 0
