"""The C core cross-compiled for Cortex-M3 (qemu lm3s6965evb) and Cortex-M4F (qemu mps2-an386),
bare metal with the project's harness: the same outputs as the host build."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mamba_kws.config import load_config
from mamba_kws.fused import cbind, cgen, qemu
from mamba_kws.fused import quantize as Q
from mamba_kws.model import build_model


@pytest.fixture(scope="module", params=["kws_mamba", "kws_mamba_ref"])
def fixture_model(request, tmp_path_factory, repo_root):
    """The default model (MCU switches) and the reference one (softplus, exp, rmsnorm)."""
    missing = qemu.toolchain_missing()
    if missing:
        pytest.fail(f"{missing} is needed (apt: gcc-arm-none-eabi qemu-system-arm)")
    cfg = load_config(repo_root / "models" / f"{request.param}.yaml")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    fm = Q.float_weights(model)
    qm = Q.quantize_model(fm, Q.fake_calibration(cfg, 8), rmsnorm=True)
    feats = Q.fake_calibration(cfg, 1, seed=7)[0]
    fq = Q.quantize_features(feats, qm.in_scale, qm.in_zp)
    out = tmp_path_factory.mktemp("qemu")
    (out / "model_data.c").write_text(cgen.model_source(fm, qm, feats, fq))
    lib = cbind.load()
    q_logits, _ = lib.model_q8(qm, fq)
    _, q_hidden = lib.model_q8(qm, fq, step=True)
    f_logits, _ = lib.model_f32(fm, feats)
    h = 2166136261
    for b in q_hidden.astype(np.uint8).ravel():
        h = ((h ^ int(b)) * 16777619) & 0xFFFFFFFF
    return out, dict(q8_logits=q_logits.tolist(), hash=h, f_logits=f_logits, qm=qm)


@pytest.mark.parametrize("target", list(qemu.TARGETS))
def test_bare_metal_matches_host(fixture_model, target):
    out, host = fixture_model
    t = qemu.TARGETS[target]
    elf, _ = qemu.build(t, out / "model_data.c", out / target)
    r = qemu.run(t, elf)
    assert r["q8_logits"] == host["q8_logits"]
    assert r["q8_step_logits"] == host["q8_logits"]
    assert r["q8_hidden_hash"] == [host["hash"]]
    np.testing.assert_allclose(np.array(r["f32_logits_e6"]) / 1e6, host["f_logits"], atol=2e-5)
    assert r["steps"] == [49]
    assert 0 < r["calib_ticks"][0] and r["ticks_q8_run"][0] > 0
