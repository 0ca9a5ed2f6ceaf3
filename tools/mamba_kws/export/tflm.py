"""Running a .tflite in TFLM itself: the PyPI tflite-micro interpreter (TFLM's reference kernels).

- `TFLMModel`: one interpreter for a model and an arena size; `run(x)` for one input.
- `min_arena(data)`: the smallest arena with which TFLM allocates and invokes the model, found by
  bisection on arena_size (measured, not computed).
- `diagnose(data)`: when TFLM refuses a model, the first op it refuses (its name and the layer it
  came from), found by cutting the model after k ops and bisecting on k.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import ExportError
from .flatbuf import cut, live_tensors, load_model, op_layer, op_name

ARENA_ALIGN = 16


@contextlib.contextmanager
def capture_stderr() -> Iterator[list[str]]:
    """TFLM reports why it refuses a model with MicroPrintf on fd 2; collect those lines."""
    lines: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(x for x in sink.read().decode(errors="replace").splitlines() if x.strip())


def _runtime() -> Any:
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:  # pragma: no cover - depends on the environment
        raise ExportError("tflite-micro is not installed (pip install tflite-micro)") from None
    return runtime


def _try_interpreter(data: bytes, arena: int) -> tuple[Any | None, list[str]]:
    runtime = _runtime()
    with capture_stderr() as log:
        try:
            interp = runtime.Interpreter.from_bytes(data, arena_size=int(arena))
        except Exception as exc:
            log.append(str(exc))
            interp = None
    return interp, log


def _zeros_inputs(model: Any) -> list[np.ndarray]:
    from .flatbuf import tensor_info

    sg = model.subgraphs[0]
    out = []
    for i in sg.inputs:
        t = tensor_info(model, int(i))
        out.append(np.zeros(t.shape, dtype=np.dtype(t.dtype)))
    return out


def _runs(data: bytes, arena: int, inputs: list[np.ndarray], report: dict | None = None) -> tuple[bool, list[str]]:
    interp, log = _try_interpreter(data, arena)
    if interp is None:
        return False, log
    with capture_stderr() as log2:
        try:
            for k, x in enumerate(inputs):
                interp.set_input(x, k)
            interp.invoke()
            ok = True
            if report is not None:
                interp.print_allocations()
        except Exception as exc:
            log2.append(str(exc))
            ok = False
    if report is not None:
        report.update(_parse_allocations(log2))
    return ok, log + log2


def _parse_allocations(lines: list[str]) -> dict:
    """The RecordingMicroAllocator's report: arena total/head/tail and bytes by kind."""
    out: dict = {}
    for line in lines:
        m = re.search(r"Arena allocation (total|head|tail) (\d+) bytes", line)
        if m:
            out[m.group(1)] = int(m.group(2))
        m = re.search(r"'([^']+)' used (\d+) bytes", line)
        if m:
            out.setdefault("persistent", {})[m.group(1)] = int(m.group(2))
    return out


def allocation_report(data: bytes, arena: int) -> dict:
    """TFLM's own account of an arena that fits: total, head (tensors), tail (persistent)."""
    model = load_model(data)
    rep: dict = {}
    ok, log = _runs(data, arena, _zeros_inputs(model), rep)
    if not ok:
        raise diagnose(data, log)
    return rep


def _fits(data: bytes, arena: int, inputs: list[np.ndarray]) -> bool:
    """Whether TFLM allocates and invokes the model in `arena` bytes, probed in a forked child where the
    platform has fork: the PyPI interpreter can crash on an arena a little too small (a per-channel
    FULLY_CONNECTED's Prepare writes through the null that AllocatePersistentBuffer returned), and a crash
    of the probe only means "does not fit"."""
    if not hasattr(os, "fork"):  # pragma: no cover - non-POSIX
        return _runs(data, arena, inputs)[0]
    pid = os.fork()
    if pid == 0:  # the child: no Python cleanup, only the verdict; a crash is expected, not reported
        import faulthandler

        faulthandler.disable()
        code = 1
        try:
            code = 0 if _runs(data, arena, inputs)[0] else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _is_arena_error(log: list[str]) -> bool:
    text = " ".join(log).lower()
    return "arena" in text or "allocate" in text and "bytes" in text


def min_arena(data: bytes, hi: int | None = None, inputs: list[np.ndarray] | None = None) -> int:
    """Smallest arena (bytes, multiple of 16) with which TFLM allocates and invokes the model."""
    model = load_model(data)
    xs = inputs if inputs is not None else _zeros_inputs(model)
    hi = hi or max(64 * 1024, 4 * len(data))
    ok, log = _runs(data, hi, xs)
    while not ok and _is_arena_error(log) and hi < (1 << 28):
        hi *= 4
        ok, log = _runs(data, hi, xs)
    if not ok:
        raise diagnose(data, log)
    # Arenas below what TFLM records as allocated (head + tail) cannot work, so the search starts there;
    # the PyPI interpreter crashes on some arenas a little too small, so each probe runs apart (_fits).
    rep: dict = {}
    _runs(data, hi, xs, rep)
    lo = max(0, int(rep.get("total", 0)) - ARENA_ALIGN)  # fails at lo, runs at hi
    while hi - lo > ARENA_ALIGN:
        mid = (lo + hi) // 2 // ARENA_ALIGN * ARENA_ALIGN
        if mid <= lo:
            break
        ok = _fits(data, mid, xs)
        if ok:
            hi = mid
        else:
            lo = mid
    return hi


def diagnose(data: bytes, log: list[str] | None = None) -> ExportError:
    """The error for a model TFLM refuses: the first refused op, with its layer and TFLM's words."""
    model = load_model(data)
    sg = model.subgraphs[0]
    n = len(sg.operators)
    live, _ = live_tensors(model)
    big = 1 << 26

    def prefix_ok(k: int) -> tuple[bool, list[str]]:
        outs = sorted(live[k]) or [int(o) for o in sg.outputs]
        sub = cut(model, 0, k, [int(i) for i in sg.inputs], outs)
        m = load_model(sub)
        return _runs(sub, big, _zeros_inputs(m))

    lo, hi = 0, n  # prefix of lo ops runs (lo = 0 trivially), prefix of hi ops fails
    last_log = log or []
    ok_all, full_log = _runs(data, big, _zeros_inputs(model))
    if ok_all:
        return ExportError("TFLM refused the model: " + _tflm_reason(last_log))
    last_log = full_log
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok, lg = prefix_ok(mid)
        if ok:
            lo = mid
        else:
            hi, last_log = mid, lg
    k = hi - 1
    op = sg.operators[k]
    from .flatbuf import tensor_info

    types = sorted({tensor_info(model, int(i)).dtype for i in op.inputs if i >= 0})
    return ExportError(
        f"TFLM does not support op {op_name(model, op)} ({'/'.join(types)}) at op {k} "
        f"from layer '{op_layer(model, k)}': {_tflm_reason(last_log)}")


def _tflm_reason(log: list[str]) -> str:
    keep = [x.strip() for x in log if x.strip() and "Invoke" not in x and "Traceback" not in x]
    return keep[0] if keep else "no message from TFLM"


class TFLMModel:
    """A .tflite in the TFLM interpreter with a fixed arena."""

    def __init__(self, data: bytes, arena: int | None = None, source: str = "model") -> None:
        self.data = data
        self.model = load_model(data, source)
        need = min_arena(data)  # also names the op TFLM refuses, if any
        if arena is None:
            arena = need
        if arena < need:  # checked first: the PyPI interpreter can crash on an arena that is too small
            raise ExportError(f"{source}: arena of {arena} bytes is too small for TFLM; it needs {need} bytes")
        interp, log = _try_interpreter(data, arena)
        if interp is None:
            raise diagnose(data, log)
        self.interp = interp
        self.arena = arena
        self.inputs = [interp.get_input_details(k) for k in range(len(self.model.subgraphs[0].inputs))]
        self.outputs = [interp.get_output_details(k) for k in range(len(self.model.subgraphs[0].outputs))]

    def run(self, *xs: np.ndarray) -> list[np.ndarray]:
        for k, x in enumerate(xs):
            self.interp.set_input(np.ascontiguousarray(x, dtype=self.inputs[k]["dtype"]), k)
        with capture_stderr() as log:
            try:
                self.interp.invoke()
                err = None
            except Exception as exc:
                err = str(exc)
        if err is not None:
            raise ExportError(f"TFLM invoke failed: {_tflm_reason(log + [err])}")
        return [np.array(self.interp.get_output(k)) for k in range(len(self.outputs))]


def quantize(x: np.ndarray, details: dict) -> np.ndarray:
    """Float -> the input tensor's integer type with its scale and zero point."""
    dt = np.dtype(details["dtype"])
    if dt == np.float32:
        return x.astype(np.float32)
    q = details["quantization_parameters"]
    s, z = float(q["scales"][0]), int(q["zero_points"][0])
    info = np.iinfo(dt)
    return np.clip(np.round(x / s) + z, info.min, info.max).astype(dt)


def dequantize(y: np.ndarray, details: dict) -> np.ndarray:
    if np.dtype(details["dtype"]) == np.float32:
        return y.astype(np.float32)
    q = details["quantization_parameters"]
    return (y.astype(np.float32) - int(q["zero_points"][0])) * float(q["scales"][0])
