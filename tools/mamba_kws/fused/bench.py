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

from ..calibration import DEFAULT, calibration_features, resolve
from ..config import REPO_ROOT, load_config
from ..errors import ArgumentParser, KWSError
from ..paths import speech_commands_dir
from . import cgen, qemu
from . import quantize as Q


def _model(args: argparse.Namespace):
    """The trained checkpoint (--checkpoint, else runs/<name>/best.pt if present and no --set), else
    the untrained model of the config (+ --set overrides)."""
    cfg = load_config(args.config, args.overrides)
    ckpt = Path(args.checkpoint) if args.checkpoint else REPO_ROOT / "runs" / cfg.name / "best.pt"
    if args.checkpoint or (ckpt.is_file() and not args.overrides):
        from ..checkpoint import load_checkpoint

        model, cfg, _ = load_checkpoint(ckpt, cfg if (args.config or args.overrides) else None)
        return model.eval(), cfg, f"checkpoint {ckpt}"
    from ..model import build_model

    torch.manual_seed(0)
    why = "--set" if args.overrides else f"no checkpoint at {ckpt}"
    return build_model(cfg).eval(), cfg, f"untrained {cfg.name} (torch seed 0; {why})"


def kernel_flash(objs: list[Path]) -> dict[str, int]:
    """Flash bytes of the kernel code and tables: float32 (the *_f32 functions) and int8 (the rest:
    the int8 kernels, their static helpers, the fixed-point tables, tm_quantize_f32)."""
    sizes = qemu.symbol_sizes(objs)
    out = {"int8": 0, "float32": 0}
    for name, size in sizes.items():
        out["float32" if "f32" in name and name != "tm_quantize_f32" else "int8"] += size
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


def real_clip_accuracy(model, cfg, n_clips: int, y_bits: int | None = None,
                       calib: np.ndarray | None = None) -> dict | None:
    """Top-1 accuracy of PyTorch, the C float32 kernel and the C int8 kernel on real clips.

    int8 is calibrated on `calib`, else as every int8 tool calibrates (mamba_kws.calibration: `calib` is
    what it gives, made once by the caller); scored on v2_test_dev (every k-th clip so that all labels
    appear), which is never calibrated on.
    """
    import csv

    from tqdm import tqdm

    from . import cbind

    manifest = speech_commands_dir() / "manifest.csv"
    if not manifest.is_file() or n_clips <= 0:
        return None
    rows = list(csv.DictReader(manifest.open()))
    test = [r for r in rows if r["path"].startswith("v2_test_dev/") and r["label"] in cfg.labels]
    test = test[:: max(1, len(test) // n_clips)][:n_clips]
    fm = Q.float_weights(model)
    calib = calibration_features(cfg) if calib is None else calib
    qm = Q.quantize_model(fm, calib, rmsnorm=True, y_bits=y_bits)
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
        "calibration": resolve(DEFAULT), "calibration_clips": len(calib),
        "acc_torch": float((torch_pred == labels).mean()),
        "acc_c_f32": float((f_pred == labels).mean()),
        "acc_c_int8": float((q_pred == labels).mean()),
        "agree_int8_float": float((q_pred == f_pred).mean()),
        "agree_f32_torch": float((f_pred == torch_pred).mean()),
    }


def _bench_data(cfg, real: bool = True) -> tuple[np.ndarray, np.ndarray, str]:
    """Calibration features and the one input the targets run: for a trained model (`real`), the
    calibration every int8 tool uses (mamba_kws.calibration) and, where the data root has them, the
    first v2_test_dev 'yes' as input; else feature-like noise for both (an untrained model of 3+ layers
    can diverge on real clips)."""
    import csv

    if not real:
        return Q.fake_calibration(cfg, 16), Q.fake_calibration(cfg, 1, seed=7)[0], "input: feature-like noise"
    calib = calibration_features(cfg)
    manifest = speech_commands_dir() / "manifest.csv"
    if manifest.is_file():
        rows = list(csv.DictReader(manifest.open()))
        clip = next((speech_commands_dir() / r["path"] for r in rows if r["path"].startswith("v2_test_dev/yes/")), None)
        if clip is not None:
            return calib, _clip_features([clip], cfg)[0], f"input {clip.name} (real 'yes')"
    return calib, calib[0], "input: the first calibration clip"


KERNELS = {"optimized": (), "reference": ("TFLM_MAMBA_REFERENCE",)}

# tm_prof_phase of modules/tflm_mamba/include/tflm_mamba/profile.h, in order
PHASES = (
    "stem",
    "norm",
    "in_proj",
    "conv",
    "x_proj",
    "dt_proj",
    "scan",
    "gate",
    "out_proj",
    "residual",
    "pool",
    "readout",
)


def run_target(
    target: qemu.Target, model_c: Path, work: Path, opt: str, kernels: str, with_float: bool, profile: bool
) -> dict:
    defines = KERNELS[kernels] + (() if with_float else ("TM_HARNESS_INT8_ONLY",))
    elf, objs = qemu.build(target, model_c, work / f"{target.name}_{kernels}", opt=opt, defines=defines)
    r = qemu.run(target, elf, timeout=300)
    ipt = r["calib_instructions"][0] / r["calib_ticks"][0]  # instructions per SysTick tick
    steps = r["steps"][0]

    def instr(key: str) -> float:
        return r[key][0] * ipt

    ram_keys = ["q8_state_bytes", "q8_scratch_bytes", "q8_block_state_bytes", "q8_block_scratch_bytes"]
    out = {
        "target": target.name,
        "machine": target.machine,
        "kernels": kernels,
        "instructions_per_tick": ipt,
        "q8_inference": instr("ticks_q8_run"),
        "q8_step_mean": instr("ticks_q8_steps") / steps,
        "q8_step_max": instr("ticks_q8_step_max"),
        "q8_block_step": instr("ticks_q8_block_steps") / steps,
        "q8_readout": instr("ticks_q8_logits"),
        "q8_logits": r["q8_logits"],
        "q8_hidden_hash": r["q8_hidden_hash"][0],
        "flash": kernel_flash(objs),
        "ram": {k: r[k][0] for k in ram_keys + (["f32_state_bytes", "f32_scratch_bytes"] if with_float else [])},
        "elf": qemu.elf_sections(elf),
        "steps": steps,
    }
    if with_float:
        out["f32_inference"] = instr("ticks_f32_run")
        out["f32_step_mean"] = instr("ticks_f32_steps") / steps
    if profile:
        out["profile"] = run_profile(target, model_c, work, opt, defines + ("TFLM_MAMBA_PROFILE",), kernels)
    return out


def run_profile(target: qemu.Target, model_c: Path, work: Path, opt: str, defines: tuple[str, ...], kernels: str):
    """Instructions per step of each phase (profile.h), from the harness's profile build: each phase's
    ticks less the cost of its marks, per step (readout: per call, one after each step)."""
    elf, _ = qemu.build(target, model_c, work / f"{target.name}_{kernels}_profile", opt=opt, defines=defines)
    r = qemu.run(target, elf, timeout=300)
    ipt = r["calib_instructions"][0] / r["calib_ticks"][0]
    mark = r["prof_mark_calib_ticks"][0] / r["prof_mark_calib_marks"][0]
    steps = r["steps"][0]
    ticks, marks = r["prof_ticks"], r["prof_marks"]
    if len(ticks) != len(PHASES):
        raise qemu.QemuError(f"the harness profiled {len(ticks)} phases, bench.PHASES has {len(PHASES)}")
    return {name: max(0.0, (t - m * mark) * ipt / steps) for name, t, m in zip(PHASES, ticks, marks, strict=True)}


def print_profile(results: list[dict]) -> None:
    cols = [r for r in results if "profile" in r]
    if not cols:
        return
    names = [f"{r['target'][7:]} {r['kernels'][:3]}" for r in cols]
    hdr = f"{'phase':<22}" + "".join(f"{n:>10} {'%':>5}" for n in names)
    print("per-phase profile, instructions per step (mean over the steps; the profile build's marks subtracted)")
    print(hdr)
    print("-" * len(hdr))
    totals = [sum(v for k, v in r["profile"].items() if k != "readout") for r in cols]
    for ph in PHASES:
        if ph == "readout":
            continue
        vals = [r["profile"][ph] for r in cols]
        if max(vals) < 1:
            continue  # a phase this model does not have (norm without rmsnorm)
        print(f"{ph:<22}" + "".join(f"{v:>10,.0f} {v / t:>5.0%}" for v, t in zip(vals, totals, strict=True)))
    print(f"{'step (sum of phases)':<22}" + "".join(f"{t:>10,.0f} {'':>5}" for t in totals))
    print(f"{'step (unprofiled)':<22}" + "".join(f"{r['q8_step_mean']:>10,.0f} {'':>5}" for r in cols))
    print(f"{'readout (per call)':<22}" + "".join(f"{r['profile']['readout']:>10,.0f} {'':>5}" for r in cols))
    print(
        "(readout = tm_model_q8_logits, the mean and classifier a streaming caller runs after each step; "
        "not part of 'step')"
    )


def model_summary(cfg, n_params: int) -> str:
    m = cfg.model
    return (
        f"d_model {m.d_model}, {m.n_layers} layers, d_state {m.d_state}, expand {m.expand}, d_conv {m.d_conv}, "
        f"dt_rank {m.dt_rank_resolved}, decay {m.decay}, dt {m.dt_activation}, act {m.activation}, norm {m.norm}; "
        f"{n_params:,} parameters"
    )


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(
        prog="bench_kernels.py",
        description="Instructions, flash and RAM of the fused Mamba kernels (float32 and int8) on Cortex-M3 "
        "and Cortex-M4 under QEMU (see the module docstring for the counting method).",
    )
    ap.add_argument("--config", default=None, help="model YAML (default models/kws_mamba.yaml)")
    ap.add_argument("--checkpoint", default=None, help="trained checkpoint (default runs/<name>/best.pt if present)")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.d_model=48 (repeatable); without --checkpoint the "
        "model is untrained (random weights): instruction counts hardly depend on the weights",
    )
    ap.add_argument("--targets", nargs="+", default=list(qemu.TARGETS), choices=list(qemu.TARGETS))
    ap.add_argument(
        "--kernels",
        nargs="+",
        default=list(KERNELS),
        choices=list(KERNELS),
        help="int8 kernel variants to build (default both: the optimized variant and the plain-C reference, "
        "-DTFLM_MAMBA_REFERENCE)",
    )
    ap.add_argument("--profile", action="store_true", help="also print instructions per phase of the step")
    ap.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a grid of untrained model sizes instead of one model, e.g. --sweep model.d_model=32,48,64 "
        "--sweep model.n_layers=2,3 (repeatable, one axis each; int8 only): instructions per step, weights, RAM",
    )
    ap.add_argument(
        "--no-float", action="store_true", help="leave the float32 path out (models too large for the M3's flash)"
    )
    ap.add_argument(
        "--opt",
        default=qemu.DEFAULT_OPT,
        help=f"optimisation flags of the cross build (default '{qemu.DEFAULT_OPT}', the Zephyr library's)",
    )
    ap.add_argument("--clock-mhz", type=float, default=64.0, help="core clock for the budget (default 64)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--y-bits", type=int, choices=(8, 16), default=None,
                    help="width of the fused kernels' scan output and gate: 8 or 16 (default: "
                        "mamba_kws.fused.quantize.Y_BITS, "
                        "what the shipped models use)")
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

    if args.sweep:
        from . import sweep

        return sweep.run(args, args.clock_mhz * 1e6 * 0.020 * 0.10)

    model, cfg, source = _model(args)
    trained = source.startswith("checkpoint")
    hop_ms = float(cfg.detection.get("hop_ms", 20))
    hop_cycles = args.clock_mhz * 1e6 * hop_ms / 1000
    budget = hop_cycles * 0.10
    fm = Q.float_weights(model)
    calib, feats, data_note = _bench_data(cfg, real=trained)
    with torch.no_grad():
        if not torch.isfinite(model(torch.from_numpy(calib))).all():
            raise KWSError(f"the model ({source}) overflows on the calibration input: bench a trained checkpoint")
    qm = Q.quantize_model(fm, calib, rmsnorm=True, y_bits=args.y_bits)
    fq = Q.quantize_features(feats, qm.in_scale, qm.in_zp)
    fw, qw = weight_bytes(fm, qm)
    with_float = not args.no_float
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_kernels_") as tmp:
        work = Path(tmp)
        (work / "model_data.c").write_text(cgen.model_source(fm, qm, feats, fq, with_float=with_float))
        from tqdm import tqdm

        jobs = [(t, k) for t in args.targets for k in args.kernels]
        for name, kernels in tqdm(jobs, desc="qemu", unit="build"):
            results.append(
                run_target(
                    qemu.TARGETS[name], work / "model_data.c", work, args.opt, kernels, with_float, args.profile
                )
            )
    mismatched = {(r["target"], r["kernels"]) for r in results if r["q8_logits"] != results[0]["q8_logits"]}
    if mismatched or len({r["q8_hidden_hash"] for r in results}) > 1:
        raise qemu.QemuError(f"the int8 builds disagree on the outputs: {sorted(mismatched)} (a kernel bug)")

    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {source}; {data_note}")
    print(f"  {model_summary(cfg, n_params)}; {results[0]['steps'] if results else cfg.steps} steps per 1 s window")
    print(
        "method: qemu-system-arm -icount shift=0 (1 ns of virtual time per guest instruction) + SysTick, "
        "ticks->instructions calibrated on a 2,000,000-instruction loop; cross build arm-none-eabi-gcc "
        f"{args.opt}; M4 with -mfpu=fpv4-sp-d16 hard float + DSP (SMLAD/SMMULR), M3 soft float; every int8 "
        "build gave the same logits and hidden states"
    )
    print()
    hdr = (
        f"{'target':<11} {'path':<15} {'per 1 s (49 steps)':>19} {'per step':>10} {'step max':>9} "
        f"{'per block step':>15} {'readout':>8} {'% of hop':>9} {'vs budget':>10}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        print(
            f"{r['target']:<11} {'int8 ' + r['kernels']:<15} {r['q8_inference']:>19,.0f} {r['q8_step_mean']:>10,.0f} "
            f"{r['q8_step_max']:>9,.0f} {r['q8_block_step']:>15,.0f} {r['q8_readout']:>8,.0f} "
            f"{r['q8_step_mean'] / hop_cycles:>9.1%} {r['q8_step_mean'] / budget:>10.2f}"
        )
        if with_float and r["kernels"] == args.kernels[0]:
            print(
                f"{r['target']:<11} {'float32':<15} {r['f32_inference']:>19,.0f} {r['f32_step_mean']:>10,.0f} "
                f"{'':>9} {'':>15} {'':>8} {r['f32_step_mean'] / hop_cycles:>9.1%} "
                f"{r['f32_step_mean'] / budget:>10.2f}"
            )
    print(
        f"(instructions; '% of hop' = per step / {hop_cycles:,.0f} cycles of a {hop_ms:g} ms hop at "
        f"{args.clock_mhz:g} MHz taking 1 instruction = 1 cycle; the goal is < 10%, 'vs budget' = per step / "
        f"{budget:,.0f}; step = stem + all blocks + pooling update, the streaming work per hop; readout = "
        "mean + classifier, once per posterior)"
    )
    print()
    print(
        f"{'target':<11} {'kernels':<10} {'kernel flash int8':>18} {'float32':>8} "
        f"{'weights int8':>13} {'float32':>8} {'RAM state+scratch int8':>23} {'float32':>8}"
    )
    for r in results:
        f, ram = r["flash"], r["ram"]
        f32_ram = f"{ram['f32_state_bytes']:>5,} + {ram['f32_scratch_bytes']:,}" if with_float else "-"
        print(
            f"{r['target']:<11} {r['kernels']:<10} {f['int8']:>18,} {f['float32']:>8,} "
            f"{qw:>13,} {fw:>8,} {ram['q8_state_bytes']:>13,} + {ram['q8_scratch_bytes']:<7,} {f32_ram}"
        )
    print(
        "(bytes; kernel flash from arm-none-eabi-nm over the C core's objects; RAM from the *_bytes functions; "
        "weights: the arrays the structs point to, int8 incl. int32 biases/multipliers and tables)"
    )
    if args.profile:
        print()
        print_profile(results)
    # a trained model's benchmark input was calibrated as real_clip_accuracy calibrates: made once
    acc = real_clip_accuracy(model, cfg, args.clips, args.y_bits, calib if trained else None)
    if acc:
        print()
        print(
            f"real clips (host build of the same C): {acc['clips']} v2_test_dev clips, int8 calibrated on "
            f"{acc['calibration_clips']} {acc['calibration']} clips"
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
                    "config": cfg.model.__dict__ | {"parameters": n_params},
                    "budget_cycles": budget,
                    "results": results,
                    "weights_bytes": {"int8": qw, "float32": fw},
                    "real_clips": acc,
                },
                indent=2,
                default=str,
            )
        )
        print(f"wrote {args.json}")
    return 0
