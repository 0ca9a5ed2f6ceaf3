"""tools/export.py: checkpoint -> model_float32/int8/int16x8.tflite + report.json + C sources.

    python tools/export.py --checkpoint runs/kws_mamba/best.pt --config models/kws_mamba.yaml

Every .tflite is checked in TFLM itself (PyPI tflite-micro): the smallest arena it runs with
(bisection), its op list, and on the test split the top-1 agreement and largest logit error
against PyTorch float.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import CALIB_CLIPS, calibration_features, resolve
from ..calibration import DEFAULT as CALIB_DEFAULT
from ..calibration import HELP as CALIB_HELP
from ..config import KWSConfig, load_config
from ..errors import ArgumentParser
from . import ExportError
from .convert import KINDS, convert, tf_logits
from .flatbuf import (
    live_tensors,
    load_model,
    op_counts,
    reorder_for_memory,
    serialize,
    shorten_names,
    tensor_info,
    unify_chunk_scales,
)
from .tflm import TFLMModel, allocation_report, dequantize, min_arena, quantize


def postprocess(data: bytes) -> bytes:
    """One int16 scale for all time chunks' copies of a tensor (flatbuf.unify_chunk_scales; int16x8
    graphs in time chunks only), then short tensor names and a memory-friendly op order (these two
    leave the computation as it is, bit for bit)."""
    model = load_model(data)
    unify_chunk_scales(model)
    shorten_names(model)
    reorder_for_memory(model)
    return serialize(model)


def describe(data: bytes, measure: bool = True) -> dict[str, Any]:
    """Ops and counts, tensors, flatbuffer bytes, planned activation bytes and the TFLM arena."""
    model = load_model(data)
    sg = model.subgraphs[0]
    live, consts = live_tensors(model)
    peak_live = max(sum(tensor_info(model, t).nbytes for t in s) for s in live)
    d: dict[str, Any] = {
        "flatbuffer_bytes": len(data),
        "ops": len(sg.operators),
        "op_counts": op_counts(model),
        "tensors": len(sg.tensors),
        "const_bytes": sum(tensor_info(model, i).nbytes for i in consts),
        "activation_dtypes": sorted({tensor_info(model, i).dtype for i in range(len(sg.tensors)) if i not in consts}),
        "peak_live_activation_bytes": int(peak_live),
    }
    if measure:
        arena = min_arena(data)
        rep = allocation_report(data, arena + 4096)
        d["arena_bytes"] = arena
        d["tflm_allocations"] = rep
    return d


def load_model_and_config(checkpoint: str | Path, config: str | Path | None) -> tuple[Any, KWSConfig]:
    from ..checkpoint import load_checkpoint

    cfg = load_config(config) if config is not None else None
    model, stored, _ = load_checkpoint(checkpoint, cfg)
    return model, stored


def test_features(cfg: KWSConfig, source: str | None, n_test: int | None,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(features, targets, the set's source) of the speech set's test split (all of it, or n_test clips
    drawn with `seed`)."""
    from ..calibration import draw
    from ..data import clip_features, prepare_data

    splits = prepare_data(cfg, source, progress=False)
    te = splits.test
    if n_test is not None and n_test < len(te):
        te = te.subset(draw(len(te), n_test, seed))
    return clip_features(te, cfg), te.targets, splits.source


def tflm_logits(data: bytes, feats: np.ndarray, arena: int | None = None) -> np.ndarray:
    """Dequantised logits (n, classes) of the .tflite run in TFLM."""
    m = TFLMModel(data, arena)
    out = []
    for f in feats:
        y = m.run(quantize(f[None], m.inputs[0]))[0]
        out.append(dequantize(y, m.outputs[0]).reshape(-1))
    return np.stack(out)


def agreement(ref: np.ndarray, got: np.ndarray, targets: np.ndarray | None = None) -> dict[str, float]:
    a = {"n": int(len(ref)), "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))),
         "max_abs_logit_error": float(np.abs(ref - got).max())}
    if targets is not None:
        a["accuracy"] = float(np.mean(got.argmax(1) == targets))
    return a


RANGES = ("sim-mse", "sim-minmax", "converter")


def int8_ranges(model: Any, calib: np.ndarray, policy: str) -> tuple[dict[str, tuple[float, float]] | None, str]:
    """The int8 activation ranges the graph carries as FakeQuant ops, and what was used.

    "sim-mse"/"sim-minmax": mamba_kws.qat.Int8Sim calibrated on `calib` (the ranges that --qat
    fine-tuning trained with); "converter": none, the TFLite converter's own min/max calibration.
    A model the simulation does not cover falls back to the converter's."""
    from ..qat import Int8Sim, QATError

    if policy not in RANGES:
        raise ExportError(f"unknown --ranges {policy!r}; choose one of {', '.join(RANGES)}")
    if policy == "converter":
        return None, "converter"
    try:
        sim = Int8Sim(model)
    except QATError:
        return None, "converter (the int8 simulation does not cover this model's switches)"
    return sim.calibrate(calib, policy.split("-", 1)[1]), policy


def export(model: Any, cfg: KWSConfig, out_dir: Path, calib: np.ndarray, test: np.ndarray,
           targets: np.ndarray | None = None, kinds: tuple[str, ...] = KINDS, symbol: str = "model_int8",
           progress: bool = True, chunks: int = 1, ranges: str = "sim-mse",
           calibration: str | None = None) -> dict[str, Any]:
    import torch
    from tqdm import tqdm

    from .codegen import write_model_sources
    from .tfgraph import build_tf_function

    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    concrete = build_tf_function(model, chunks=chunks)
    concrete_int8, ranges_used = concrete, "converter"
    if "int8" in kinds:
        r, ranges_used = int8_ranges(model, calib, ranges)
        if r is not None:
            concrete_int8 = build_tf_function(model, chunks=chunks, ranges=r)
    with torch.no_grad():
        ref = model(torch.from_numpy(test)).numpy()
    report: dict[str, Any] = {
        "config": cfg.name, "steps": cfg.steps, "time_chunks": chunks, "model": cfg.to_dict()["model"],
        "calibration": calibration, "calibration_clips": int(len(calib)), "test_clips": int(len(test)),
        "int8_ranges": ranges_used,
        "torch_accuracy": float(np.mean(ref.argmax(1) == targets)) if targets is not None else None,
        "tf_float_vs_torch": agreement(ref, tf_logits(concrete, test)),
        "models": {},
    }
    bar = tqdm(kinds, desc="export", disable=not progress)
    for kind in bar:
        bar.set_postfix_str(kind)
        try:
            data = postprocess(convert(concrete_int8 if kind == "int8" else concrete, kind, calib))
        except ExportError as exc:
            if kind == "int16x8":  # optional: reported, not fatal
                report["models"][kind] = {"error": str(exc)}
                continue
            raise
        path = out_dir / f"model_{kind}.tflite"
        path.write_bytes(data)
        entry = describe(data)
        entry["file"] = path.name
        entry["vs_torch_in_tflm"] = agreement(ref, tflm_logits(data, test, entry["arena_bytes"]), targets)
        report["models"][kind] = entry
    if "int8" in report["models"] and "error" not in report["models"]["int8"]:
        c, h = write_model_sources(out_dir / "model_int8.tflite", out_dir, symbol,
                                   report["models"]["int8"]["arena_bytes"])
        report["c_sources"] = [c.name, h.name]
    report["seconds"] = round(time.time() - t0, 1)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def print_summary(report: dict[str, Any], out_dir: Path) -> None:
    print(f"\nexport of {report['config']} ({report['steps']} steps, {report['time_chunks']} time chunk(s)) "
          f"-> {out_dir}; int8 activation ranges: {report.get('int8_ranges', 'converter')}")
    f = report["tf_float_vs_torch"]
    print(f"TF float vs PyTorch: max |logit error| {f['max_abs_logit_error']:.2e}, top-1 agreement "
          f"{100 * f['top1_agreement']:.1f}% on {f['n']} test clips")
    print(f"{'model':<9} {'bytes':>8} {'ops':>5} {'tensors':>7} {'arena':>8} {'act.peak':>8} "
          f"{'agree%':>7} {'max err':>8} {'acc%':>6}")
    for kind, e in report["models"].items():
        if "error" in e:
            print(f"{kind:<9} {e['error']}")
            continue
        a = e["vs_torch_in_tflm"]
        acc = f"{100 * a['accuracy']:.1f}" if "accuracy" in a else "-"
        print(f"{kind:<9} {e['flatbuffer_bytes']:>8} {e['ops']:>5} {e['tensors']:>7} {e['arena_bytes']:>8} "
              f"{e['peak_live_activation_bytes']:>8} {100 * a['top1_agreement']:>7.1f} "
              f"{a['max_abs_logit_error']:>8.3f} {acc:>6}")
    if "int8" in report["models"] and "op_counts" in report["models"]["int8"]:
        print("int8 ops: " + ", ".join(f"{k} {v}" for k, v in report["models"]["int8"]["op_counts"].items()))


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(
        description="Export a MambaKWS checkpoint to TFLite (float32, int8, int16x8) with the selective scan "
                    "unrolled into TFLM builtin ops, checked in TFLM; writes report.json and C sources.")
    p.add_argument("--checkpoint", required=True, help="trained checkpoint (runs/<name>/best.pt)")
    p.add_argument("--config", default=None, help="model YAML; must match the checkpoint (default: the stored one)")
    p.add_argument("--out", default=None, help="output folder (default: <checkpoint folder>/export)")
    p.add_argument("--data", default=None, help="data source for prepare_data (default: the generated set)")
    p.add_argument("--calib", default=CALIB_DEFAULT, help=CALIB_HELP)
    p.add_argument("--calib-clips", type=int, default=CALIB_CLIPS,
                   help=f"clips for int8 calibration (default {CALIB_CLIPS})")
    p.add_argument("--test", type=int, default=None, help="test clips to check (default: the whole test split)")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma list of {', '.join(KINDS)}")
    p.add_argument("--ranges", default="sim-mse", choices=RANGES,
                   help="int8 activation ranges: from the int8 simulation of mamba_kws.qat (the ranges --qat "
                        "fine-tuning trained with; sim-mse clips heavy tails where that lowers the squared error) "
                        "carried into the graph as FakeQuant ops, or the converter's own min/max calibration")
    p.add_argument("--symbol", default="model_int8", help="C symbol of the generated array (default model_int8)")
    p.add_argument("--time-chunks", type=int, default=None,
                   help="build the graph in N time chunks (all layers per chunk), so that tools/split.py -k N cuts "
                        "along time carrying only h, the conv windows and the pooled sum (default: the config's "
                        "export.time_chunks, else 1)")
    args = p.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    for k in kinds:
        if k not in KINDS:
            raise ExportError(f"unknown kind {k!r} in --kinds; choose from {', '.join(KINDS)}")
    if args.calib_clips < 1 or (args.test is not None and args.test < 1):
        raise ExportError(f"--calib-clips and --test count clips: they must be >= 1, got {args.calib_clips}, "
                          f"{args.test}")
    model, cfg = load_model_and_config(args.checkpoint, args.config)
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "export"
    chunks = args.time_chunks if args.time_chunks is not None else cfg.export.get("time_chunks", 1)
    if isinstance(chunks, bool) or not isinstance(chunks, int) or not 1 <= chunks <= cfg.steps:
        where = "--time-chunks" if args.time_chunks is not None else "export.time_chunks of the config"
        raise ExportError(f"{where} must be an integer in 1..{cfg.steps} (the model's steps), got {chunks!r}")
    calib = calibration_features(cfg, args.calib, args.calib_clips)
    test, targets, _ = test_features(cfg, args.data, args.test)
    report = export(model, cfg, out, calib, test, targets, kinds, args.symbol, chunks=chunks, ranges=args.ranges,
                    calibration=resolve(args.calib))
    print_summary(report, out)
    return 0
