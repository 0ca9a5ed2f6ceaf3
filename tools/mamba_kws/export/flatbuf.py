"""Reading a .tflite flatbuffer and cutting it into sub-models.

Uses TensorFlow's own schema bindings (tensorflow/lite/python/schema_py_generated.py, object
API), loaded from its file so that reading a model does not import TensorFlow.

`cut(model, start, stop)` keeps ops [start, stop) of the (single) subgraph with the tensors they
touch, unchanged: same buffers, same quantisation parameters. The sub-model's inputs are the
tensors it reads that an earlier op (or the model input) produced; its outputs are the tensors it
produces that a later op (or the model output) reads. Running the pieces one after another in
TFLM is therefore bit-exact with the whole model: every kernel sees the same bytes.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import ExportError

_NP_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_, 7: np.int16, 9: np.int8}


@functools.cache
def schema() -> Any:
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.origin is None:
        raise ExportError("tensorflow is not installed (pip install tensorflow==2.21.0)")
    path = Path(spec.origin).parent / "lite" / "python" / "schema_py_generated.py"
    if not path.is_file():
        raise ExportError(f"the TFLite schema bindings are missing: {path}")
    mod_spec = importlib.util.spec_from_file_location("export_tflite_schema", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


@functools.cache
def builtin_names() -> dict[int, str]:
    ops = schema().BuiltinOperator
    return {v: k for k, v in vars(ops).items() if k.isupper()}


def load_model(data: bytes, source: str = "model") -> Any:
    """The object-API ModelT of a .tflite; one clear error for anything that is not one."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ExportError(f"{source}: not a TFLite flatbuffer (no 'TFL3' identifier; {len(data)} bytes)")
    s = schema()
    try:
        model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
    except Exception as exc:  # a truncated buffer raises struct/index errors deep in flatbuffers
        raise ExportError(f"{source}: corrupt or truncated TFLite file ({type(exc).__name__})") from None
    if not model.subgraphs:
        raise ExportError(f"{source}: TFLite file has no subgraph")
    return model


def read_model_file(path: str | Path) -> tuple[bytes, Any]:
    p = Path(path)
    if not p.is_file():
        raise ExportError(f"model file not found: {p}")
    data = p.read_bytes()
    return data, load_model(data, str(p))


def _name(t: Any) -> str:
    n = t.name
    return n.decode() if isinstance(n, bytes) else str(n or "")


def op_name(model: Any, op: Any) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    b = max(code.builtinCode, code.deprecatedBuiltinCode)
    if b == schema().BuiltinOperator.CUSTOM:
        c = code.customCode
        return "CUSTOM:" + (c.decode() if isinstance(c, bytes) else str(c))
    return builtin_names().get(b, f"BUILTIN_{b}")


@dataclass
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)
    const: bool = False

    def to_dict(self) -> dict:
        d = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "bytes": self.nbytes}
        if self.scale:
            d["scale"] = self.scale[0] if len(self.scale) == 1 else self.scale
            d["zero_point"] = self.zero_point[0] if len(self.zero_point) == 1 else self.zero_point
        return d


def tensor_info(model: Any, i: int) -> TensorInfo:
    sg = model.subgraphs[0]
    t = sg.tensors[i]
    dt = np.dtype(_NP_TYPES.get(t.type, np.uint8))
    shape = tuple(int(s) for s in (t.shape if t.shape is not None else []))
    buf = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
    const = buf is not None and buf.data is not None and len(buf.data) > 0
    q = t.quantization
    scale = [float(s) for s in q.scale] if q is not None and q.scale is not None else []
    zp = [int(z) for z in q.zeroPoint] if q is not None and q.zeroPoint is not None else []
    return TensorInfo(i, _name(t), shape, dt.name, int(np.prod(shape, dtype=np.int64)) * dt.itemsize, scale, zp, const)


def op_list(model: Any) -> list[str]:
    return [op_name(model, op) for op in model.subgraphs[0].operators]


def op_counts(model: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in op_list(model):
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def op_layer(model: Any, index: int) -> str:
    """Where op `index` came from: the name scope of its first output (e.g. 'layer1/scan/t7')."""
    op = model.subgraphs[0].operators[index]
    outs = [o for o in (op.outputs if op.outputs is not None else []) if o >= 0]
    if not outs:
        return "?"
    name = _name(model.subgraphs[0].tensors[outs[0]])
    name = name.split(";")[0]
    parts = [p for p in name.split("/") if p and not p.startswith("PartitionedCall")]
    return "/".join(parts[:-1]) or name


def _io(v: Any) -> list[int]:
    return [int(i) for i in v] if v is not None else []


def live_tensors(model: Any) -> tuple[list[set[int]], set[int]]:
    """For each op boundary b (0..n): the non-constant tensors produced before b (or model inputs)
    and read at or after b (or model outputs). These are what a cut at b carries."""
    sg = model.subgraphs[0]
    consts = {i for i in range(len(sg.tensors)) if tensor_info(model, i).const}
    n = len(sg.operators)
    produced_at = {i: -1 for i in _io(sg.inputs)}
    last_use: dict[int, int] = {}
    for k, op in enumerate(sg.operators):
        for i in _io(op.inputs):
            if i >= 0 and i not in consts:
                last_use[i] = k
        for o in _io(op.outputs):
            produced_at[o] = k
    for o in _io(sg.outputs):
        last_use[o] = n
    live = []
    for b in range(n + 1):
        live.append({t for t, p in produced_at.items() if p < b and last_use.get(t, -1) >= b})
    return live, consts


def cut(model: Any, start: int, stop: int, inputs: list[int], outputs: list[int]) -> bytes:
    """A new .tflite with ops [start, stop) of `model`, reading `inputs` and producing `outputs`
    (tensor indices of the original). Tensors, buffers and quantisation are copied unchanged."""
    import copy

    s = schema()
    sg = model.subgraphs[0]
    ops = sg.operators[start:stop]
    used: list[int] = []
    seen: set[int] = set()
    for t in inputs:
        if t not in seen:
            seen.add(t)
            used.append(t)
    for op in ops:
        for i in _io(op.inputs) + _io(op.outputs) + _io(op.intermediates):
            if i >= 0 and i not in seen:
                seen.add(i)
                used.append(i)
    remap = {old: new for new, old in enumerate(used)}
    new = s.ModelT()
    new.version = model.version
    new.description = model.description
    new.operatorCodes = model.operatorCodes
    new.buffers = [s.BufferT()]  # buffer 0: the empty sentinel
    buf_map: dict[int, int] = {}
    tensors = []
    for old in used:
        t = copy.copy(sg.tensors[old])
        b = t.buffer
        if b not in buf_map:
            if b < len(model.buffers) and model.buffers[b].data is not None and len(model.buffers[b].data) > 0:
                buf_map[b] = len(new.buffers)
                new.buffers.append(model.buffers[b])
            else:
                buf_map[b] = len(new.buffers)
                new.buffers.append(s.BufferT())
        t.buffer = buf_map[b]
        tensors.append(t)
    new_ops = []
    for op in ops:
        o = copy.copy(op)
        o.inputs = [remap[i] if i >= 0 else -1 for i in _io(op.inputs)]
        o.outputs = [remap[i] for i in _io(op.outputs)]
        if op.intermediates is not None:
            o.intermediates = [remap[i] for i in _io(op.intermediates)]
        new_ops.append(o)
    g = s.SubGraphT()
    g.tensors = tensors
    g.operators = new_ops
    g.inputs = [remap[i] for i in inputs]
    g.outputs = [remap[i] for i in outputs]
    g.name = sg.name
    new.subgraphs = [g]
    new.metadata = None
    new.signatureDefs = None
    new.metadataBuffer = None
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(new.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def serialize(model: Any) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# Ops whose int16 output has its input's scale (TFLM copies the values) and ops with a fixed output scale.
_SAME_SCALE = {"RESHAPE", "STRIDED_SLICE", "UNPACK", "PACK", "CONCATENATION", "PAD", "SQUEEZE"}
_FIXED_SCALE = {"LOGISTIC", "TANH"}
_WITH_BIAS = {"FULLY_CONNECTED", "DEPTHWISE_CONV_2D", "CONV_2D"}


def unify_chunk_scales(model: Any) -> tuple[int, int]:
    """Give every time chunk's copy of an int16 activation the scale of the whole clip.

    In a time-chunked graph (tfgraph chunks > 1) each chunk has its own copy of a tensor
    ('layer0/c3/x_proj/...'). The int16x8 converter calibrates every copy on its own, so each copy's
    range covers only the steps of its chunk, and clips that reach further there saturate (layer 0's
    `dt`: 3.78 in the second of 2 chunks, 4.35 over the clip; 86.7 % top-1 agreement with float in 8
    chunks against 99.4 % in one graph). Here every copy takes the largest scale of its copies (int16
    is symmetric, zero point 0); tensors tied to them by ops that copy values (RESHAPE, PACK, ...)
    follow, sets holding a LOGISTIC/TANH output (fixed scale) are left alone, and the int32/int64
    biases of the FULLY_CONNECTED/conv ops whose input scale changed are requantised to input scale x
    weight scale. Every kernel computes its multipliers from these scales, so nothing else changes.
    int8 graphs carry shared ranges already (FakeQuant ops, one range per tensor of all chunks) and are
    left alone. Returns (tensor scales changed, biases requantised)."""
    sg = model.subgraphs[0]
    T = sg.tensors

    def activation(i: int) -> bool:
        t = T[i]
        q = t.quantization
        data = model.buffers[t.buffer].data
        return (t.type == 7 and (data is None or len(data) == 0) and q is not None and q.scale is not None
                and len(q.scale) == 1)

    parent = list(range(len(T)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    copies: dict[str, list[int]] = {}
    for i, t in enumerate(T):
        key = re.sub(r"/c\d+/", "/", _name(t))
        if key != _name(t) and activation(i):
            copies.setdefault(key, []).append(i)
    for group in copies.values():
        for i in group[1:]:
            union(group[0], i)
    fixed: set[int] = set()
    for op in sg.operators:
        kind = op_name(model, op)
        tied = [i for i in (*_io(op.inputs), *_io(op.outputs)) if i >= 0 and activation(i)]
        if kind in _SAME_SCALE:
            for i in tied[1:]:
                union(tied[0], i)
        if kind in _FIXED_SCALE:
            fixed.update(i for i in _io(op.outputs) if i >= 0)
    sets: dict[int, list[int]] = {}
    for i in range(len(T)):
        if activation(i):
            sets.setdefault(find(i), []).append(i)
    old = {i: float(T[i].quantization.scale[0]) for m in sets.values() for i in m}
    changed = 0
    for members in sets.values():
        if len(members) < 2 or fixed.intersection(members):
            continue
        target = max(old[i] for i in members)
        for i in members:
            if old[i] != target:
                T[i].quantization.scale = np.array([target], np.float32)
                changed += 1
    biases = 0
    for op in sg.operators:
        ins = _io(op.inputs)
        if op_name(model, op) not in _WITH_BIAS or len(ins) < 3 or ins[2] < 0 or ins[0] not in old:
            continue
        x_scale = float(T[ins[0]].quantization.scale[0])
        if x_scale == old[ins[0]]:
            continue
        b, w = T[ins[2]], T[ins[1]]
        dtype = np.int64 if b.type == 4 else np.int32
        values = np.frombuffer(bytes(bytearray(model.buffers[b.buffer].data)), dtype).astype(np.float64)
        new_scale = x_scale * np.asarray(w.quantization.scale, np.float64)
        requantised = np.round(values * np.asarray(b.quantization.scale, np.float64) / new_scale).astype(dtype)
        data = np.frombuffer(requantised.tobytes(), np.uint8)
        if sum(t.buffer == b.buffer for t in T) == 1:
            model.buffers[b.buffer].data = data
        else:  # a shared bias buffer: the requantised values get their own
            buf = schema().BufferT()
            buf.data = data
            model.buffers.append(buf)
            b.buffer = len(model.buffers) - 1
        b.quantization.scale = new_scale.astype(np.float32)
        biases += 1
    return changed, biases


def shorten_names(model: Any) -> None:
    """Keep the first of the converter's ';'-joined tensor names (an int8 model of the unrolled
    scan otherwise spends hundreds of KB of flash on names); computation is unchanged."""
    for t in model.subgraphs[0].tensors:
        n = _name(t).split(";")[0]
        t.name = n.encode()


def _schedule(ops: list, outputs: list[int], larger_first: bool) -> list[int]:
    """Ops emitted on demand, depth first from the outputs; a binary op visits the input with the
    larger (or smaller) dependency cone first."""
    producer: dict[int, int] = {}
    for k, op in enumerate(ops):
        for o in _io(op.outputs):
            producer[o] = k
    cone: list[int] = [0] * len(ops)  # number of ops in each op's dependency cone
    cone_sets: list[set[int]] = [set() for _ in ops]
    for k, op in enumerate(ops):  # `ops` is in a topological order
        s = {k}
        for i in _io(op.inputs):
            if i in producer:
                s |= cone_sets[producer[i]]
        cone_sets[k] = s
        cone[k] = len(s)
    order: list[int] = []
    done: set[int] = set()
    roots = [producer[o] for o in outputs if o in producer]
    stack: list[tuple[int, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        k, expanded = stack.pop()
        if k in done:
            continue
        if expanded:
            done.add(k)
            order.append(k)
            continue
        stack.append((k, True))
        deps = [producer[i] for i in _io(ops[k].inputs) if i in producer and producer[i] not in done]
        deps = list(dict.fromkeys(deps))
        if len(deps) == 2:  # PACK & co. keep their order: y_0 right after h_0, not after h_48
            deps.sort(key=lambda d: -cone[d] if larger_first else cone[d])
        for d in reversed(deps):  # the largest cone is popped (visited) first
            stack.append((d, False))
    rest = [k for k in range(len(ops)) if k not in done]  # ops that feed no output (none expected)
    return order + rest


def reorder_for_memory(model: Any) -> None:
    """Re-order the ops so that TFLM's greedy planner can reuse memory step after step.

    The converter schedules ops in its own order (the per-step decays, which do not depend on h,
    all come first and stay alive until their step). Here ops are emitted on demand, depth first
    from the model outputs, visiting the input with the larger dependency cone first
    (Sethi-Ullman; ops with more inputs, like PACK of the y_t, keep their input order): step t's
    decay is computed just before h_t needs it and dies right after. Visiting the smaller cone
    first is tried too (for a time-chunked graph it gives chunk-major order); the order with the
    smaller largest set of live activations wins.
    Any topological order computes the same values, so outputs are bit-identical.
    """
    sg = model.subgraphs[0]
    ops = sg.operators
    best: tuple[int, list[int]] | None = None
    for larger_first in (True, False):
        order = _schedule(ops, _io(sg.outputs), larger_first)
        sg.operators = [ops[k] for k in order]
        live, _ = live_tensors(model)
        peak = max(sum(tensor_info(model, t).nbytes for t in x) for x in live)
        if best is None or peak < best[0]:
            best = (peak, order)
    sg.operators = [ops[k] for k in best[1]]
    _chunk_major(model)
    _hoist_shrinking_slices(model)


def _chunk_of(name: str) -> int:
    """Time chunk of a tensor of a time-chunked graph: 'layer1/c3/...' -> 3, 'head_2/...' -> 2."""
    m = re.search(r"/c(\d+)/", "/" + name)
    if m:
        return int(m.group(1))
    m = re.match(r"head(?:_(\d+))?/", name)
    if m:
        return int(m.group(1) or 0)
    return -1


def _chunk_major(model: Any) -> None:
    """For a time-chunked graph (tfgraph chunks > 1): a stable topological sort by (time chunk,
    current position), so that chunk c is finished before chunk c+1 starts and a cut between them
    carries only the chunk state. No-op for a graph without chunks."""
    import heapq

    sg = model.subgraphs[0]
    ops = sg.operators
    chunk = []
    for op in ops:
        outs = _io(op.outputs)
        chunk.append(_chunk_of(_name(sg.tensors[outs[0]])) if outs else -1)
    if max(chunk, default=-1) < 1:
        return
    producer = {o: k for k, op in enumerate(ops) for o in _io(op.outputs)}
    users: list[list[int]] = [[] for _ in ops]
    indeg = [0] * len(ops)
    for k, op in enumerate(ops):
        deps = {producer[i] for i in _io(op.inputs) if i in producer}
        indeg[k] = len(deps)
        for d in deps:
            users[d].append(k)
    # An op without a chunk in its name (a shared slice, a reshape) runs with its first user's chunk.
    for k in reversed(range(len(ops))):
        if chunk[k] < 0 and users[k]:
            chunk[k] = min(chunk[u] for u in users[k])
    heap = [(chunk[k], k) for k in range(len(ops)) if indeg[k] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, k = heapq.heappop(heap)
        order.append(k)
        for u in users[k]:
            indeg[u] -= 1
            if indeg[u] == 0:
                heapq.heappush(heap, (chunk[u], u))
    if len(order) == len(ops):
        sg.operators = [ops[k] for k in order]


def _hoist_shrinking_slices(model: Any) -> None:
    """Move each STRIDED_SLICE / SLICE up to right after the last other reader of its input (or its
    producer), so that a big tensor (the conv input of a chunk) dies early and only the slice (the
    conv window carried to the next chunk) stays alive. Still a topological order."""
    sg = model.subgraphs[0]
    ops = list(sg.operators)
    names = [op_name(model, op) for op in ops]
    for name in ("STRIDED_SLICE", "SLICE"):
        k = 0
        while k < len(ops):
            op = ops[k]
            if op_name(model, op) != name:
                k += 1
                continue
            src = _io(op.inputs)[0]
            pos = -1
            for j in range(k):
                if src in _io(ops[j].outputs) or src in _io(ops[j].inputs):
                    pos = j
            if pos + 1 < k:
                ops.insert(pos + 1, ops.pop(k))
            k += 1
    del names
    sg.operators = ops
