"""The fused .tflite writer (mamba_kws.fused_tflite): schema, op list, custom options, and the
contract with the C++ op (modules/tflm_mamba/tflm). The op itself needs a TFLM build with it
registered (the firmware, tests/tflm_mamba); the PyPI TFLM interpreter runs the builtin parts."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from mamba_kws import fused_tflite as ft
from mamba_kws.checkpoint import save_checkpoint
from mamba_kws.config import REPO_ROOT, load_config
from mamba_kws.errors import cli_main
from mamba_kws.export.flatbuf import schema
from mamba_kws.fused.quantize import fake_calibration, float_weights, quantize_model
from mamba_kws.model import build_model

TFLM_DIR = REPO_ROOT / "modules" / "tflm_mamba" / "tflm"


@pytest.fixture(scope="module")
def tiny():
    kcfg = load_config("tiny")
    torch.manual_seed(0)
    fm = float_weights(build_model(kcfg).eval())
    qm = quantize_model(fm, fake_calibration(kcfg, n=4))
    return kcfg, fm, qm


def _ops(info: dict) -> list[str]:
    return [o["op"] for o in info["ops"]]


def test_float_model_parses_back(tiny) -> None:
    kcfg, fm, _ = tiny
    info = ft.describe(ft.build_float(fm, kcfg))
    assert _ops(info) == ["RESHAPE", "FULLY_CONNECTED", "MAMBA_BLOCK", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert info["inputs"] == [dict(shape=[1, kcfg.features.frames, 40], type="float32")]
    assert info["outputs"] == [dict(shape=[1, kcfg.num_classes], type="float32")]
    block = info["ops"][2]
    assert len(block["inputs"]) == len(ft.FLOAT_INPUTS)
    assert block["options"] == ft.block_options(kcfg.model, stateful=False, norm_eps=1e-5)
    assert block["options"]["norm"] == "affine" and block["options"]["stateful"] is False


def test_int8_model_options_and_weights_round_trip(tiny) -> None:
    kcfg, fm, qm = tiny
    data = ft.build_int8(fm, qm, kcfg)
    info = ft.describe(data)
    assert _ops(info) == ["RESHAPE", "FULLY_CONNECTED", "MAMBA_BLOCK", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert info["inputs"][0]["type"] == "int8" and info["outputs"][0]["type"] == "int8"
    block = info["ops"][2]
    qb = qm.blocks[0]
    opts = block["options"]
    assert len(block["inputs"]) == len(ft.INT8_INPUTS)
    assert opts["norm"] == "none"  # batchnorm folded into in_proj
    assert opts["ssm_bx_shift"] == qb.ssm.bx_shift and opts["res_m_shift"] == qb.res_m_shift
    assert set(ft.INT8_OPTION_KEYS) <= set(opts)
    assert opts.get("ssm_y_bits", 8) == qb.ssm.y_bits  # written only when not 8 (the op's default)
    y8 = ft.describe(ft.build_int8(fm, quantize_model(fm, fake_calibration(kcfg, n=4), y_bits=8), kcfg))
    assert "ssm_y_bits" not in y8["ops"][2]["options"]
    # the weight tensors hold the quantiser's arrays as they are
    fb = schema()
    m = fb.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sg = m.subgraphs[0]

    def tensor(i: int, dtype: str) -> np.ndarray:
        t = sg.tensors[block["inputs"][i]]
        return np.frombuffer(bytes(m.buffers[t.buffer].data), dtype).reshape(t.shape)

    idx = {name: i for i, name in enumerate(ft.INT8_INPUTS)}
    assert np.array_equal(tensor(idx["in_proj_x_W"], "int8"), qb.in_proj_x.W)
    assert np.array_equal(
        tensor(idx["dt_proj_params"], "int32"), np.stack([qb.dt_proj.bias, qb.dt_proj.mult, qb.dt_proj.shift])
    )
    assert np.array_equal(tensor(idx["A_q20"], "int32"), qb.ssm.A_q20)
    assert np.array_equal(tensor(idx["luts"], "int8")[1], qb.dt_act_lut)
    u = sg.tensors[block["inputs"][0]]
    assert list(u.quantization.zeroPoint) == [qb.in_zp]


def test_streaming_model_is_one_step_and_stateful(tiny) -> None:
    kcfg, fm, qm = tiny
    for data in (ft.build_float(fm, kcfg, streaming=True), ft.build_int8(fm, qm, kcfg, streaming=True)):
        info = ft.describe(data)
        assert _ops(info) == ["FULLY_CONNECTED", "MAMBA_BLOCK", "FULLY_CONNECTED", "SOFTMAX"]
        assert info["inputs"][0]["shape"] == [1, kcfg.model.frame_stack * 40]
        assert info["ops"][1]["options"]["stateful"] is True


def test_rmsnorm_float_uses_builtins_and_int8_is_refused(tmp_path, capsys) -> None:
    kcfg = load_config("kws_mamba_ref")
    torch.manual_seed(0)
    fm = float_weights(build_model(kcfg).eval())
    ops = _ops(ft.describe(ft.build_float(fm, kcfg)))
    assert ops.count("MAMBA_BLOCK") == kcfg.model.n_layers
    assert "RSQRT" in ops and ops.index("RSQRT") < ops.index("FULLY_CONNECTED", 2)
    out = tmp_path / "ref.tflite"
    code = cli_main(ft.main, ["--config", "kws_mamba_ref", "--int8", "--calib", "fake", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "rmsnorm" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_writes_a_file_from_a_checkpoint(tmp_path, capsys) -> None:
    kcfg = load_config("tiny")
    torch.manual_seed(1)
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, build_model(kcfg).eval(), kcfg, epoch=0)
    out = tmp_path / "tiny_int8.tflite"
    args = ["--checkpoint", str(ckpt), "--int8", "--calib", "fake", "--calib-clips", "4", "--out", str(out)]
    assert cli_main(ft.main, args) == 0
    assert "MAMBA_BLOCK x 1" in capsys.readouterr().out
    assert _ops(ft.describe(out.read_bytes()))[2] == "MAMBA_BLOCK"
    assert cli_main(ft.main, ["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def _enum_names(header: str, enum: str) -> list[str]:
    body = re.search(rf"enum {enum} \{{(.*?)\}};", header, re.S).group(1)
    return [n.strip().split("=")[0].strip() for n in body.split(",") if n.strip()]


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def test_contract_with_the_cpp_op() -> None:
    """The input order and option keys here are the ones mamba_block_tensors.h / _options.cc use."""
    header = (TFLM_DIR / "mamba_block_tensors.h").read_text()
    f32 = _enum_names(header, "MambaBlockF32Input")
    assert f32[-1] == "kF32NumInputs" and len(f32) - 1 == len(ft.FLOAT_INPUTS)
    assert [n.lower() for n in f32[:-1]] == ["kf32" + _camel(n).lower() for n in ft.FLOAT_INPUTS]
    q8 = _enum_names(header, "MambaBlockQ8Input")
    assert q8[-1] == "kQ8NumInputs" and len(q8) - 1 == len(ft.INT8_INPUTS)
    assert [n.lower() for n in q8[:-1]] == ["kq8" + _camel(n).lower() for n in ft.INT8_INPUTS]
    source = (TFLM_DIR / "mamba_block_options.cc").read_text()
    keys = re.findall(r'\{"(\w+)", &w\.', source)
    assert tuple(keys) == ft.INT8_OPTION_KEYS
    for key in (
        "d_model",
        "d_inner",
        "d_state",
        "d_conv",
        "dt_rank",
        "decay",
        "dt_activation",
        "activation",
        "norm",
        "norm_eps",
        "stateful",
    ):
        assert f'"{key}"' in source
    assert f'"{ft.OP_NAME}"' in (TFLM_DIR / "tflm_mamba_ops.h").read_text()


def test_pypi_tflm_runs_the_builtins_and_refuses_the_custom_op(tiny, capfd) -> None:
    """The PyPI TFLM interpreter has no MAMBA_BLOCK: the builtin part of the graph (our writer's
    RESHAPE / FULLY_CONNECTED / MEAN / SOFTMAX) runs and matches numpy; the fused model is refused
    (it says "op code CUSTOM", not the name MAMBA_BLOCK)."""
    from tflite_micro.python.tflite_micro import runtime

    kcfg, fm, qm = tiny
    g = ft.Graph(schema())
    L, k = kcfg.steps, kcfg.model.frame_stack
    inp = g.tensor("features", (1, kcfg.features.frames, 40), "float32")
    r = g.tensor("stacked", (1, L, k * 40), "float32")
    ro = g.schema.ReshapeOptionsT()
    ro.newShape = [1, L, k * 40]
    g.op("RESHAPE", [inp, g.const("shape", np.array([1, L, k * 40]), "int32")], [r], ro, "ReshapeOptions")
    x = ft._fc(g, r, fm.stem_w, fm.stem_b, (1, L, fm.cfg.d_model), "stem")
    x = ft._pool(g, x, L, fm.cfg.d_model, "mean", "float32", None)
    W, b = ft._classifier_weights(fm)
    out = ft._softmax(g, ft._fc(g, x, W, b, (1, fm.n_classes), "logits"), fm.n_classes, "float32")
    interp = runtime.Interpreter.from_bytes(g.finish([inp], [out], "builtins only"))
    feats = fake_calibration(kcfg, n=1, seed=3)
    interp.set_input(feats, 0)
    interp.invoke()
    got = interp.get_output(0)[0]
    h = (feats[0].reshape(L, k * 40) @ fm.stem_w.T + fm.stem_b).mean(0)
    logits = h @ W.T + b
    want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(got, want, atol=1e-5)

    with pytest.raises(RuntimeError, match="allocate tensors"):
        runtime.Interpreter.from_bytes(ft.build_int8(fm, qm, kcfg))
    captured = capfd.readouterr()
    assert "Failed to get registration from op code CUSTOM" in captured.out + captured.err


def test_int8_window_model_runs_as_the_c_core(tiny) -> None:
    """The window .tflite as the firmware runs it (builtins in the PyPI TFLM, MAMBA_BLOCK in the C core)
    gives the C core's logits: the MEAN requantises to the pooled mean's own scale, as tm_model_q8_logits
    does (at the residual's scale, up to 7x coarser on the default model, it lost 0.8 points of agreement
    with float on v2_test_dev)."""
    from mamba_kws.export.flatbuf import cut, load_model, op_list, tensor_info
    from mamba_kws.firmware import FusedHost
    from mamba_kws.fused import cbind
    from mamba_kws.fused.quantize import quantize_features

    kcfg, fm, qm = tiny
    m = load_model(ft.build_int8(fm, qm, kcfg))
    sg = m.subgraphs[0]
    ops = op_list(m)
    mean = sg.operators[ops.index("MEAN")]
    pooled = tensor_info(m, int(mean.outputs[0]))
    assert (pooled.scale[0], pooled.zero_point[0]) == pytest.approx((qm.pool_scale, qm.pool_zp))
    k = ops.index("SOFTMAX")
    logits_t = int(sg.operators[k].inputs[0])
    host = FusedHost(cut(m, 0, k, [int(sg.inputs[0])], [logits_t]))
    lib = cbind.load()
    feats = fake_calibration(kcfg, n=40, seed=3)
    steps = []
    for f in feats:
        q = quantize_features(f, qm.in_scale, qm.in_zp)
        host.reset()
        got = host.run(q[None]).reshape(-1).astype(np.int64)
        want = lib.model_q8(qm, q)[0].astype(np.int64)
        steps.append(np.abs(got - want).max())
    # TFLM's MEAN and FULLY_CONNECTED round their requantisation their own way: 2 steps apart at most
    # (with the MEAN at the residual's scale: 9)
    assert max(steps) <= 2, steps
