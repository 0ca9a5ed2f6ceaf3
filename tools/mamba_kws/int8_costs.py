"""tools/int8_costs.py: where int8 is not enough inside the fused kernels.

    python tools/int8_costs.py --checkpoint runs/kws_mamba/best.pt [--group y,yg --group y,yg,out] [--stream]

Runs the simulation of the fused int8 kernels (mamba_kws.fused.qat.FusedInt8Sim; how closely it follows
the C kernels on the same clips is printed first) on clips of the validation speakers, first all int8, then with
one tensor at a time left in float (and each --group), and prints the top-1 agreement with the float
model and the mean |logit error| of each. The tensors whose rounding costs the most are where a wider
type inside the fused op would pay. Clips: the real feature maps' validation split by default (not
the reported v2_test_dev set). --stream scores the firmware's streaming readout instead: each clip heard
right after another one, the mean over its own steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import ArgumentParser, KWSError


def clips(cfg, source: str, n: int) -> np.ndarray:  # noqa: ANN001
    """(n, frames, channels) features of the validation speakers (mltk) or of a real subset."""
    if source == "mltk":
        from .data.feature_sets import VAL_SPLIT, load_feature_set
        from .data.mltk import ensure_mltk_features

        fs = load_feature_set(ensure_mltk_features(progress=False), tuple(cfg.labels), cfg.features.frames,
                              cfg.features.channels, split=VAL_SPLIT)
        feats = fs.feats
    else:
        from .data import clip_features, load_real_clips

        feats = clip_features(load_real_clips(source, cfg), cfg)
    idx = np.sort(np.random.default_rng(0).permutation(len(feats))[:n])
    return np.asarray(feats[idx], np.float32)


def main(argv: list[str] | None = None) -> int:
    from .fused.qat import POINTS

    p = ArgumentParser(description="Which int8 roundings of the fused kernels cost agreement with float: the "
                                   "kernels' simulation with one tensor at a time left in float.")
    p.add_argument("--checkpoint", required=True, help="trained checkpoint (runs/<name>/best.pt)")
    p.add_argument("--clips", default="mltk",
                   help="clips to measure on: mltk (the real feature maps' validation speakers), v1_sample or "
                        "v2_test_dev")
    p.add_argument("-n", type=int, default=1500, help="how many clips (default 1500)")
    p.add_argument("--group", action="append", default=[], metavar="A,B,...",
                   help="also leave these points in float together (repeatable); points: " + ", ".join(POINTS))
    p.add_argument("--stream", action="store_true",
                   help="score the kernels' streaming readout: each clip right after another clip "
                        "(compare_paths.py's fixed shuffle), the int8 mean over its own steps and int8 logits, "
                        "against the float model on the same sequence (the firmware averages and classifies in "
                        "float: the pool and logits rows measure that)")
    p.add_argument("--json", default=None, help="write the rows here")
    p.add_argument("--y-bits", type=int, choices=(8, 16), default=None,
                   help="width of the fused kernels' scan output and gate: 8 or 16 (default: "
                        "mamba_kws.fused.quantize.Y_BITS, "
                        "what the shipped models use)")
    args = p.parse_args(argv)
    if args.n < 1:
        raise KWSError(f"-n counts clips: it must be >= 1, got {args.n}")
    groups = tuple(tuple(x.strip() for x in g.split(",") if x.strip()) for g in args.group)
    bad = sorted({x for g in groups for x in g} - set(POINTS))
    if bad or any(not g for g in groups):
        raise KWSError(f"--group: unknown or empty points {bad}; choose from {', '.join(POINTS)}")
    from .calibration import CALIB_CLIPS, calibration_features
    from .checkpoint import load_checkpoint
    from .fused import cbind
    from .fused.qat import FusedInt8Sim, agreement, rounding_costs

    model, cfg, _ = load_checkpoint(args.checkpoint)
    feats = clips(cfg, args.clips, args.n)
    sim = FusedInt8Sim(model)
    sim.calibrate(calibration_features(cfg, n=CALIB_CLIPS), args.y_bits)
    follows = agreement(sim, feats, cbind.load())
    context = None
    if args.stream:
        from .compare_paths import context_order

        context = feats[context_order(len(feats))]
    rows = rounding_costs(model, sim.qm, feats, groups, context=context)
    print(f"{args.checkpoint}: the simulation follows the C kernels (host build) on {len(feats)} {args.clips} clips: "
          f"top-1 {100 * follows['top1_agreement']:.2f} %, logits {follows['mean_abs_steps']:.2f} int8 steps apart "
          f"on average (at most {follows['max_abs_steps']:.0f})")
    heard = ", each right after another clip (the streaming readout)" if args.stream else ", each from a zero state"
    print(f"{args.checkpoint}: the fused int8 simulation vs float on {len(feats)} {args.clips} clips{heard}")
    print(f"  {'left in float':<28} {'top-1 agreement':>16} {'mean |logit err|':>17}")
    for r in rows:
        name = "(all int8)" if not r["float_points"] else (
            "(all float)" if len(r["float_points"]) == len(POINTS) else ",".join(r["float_points"]))
        print(f"  {name:<28} {100 * r['top1_agreement']:>15.2f}% {r['mean_abs_logit_error']:>17.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "clips": args.clips, "n": len(feats),
                                               "stream": args.stream,
                                               "simulation_vs_kernels": follows, "rows": rows}, indent=2) + "\n")
    return 0
