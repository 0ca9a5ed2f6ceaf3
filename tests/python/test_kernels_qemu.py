"""The C core cross-compiled for Cortex-M3 (qemu lm3s6965evb) and Cortex-M4F (qemu mps2-an386),
bare metal with the project's harness: the same outputs as the host build of the reference kernels,
for the optimized int8 kernels (the default build: SMLAD/SMMLAR on the M4) and the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mamba_kws.config import load_config
from mamba_kws.fused import bench, cbind, cgen, qemu
from mamba_kws.fused import quantize as Q
from mamba_kws.model import build_model

# name: (model YAML, --set overrides, float32 path in the harness, y_bits)
MODELS = {
    "kws_mamba": ("kws_mamba", (), True, Q.Y_BITS),  # the default (MCU switches)
    "kws_mamba_ref": ("kws_mamba_ref", (), True, Q.Y_BITS),  # softplus, exp decay, rmsnorm
    # a larger model: 3 blocks of d_model 48 (its float weights do not fit the M3's flash)
    "d48_3layers": ("kws_mamba", ("model.d_model=48", "model.n_layers=3"), False, Q.Y_BITS),
    # the other width of the scan output and the gate (int16 out_proj input: SMLAD on repacked pairs)
    "kws_mamba_y_other": ("kws_mamba", (), False, 24 - Q.Y_BITS),
}


@pytest.fixture(scope="module", params=list(MODELS))
def fixture_model(request, tmp_path_factory, repo_root):
    missing = qemu.toolchain_missing()
    if missing:
        pytest.fail(f"{missing} is needed (apt: gcc-arm-none-eabi qemu-system-arm)")
    name, overrides, with_float, y_bits = MODELS[request.param]
    cfg = load_config(repo_root / "models" / f"{name}.yaml", overrides)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    fm = Q.float_weights(model)
    qm = Q.quantize_model(fm, Q.fake_calibration(cfg, 8), rmsnorm=True, y_bits=y_bits)
    feats = Q.fake_calibration(cfg, 1, seed=7)[0]
    fq = Q.quantize_features(feats, qm.in_scale, qm.in_zp)
    out = tmp_path_factory.mktemp("qemu")
    (out / "model_data.c").write_text(cgen.model_source(fm, qm, feats, fq, with_float=with_float))
    ref = cbind.load(reference=True)
    q_logits, _ = ref.model_q8(qm, fq)
    _, q_hidden = ref.model_q8(qm, fq, step=True)
    assert np.array_equal(cbind.load().model_q8(qm, fq, step=True)[1], q_hidden)  # host optimized == reference
    f_logits, _ = ref.model_f32(fm, feats)
    h = 2166136261
    for b in q_hidden.astype(np.uint8).ravel():
        h = ((h ^ int(b)) * 16777619) & 0xFFFFFFFF
    return out, dict(q8_logits=q_logits.tolist(), hash=h, f_logits=f_logits, with_float=with_float, name=request.param)


@pytest.mark.parametrize("target", list(qemu.TARGETS))
def test_bare_metal_matches_host(fixture_model, target):
    """The optimized kernels (and, for the default model, the reference ones) on target."""
    out, host = fixture_model
    t = qemu.TARGETS[target]
    for kernels in ("optimized", "reference") if host["name"] == "kws_mamba" else ("optimized",):
        defines = bench.KERNELS[kernels] + (() if host["with_float"] else ("TM_HARNESS_INT8_ONLY",))
        elf, _ = qemu.build(t, out / "model_data.c", out / f"{target}_{kernels}", defines=defines)
        r = qemu.run(t, elf)
        assert r["q8_logits"] == host["q8_logits"], kernels
        assert r["q8_step_logits"] == host["q8_logits"], kernels
        assert r["q8_hidden_hash"] == [host["hash"]], kernels
        if host["with_float"]:
            np.testing.assert_allclose(np.array(r["f32_logits_e6"]) / 1e6, host["f_logits"], atol=2e-5)
        assert r["steps"] == [49]
        assert 0 < r["calib_ticks"][0] and r["ticks_q8_run"][0] > 0


def test_profile_accounts_for_the_step(tmp_path):
    """bench_kernels --profile: the phases of the profile build add up to the unprofiled step."""
    cfg = load_config()
    torch.manual_seed(0)
    fm = Q.float_weights(build_model(cfg).eval())
    qm = Q.quantize_model(fm, Q.fake_calibration(cfg, 4), rmsnorm=True)
    feats = Q.fake_calibration(cfg, 1, seed=7)[0]
    (tmp_path / "model_data.c").write_text(
        cgen.model_source(fm, qm, feats, Q.quantize_features(feats, qm.in_scale, qm.in_zp), with_float=False)
    )
    r = bench.run_target(
        qemu.TARGETS["cortex-m4"], tmp_path / "model_data.c", tmp_path, qemu.DEFAULT_OPT, "optimized", False, True
    )
    phases = sum(v for k, v in r["profile"].items() if k != "readout")
    assert abs(phases - r["q8_step_mean"]) < 0.01 * r["q8_step_mean"], (phases, r["q8_step_mean"])
    assert r["profile"]["scan"] > 0 and r["profile"]["in_proj"] > 0 and r["profile"]["readout"] > 0


def test_sweep_cli(tmp_path, capsys):
    """bench_kernels.py --sweep: one row per size with the instructions per step of each build."""
    import json

    out = tmp_path / "sweep.json"
    args = ["--sweep", "model.n_layers=1", "--targets", "cortex-m4", "--kernels", "optimized", "--json", str(out)]
    assert bench.main(args) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["n_layers"] for r in rows] == [1]
    assert 0 < rows[0]["step"]["cortex-m4 optimized"] < 128000
    assert "m4 optimized" in capsys.readouterr().out
