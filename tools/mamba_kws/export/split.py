"""tools/split.py: cut a converted .tflite into K partitions that TFLM runs one after another.

    python tools/split.py --model runs/kws_mamba/export/model_int8.tflite -k 4

The converted graph itself is cut (mamba_kws.export.flatbuf.cut): the partitions keep the
original tensors, buffers and quantisation parameters, so running them in order is bit-exact
with the unsplit model. Cuts fall near K equal shares of the ops, each moved (within a window)
to the boundary that carries the fewest bytes: between layers that is the residual stream; inside
an unrolled scan it is h, the conv output and what is left of the per-step slices (`carried`).

TFLM allocates a node and an eval tensor per op and tensor of the model, so the arena of the
unrolled graph grows with its op count; a partition only holds its own. Peak RAM of a split model
= max over partitions of (its arena + the carried tensors that live outside the arena while it
runs: what it reads, what it writes and what passes it by).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentParser
from . import ExportError
from .flatbuf import cut, live_tensors, load_model, op_layer, read_model_file, tensor_info
from .tflm import TFLMModel, min_arena

MANIFEST = "manifest.json"


def _io_of(model: Any, start: int, stop: int, live: list[set[int]]) -> tuple[list[int], list[int]]:
    sg = model.subgraphs[0]
    used: set[int] = set()
    made: set[int] = set()
    for op in sg.operators[start:stop]:
        used.update(int(i) for i in op.inputs if i >= 0)
        made.update(int(o) for o in op.outputs)
    inputs = sorted(t for t in live[start] if t in used) if start > 0 else [int(i) for i in sg.inputs]
    if stop == len(sg.operators):
        outputs = [int(o) for o in sg.outputs]
    else:
        outputs = sorted(t for t in live[stop] if t in made)
    return inputs, outputs


# What moving a cut by one op away from an equal share costs, in bytes: about what TFLM's arena
# holds per op and tensor (node, eval tensor, op data) on a 32-bit MCU.
BYTES_PER_OP = 150


def choose_cuts(model: Any, k: int, window: float = 0.45) -> list[int]:
    """K-1 op boundaries near equal op shares, each at the cheapest boundary within +-window of a
    share: carried bytes + BYTES_PER_OP per op away from the share (between time chunks or layers
    little is carried; inside an unrolled scan, h and the remaining per-step slices are)."""
    n = len(model.subgraphs[0].operators)
    if k < 1:
        raise ExportError(f"K must be >= 1, got {k}")
    if k > n:
        raise ExportError(f"K = {k} is more partitions than the model has ops ({n})")
    live, _ = live_tensors(model)
    cost = [sum(tensor_info(model, t).nbytes for t in s) for s in live]
    w = max(1, int(window * n / k))
    cuts: list[int] = []
    for j in range(1, k):
        target = round(j * n / k)
        lo = max((cuts[-1] + 1) if cuts else 1, target - w)
        hi = min(n - (k - j), target + w)
        if lo > hi:
            lo = hi = max(lo, 1)
        best = min(range(lo, hi + 1), key=lambda b: (cost[b] + BYTES_PER_OP * abs(b - target), b))
        cuts.append(best)
    return cuts


def _tinfo(model: Any, t: int) -> dict:
    d = tensor_info(model, t).to_dict()
    d["tensor"] = t
    return d


def split_model(data: bytes, k: int, out_dir: Path, cuts: list[int] | None = None,
                measure: bool = True, progress: bool = True) -> dict[str, Any]:
    """Write part_<i>.tflite + manifest.json into out_dir; returns the manifest."""
    from tqdm import tqdm

    model = load_model(data)
    sg = model.subgraphs[0]
    n = len(sg.operators)
    cuts = cuts if cuts is not None else choose_cuts(model, k)
    bounds = [0, *cuts, n]
    live, _ = live_tensors(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("part_*.tflite"):
        old.unlink()
    parts = []
    for i in tqdm(range(len(bounds) - 1), desc="split", disable=not progress):
        a, b = bounds[i], bounds[i + 1]
        ins, outs = _io_of(model, a, b, live)
        sub = cut(model, a, b, ins, outs)
        name = f"part_{i}.tflite"
        (out_dir / name).write_bytes(sub)
        # Carried tensors held outside this partition's arena while it runs: read, written, passing by.
        outside = set(live[a]) | set(live[b]) if 0 < a or b < n else set()
        outside -= {int(x) for x in sg.inputs} if a == 0 else set()
        outside -= {int(x) for x in sg.outputs} if b == n else set()
        entry: dict[str, Any] = {
            "file": name, "ops": [a, b], "op_count": b - a, "flatbuffer_bytes": len(sub),
            "from": op_layer(model, a), "to": op_layer(model, b - 1),
            "inputs": [_tinfo(model, t) for t in ins], "outputs": [_tinfo(model, t) for t in outs],
            "outside_bytes": int(sum(tensor_info(model, t).nbytes for t in outside)),
        }
        if measure:
            entry["arena_bytes"] = min_arena(sub)
        parts.append(entry)
    carried = []
    for b in cuts:
        ts = sorted(live[b])
        carried.append({"after_op": b, "at": op_layer(model, b - 1),
                        "bytes": int(sum(tensor_info(model, t).nbytes for t in ts)),
                        "tensors": [tensor_info(model, t).name for t in ts]})
    manifest: dict[str, Any] = {
        "source_ops": n, "k": len(parts), "cuts": cuts,
        "input": _tinfo(model, int(sg.inputs[0])), "output": _tinfo(model, int(sg.outputs[0])),
        "partitions": parts, "carried": carried,
    }
    if measure:
        max_arena = max(p["arena_bytes"] for p in parts)
        max_carry = max((c["bytes"] for c in carried), default=0)
        manifest["summary"] = {
            "max_partition_arena_bytes": max_arena,
            "max_carried_bytes": max_carry,
            "largest_arena_plus_largest_carried": max_arena + max_carry,
            "peak_ram_bytes": max(p["arena_bytes"] + p["outside_bytes"] for p in parts),
        }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_split(split_dir: Path) -> tuple[dict[str, Any], list[bytes]]:
    mp = Path(split_dir) / MANIFEST
    if not mp.is_file():
        raise ExportError(f"no {MANIFEST} in {split_dir} (make one with: python tools/split.py)")
    try:
        manifest = json.loads(mp.read_text())
        files = [Path(split_dir) / p["file"] for p in manifest["partitions"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ExportError(f"{mp}: not a split manifest ({type(exc).__name__})") from None
    for f in files:
        if not f.is_file():
            raise ExportError(f"{mp} names {f.name}, which is missing")
    return manifest, [f.read_bytes() for f in files]


class SplitRunner:
    """Runs the partitions in order in TFLM, passing the carried tensors by their original index."""

    def __init__(self, manifest: dict[str, Any], parts: list[bytes]) -> None:
        self.manifest = manifest
        self.models = [TFLMModel(d, p.get("arena_bytes"), p["file"]) for d, p in zip(parts, manifest["partitions"],
                                                                                     strict=True)]

    def run(self, x: np.ndarray) -> np.ndarray:
        store: dict[int, np.ndarray] = {self.manifest["input"]["tensor"]: x}
        for m, p in zip(self.models, self.manifest["partitions"], strict=True):
            xs = [store[t["tensor"]].reshape(t["shape"]) for t in p["inputs"]]
            ys = m.run(*xs)
            for t, y in zip(p["outputs"], ys, strict=True):
                store[t["tensor"]] = y
        return store[self.manifest["output"]["tensor"]]


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(
        description="Cut an exported .tflite (int8 by default) into K partitions run one after another in TFLM; "
                    "writes part_<i>.tflite + manifest.json and checks that the chain is bit-exact with the model.")
    p.add_argument("--model", required=True, help="the .tflite to cut (e.g. runs/kws_mamba/export/model_int8.tflite)")
    p.add_argument("-k", "--partitions", type=int, default=4, help="number of partitions (default 4)")
    p.add_argument("--out", default=None, help="output folder (default: <model folder>/split_k<K>)")
    p.add_argument("--check", type=int, default=8, help="random inputs to check bit-exactness on (default 8)")
    args = p.parse_args(argv)
    if args.partitions < 1:
        raise ExportError(f"-k must be >= 1 partitions, got {args.partitions}")
    if args.check < 1:
        raise ExportError(f"--check must be >= 1 (random inputs run through both), got {args.check}")
    data, model = read_model_file(args.model)
    out = Path(args.out) if args.out else Path(args.model).parent / f"split_k{args.partitions}"
    manifest = split_model(data, args.partitions, out)
    exact = check_bit_exact(data, out, args.check)
    manifest["bit_exact_on"] = exact
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"\n{args.model}: {manifest['source_ops']} ops -> {manifest['k']} partitions in {out}")
    print(f"{'part':<5} {'ops':>11} {'bytes':>8} {'arena':>8} {'outside':>8}  from -> to")
    for i, q in enumerate(manifest["partitions"]):
        print(f"{i:<5} {q['ops'][0]:>5}-{q['ops'][1]:<5} {q['flatbuffer_bytes']:>8} {q['arena_bytes']:>8} "
              f"{q['outside_bytes']:>8}  {q['from']} -> {q['to']}")
    s = manifest["summary"]
    print(f"largest partition arena {s['max_partition_arena_bytes']} B, largest carried {s['max_carried_bytes']} B, "
          f"peak RAM {s['peak_ram_bytes']} B; bit-exact with the unsplit model on {exact} inputs")
    return 0


def check_bit_exact(data: bytes, split_dir: Path, n: int, seed: int = 0) -> int:
    """Run n random inputs through the model and the partitions; raise unless identical."""
    whole = TFLMModel(data)
    manifest, parts = load_split(split_dir)
    runner = SplitRunner(manifest, parts)
    det = whole.inputs[0]
    rng = np.random.default_rng(seed)
    dt = np.dtype(det["dtype"])
    lo, hi = (np.iinfo(dt).min, np.iinfo(dt).max) if dt.kind == "i" else (0, 1)
    for j in range(n):
        x = (rng.integers(lo, hi + 1, size=det["shape"]) if dt.kind == "i"
             else rng.uniform(0, 20, size=det["shape"])).astype(dt)
        a = whole.run(x)[0]
        b = runner.run(x)
        if not np.array_equal(a, b):
            raise ExportError(f"split output differs from the unsplit model on random input {j}")
    return n
