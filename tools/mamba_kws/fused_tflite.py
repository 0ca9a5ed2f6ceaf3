"""A fused .tflite: each Mamba block is one TFLM custom op MAMBA_BLOCK, builtins around it.

    whole window (default)                          streaming (--streaming)
    features [1, frames, channels]                  one step [1, frame_stack * channels]
    RESHAPE -> [1, L, frame_stack * channels]
    FULLY_CONNECTED stem -> [1, L, d_model]         FULLY_CONNECTED stem -> [1, d_model]
    MAMBA_BLOCK x n_layers (residual inside)        MAMBA_BLOCK x n_layers, stateful
    [final rmsnorm as builtins, float only]         [final rmsnorm as builtins, float only]
    MEAN over time (pooling "last": STRIDED_SLICE)
    FULLY_CONNECTED classifier                      FULLY_CONNECTED classifier (per step)
    SOFTMAX -> [1, classes]                         SOFTMAX -> [1, classes]

A final batchnorm is folded into the classifier (exact: the mean commutes with an affine map).
float32, or int8 (--int8) with the quantisation of mamba_kws.fused.quantize: the blocks use its
parameters as they are (the op is bit-exact with the C core); the stem and classifier are
TFLite FULLY_CONNECTED with per-tensor weights at the same activation scales, and MEAN requantises to
the pooled mean's scale as the C core's readout does (the window model's logits are the C core's
within 2 int8 steps: tests/python/test_fused_tflite.py).

MAMBA_BLOCK's inputs and custom options are the contract with modules/tflm_mamba/tflm/
(mamba_block_tensors.h, mamba_block_options.h): FLOAT_INPUTS, INT8_INPUTS and
`block_options` here. The flatbuffer is built with TensorFlow's schema bindings
(tensorflow/lite/python/schema_py_generated.py, object API), the options with flexbuffers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import CALIB_CLIPS, calibration_features
from .calibration import DEFAULT as CALIB_DEFAULT
from .calibration import HELP as CALIB_HELP
from .checkpoint import load_checkpoint
from .config import KWSConfig, ModelConfig, load_config
from .errors import ArgumentParser, KWSError
from .export.flatbuf import schema

OP_NAME = "MAMBA_BLOCK"
OPTIONS_VERSION = 1

# Input tensors of MAMBA_BLOCK, in order (modules/tflm_mamba/tflm/mamba_block_tensors.h).
FLOAT_INPUTS = (
    "u",
    "norm_weight",
    "norm_bias",
    "in_proj_w",
    "conv_w",
    "conv_b",
    "x_proj_w",
    "dt_proj_w",
    "dt_proj_b",
    "A",
    "D",
    "out_proj_w",
)
INT8_LAYERS = ("in_proj_x", "in_proj_z", "conv", "x_proj_dt", "x_proj_B", "x_proj_C", "dt_proj", "out_proj")
INT8_INPUTS = ("u", *(f"{n}_{p}" for n in INT8_LAYERS for p in ("W", "params")), "luts", "A_q20", "D")
# The int8 scalars in the custom options (mamba_block_options.cc reads the same keys).
INT8_OPTION_KEYS = (
    "in_zp",
    "in_proj_x_out_zp",
    "in_proj_z_out_zp",
    "conv_out_zp",
    "x_proj_dt_out_zp",
    "x_proj_B_out_zp",
    "x_proj_C_out_zp",
    "dt_proj_out_zp",
    "ssm_x_zp",
    "ssm_dt_zp",
    "ssm_B_zp",
    "ssm_C_zp",
    "ssm_bx_shift",
    "ssm_hc_mult",
    "ssm_hc_shift",
    "ssm_y_zp",
    "gate_zp",
    "yg_mult",
    "yg_shift",
    "yg_zp",
    "out_proj_out_zp",
    "res_u_mult",
    "res_u_shift",
    "res_m_mult",
    "res_m_shift",
    "out_zp",
)


# Optional int8 keys (mamba_block_options.h): absent means the default the op assumes.
OPTIONAL_INT8_KEYS = ("ssm_y_bits",)  # 8 when absent


class FusedExportError(KWSError):
    """A model the fused .tflite cannot express."""


# ---------------------------------------------------------------- custom options


def block_options(cfg: ModelConfig, stateful: bool, qb: Any | None = None, norm_eps: float = 1e-5) -> dict:
    """The flexbuffers map of one MAMBA_BLOCK (mamba_block_options.h). qb: a QBlock for int8."""
    norm = {"rmsnorm": "rmsnorm", "batchnorm": "affine", "none": "none"}[cfg.norm]
    if qb is not None:
        norm = "none"  # batchnorm is folded into in_proj by the quantiser
    opts: dict[str, Any] = dict(
        version=OPTIONS_VERSION,
        d_model=cfg.d_model,
        d_inner=cfg.d_inner,
        d_state=cfg.d_state,
        d_conv=cfg.d_conv,
        dt_rank=cfg.dt_rank_resolved,
        decay=cfg.decay,
        dt_activation=cfg.dt_activation,
        activation=cfg.activation,
        norm=norm,
        norm_eps=float(norm_eps),
        stateful=bool(stateful),
    )
    if qb is not None:
        s = qb.ssm
        values = dict(
            in_zp=qb.in_zp,
            in_proj_x_out_zp=qb.in_proj_x.out_zp,
            in_proj_z_out_zp=qb.in_proj_z.out_zp,
            conv_out_zp=qb.conv.out_zp,
            x_proj_dt_out_zp=qb.x_proj_dt.out_zp,
            x_proj_B_out_zp=qb.x_proj_B.out_zp,
            x_proj_C_out_zp=qb.x_proj_C.out_zp,
            dt_proj_out_zp=qb.dt_proj.out_zp,
            ssm_x_zp=s.x_zp,
            ssm_dt_zp=s.dt_zp,
            ssm_B_zp=s.B_zp,
            ssm_C_zp=s.C_zp,
            ssm_bx_shift=s.bx_shift,
            ssm_hc_mult=s.hc_mult,
            ssm_hc_shift=s.hc_shift,
            ssm_y_zp=s.y_zp,
            gate_zp=qb.gate_zp,
            yg_mult=qb.yg_mult,
            yg_shift=qb.yg_shift,
            yg_zp=qb.yg_zp,
            out_proj_out_zp=qb.out_proj.out_zp,
            res_u_mult=qb.res_u_mult,
            res_u_shift=qb.res_u_shift,
            res_m_mult=qb.res_m_mult,
            res_m_shift=qb.res_m_shift,
            out_zp=qb.out_zp,
        )
        assert tuple(values) == INT8_OPTION_KEYS
        opts |= {k: int(v) for k, v in values.items()}
        if s.y_bits != 8:  # optional, 8 when absent: a model with int8 y keeps the bytes it had
            opts["ssm_y_bits"] = int(s.y_bits)
    return opts


def encode_options(opts: dict) -> bytes:
    from flatbuffers import flexbuffers

    return bytes(flexbuffers.Dumps(opts))


def decode_options(data: bytes | np.ndarray) -> dict:
    from flatbuffers import flexbuffers

    return flexbuffers.Loads(bytes(bytearray(data)))


def read_blocks(data: bytes) -> list[tuple[bytes, dict, dict[str, np.ndarray]]]:
    """(raw options, options, {input name: const tensor}) of every MAMBA_BLOCK of a .tflite's first subgraph."""
    s = schema()
    m = s.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sg = m.subgraphs[0]
    dtypes = {s.TensorType.INT8: np.int8, s.TensorType.INT32: np.int32, s.TensorType.FLOAT32: np.float32}
    out = []
    for op in sg.operators:
        if m.operatorCodes[op.opcodeIndex].builtinCode != s.BuiltinOperator.CUSTOM:
            continue
        tensors = {}
        for name, i in zip(INT8_INPUTS, op.inputs, strict=True):
            t = sg.tensors[i]
            buf = m.buffers[t.buffer].data
            if buf is not None and len(buf):
                tensors[name] = np.frombuffer(bytes(bytearray(buf)), dtypes[t.type]).reshape(t.shape)
        raw = bytes(bytearray(op.customOptions))
        out.append((raw, decode_options(raw), tensors))
    return out


# ---------------------------------------------------------------- a small graph builder


@dataclass
class Graph:
    """Tensors, buffers and operators of one subgraph, then `finish` packs the model."""

    schema: Any
    tensors: list = field(default_factory=list)
    buffers: list = field(default_factory=list)
    operators: list = field(default_factory=list)
    opcodes: list = field(default_factory=list)  # (builtin code, custom name)

    def __post_init__(self) -> None:
        self.buffers.append(self.schema.BufferT())  # buffer 0: the empty sentinel

    def tensor(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: str,
        data: np.ndarray | None = None,
        scale: float | None = None,
        zp: int = 0,
    ) -> int:
        s = self.schema
        t = s.TensorT()
        t.name = name
        t.shape = np.asarray(shape, np.int32)
        t.type = {"float32": s.TensorType.FLOAT32, "int8": s.TensorType.INT8, "int32": s.TensorType.INT32}[
            dtype
        ]
        t.buffer = 0
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data).astype(dtype)).reshape(shape)
            buf = s.BufferT()
            buf.data = np.frombuffer(arr.tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(scale)]
            q.zeroPoint = [int(zp)]
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, name: str, data: np.ndarray, dtype: str, scale: float | None = None, zp: int = 0) -> int:
        data = np.asarray(data)
        return self.tensor(name, data.shape, dtype, data, scale, zp)

    def _opcode(self, builtin: int, custom: str | None) -> int:
        key = (builtin, custom)
        if key not in self.opcodes:
            self.opcodes.append(key)
        return self.opcodes.index(key)

    def op(
        self,
        builtin: str,
        inputs: list[int],
        outputs: list[int],
        options: Any = None,
        options_type: str | None = None,
    ) -> None:
        s = self.schema
        o = s.OperatorT()
        o.opcodeIndex = self._opcode(getattr(s.BuiltinOperator, builtin), None)
        o.inputs, o.outputs = list(inputs), list(outputs)
        if options is not None:
            o.builtinOptionsType = getattr(s.BuiltinOptions, options_type)
            o.builtinOptions = options
        self.operators.append(o)

    def custom(self, name: str, inputs: list[int], outputs: list[int], opts: dict) -> None:
        s = self.schema
        o = s.OperatorT()
        o.opcodeIndex = self._opcode(s.BuiltinOperator.CUSTOM, name)
        o.inputs, o.outputs = list(inputs), list(outputs)
        o.customOptions = np.frombuffer(encode_options(opts), np.uint8)
        o.customOptionsFormat = s.CustomOptionsFormat.FLEXBUFFERS
        self.operators.append(o)

    def finish(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        import flatbuffers

        s = self.schema
        codes = []
        for builtin, custom in self.opcodes:
            c = s.OperatorCodeT()
            c.builtinCode = builtin
            c.deprecatedBuiltinCode = min(builtin, 127)
            c.customCode = custom
            c.version = 1
            codes.append(c)
        sg = s.SubGraphT()
        sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = (
            self.tensors,
            self.operators,
            list(inputs),
            list(outputs),
            "main",
        )
        m = s.ModelT()
        m.version = 3
        m.operatorCodes = codes
        m.subgraphs = [sg]
        m.buffers = self.buffers
        m.description = description
        b = flatbuffers.Builder(1 << 16)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


# ---------------------------------------------------------------- builtin pieces


def _fc(
    g: Graph,
    x: int,
    W: np.ndarray,
    b: np.ndarray,
    out_shape: tuple[int, ...],
    name: str,
    q: tuple[float, int, float, int] | None = None,
) -> int:
    """FULLY_CONNECTED y = x W^T + b. q = (s_in, z_in, s_out, z_out) for int8 (per-tensor weights)."""
    s = g.schema
    opts = s.FullyConnectedOptionsT()
    opts.keepNumDims = len(out_shape) > 2
    if q is None:
        w = g.const(f"{name}/weights", W, "float32")
        bias = g.const(f"{name}/bias", b, "float32")
        y = g.tensor(name, out_shape, "float32")
    else:
        s_in, _z_in, s_out, z_out = q
        s_w = max(float(np.abs(W).max()), 1e-12) / 127.0
        Wq = np.clip(np.round(W / s_w), -127, 127)
        bq = np.clip(np.round(np.asarray(b, np.float64) / (s_in * s_w)), -(2**31), 2**31 - 1)
        w = g.const(f"{name}/weights", Wq, "int8", s_w, 0)
        bias = g.const(f"{name}/bias", bq, "int32", s_in * s_w, 0)
        y = g.tensor(name, out_shape, "int8", scale=s_out, zp=z_out)
    g.op("FULLY_CONNECTED", [x, w, bias], [y], opts, "FullyConnectedOptions")
    return y


def _rmsnorm(g: Graph, x: int, shape: tuple[int, ...], weight: np.ndarray, eps: float) -> int:
    """x * rsqrt(mean(x^2, -1) + eps) * weight, float builtins (the final rmsnorm of a float model)."""
    s = g.schema
    red = (*shape[:-1], 1)
    sq = g.tensor("norm_f/square", shape, "float32")
    g.op("MUL", [x, x], [sq], s.MulOptionsT(), "MulOptions")
    ms = g.tensor("norm_f/mean_square", red, "float32")
    mo = s.ReducerOptionsT()
    mo.keepDims = True
    g.op(
        "MEAN", [sq, g.const("norm_f/axis", np.array([len(shape) - 1]), "int32")], [ms], mo, "ReducerOptions"
    )
    ve = g.tensor("norm_f/plus_eps", red, "float32")
    g.op("ADD", [ms, g.const("norm_f/eps", np.array([eps]), "float32")], [ve], s.AddOptionsT(), "AddOptions")
    r = g.tensor("norm_f/rsqrt", red, "float32")
    g.op("RSQRT", [ve], [r])
    xn = g.tensor("norm_f/normalized", shape, "float32")
    g.op("MUL", [x, r], [xn], s.MulOptionsT(), "MulOptions")
    y = g.tensor("norm_f", shape, "float32")
    g.op("MUL", [xn, g.const("norm_f/weight", weight, "float32")], [y], s.MulOptionsT(), "MulOptions")
    return y


def _pool(g: Graph, x: int, L: int, d: int, pooling: str, dtype: str, q: tuple[float, int] | None) -> int:
    """[1, L, d] -> [1, d]: MEAN over time, or the last step (STRIDED_SLICE)."""
    s = g.schema
    kw = {} if q is None else dict(scale=q[0], zp=q[1])
    y = g.tensor("pooled", (1, d), dtype, **kw)
    if pooling == "mean":
        mo = s.ReducerOptionsT()
        mo.keepDims = False
        g.op("MEAN", [x, g.const("pool/axis", np.array([1]), "int32")], [y], mo, "ReducerOptions")
    else:
        so = s.StridedSliceOptionsT()
        so.shrinkAxisMask = 2
        ins = [
            x,
            g.const("pool/begin", np.array([0, L - 1, 0]), "int32"),
            g.const("pool/end", np.array([1, L, d]), "int32"),
            g.const("pool/strides", np.array([1, 1, 1]), "int32"),
        ]
        g.op("STRIDED_SLICE", ins, [y], so, "StridedSliceOptions")
    return y


def _softmax(g: Graph, x: int, n: int, dtype: str) -> int:
    s = g.schema
    so = s.SoftmaxOptionsT()
    so.beta = 1.0
    kw = {} if dtype == "float32" else dict(scale=1.0 / 256.0, zp=-128)  # TFLM's int8 softmax output
    y = g.tensor("probabilities", (1, n), dtype, **kw)
    g.op("SOFTMAX", [x], [y], so, "SoftmaxOptions")
    return y


# ---------------------------------------------------------------- the blocks


def add_float_block(
    g: Graph, cfg: ModelConfig, fb: Any, u: int, shape: tuple[int, ...], i: int, stateful: bool
) -> int:
    p = f"block{i}"
    norm_w = g.const(f"{p}/norm_weight", fb.norm_weight, "float32") if cfg.norm != "none" else -1
    norm_b = g.const(f"{p}/norm_bias", fb.norm_bias, "float32") if cfg.norm == "batchnorm" else -1
    names = FLOAT_INPUTS[3:]
    ins = [u, norm_w, norm_b] + [g.const(f"{p}/{n}", getattr(fb, n), "float32") for n in names]
    out = g.tensor(p, shape, "float32")
    g.custom(OP_NAME, ins, [out], block_options(cfg, stateful, norm_eps=fb.norm_eps or 1e-5))
    return out


def add_int8_block(
    g: Graph, cfg: ModelConfig, qb: Any, u: int, shape: tuple[int, ...], i: int, stateful: bool
) -> int:
    p = f"block{i}"
    ins = [u]
    for name in INT8_LAYERS:
        layer = getattr(qb, name)
        W = layer.w if name == "conv" else layer.W
        ins.append(g.const(f"{p}/{name}/W", W, "int8"))
        ins.append(g.const(f"{p}/{name}/params", np.stack([layer.bias, layer.mult, layer.shift]), "int32"))
    ins.append(g.const(f"{p}/luts", np.stack([qb.conv_act_lut, qb.dt_act_lut, qb.gate_act_lut]), "int8"))
    ins.append(g.const(f"{p}/A_q20", qb.ssm.A_q20, "int32"))
    ins.append(g.const(f"{p}/D", np.stack([qb.ssm.D_mult, qb.ssm.D_shift]), "int32"))
    assert len(ins) == len(INT8_INPUTS)
    out = g.tensor(p, shape, "int8", scale=qb.scales["out"], zp=qb.out_zp)
    g.custom(OP_NAME, ins, [out], block_options(cfg, stateful, qb))
    return out


def _classifier_weights(fm: Any) -> tuple[np.ndarray, np.ndarray]:
    """The classifier with a final batchnorm folded in: W (a x + c) + b."""
    cfg = fm.cfg
    W, b = fm.cls_w.astype(np.float64), fm.cls_b.astype(np.float64)
    if cfg.norm == "batchnorm":
        return W * fm.norm_f_weight[None, :], W @ fm.norm_f_bias + b
    return W, b


# ---------------------------------------------------------------- whole models


def _stem_input(g: Graph, kcfg: KWSConfig, fm: Any, streaming: bool, dtype: str,
                q: tuple[float, int] | None = None) -> tuple[int, int, tuple[int, ...]]:
    """The model input and the tensor the stem FULLY_CONNECTED reads: one step of stacked frames
    when streaming, else the whole window RESHAPEd to (1, L, frame_stack * channels).
    Returns (input, stem input, stem output shape)."""
    cfg, L = fm.cfg, kcfg.steps
    step_in = cfg.frame_stack * fm.channels
    qkw = {"scale": q[0], "zp": q[1]} if q is not None else {}
    if streaming:
        inp = g.tensor("frames", (1, step_in), dtype, **qkw)
        return inp, inp, (1, cfg.d_model)
    inp = g.tensor("features", (1, kcfg.features.frames, fm.channels), dtype, **qkw)
    r = g.tensor("stacked", (1, L, step_in), dtype, **qkw)
    ro = g.schema.ReshapeOptionsT()
    ro.newShape = [1, L, step_in]
    g.op("RESHAPE", [inp, g.const("stacked/shape", np.array([1, L, step_in]), "int32")], [r], ro, "ReshapeOptions")
    return inp, r, (1, L, cfg.d_model)


def build_float(fm: Any, kcfg: KWSConfig, streaming: bool = False) -> bytes:
    """float32 fused model from FloatModel weights (mamba_kws.fused.quantize.float_weights)."""
    g = Graph(schema())
    cfg, d, L = fm.cfg, fm.cfg.d_model, kcfg.steps
    inp, stem_in, shape = _stem_input(g, kcfg, fm, streaming, "float32")
    x = _fc(g, stem_in, fm.stem_w, fm.stem_b, shape, "stem")
    for i, fb in enumerate(fm.blocks):
        x = add_float_block(g, cfg, fb, x, shape, i, stateful=streaming)
    if cfg.norm == "rmsnorm":
        x = _rmsnorm(g, x, shape, fm.norm_f_weight, fm.norm_f_eps)
    if not streaming:
        x = _pool(g, x, L, d, cfg.pooling, "float32", None)
    W, b = _classifier_weights(fm)
    logits = _fc(g, x, W, b, (1, fm.n_classes), "logits")
    out = _softmax(g, logits, fm.n_classes, "float32")
    return g.finish([inp], [out], f"mamba_kws fused float32 {kcfg.name}{' streaming' if streaming else ''}")


def build_int8(fm: Any, qm: Any, kcfg: KWSConfig, streaming: bool = False) -> bytes:
    """int8 fused model: the blocks from a QModel (mamba_kws.fused.quantize.quantize_model)."""
    g = Graph(schema())
    cfg, d, L = fm.cfg, fm.cfg.d_model, kcfg.steps
    q_in = (qm.in_scale, qm.in_zp)
    first = qm.blocks[0]
    q_res = (first.scales["u"], first.in_zp)
    inp, stem_in, shape = _stem_input(g, kcfg, fm, streaming, "int8", q_in)
    x = _fc(g, stem_in, fm.stem_w, fm.stem_b, shape, "stem", (*q_in, *q_res))
    for i, qb in enumerate(qm.blocks):
        x = add_int8_block(g, cfg, qb, x, shape, i, stateful=streaming)
    last = qm.blocks[-1]
    q_cls = q_last = (last.scales["out"], last.out_zp)
    if not streaming:
        # MEAN requantises to the pooled mean's own (finer) scale, as the kernels' readout does; a slice
        # ("last") cannot
        q_cls = (qm.pool_scale, qm.pool_zp) if cfg.pooling == "mean" else q_last
        x = _pool(g, x, L, d, cfg.pooling, "int8", q_cls)
    W, b = _classifier_weights(fm)
    logits = _fc(g, x, W, b, (1, fm.n_classes), "logits", (*q_cls, qm.logit_scale, qm.logit_zp))
    out = _softmax(g, logits, fm.n_classes, "int8")
    return g.finish([inp], [out], f"mamba_kws fused int8 {kcfg.name}{' streaming' if streaming else ''}")


def build_block(cfg: ModelConfig, block: Any, steps: int, int8: bool, stateful: bool = False) -> bytes:
    """One MAMBA_BLOCK node alone, u [1, steps, d_model] -> out (the op's test model)."""
    g = Graph(schema())
    shape = (1, steps, cfg.d_model) if steps > 1 or not stateful else (1, cfg.d_model)
    if int8:
        u = g.tensor("u", shape, "int8", scale=block.scales["u"], zp=block.in_zp)
        out = add_int8_block(g, cfg, block, u, shape, 0, stateful)
    else:
        u = g.tensor("u", shape, "float32")
        out = add_float_block(g, cfg, block, u, shape, 0, stateful)
    return g.finish([u], [out], "mamba_kws MAMBA_BLOCK test model")


# ---------------------------------------------------------------- reading back


def describe(data: bytes) -> dict:
    """Ops, tensors and the custom options of a .tflite (parsed with the schema bindings)."""
    s = schema()
    m = s.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sg = m.subgraphs[0]
    ops = []
    for o in sg.operators:
        code = m.operatorCodes[o.opcodeIndex]
        if code.builtinCode == s.BuiltinOperator.CUSTOM:
            name = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            ops.append(
                dict(op=name, inputs=[int(i) for i in o.inputs], options=decode_options(o.customOptions))
            )
        else:
            names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
            ops.append(dict(op=names[code.builtinCode], inputs=[int(i) for i in o.inputs]))

    def tinfo(i: int) -> dict:
        t = sg.tensors[i]
        types = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}
        return dict(shape=[int(v) for v in t.shape], type=types[t.type].lower())

    return dict(
        ops=ops, inputs=[tinfo(i) for i in sg.inputs], outputs=[tinfo(i) for i in sg.outputs], bytes=len(data)
    )


# ---------------------------------------------------------------- CLI


def export(
    checkpoint: Path | None,
    config: str | None,
    out: Path,
    int8: bool,
    streaming: bool,
    calib: str,
    calib_clips: int,
    y_bits: int | None = None,
) -> dict:
    import torch

    from .fused.quantize import QuantizeError, float_weights, quantize_model
    from .model import build_model

    if checkpoint is not None:
        model, kcfg, _ = load_checkpoint(checkpoint)
    else:
        kcfg = load_config(config)
        torch.manual_seed(kcfg.train.seed)
        model = build_model(kcfg).eval()
    fm = float_weights(model)
    if kcfg.model.n_layers < 1:
        raise FusedExportError("the model has no Mamba block (model.n_layers = 0)")
    if int8:
        try:
            qm = quantize_model(fm, calibration_features(kcfg, calib, calib_clips), y_bits=y_bits)
        except QuantizeError as exc:
            raise FusedExportError(str(exc)) from None
        data = build_int8(fm, qm, kcfg, streaming)
    else:
        data = build_float(fm, kcfg, streaming)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    info = describe(data)
    info["file"] = str(out)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(
        prog="fused_tflite.py",
        description="Write a .tflite where each Mamba block is the TFLM custom op MAMBA_BLOCK "
        "(modules/tflm_mamba/tflm), with builtin stem, pooling, classifier and softmax.",
    )
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="trained checkpoint (tools/train.py)")
    src.add_argument("--config", help="model YAML (name or path) for untrained weights, e.g. for tests")
    ap.add_argument("--out", type=Path, required=True, help="the .tflite to write")
    ap.add_argument(
        "--int8", action="store_true", help="int8 (mamba_kws.fused quantisation); default float32"
    )
    ap.add_argument(
        "--streaming",
        action="store_true",
        help="one 20 ms step per Invoke: stateful blocks, per-step posteriors",
    )
    ap.add_argument(
        "--calib",
        default=CALIB_DEFAULT,
        help=CALIB_HELP,
    )
    ap.add_argument("--calib-clips", type=int, default=CALIB_CLIPS,
                    help=f"clips for calibration (default {CALIB_CLIPS})")
    ap.add_argument("--y-bits", type=int, choices=(8, 16), default=None,
                    help="width of the fused kernels' scan output and gate: 8 or 16 (default: "
                        "mamba_kws.fused.quantize.Y_BITS, "
                        "what the shipped models use)")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)
    if args.calib_clips < 1:
        raise FusedExportError("--calib-clips must be >= 1")
    info = export(
        args.checkpoint, args.config, args.out, args.int8, args.streaming, args.calib, args.calib_clips, args.y_bits
    )
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    ops = [o["op"] for o in info["ops"]]
    print(f"{'file':<10} {info['file']}")
    print(f"{'bytes':<10} {info['bytes']}")
    print(f"{'input':<10} {info['inputs'][0]['type']} {info['inputs'][0]['shape']}")
    print(f"{'output':<10} {info['outputs'][0]['type']} {info['outputs'][0]['shape']}")
    print(f"{'ops':<10} {' -> '.join(ops)}")
    print(f"{'custom op':<10} {OP_NAME} x {ops.count(OP_NAME)} (register: tflm_mamba::AddMambaOps)")
    return 0
