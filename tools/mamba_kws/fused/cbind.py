"""The C core (modules/tflm_mamba/src) as a host shared library, called through ctypes.

`build_library` compiles src/*.c with gcc (optionally with sanitizers) into a build folder;
`CoreLib` fills the C structs of mamba_block.h / mamba_model.h from the float or int8
weights (quantize.py) and runs the whole-sequence and streaming entry points.
"""

from __future__ import annotations

import ctypes as C
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import REPO_ROOT, ModelConfig
from ..errors import KWSError
from .quantize import FloatBlock, FloatModel, QBlock, QLinear, QModel, QRMSNorm

MODULE_DIR = REPO_ROOT / "modules" / "tflm_mamba"
INCLUDE_DIR = MODULE_DIR / "include"
SRC_DIR = MODULE_DIR / "src"
DEFAULT_BUILD_DIR = REPO_ROOT / "build" / "tflm_mamba_host"


class BuildError(KWSError):
    """The C core did not compile."""


def sources() -> list[Path]:
    return sorted(SRC_DIR.glob("*.c"))


def build_library(build_dir: Path = DEFAULT_BUILD_DIR, sanitize: bool = False, extra: tuple[str, ...] = ()) -> Path:
    """gcc the C core into a shared library (rebuilt when a source or header changes)."""
    files = sources() + sorted(INCLUDE_DIR.rglob("*.h")) + sorted(SRC_DIR.glob("*.h"))
    flags = ["-std=c99", "-O2", "-g", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", *extra]
    if sanitize:
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
    digest = hashlib.sha256(" ".join(flags).encode())
    for f in files:
        digest.update(f.read_bytes())
    build_dir.mkdir(parents=True, exist_ok=True)
    lib = build_dir / f"libtflm_mamba_{'asan_' if sanitize else ''}{digest.hexdigest()[:12]}.so"
    if not lib.exists():
        tmp = lib.with_name(f"{lib.name}.{os.getpid()}.tmp")  # concurrent builds: each writes its own, then renames
        cmd = ["gcc", *flags, f"-I{INCLUDE_DIR}", *map(str, sources()), "-o", str(tmp), "-lm"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            raise BuildError(f"building the C core failed: {res.stderr.strip().splitlines()[:3]}")
        tmp.replace(lib)
    return lib


# ---------------------------------------------------------------- the structs of the headers

i32, f32p, i8p, i32p = C.c_int32, C.POINTER(C.c_float), C.POINTER(C.c_int8), C.POINTER(C.c_int32)


class BlockConfig(C.Structure):
    _fields_ = [(n, i32) for n in ("d_model", "d_inner", "d_state", "d_conv", "dt_rank")] + [
        (n, C.c_int) for n in ("decay", "dt_activation", "activation", "norm")
    ]


class ModelConfigC(C.Structure):
    _fields_ = [
        ("block", BlockConfig),
        ("n_layers", i32),
        ("channels", i32),
        ("frame_stack", i32),
        ("n_classes", i32),
        ("pooling", C.c_int),
        ("pool_window", i32),
    ]


class BlockF32Weights(C.Structure):
    _fields_ = [("norm_weight", f32p), ("norm_bias", f32p), ("norm_eps", C.c_float)] + [
        (n, f32p)
        for n in ("in_proj_w", "conv_w", "conv_b", "x_proj_w", "dt_proj_w", "dt_proj_b", "A", "D", "out_proj_w")
    ]


class BlockF32State(C.Structure):
    _fields_ = [("conv", f32p), ("h", f32p)]


class ModelF32Weights(C.Structure):
    _fields_ = [
        ("stem_w", f32p),
        ("stem_b", f32p),
        ("blocks", C.POINTER(BlockF32Weights)),
        ("norm_f_weight", f32p),
        ("norm_f_bias", f32p),
        ("norm_f_eps", C.c_float),
        ("cls_w", f32p),
        ("cls_b", f32p),
    ]


class ModelF32State(C.Structure):
    _fields_ = [("blocks", BlockF32State * 8), ("pool", f32p), ("count", i32), ("ring", f32p)]


class LinearQ8(C.Structure):
    _fields_ = [("W", i8p), ("bias", i32p), ("mult", i32p), ("shift", i32p), ("out_zp", i32)]


class Conv1dQ8(C.Structure):
    _fields_ = [("w", i8p), ("bias", i32p), ("mult", i32p), ("shift", i32p), ("out_zp", i32)]


class SSMQ8(C.Structure):
    _fields_ = [("A_q20", i32p), ("D_mult", i32p), ("D_shift", i32p)] + [
        (n, i32) for n in ("x_zp", "dt_zp", "B_zp", "C_zp", "bx_shift", "hc_mult", "hc_shift", "y_zp", "y_bits")
    ]


class RMSNormQ8(C.Structure):
    _fields_ = [("in_zp", i32), ("eps_q", i32), ("mult", i32p), ("shift", i32p), ("out_zp", i32)]


class BlockQ8Weights(C.Structure):
    _fields_ = [
        ("in_zp", i32),
        ("in_proj_x", LinearQ8),
        ("in_proj_z", LinearQ8),
        ("conv", Conv1dQ8),
        ("conv_act_lut", i8p),
        ("x_proj_dt", LinearQ8),
        ("x_proj_B", LinearQ8),
        ("x_proj_C", LinearQ8),
        ("dt_proj", LinearQ8),
        ("dt_act_lut", i8p),
        ("ssm", SSMQ8),
        ("gate_act_lut", i8p),
        ("gate_zp", i32),
        ("yg_mult", i32),
        ("yg_shift", i32),
        ("yg_zp", i32),
        ("out_proj", LinearQ8),
        ("res_u_mult", i32),
        ("res_u_shift", i32),
        ("res_m_mult", i32),
        ("res_m_shift", i32),
        ("out_zp", i32),
        ("norm", RMSNormQ8),
    ]


class BlockQ8State(C.Structure):
    _fields_ = [("conv", i8p), ("h", i32p)]


class ModelQ8Weights(C.Structure):
    _fields_ = [
        ("in_scale", C.c_float),
        ("in_zp", i32),
        ("stem", LinearQ8),
        ("blocks", C.POINTER(BlockQ8Weights)),
        ("pool_mult", i32),
        ("pool_shift", i32),
        ("pool_zp", i32),
        ("cls", LinearQ8),
        ("logit_scale", C.c_float),
        ("logit_zp", i32),
        ("norm_f", RMSNormQ8),
    ]


class ModelQ8State(C.Structure):
    _fields_ = [("blocks", BlockQ8State * 8), ("pool", i32p), ("count", i32), ("ring", i8p)]


_ENUMS = {
    "decay": {"exp": 0, "sigmoid": 1},
    "dt_activation": {"relu": 0, "softplus": 1},
    "activation": {"silu": 0, "hard_swish": 1},
    "norm": {"none": 0, "rmsnorm": 1, "batchnorm": 2},
    "pooling": {"mean": 0, "last": 1},
}


def block_config(cfg: ModelConfig) -> BlockConfig:
    return BlockConfig(
        cfg.d_model,
        cfg.d_inner,
        cfg.d_state,
        cfg.d_conv,
        cfg.dt_rank_resolved,
        _ENUMS["decay"][cfg.decay],
        _ENUMS["dt_activation"][cfg.dt_activation],
        _ENUMS["activation"][cfg.activation],
        _ENUMS["norm"][cfg.norm],
    )


def model_config(cfg: ModelConfig, channels: int, n_classes: int, pool_window: int = 0) -> ModelConfigC:
    return ModelConfigC(
        block_config(cfg),
        cfg.n_layers,
        channels,
        cfg.frame_stack,
        n_classes,
        _ENUMS["pooling"][cfg.pooling],
        pool_window,
    )


class _Keep:
    """Holds the numpy arrays the C structs point into, so they outlive the call."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def ptr(self, a: np.ndarray, dtype: type, ctype: type) -> C._Pointer:
        arr = np.ascontiguousarray(a, dtype=dtype)
        self.arrays.append(arr)
        return arr.ctypes.data_as(C.POINTER(ctype))

    def f(self, a: np.ndarray) -> C._Pointer:
        return self.ptr(a, np.float32, C.c_float)

    def i8(self, a: np.ndarray) -> C._Pointer:
        return self.ptr(a, np.int8, C.c_int8)

    def i32(self, a: np.ndarray) -> C._Pointer:
        return self.ptr(a, np.int32, C.c_int32)


def f32_block_struct(keep: _Keep, fb: FloatBlock) -> BlockF32Weights:
    return BlockF32Weights(
        keep.f(fb.norm_weight),
        keep.f(fb.norm_bias),
        fb.norm_eps,
        keep.f(fb.in_proj_w),
        keep.f(fb.conv_w),
        keep.f(fb.conv_b),
        keep.f(fb.x_proj_w),
        keep.f(fb.dt_proj_w),
        keep.f(fb.dt_proj_b),
        keep.f(fb.A),
        keep.f(fb.D),
        keep.f(fb.out_proj_w),
    )


def q8_linear_struct(keep: _Keep, p: QLinear) -> LinearQ8:
    return LinearQ8(keep.i8(p.W), keep.i32(p.bias), keep.i32(p.mult), keep.i32(p.shift), int(p.out_zp))


def rmsnorm_struct(keep: _Keep, p: QRMSNorm | None) -> RMSNormQ8:
    if p is None:
        return RMSNormQ8()
    return RMSNormQ8(p.in_zp, p.eps_q, keep.i32(p.mult), keep.i32(p.shift), p.out_zp)


def q8_block_struct(keep: _Keep, qb: QBlock) -> BlockQ8Weights:
    s = qb.ssm
    ssm = SSMQ8(
        keep.i32(s.A_q20),
        keep.i32(s.D_mult),
        keep.i32(s.D_shift),
        s.x_zp,
        s.dt_zp,
        s.B_zp,
        s.C_zp,
        s.bx_shift,
        s.hc_mult,
        s.hc_shift,
        s.y_zp,
        s.y_bits,
    )
    c = qb.conv
    conv = Conv1dQ8(keep.i8(c.w), keep.i32(c.bias), keep.i32(c.mult), keep.i32(c.shift), int(c.out_zp))
    L = lambda p: q8_linear_struct(keep, p)  # noqa: E731
    return BlockQ8Weights(
        qb.in_zp,
        L(qb.in_proj_x),
        L(qb.in_proj_z),
        conv,
        keep.i8(qb.conv_act_lut),
        L(qb.x_proj_dt),
        L(qb.x_proj_B),
        L(qb.x_proj_C),
        L(qb.dt_proj),
        keep.i8(qb.dt_act_lut),
        ssm,
        keep.i8(qb.gate_act_lut),
        qb.gate_zp,
        qb.yg_mult,
        qb.yg_shift,
        qb.yg_zp,
        L(qb.out_proj),
        qb.res_u_mult,
        qb.res_u_shift,
        qb.res_m_mult,
        qb.res_m_shift,
        qb.out_zp,
        rmsnorm_struct(keep, qb.norm),
    )


class ValidError(C.Structure):
    """tm_valid_error (mamba_validate.h)."""

    _fields_ = [
        ("status", C.c_int),
        ("field", C.c_char_p),
        ("index", i32),
        ("value", C.c_int64),
        ("lo", C.c_int64),
        ("hi", C.c_int64),
    ]


@dataclass
class Validation:
    """The validator's verdict: ok, or the status, the field (index -1 for a scalar) and its value."""

    ok: bool
    status: str
    field: str | None
    index: int
    value: int

    def __str__(self) -> str:
        if self.ok:
            return "ok"
        at = f"[{self.index}]" if self.index >= 0 else ""
        return f"{self.field}{at} = {self.value} {self.status}"


_OPTION_NORMS = {"none": 0, "rmsnorm": 1, "affine": 2}


def block_config_from_options(opts: dict) -> BlockConfig:
    """The tm_block_config of one MAMBA_BLOCK's custom options (fused_tflite.block_options);
    an unknown switch value becomes -1, which the validator refuses."""
    enums = {**_ENUMS, "norm": _OPTION_NORMS}
    return BlockConfig(
        *(int(opts[k]) for k in ("d_model", "d_inner", "d_state", "d_conv", "dt_rank")),
        *(enums[k].get(opts[k], -1) for k in ("decay", "dt_activation", "activation", "norm")),
    )


def q8_block_struct_from_model(keep: _Keep, opts: dict, tensors: dict[str, np.ndarray]) -> BlockQ8Weights:
    """The tm_block_q8_weights that MAMBA_BLOCK's Eval binds: the int8 scalars from the options,
    the arrays from the const input tensors (named as fused_tflite.INT8_INPUTS)."""

    def layer(name: str, cls: type = LinearQ8) -> C.Structure:
        p = np.asarray(tensors[f"{name}_params"], np.int32).reshape(3, -1)
        W, zp = keep.i8(tensors[f"{name}_W"]), int(opts[f"{name}_out_zp"])
        return cls(W, keep.i32(p[0]), keep.i32(p[1]), keep.i32(p[2]), zp)

    luts = np.asarray(tensors["luts"], np.int8).reshape(3, 256)
    D = np.asarray(tensors["D"], np.int32).reshape(2, -1)
    o = {k: int(v) for k, v in opts.items() if isinstance(v, int) and not isinstance(v, bool)}
    ssm = SSMQ8(
        keep.i32(tensors["A_q20"]),
        keep.i32(D[0]),
        keep.i32(D[1]),
        *(o[f"ssm_{k}"] for k in ("x_zp", "dt_zp", "B_zp", "C_zp", "bx_shift", "hc_mult", "hc_shift", "y_zp")),
        o.get("ssm_y_bits", 8),  # optional (mamba_block_options.h)
    )
    return BlockQ8Weights(
        o["in_zp"],
        layer("in_proj_x"),
        layer("in_proj_z"),
        layer("conv", Conv1dQ8),
        keep.i8(luts[0]),
        layer("x_proj_dt"),
        layer("x_proj_B"),
        layer("x_proj_C"),
        layer("dt_proj"),
        keep.i8(luts[1]),
        ssm,
        keep.i8(luts[2]),
        *(o[k] for k in ("gate_zp", "yg_mult", "yg_shift", "yg_zp")),
        layer("out_proj"),
        *(o[k] for k in ("res_u_mult", "res_u_shift", "res_m_mult", "res_m_shift", "out_zp")),
        RMSNormQ8(),
    )


class CoreLib:
    """ctypes view of one build of the C core."""

    def __init__(self, path: Path) -> None:
        self.lib = C.CDLL(str(path))
        for name in (
            "tm_block_f32_state_bytes",
            "tm_block_f32_scratch_bytes",
            "tm_block_q8_state_bytes",
            "tm_block_q8_scratch_bytes",
            "tm_model_f32_state_bytes",
            "tm_model_f32_scratch_bytes",
            "tm_model_q8_state_bytes",
            "tm_model_q8_scratch_bytes",
        ):
            getattr(self.lib, name).restype = C.c_size_t
        self.lib.tm_valid_status_str.restype = C.c_char_p

    def _verdict(self, status: int, err: ValidError) -> Validation:
        if status == 0:
            return Validation(True, "ok", None, -1, 0)
        field = err.field.decode() if err.field else None
        return Validation(False, self.lib.tm_valid_status_str(status).decode(), field, err.index, err.value)

    def validate_block_q8(self, bc: BlockConfig, qb: QBlock | BlockQ8Weights) -> Validation:
        """tm_validate_block_q8 on a block config and a QBlock (or filled weight struct)."""
        keep = _Keep()
        w = qb if isinstance(qb, BlockQ8Weights) else q8_block_struct(keep, qb)
        err = ValidError()
        status = self.lib.tm_validate_block_q8(C.byref(bc), C.byref(w), C.byref(err))
        return self._verdict(status, err)

    def validate_block_sizes(self, bc: BlockConfig, q8: bool = True) -> tuple[Validation, int, int]:
        """tm_validate_block_sizes: the verdict and the state and scratch bytes."""
        st, sc, err = C.c_size_t(0), C.c_size_t(0), ValidError()
        status = self.lib.tm_validate_block_sizes(C.byref(bc), int(q8), C.byref(st), C.byref(sc), C.byref(err))
        return self._verdict(status, err), st.value, sc.value

    def _buf(self, nbytes: int) -> np.ndarray:
        return np.zeros(max(int(nbytes), 1) // 4 + 2, dtype=np.int32)  # 4-byte aligned

    # -- float block
    def block_f32(self, cfg: ModelConfig, fb: FloatBlock, u: np.ndarray, step: bool = False) -> np.ndarray:
        """Run one residual block over u (L, d_model): whole sequence, or step by step."""
        keep, bc = _Keep(), block_config(cfg)
        w = f32_block_struct(keep, fb)
        st = BlockF32State()
        mem = self._buf(self.lib.tm_block_f32_state_bytes(C.byref(bc)))
        self.lib.tm_block_f32_state_bind(C.byref(bc), C.byref(st), mem.ctypes.data_as(C.c_void_p))
        scratch = self._buf(self.lib.tm_block_f32_scratch_bytes(C.byref(bc)))
        u = np.ascontiguousarray(u, np.float32)
        out = np.zeros_like(u)
        sp = scratch.ctypes.data_as(C.c_void_p)
        if step:
            for t in range(u.shape[0]):
                self.lib.tm_block_f32_step(
                    C.byref(bc), C.byref(w), C.byref(st), keep.f(u[t]), out[t].ctypes.data_as(f32p), sp
                )
        else:
            self.lib.tm_block_f32_run(
                C.byref(bc), C.byref(w), C.byref(st), keep.f(u), i32(u.shape[0]), out.ctypes.data_as(f32p), sp
            )
        return out

    # -- int8 block
    def block_q8(
        self, cfg: ModelConfig, qb: QBlock, u: np.ndarray, step: bool = False, state: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """int8 block over u (L, d_model); state=True also returns the final scan state h (d_inner, d_state)."""
        keep, bc = _Keep(), block_config(cfg)
        w = q8_block_struct(keep, qb)
        st = BlockQ8State()
        mem = self._buf(self.lib.tm_block_q8_state_bytes(C.byref(bc)))
        self.lib.tm_block_q8_state_bind(C.byref(bc), C.byref(w), C.byref(st), mem.ctypes.data_as(C.c_void_p))
        nscr = self.lib.tm_block_q8_scratch_bytes(C.byref(bc))
        u = np.ascontiguousarray(u, np.int8)
        out = np.zeros_like(u)
        if step:
            for t in range(u.shape[0]):
                scratch = np.zeros(nscr, np.int8)  # exact size: ASan sees any overrun
                self.lib.tm_block_q8_step(
                    C.byref(bc),
                    C.byref(w),
                    C.byref(st),
                    keep.i8(u[t].copy()),
                    out[t].ctypes.data_as(i8p),
                    scratch.ctypes.data_as(C.c_void_p),
                )
        else:
            scratch = np.zeros(nscr, np.int8)
            self.lib.tm_block_q8_run(
                C.byref(bc),
                C.byref(w),
                C.byref(st),
                keep.i8(u),
                i32(u.shape[0]),
                out.ctypes.data_as(i8p),
                scratch.ctypes.data_as(C.c_void_p),
            )
        if state:
            h = np.ctypeslib.as_array(st.h, shape=(cfg.d_inner * cfg.d_state,)).reshape(cfg.d_inner, cfg.d_state)
            return out, h.copy()
        return out

    # -- float model
    def model_f32(
        self, fm: FloatModel, feats: np.ndarray, step: bool = False, pool_window: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logits (n_classes,) and per-step hidden (L, d_model) for features (frames, channels)."""
        keep, mc = _Keep(), model_config(fm.cfg, fm.channels, fm.n_classes, pool_window)
        blocks = (BlockF32Weights * max(len(fm.blocks), 1))(*[f32_block_struct(keep, b) for b in fm.blocks])
        w = ModelF32Weights(
            keep.f(fm.stem_w),
            keep.f(fm.stem_b),
            blocks,
            keep.f(fm.norm_f_weight),
            keep.f(fm.norm_f_bias),
            fm.norm_f_eps,
            keep.f(fm.cls_w),
            keep.f(fm.cls_b),
        )
        st = ModelF32State()
        mem = self._buf(self.lib.tm_model_f32_state_bytes(C.byref(mc)))
        self.lib.tm_model_f32_state_bind(C.byref(mc), C.byref(st), mem.ctypes.data_as(C.c_void_p))
        scratch = self._buf(self.lib.tm_model_f32_scratch_bytes(C.byref(mc)))
        sp = scratch.ctypes.data_as(C.c_void_p)
        k = fm.cfg.frame_stack
        L = feats.shape[0] // k
        frames = np.ascontiguousarray(feats[: L * k], np.float32).reshape(L, -1)
        logits = np.zeros(fm.n_classes, np.float32)
        hidden = np.zeros((L, fm.cfg.d_model), np.float32)
        if step:
            for t in range(L):
                self.lib.tm_model_f32_step(
                    C.byref(mc), C.byref(w), C.byref(st), keep.f(frames[t]), hidden[t].ctypes.data_as(f32p), sp
                )
            self.lib.tm_model_f32_logits(C.byref(mc), C.byref(w), C.byref(st), logits.ctypes.data_as(f32p), sp)
        else:
            self.lib.tm_model_f32_run(
                C.byref(mc), C.byref(w), C.byref(st), keep.f(frames), i32(L), logits.ctypes.data_as(f32p), sp
            )
        return logits, hidden

    # -- int8 model
    def model_q8_weights(self, keep: _Keep, qm: QModel) -> ModelQ8Weights:
        blocks = (BlockQ8Weights * max(len(qm.blocks), 1))(*[q8_block_struct(keep, b) for b in qm.blocks])
        keep.arrays.append(blocks)  # type: ignore[arg-type]
        return ModelQ8Weights(
            qm.in_scale,
            qm.in_zp,
            q8_linear_struct(keep, qm.stem),
            blocks,
            qm.pool_mult,
            qm.pool_shift,
            qm.pool_zp,
            q8_linear_struct(keep, qm.cls),
            qm.logit_scale,
            qm.logit_zp,
            rmsnorm_struct(keep, qm.norm_f),
        )

    def model_q8(
        self, qm: QModel, feats_q: np.ndarray, step: bool = False, pool_window: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """int8 logits and (step=True) the per-step int8 hidden; pool_window as tm_model_config's."""
        keep, mc = _Keep(), model_config(qm.cfg, qm.channels, qm.n_classes, pool_window)
        w = self.model_q8_weights(keep, qm)
        st = ModelQ8State()
        mem = self._buf(self.lib.tm_model_q8_state_bytes(C.byref(mc)))
        self.lib.tm_model_q8_state_bind(C.byref(mc), C.byref(w), C.byref(st), mem.ctypes.data_as(C.c_void_p))
        scratch = np.zeros(self.lib.tm_model_q8_scratch_bytes(C.byref(mc)), np.int8)
        sp = scratch.ctypes.data_as(C.c_void_p)
        k = qm.cfg.frame_stack
        L = feats_q.shape[0] // k
        frames = np.ascontiguousarray(feats_q[: L * k], np.int8).reshape(L, -1)
        logits = np.zeros(qm.n_classes, np.int8)
        hidden = np.zeros((L, qm.cfg.d_model), np.int8)
        if step:
            for t in range(L):
                self.lib.tm_model_q8_step(
                    C.byref(mc), C.byref(w), C.byref(st), keep.i8(frames[t]), hidden[t].ctypes.data_as(i8p), sp
                )
            self.lib.tm_model_q8_logits(C.byref(mc), C.byref(w), C.byref(st), logits.ctypes.data_as(i8p), sp)
        else:
            self.lib.tm_model_q8_run(
                C.byref(mc), C.byref(w), C.byref(st), keep.i8(frames), i32(L), logits.ctypes.data_as(i8p), sp
            )
        return logits, hidden

    def table(self, name: str, n: int = 257) -> list[int]:
        return list((C.c_int32 * n).in_dll(self.lib, name))


REFERENCE_FLAGS = ("-DTFLM_MAMBA_REFERENCE",)


def load(sanitize: bool = False, build_dir: Path = DEFAULT_BUILD_DIR, reference: bool = False) -> CoreLib:
    """The C core as a host library: the default build (the optimized int8 kernels, with plain-C
    fallbacks for the Cortex-M instructions) or, reference=True, the plain-C reference kernels."""
    return CoreLib(build_library(build_dir, sanitize=sanitize, extra=REFERENCE_FLAGS if reference else ()))
