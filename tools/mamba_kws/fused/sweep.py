"""bench_kernels.py --sweep: instructions per 20 ms step of untrained models over a grid of sizes.

Each `--sweep key=v1,v2,...` is one axis (a config key as for --set); every combination is built
from the config (+ --set), given random weights (torch seed 0), quantised on feature-like noise
and run on the QEMU targets with the int8 path only (bench.run_target). Instruction counts hardly
depend on the weights, so the table says which sizes fit the per-step budget before training them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import torch

from ..config import ConfigError, load_config
from . import cgen, qemu
from . import quantize as Q


def parse_axis(item: str) -> tuple[str, list[str]]:
    key, sep, values = item.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ConfigError(f"--sweep {item!r} must look like section.key=v1,v2 (e.g. model.d_model=32,48,64)")
    return key.strip(), [v.strip() for v in values.split(",") if v.strip()]


def run(args: argparse.Namespace, budget: float) -> int:
    from tqdm import tqdm

    from ..model import build_model
    from .bench import run_target, weight_bytes

    axes = [parse_axis(s) for s in args.sweep]
    combos = list(itertools.product(*[values for _, values in axes]))
    jobs = [(t, k) for t in args.targets for k in args.kernels]
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp,
        tqdm(total=len(combos) * len(jobs), desc="sweep", unit="build") as bar,
    ):
        for i, combo in enumerate(combos):
            overrides = list(args.overrides) + [f"{key}={v}" for (key, _), v in zip(axes, combo, strict=True)]
            cfg = load_config(args.config, overrides)
            torch.manual_seed(0)
            model = build_model(cfg).eval()
            fm = Q.float_weights(model)
            qm = Q.quantize_model(fm, Q.fake_calibration(cfg, 16), rmsnorm=True)
            feats = Q.fake_calibration(cfg, 1, seed=7)[0]
            work = Path(tmp) / str(i)
            work.mkdir()
            model_c = work / "model_data.c"
            model_c.write_text(
                cgen.model_source(fm, qm, feats, Q.quantize_features(feats, qm.in_scale, qm.in_zp), with_float=False)
            )
            steps = {}
            for target, kernels in jobs:
                r = run_target(qemu.TARGETS[target], model_c, work, args.opt, kernels, False, False)
                steps[f"{target} {kernels}"] = r["q8_step_mean"]
                ram = r["ram"]
                flash = r["flash"]["int8"]
                bar.update()
            m = cfg.model
            rows.append(
                {
                    "d_model": m.d_model,
                    "n_layers": m.n_layers,
                    "d_state": m.d_state,
                    "expand": m.expand,
                    "dt_rank": m.dt_rank_resolved,
                    "overrides": overrides,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "weights_int8": weight_bytes(fm, qm)[1],
                    "kernel_flash_int8": flash,
                    "state_bytes": ram["q8_state_bytes"],
                    "scratch_bytes": ram["q8_scratch_bytes"],
                    "step": steps,
                }
            )
    cols = [f"{t} {k}" for t, k in jobs]
    hdr = (
        f"{'d_model':>7} {'layers':>6} {'d_state':>7} {'expand':>6} {'params':>8} {'weights':>8} {'RAM':>7} "
        + "".join(f"{c.replace('cortex-', ''):>14}" for c in cols)
        + f"  {'fits':<16}"
    )
    print(f"instructions per streaming step (untrained weights; budget {budget:,.0f} = 10% of the hop)")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        fits = " ".join(c.replace("cortex-", "") for c in cols if r["step"][c] <= budget) or "-"
        print(
            f"{r['d_model']:>7} {r['n_layers']:>6} {r['d_state']:>7} {r['expand']:>6} {r['parameters']:>8,} "
            f"{r['weights_int8']:>8,} {r['state_bytes'] + r['scratch_bytes']:>7,} "
            + "".join(f"{r['step'][c]:>14,.0f}" for c in cols)
            + f"  {fits:<16}"
        )
    print(
        f"(weights: int8 bytes incl. int32 biases/multipliers; RAM: int8 state + scratch bytes; 'fits': the builds "
        f"whose step is <= {budget:,.0f})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"budget": budget, "rows": rows}, indent=2))
        print(f"wrote {args.json}")
    return 0
