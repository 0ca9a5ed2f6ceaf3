"""The int8 preparation of the paper path: scan-state equalisation (mamba_kws.equalize), the int8
simulation used for quantisation-aware fine-tuning (mamba_kws.qat) and its ranges carried into the
TFLite graph as FakeQuant ops."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import random_features as _features
from mamba_kws.train import main as train_main

STEPS = 12


@pytest.fixture(scope="module")
def model(tiny_cfg, seeded):
    m = seeded(tiny_cfg)
    with torch.no_grad():
        for layer in m.layers:  # uneven state channels, as a trained model has
            layer.mixer.x_proj.weight.mul_(torch.linspace(0.2, 3.0, layer.mixer.x_proj.weight.shape[0])[:, None])
    return m


def test_equalize_keeps_the_float_model_and_evens_the_state(model, tiny_cfg):
    from mamba_kws.equalize import equalize_model, state_ranges

    feats = _features(tiny_cfg, 8, 1, STEPS)
    eq = copy.deepcopy(model)
    before = state_ranges(model, feats)
    scales = equalize_model(eq, feats, strength=1.0)
    x = torch.from_numpy(_features(tiny_cfg, 4, 2))
    with torch.no_grad():
        ref, got = model(x), eq(x)
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4)
    after = state_ranges(eq, feats)
    for m0, m1, (a, b) in zip(before, after, scales, strict=True):
        # h' = h / (a b) exactly, and the fit evens the channels' ranges in log space
        np.testing.assert_allclose(m1, m0 / (a[:, None] * b[None, :]), rtol=1e-3, atol=1e-6)
        assert np.log(m1).std() < np.log(m0).std()


def test_simulation_without_quantisers_is_the_model(model, tiny_cfg):
    from mamba_kws.qat import Int8Sim

    x = torch.from_numpy(_features(tiny_cfg, 4, 3))
    with torch.no_grad():
        assert torch.allclose(Int8Sim(model, quantize=False)(x), model(x), atol=1e-5)


def test_calibration_ranges_and_fake_quant(model, tiny_cfg):
    from mamba_kws.qat import Int8Sim, QATError, choose_range
    from mamba_kws.quant import fake_q_range as fake_int8

    feats = _features(tiny_cfg, 8, 4, STEPS)
    sim = Int8Sim(model)
    mm = dict(sim.calibrate(feats, "minmax"))
    mse = dict(sim.calibrate(feats, "mse"))
    L = STEPS
    names = {"stem", "pool", "logits", "l0/xc", "l0/y", "l0/yz", "l0/t0/bx", f"l0/t{L - 1}/h", "l0/t1/dh"}
    assert names <= set(mm) and set(mm) == set(mse)
    assert "l0/t0/h" not in mm  # h_0 = dt_0 B_0 x_0 is the bx tensor itself
    for k, (lo, hi) in mse.items():  # the MSE range is the min/max range, clipped
        assert mm[k][0] <= lo + 1e-6 and hi <= mm[k][1] + 1e-6, k
    # a heavy-tailed tensor is clipped, an even one is not
    g = torch.Generator().manual_seed(0)
    heavy = torch.cat([torch.randn(50000, generator=g), torch.tensor([200.0])])  # one far outlier
    lo, hi = choose_range(heavy, "mse")
    assert hi < 0.99 * 200.0 and lo == pytest.approx(hi / 200.0 * float(heavy.min()))
    even = torch.rand(20000, generator=g) * 4 - 1
    assert choose_range(even, "mse") == pytest.approx((float(even.min()), float(even.max())))
    v = torch.linspace(-3, 5, 1001)
    q = fake_int8(v, -2.0, 2.0)
    step = 4.0 / 255  # the range is nudged so that 0 is on the grid: at most one step off
    assert float(q.min()) >= -2.0 - step and float(q.max()) <= 2.0 + step
    assert len(torch.unique(q)) <= 256
    with torch.no_grad():
        x = torch.from_numpy(feats)
        got, ref = sim(x), model(x)
    # int8 rounding shows, but stays small: measured largest logit error 0.21 and mean 0.059 on these
    # 8 windows, against a float logit span of 20.3 (1.0 % and 0.3 %)
    span = float(ref.max() - ref.min())
    err = (got - ref).abs()
    assert float(err.max()) > 1e-3, "the simulation does not quantise"
    assert float(err.max()) < 0.03 * span and float(err.mean()) < 0.01 * span, (float(err.max()), span)
    with pytest.raises(QATError):
        sim.calibrate(feats, "percentile")


def test_ranges_reach_the_int8_tflite(model, tiny_cfg):
    from mamba_kws.export.convert import convert
    from mamba_kws.export.flatbuf import load_model, tensor_info
    from mamba_kws.export.tfgraph import build_tf_function
    from mamba_kws.qat import Int8Sim

    feats = _features(tiny_cfg, 8, 5, STEPS)
    ranges = Int8Sim(model).calibrate(feats, "mse")
    lo, hi = ranges["stem"]
    ranges = dict(ranges, stem=(lo * 0.5, hi * 0.5))  # not what the converter would calibrate
    tfl = load_model(convert(build_tf_function(model, steps=STEPS, ranges=ranges), "int8", feats))
    sg = tfl.subgraphs[0]
    names = [tfl.operatorCodes[op.opcodeIndex] for op in sg.operators]
    fc = [op for op, code in zip(sg.operators, names, strict=True)
          if max(code.builtinCode, code.deprecatedBuiltinCode) == 9]  # FULLY_CONNECTED
    stem_out = tensor_info(tfl, int(fc[0].outputs[0]))
    scale = float(sg.tensors[int(fc[0].outputs[0])].quantization.scale[0])
    assert stem_out.dtype == "int8"
    assert scale == pytest.approx((max(hi * 0.5, 0) - min(lo * 0.5, 0)) / 255, rel=0.02)


def test_qat_fine_tuning_runs_and_records_it(repo_root, tmp_path):
    from mamba_kws.checkpoint import load_checkpoint, read_checkpoint

    common = ["--config", str(repo_root / "models" / "tiny.yaml"), "--cache", str(tmp_path / "data"),
              "--workers", "0", "--quiet", "--no-real-eval"]
    assert train_main([*common, "--out", str(tmp_path / "base"), "--max-steps", "3"]) == 0
    assert train_main([*common, "--out", str(tmp_path / "qat"), "--init", str(tmp_path / "base" / "best.pt"),
                       "--qat", "--qat-match", "1", "--max-steps", "3"]) == 0
    import json

    summary = json.loads((tmp_path / "qat" / "summary.json").read_text())
    assert summary["qat"] == "builtin" and summary["init"].endswith("best.pt") and summary["steps"] == 3
    assert summary["qat_calibration"] == "generated"  # mamba_kws.calibration.DEFAULT, as the export
    stored = read_checkpoint(tmp_path / "qat" / "last.pt")
    assert stored["step"] == 3 and stored["config"]["qat"]["match"] == 1.0
    assert stored["config"]["train"]["lr"] == stored["config"]["qat"]["lr"]  # the qat: schedule was used
    # equalisation alone leaves the float function as it was (to 1e-5): the steps must have changed it
    base, _, _ = load_checkpoint(tmp_path / "base" / "best.pt")
    tuned, _, _ = load_checkpoint(tmp_path / "qat" / "last.pt")
    x = torch.from_numpy(_features(base.cfg, 4, 9))
    with torch.no_grad():
        moved = float((tuned(x) - base(x)).abs().max())
    print(f"float logits moved by {moved:.4f}")
    assert moved > 1e-3, moved


def test_qat_without_init_is_one_clear_line(repo_root, tmp_path, capsys):
    from mamba_kws.errors import cli_main

    rc = cli_main(train_main, ["--config", str(repo_root / "models" / "tiny.yaml"), "--cache", str(tmp_path),
                               "--qat", "--quiet", "--no-real-eval"])
    err = capsys.readouterr().err
    assert rc != 0 and "--init" in err and "Traceback" not in err
