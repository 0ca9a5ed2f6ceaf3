"""tools/bench_export.py: flatbuffer bytes, TFLM arena and op count of the unrolled export.

One table: the default config at 49 steps as float32 / int8 / int16x8, unsplit and split into
K = 2, 4, 8 partitions, of the plain graph and of the time-chunked one (peak RAM = partition
arena + carried tensors), next to the paper's 60.4 KB;
then how bytes, ops and arena grow with the sequence length and the model width (int8).
Sizes do not depend on the weights' values, so a seeded model and random calibration features
are used unless --checkpoint is given. Arenas are measured in TFLM (PyPI tflite-micro, 64-bit host).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import load_config
from ..errors import ArgumentParser
from .convert import KINDS, convert
from .pipeline import describe, postprocess
from .split import split_model

PAPER_PEAK_RAM = 60.4 * 1024


def _model(cfg: Any, checkpoint: str | None) -> Any:
    import torch

    if checkpoint:
        from ..checkpoint import load_checkpoint

        return load_checkpoint(checkpoint, cfg)[0]
    from ..model import build_model

    torch.manual_seed(0)
    return build_model(cfg).eval()


def _convert(model: Any, kind: str, steps: int | None = None, n_rep: int = 8, chunks: int = 1) -> bytes:
    from .tfgraph import build_tf_function

    cfg = model.cfg
    L = steps or cfg.steps
    rep = np.random.default_rng(0).uniform(0, 26, (n_rep, L * cfg.model.frame_stack, cfg.features.channels))
    return postprocess(convert(build_tf_function(model, L, chunks), kind, rep.astype(np.float32)))


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description="Benchmark the unrolled TFLite export: bytes, TFLM arena, ops.")
    p.add_argument("--config", default="models/kws_mamba.yaml")
    p.add_argument("--checkpoint", default=None, help="use trained weights (sizes are the same)")
    p.add_argument("--ks", default="2,4,8", help="partition counts (default 2,4,8)")
    p.add_argument("--steps", default="10,25,49", help="sequence lengths for the growth table")
    p.add_argument("--widths", default="16,48", help="other d_model values for the growth table")
    args = p.parse_args(argv)
    t0 = time.time()
    cfg = load_config(args.config)
    model = _model(cfg, args.checkpoint)
    rows: list[tuple] = []
    int8 = b""
    for kind in KINDS:
        try:
            data = _convert(model, kind)
        except Exception as exc:  # int16x8 may not convert: say so in the table
            rows.append((kind, "unsplit", f"error: {str(exc)[:60]}", "", "", "", ""))
            continue
        d = describe(data)
        rows.append((kind, "unsplit", d["flatbuffer_bytes"], d["ops"], d["arena_bytes"], 0, d["arena_bytes"]))
        if kind == "int8":
            int8 = data
    with tempfile.TemporaryDirectory() as tmp:
        for k in (int(x) for x in args.ks.split(",") if x):
            if not int8:
                break
            m = split_model(int8, k, Path(tmp) / f"k{k}", progress=False)
            s = m["summary"]
            rows.append(("int8", f"split K={k}", sum(q["flatbuffer_bytes"] for q in m["partitions"]),
                         max(q["op_count"] for q in m["partitions"]), s["max_partition_arena_bytes"],
                         s["max_carried_bytes"], s["peak_ram_bytes"]))
            # The time-chunked graph (export --time-chunks K): cuts carry only h, conv windows, pooled sum.
            chunked = _convert(model, "int8", chunks=k)
            m = split_model(chunked, k, Path(tmp) / f"c{k}", progress=False)
            s = m["summary"]
            rows.append(("int8", f"chunk K={k}", sum(q["flatbuffer_bytes"] for q in m["partitions"]),
                         max(q["op_count"] for q in m["partitions"]), s["max_partition_arena_bytes"],
                         s["max_carried_bytes"], s["peak_ram_bytes"]))
    print(f"\n{cfg.name}: d_model {cfg.model.d_model}, {cfg.model.n_layers} layers, d_state {cfg.model.d_state}, "
          f"{cfg.steps} steps (arena measured in TFLM on this 64-bit host)")
    print(f"{'model':<8} {'layout':<11} {'flatbuffer':>10} {'ops':>5} {'arena':>8} {'carried':>8} {'peak RAM':>9}")
    for r in rows:
        print(f"{r[0]:<8} {r[1]:<11} {r[2]!s:>10} {r[3]!s:>5} {r[4]!s:>8} {r[5]!s:>8} {r[6]!s:>9}")
    print(f"{'paper':<8} {'(Drabinski)':<11} {'':>10} {'':>5} {'':>8} {'':>8} {int(PAPER_PEAK_RAM):>9}  (60.4 KB)")

    print("\nint8 growth with sequence length (steps) and width (d_model):")
    print(f"{'d_model':>7} {'steps':>5} {'flatbuffer':>10} {'ops':>5} {'tensors':>7} {'act.peak':>8} {'arena':>8}")
    grid = [(cfg.model.d_model, int(s)) for s in args.steps.split(",") if s]
    grid += [(int(w), cfg.steps) for w in args.widths.split(",") if w and int(w) != cfg.model.d_model]
    for width, steps in grid:
        if width == cfg.model.d_model:
            m = model
        else:
            mc = dataclasses.replace(cfg.model, d_model=width)
            m = _model(dataclasses.replace(cfg, model=mc), None)
        d = describe(_convert(m, "int8", steps))
        print(f"{width:>7} {steps:>5} {d['flatbuffer_bytes']:>10} {d['ops']:>5} {d['tensors']:>7} "
              f"{d['peak_live_activation_bytes']:>8} {d['arena_bytes']:>8}")
    print(f"\n({time.time() - t0:.0f} s)")
    return 0
