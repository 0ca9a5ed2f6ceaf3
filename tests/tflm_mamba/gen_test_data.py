#!/usr/bin/env python3
"""Writes src/test_data.h and src/test_models.h for the ztest suite: the weights of
models/tiny.yaml (seed 0, with a non-trivial batchnorm), inputs, and the expected outputs
computed on the host:

- float32: the float64 reference of mamba_kws.fused.quantize (block_forward, model_forward);
- int8: the bit-exact numpy oracle mamba_kws.fused.intmodel (block_run, model_run);
- MAMBA_BLOCK test models (models/*.tflite from mamba_kws.fused_tflite.build_block), int8, whole
  sequence and one step per Invoke, for the TFLM scenario of the suite; the build makes them C
  (generate_inc_file_for_target in CMakeLists.txt).

    python tests/tflm_mamba/gen_test_data.py    # rewrites src/test_data.h, src/test_models.h, models/

The same inputs give the same bytes (one torch thread); tests/python/test_tflm_mamba_data.py checks
that the committed files are what this script writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tools"))

from mamba_kws import fused_tflite  # noqa: E402
from mamba_kws.config import load_config  # noqa: E402
from mamba_kws.fused import cgen, intmodel  # noqa: E402
from mamba_kws.fused import quantize as q  # noqa: E402
from mamba_kws.model import build_model  # noqa: E402

STEPS = 8  # block tests: L steps of u
MODELS = ("block_whole", "block_step", "block_bad")


def c_float(v: float) -> str:
    """A C float literal that round-trips float32 (9 significant digits)."""
    s = f"{float(v):.9g}"
    return (s if any(c in s for c in ".e") else s + ".0") + "f"


def c_array(ctype: str, name: str, values: np.ndarray | bytes, per_line: int = 12) -> str:
    flat = np.frombuffer(values, np.uint8) if isinstance(values, bytes) else np.asarray(values).ravel()
    if ctype == "float":
        items = [c_float(v) for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    align = "__aligned(16) " if ctype == "uint8_t" else ""
    return f"static const {align}{ctype} {name}[{len(items)}] = {{\n\t" + ",\n\t".join(lines) + "\n};\n"


def render() -> dict[str, bytes]:
    """The suite's data files, by path relative to tests/tflm_mamba/."""
    torch.set_num_threads(1)  # float sums in one fixed order, whatever the machine
    kcfg = load_config("tiny")
    cfg = kcfg.model
    torch.manual_seed(0)
    model = build_model(kcfg).eval()
    with torch.no_grad():  # a batchnorm that is not the identity, so the folding is tested
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    fm = q.float_weights(model)
    qm = q.quantize_model(fm, q.fake_calibration(kcfg, n=16))
    rng = np.random.default_rng(0)
    d = cfg.d_model
    fb, qb = fm.blocks[0], qm.blocks[0]

    u_f32 = rng.normal(0.0, 1.0, (STEPS, d)).astype(np.float32)
    out_f32, _ = q.block_forward(cfg, fb, u_f32[None].astype(np.float64))
    u_q8 = rng.integers(-128, 128, (STEPS, d)).astype(np.int8)
    out_q8 = intmodel.block_run(cfg, qb, u_q8)
    feats = q.fake_calibration(kcfg, n=1, seed=7)
    logits_f32, _, _ = q.model_forward(fm, feats.astype(np.float64))
    feats_q8 = q.quantize_features(feats[0], qm.in_scale, qm.in_zp)
    logits_q8, _ = intmodel.model_run(qm, feats_q8)
    tfl_whole = fused_tflite.build_block(cfg, qb, STEPS, int8=True)
    tfl_step = fused_tflite.build_block(cfg, qb, 1, int8=True, stateful=True)
    tfl_bad = fused_tflite.build_block(
        dataclasses.replace(cfg, d_state=cfg.d_state + 1), qb, STEPS, int8=True
    )

    # The structs are written by mamba_kws.fused.cgen (K1's emitter of mamba_model.h's structs),
    # so this header follows the C core's structs when they change.
    e = cgen._Emitter("td")
    f32_blocks = ", ".join(cgen._f32_block(e, b) for b in fm.blocks)
    q8_blocks = ", ".join(cgen._q8_block(e, b) for b in qm.blocks)
    f = lambda a: e.array("float", a)  # noqa: E731
    f32_model = (
        f"{{ .stem_w = {f(fm.stem_w)}, .stem_b = {f(fm.stem_b)}, .blocks = td_f32_blocks, "
        f".norm_f_weight = {f(fm.norm_f_weight)}, .norm_f_bias = {f(fm.norm_f_bias)}, "
        f".norm_f_eps = {c_float(fm.norm_f_eps)}, .cls_w = {f(fm.cls_w)}, .cls_b = {f(fm.cls_b)} }}"
    )
    q8_model = (
        f"{{ .in_scale = {c_float(qm.in_scale)}, .in_zp = {qm.in_zp}, .stem = {cgen._linear(e, qm.stem)}, "
        f".blocks = td_q8_blocks, .pool_mult = {qm.pool_mult}, .pool_shift = {qm.pool_shift}, "
        f".pool_zp = {qm.pool_zp}, .cls = {cgen._linear(e, qm.cls)}, "
        f".logit_scale = {c_float(qm.logit_scale)}, .logit_zp = {qm.logit_zp} }}"
    )
    text = [
        "/* Generated by tests/tflm_mamba/gen_test_data.py from models/tiny.yaml: do not edit. */\n",
        "#ifndef TEST_DATA_H_\n#define TEST_DATA_H_\n\n",
        "#include <stdint.h>\n#include <zephyr/toolchain.h>\n\n",
        '#include "test_models.h"\n',
        '#include "tflm_mamba/mamba_block.h"\n#include "tflm_mamba/mamba_model.h"\n\n',
        f"#define TD_FRAMES {kcfg.features.frames}\n",
        f"#define TD_CHANNELS {fm.channels}\n#define TD_CLASSES {fm.n_classes}\n\n",
        "\n".join(e.lines) + "\n\n",
        f"static const tm_model_config td_model_cfg = {cgen.model_config_c(fm)};\n",
        "/* float32: expected = the float64 reference (quantize.block_forward / model_forward) */\n",
        f"static const tm_block_f32_weights td_f32_blocks[] = {{ {f32_blocks} }};\n",
        f"static const tm_model_f32_weights td_f32_model = {f32_model};\n",
        c_array("float", "td_f32_u", u_f32),
        c_array("float", "td_f32_out", out_f32[0]),
        c_array("float", "td_f32_feats", feats[0]),
        c_array("float", "td_f32_logits", logits_f32[0]),
        "/* int8: expected = the bit-exact numpy oracle (intmodel.block_run / model_run) */\n",
        f"static const tm_block_q8_weights td_q8_blocks[] = {{ {q8_blocks} }};\n",
        f"static const tm_model_q8_weights td_q8_model = {q8_model};\n",
        c_array("int8_t", "td_q8_feats", feats_q8),
        c_array("int8_t", "td_q8_logits", logits_q8),
        "\n#endif /* TEST_DATA_H_ */\n",
    ]
    models = [
        "/* Generated by tests/tflm_mamba/gen_test_data.py from models/tiny.yaml: do not edit.\n"
        " * The MAMBA_BLOCK test models' (models/*.tflite, int8 block 0 of test_data.h) input u and\n"
        " * the oracle's output. No structs: C and C++ include it. */\n",
        "#ifndef TEST_MODELS_H_\n#define TEST_MODELS_H_\n\n",
        "#include <stdint.h>\n#include <zephyr/toolchain.h>\n\n",
        f"#define TD_STEPS {STEPS}\n#define TD_D_MODEL {d}\n\n",
        c_array("int8_t", "td_q8_u", u_q8),
        c_array("int8_t", "td_q8_out", out_q8),
        "\n#endif /* TEST_MODELS_H_ */\n",
    ]
    files = {"src/test_data.h": "".join(text).encode(), "src/test_models.h": "".join(models).encode()}
    for name, data in zip(MODELS, (tfl_whole, tfl_step, tfl_bad), strict=True):
        files[f"models/{name}.tflite"] = bytes(data)
    return files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write the ztest suite's data (src/test_data.h, src/test_models.h, "
                                            "models/*.tflite).")
    p.add_argument("--out", type=Path, default=HERE, help="the suite's folder (default: this script's)")
    args = p.parse_args(argv)
    for rel, data in render().items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
