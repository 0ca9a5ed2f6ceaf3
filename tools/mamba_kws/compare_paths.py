"""tools/compare_paths.py: do the two int8 deployments of one checkpoint agree?

    python tools/compare_paths.py --checkpoint runs/kws_mamba/best.pt [--real v2_test_dev]

Three runs of the same weights on the same clips:

- torch_float: the PyTorch model (float32), the reference;
- builtin_int8: the paper path, the scan unrolled into TFLM builtin ops (mamba_kws.export),
  int8 input/output, run in the PyPI TFLM interpreter (TFLM's reference kernels);
- fused_int8: the fused C core (modules/tflm_mamba, `tm_model_q8_run`) built for the host with
  gcc and run through ctypes (mamba_kws.fused.cbind), quantised by mamba_kws.fused.quantize;
  (the window .tflite, tools/fused_tflite.py --int8, gives the same logits within 2 int8 steps:
  tests/python/test_fused_tflite.py);
- fused_int8_stream: the firmware's streaming image on the host (mamba_kws.firmware): the streaming
  .tflite of the same quantisation (fused_tflite --streaming --int8) cut to its body, one step at a
  time (builtins in the PyPI TFLM, MAMBA_BLOCK in the C core), and app/src/inference.cc's readout: the
  float mean of the int8 h over the clip's own 49 steps through the dequantised classifier. Each clip
  comes right after another whole clip (`context_order`: the state is not zero when it starts); its
  reference is torch_float_stream, the float model on the same sequence (skip_steps).

Both int8 paths are calibrated on the same clips, as their exporters do (mamba_kws.calibration: --calib
generated, 128 clips of the generated set's training split, by default). The table gives each
path's top-1 accuracy (per class too in the JSON), the pairwise top-1 agreement (fused vs builtin, each vs its
float reference) and the largest |logit error| against float (int8 logits dequantised). Clips: the
test split of the checkpoint's own generated data set (never trained on), and optionally a subset of
the real clips (--real). Writes compare_paths.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import CALIB_CLIPS, calibration_features, resolve
from .calibration import DEFAULT as CALIB_DEFAULT
from .calibration import HELP as CALIB_HELP
from .config import KWSConfig
from .errors import ArgumentParser, KWSError

PATHS = ("torch_float", "builtin_int8", "fused_int8", "torch_float_stream", "fused_int8_stream")
INT8_PATHS = ("builtin_int8", "fused_int8", "fused_int8_stream")
PAIRS = (("fused_int8", "builtin_int8"), ("fused_int8", "torch_float"), ("builtin_int8", "torch_float"),
         ("fused_int8_stream", "torch_float_stream"))


def reference(path: str) -> str:
    """The float run a path is compared with."""
    return "torch_float_stream" if path.endswith("_stream") else "torch_float"


class CompareError(KWSError):
    """A setting or file the comparison cannot use."""


# ----------------------------------------------------------------------------- the figures

def top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows where logits a and b (n, classes) pick the same class."""
    if a.shape != b.shape or a.ndim != 2 or len(a) == 0:
        raise CompareError(f"logits to compare must be two equal non-empty (n, classes) arrays, got "
                           f"{a.shape} and {b.shape}")
    return float(np.mean(a.argmax(1) == b.argmax(1)))


def summarize(logits: dict[str, np.ndarray], targets: np.ndarray | None,
              labels: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Accuracy of each path (and per class, given the labels), top-1 agreement of each pair, largest
    |logit error| vs float."""
    out: dict[str, Any] = {"n": int(len(next(iter(logits.values())))), "accuracy": {}, "agreement": {},
                           "max_abs_logit_error_vs_float": {}, "mean_abs_logit_error_vs_float": {}}
    if targets is not None and labels is not None:
        out["per_class_accuracy"] = {}
    for name, y in logits.items():
        if targets is not None:
            hit = y.argmax(1) == targets
            out["accuracy"][name] = float(np.mean(hit))
            if labels is not None:  # None for a class with no clip
                out["per_class_accuracy"][name] = {lab: float(hit[targets == k].mean()) if (targets == k).any()
                                                   else None for k, lab in enumerate(labels)}
        ref = reference(name)
        if name in INT8_PATHS and ref in logits:
            err = np.abs(y - logits[ref])
            out["max_abs_logit_error_vs_float"][name] = float(err.max())
            out["mean_abs_logit_error_vs_float"][name] = float(err.mean())
    for a, b in PAIRS:
        if a in logits and b in logits:
            out["agreement"][f"{a} vs {b}"] = top1_agreement(logits[a], logits[b])
    return out


# ----------------------------------------------------------------------------- the two int8 paths

def builtin_int8(model: Any, calib: np.ndarray, steps: int | None = None, chunks: int = 1) -> bytes:
    """The paper path's int8 .tflite (as tools/export.py --kinds int8 writes it, default ranges)."""
    from .export.convert import convert
    from .export.pipeline import int8_ranges, postprocess
    from .export.tfgraph import build_tf_function

    ranges = int8_ranges(model, calib, "sim-mse")[0]
    concrete = build_tf_function(model, steps=steps, chunks=chunks, ranges=ranges)
    return postprocess(convert(concrete, "int8", calib))


def check_tflite(data: bytes, cfg: KWSConfig, frames: int, source: str) -> str:
    """An int8-in/int8-out (or int16x8: int16-in/int16-out) .tflite whose input is one window of `frames`
    frames of this config; returns the I/O type."""
    from .export.flatbuf import load_model, tensor_info

    model = load_model(data, source)  # one clear ExportError for anything that is not a .tflite
    sg = model.subgraphs[0]
    t_in, t_out = tensor_info(model, int(sg.inputs[0])), tensor_info(model, int(sg.outputs[0]))
    if t_in.dtype != t_out.dtype or t_in.dtype not in ("int8", "int16"):
        raise CompareError(f"{source}: input/output are {t_in.dtype}/{t_out.dtype}, not int8 (or int16x8) "
                           "(use model_int8.tflite or model_int16x8.tflite from tools/export.py)")
    want = (1, frames, cfg.features.channels)
    if tuple(t_in.shape) != want:
        raise CompareError(f"{source}: input shape {tuple(t_in.shape)} does not match the checkpoint's {want}")
    if tuple(t_out.shape)[-1] != len(cfg.labels):
        raise CompareError(f"{source}: {tuple(t_out.shape)[-1]} outputs, the checkpoint has {len(cfg.labels)} labels")
    return str(t_in.dtype)


def context_order(n: int, seed: int = 0) -> np.ndarray:
    """For each of n clips, the clip that precedes it in the streaming runs: its predecessor in a fixed
    random order (not in the set's own order, where neighbours share a word and the context would
    give the answer away)."""
    perm = np.random.default_rng(seed).permutation(n)
    before = np.empty(n, np.int64)
    before[perm] = np.roll(perm, 1)
    return before


class Paths:
    """The runs of one checkpoint (`paths`: the int8 ones to run), ready to score clips."""

    def __init__(self, model: Any, cfg: KWSConfig, tflite: bytes | None, fused_calib: np.ndarray | None,
                 paths: tuple[str, ...] = INT8_PATHS, y_bits: int | None = None,
                 fused_window: bytes | None = None, fused_stream: bytes | None = None) -> None:
        """`fused_window` / `fused_stream`: existing fused int8 images (tools/fused_tflite.py --int8 [--streaming],
        e.g. app/model/*.tflite) to score as fused_int8 / fused_int8_stream, instead of the C core / an image
        made from `fused_calib`."""
        from .fused import cbind
        from .fused import quantize as Q

        self.model, self.cfg, self.paths = model.eval(), cfg, paths
        self.tflm = None
        if "builtin_int8" in paths:
            from .export.tflm import TFLMModel

            self.tflm = TFLMModel(tflite, source="builtin int8 model")
        self.qm = self.stream = None
        if fused_calib is not None:
            Q.check_model_config(cfg)
            fm = Q.float_weights(model)
            self.qm = Q.quantize_model(fm, fused_calib, rmsnorm=True, y_bits=y_bits)
            self.lib = cbind.load()
        self.window = None
        if "fused_int8" in paths and fused_window is not None:
            from .firmware import FirmwareError, FusedHost, window_body

            try:
                body, self.window_out = window_body(fused_window, cfg)
            except FirmwareError as exc:
                raise CompareError(str(exc)) from None
            self.window = FusedHost(body, "fused window image")
        if "fused_int8_stream" in paths:
            from .firmware import FirmwareError, FusedHost, stream_body, stream_image_mismatch
            from .fused_tflite import build_int8

            if fused_stream is None:
                if self.qm is None:
                    raise CompareError("fused_int8_stream needs calibration clips (fused_calib)")
                if cfg.model.norm == "rmsnorm":
                    raise CompareError("fused_int8_stream scores the firmware's streaming image, and a model with "
                                       "norm: rmsnorm has no int8 streaming .tflite; use --paths fused_int8")
                fused_stream = build_int8(fm, self.qm, cfg, streaming=True)
            try:
                body, self.readout = stream_body(fused_stream)
            except FirmwareError as exc:
                raise CompareError(f"fused streaming image: {exc}") from None
            self.stream = FusedHost(body, "streaming body")
            why = stream_image_mismatch(self.stream, self.readout, cfg)
            if why:
                raise CompareError(f"fused streaming image: {why}")

    def _fused(self, x: np.ndarray) -> np.ndarray:
        from .fused.quantize import quantize_features

        if self.window is not None:  # an existing window image, as the firmware runs it
            from .firmware import quantize_c

            inp, out = self.window.inputs[0], self.window_out
            self.window.reset()
            y = self.window.run(quantize_c(x, inp.scale[0], inp.zero_point[0])[None]).reshape(-1)
            return ((y.astype(np.float32) - out.zero_point[0]) * np.float32(out.scale[0])).astype(np.float32)
        qm = self.qm
        yq = self.lib.model_q8(qm, quantize_features(x, qm.in_scale, qm.in_zp))[0]
        return (yq.astype(np.float32) - qm.logit_zp) * np.float32(qm.logit_scale)

    def _stream(self, seq: np.ndarray, steps: int) -> np.ndarray:
        """The firmware's streaming image on `seq` (frames, channels) from a reset: the body one step at a
        time, then the readout over the last `steps` step outputs (firmware.readout_logits)."""
        from .firmware import quantize_c, readout_logits

        host, k = self.stream, self.cfg.model.frame_stack
        inp = host.inputs[0]
        q = quantize_c(seq[: len(seq) // k * k], inp.scale[0], inp.zero_point[0]).reshape(-1, k * seq.shape[1])
        host.reset()
        h = np.stack([host.run(step[None]).reshape(-1) for step in q]).astype(np.int64)
        return readout_logits(self.readout, h[-steps:].sum(0), steps).astype(np.float32)

    def logits(self, feats: np.ndarray, desc: str = "clips", progress: bool = True) -> dict[str, np.ndarray]:
        """(n, classes) float logits of every path; the int8 ones dequantised."""
        import torch
        from tqdm import tqdm

        feats = np.ascontiguousarray(feats, np.float32)
        out: dict[str, Any] = {}
        with torch.no_grad():
            out["torch_float"] = self.model(torch.from_numpy(feats)).numpy()
        stream = "fused_int8_stream" in self.paths
        if stream:  # each clip after the whole previous one; the readout pools the clip's own steps
            steps = feats.shape[1] // self.cfg.model.frame_stack
            seqs = np.concatenate([feats[context_order(len(feats))], feats], axis=1)
            with torch.no_grad():
                out["torch_float_stream"] = self.model(torch.from_numpy(seqs), skip_steps=steps).numpy()
        runs: dict[str, list] = {p: [] for p in self.paths}
        if self.tflm is not None:
            from .export.tflm import dequantize, quantize

            tin, tout = self.tflm.inputs[0], self.tflm.outputs[0]
        for i in tqdm(range(len(feats)), desc=desc, unit="clip", disable=not progress):
            x = feats[i]
            if self.tflm is not None:
                runs["builtin_int8"].append(dequantize(self.tflm.run(quantize(x[None], tin))[0], tout).reshape(-1))
            if "fused_int8" in self.paths:
                runs["fused_int8"].append(self._fused(x))
            if stream:
                runs["fused_int8_stream"].append(self._stream(seqs[i], steps))
        out |= {p: np.stack(v) for p, v in runs.items()}
        return out


# ----------------------------------------------------------------------------- data

def data_source(meta: dict, override: str | None) -> str | None:
    """--data, else the generated set the checkpoint was trained on if it is still there, else the default."""
    if override is not None:
        return override
    src = str(meta.get("data_source") or "")
    if src.startswith("generated:") and Path(src.split(":", 1)[1]).is_dir():
        return src.split(":", 1)[1]
    return None


def real_clips(cfg: KWSConfig, subset: str, checkpoint: Path) -> tuple[str, Any]:
    """A real-clip subset without the clips of any speaker the checkpoint was trained or selected on."""
    from .checkpoint import read_checkpoint
    from .data import load_real_clips
    from .data.sources import filter_trained_speakers

    trained_on = read_checkpoint(checkpoint).get("trained_on") or {}
    if subset in (trained_on.get("sources") or ()):
        raise CompareError(f"{checkpoint} was trained on the real subset {subset}; score another one "
                           "(--real v2_test_dev)")
    rc, dropped = filter_trained_speakers(load_real_clips(subset, cfg), trained_on)
    return (f"{subset}_unseen" if dropped else subset), rc


def clip_sets(cfg: KWSConfig, source: str | None, n_test: int | None, real: str | None,
              n_real: int | None, checkpoint: Path, seed: int = 0,
              ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """The scored sets {name: (features, targets)}: the speech set's test split, and the real clips."""
    from .calibration import draw
    from .data import clip_features
    from .export.pipeline import test_features

    feats, targets, used = test_features(cfg, source, n_test, seed)
    sets = {"test": (feats, targets)}
    if real and "/" not in real:
        from .paths import have_real_clips

        real = real if have_real_clips(real, "the test split only") else None
    if real:
        name, rc = real_clips(cfg, real, checkpoint)
        if n_real is not None and n_real < len(rc):
            rc = rc.subset(draw(len(rc), n_real, seed))
        sets[name] = (clip_features(rc, cfg), rc.targets)
    return sets, used


def compare(paths: Paths, sets: dict[str, tuple[np.ndarray, np.ndarray | None]],
            progress: bool = True) -> dict[str, dict[str, Any]]:
    labels = tuple(paths.cfg.labels)
    return {name: summarize(paths.logits(x, name, progress), y, labels) for name, (x, y) in sets.items()}


# ----------------------------------------------------------------------------- CLI

def print_table(report: dict[str, Any]) -> None:
    print(f"\n{report['checkpoint']} ({report['config']}): both int8 paths calibrated on "
          f"{report['calibration_clips']} clips of {report['calibration']}; test split of {report['data']}")
    for name, r in report["sets"].items():
        print(f"\n{name}: {r['n']} clips")
        print(f"  {'path':<18} {'top-1 acc':>9} {'max|err| vs float':>18} {'mean|err|':>10}")
        for p in (p for p in PATHS if p in r["accuracy"] or p in r["max_abs_logit_error_vs_float"]):
            acc = f"{100 * r['accuracy'][p]:.1f}%" if p in r["accuracy"] else "-"
            mx = r["max_abs_logit_error_vs_float"].get(p)
            mn = r["mean_abs_logit_error_vs_float"].get(p)
            print(f"  {p:<18} {acc:>9} {'-' if mx is None else f'{mx:.3f}':>18} "
                  f"{'-' if mn is None else f'{mn:.3f}':>10}")
        print("  top-1 agreement")
        for pair, v in r["agreement"].items():
            print(f"  {pair:<30} {100 * v:>6.1f}%")


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(
        description="Run one checkpoint three ways (PyTorch float, the builtin-op int8 .tflite in TFLM, the fused "
                    "int8 C core on the host) on the test split (and optionally real clips); print accuracy, "
                    "pairwise top-1 agreement and the largest logit error vs float; write a JSON.")
    p.add_argument("--checkpoint", required=True, help="trained checkpoint (runs/<name>/best.pt)")
    p.add_argument("--tflite", default=None,
                   help="an existing builtin int8 .tflite of this checkpoint, or its int16x8 one (tools/export.py "
                        "--kinds int16x8), scored as the builtin_int8 path (default: export an int8 one, as "
                        "tools/export.py --kinds int8 does, into --out)")
    p.add_argument("--fused-tflite", default=None,
                   help="an existing fused int8 window image of this checkpoint (tools/fused_tflite.py --int8, e.g. "
                        "app/model/fused_int8.tflite), scored as the fused_int8 path as the firmware runs it "
                        "(default: the C core)")
    p.add_argument("--fused-stream-tflite", default=None,
                   help="an existing fused int8 streaming image (tools/fused_tflite.py --int8 --streaming, e.g. "
                        "app/model/fused_stream_int8.tflite), scored as the fused_int8_stream path (default: one "
                        "made from the checkpoint and the calibration)")
    p.add_argument("--out", default=None, help="output folder (default: <checkpoint folder>/compare_paths)")
    p.add_argument("--data", default=None,
                   help="data source for prepare_data (default: the generated set the checkpoint was trained on, "
                        "else the config's generated set)")
    p.add_argument("--calib", default=CALIB_DEFAULT, help=CALIB_HELP)
    p.add_argument("--calib-clips", type=int, default=CALIB_CLIPS,
                   help=f"clips to calibrate both int8 paths on (default {CALIB_CLIPS})")
    p.add_argument("--test", type=int, default=None, help="test clips to score (default: the whole test split)")
    p.add_argument("--real", default=None,
                   help="also score a real-clip subset: v2_test_dev or v1_sample (without the clips of any "
                        "speaker the checkpoint was trained on)")
    p.add_argument("--real-clips", type=int, default=None, help="real clips to score (default: all)")
    p.add_argument("--paths", default=",".join(INT8_PATHS),
                   help="comma-separated int8 paths to run, of " + ", ".join(INT8_PATHS) + " (the float "
                        "references always run; builtin_int8 is the slow one: about 0.6 s a clip)")
    p.add_argument("--y-bits", type=int, choices=(8, 16), default=None,
                   help="width of the fused kernels' scan output and gate (default: the export's, "
                        "mamba_kws.fused.quantize.Y_BITS)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    paths = tuple(x.strip() for x in args.paths.split(",") if x.strip())
    unknown = sorted(set(paths) - set(INT8_PATHS))
    if unknown or not paths:
        raise CompareError(f"--paths {args.paths!r}: choose from {', '.join(INT8_PATHS)}")
    if args.calib_clips < 1:
        raise CompareError(f"--calib-clips counts clips: it must be >= 1, got {args.calib_clips}")
    for name, value in (("--test", args.test), ("--real-clips", args.real_clips)):
        if value is not None and value < 1:
            raise CompareError(f"{name} counts clips: it must be >= 1, got {value}")
    for name, value in (("--tflite", args.tflite), ("--fused-tflite", args.fused_tflite),
                        ("--fused-stream-tflite", args.fused_stream_tflite)):
        if value and not Path(value).is_file():
            raise CompareError(f"{name} {value}: no such file")
    from .checkpoint import load_checkpoint

    t0 = time.time()
    model, cfg, meta = load_checkpoint(args.checkpoint)
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "compare_paths"
    out.mkdir(parents=True, exist_ok=True)
    source = data_source(meta, args.data)
    calib = calibration_features(cfg, args.calib, args.calib_clips)
    sets, used = clip_sets(cfg, source, args.test, args.real, args.real_clips, Path(args.checkpoint))
    chunks = cfg.export.get("time_chunks", 1)
    data = tpath = None
    builtin_io = "int8"
    if "builtin_int8" in paths and args.tflite:
        tpath = Path(args.tflite)
        data = tpath.read_bytes()
        builtin_io = check_tflite(data, cfg, cfg.features.frames, str(tpath))
    elif "builtin_int8" in paths:
        if not args.no_progress:
            print("exporting the builtin int8 model (TFLite converter) ...", flush=True)
        data = builtin_int8(model, calib, chunks=chunks)
        tpath = out / "model_int8.tflite"
        tpath.write_bytes(data)
    fused_calib = calib if any(p.startswith("fused") for p in paths) else None
    read = lambda f: Path(f).read_bytes() if f else None  # noqa: E731
    runs = Paths(model, cfg, data, fused_calib, paths, args.y_bits, read(args.fused_tflite),
                 read(args.fused_stream_tflite))
    report: dict[str, Any] = {
        "checkpoint": str(args.checkpoint), "config": cfg.name, "data": used, "paths": list(paths),
        "fused_y_bits": runs.qm.blocks[0].ssm.y_bits if runs.qm is not None and runs.qm.blocks else None,
        "calibration": resolve(args.calib), "calibration_clips": int(len(calib)),
        "builtin_int8_tflite": None if tpath is None else str(tpath),
        "builtin_io": None if tpath is None else builtin_io,
        "fused_int8": (f"{args.fused_tflite} as the firmware runs it (TFLM builtins + the C core's MAMBA_BLOCK)"
                       if args.fused_tflite else
                       "modules/tflm_mamba C core (tm_model_q8_run), host gcc build via ctypes"),
        "fused_int8_stream": f"{args.fused_stream_tflite or 'the streaming .tflite'}'s body (TFLM builtins + the C "
                             "core's MAMBA_BLOCK), one step at a time, and the firmware's float readout "
                             "(app/src/inference.cc)",
        "sets": compare(runs, sets, not args.no_progress),
    }
    report["seconds"] = round(time.time() - t0, 1)
    (out / "compare_paths.json").write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwrote {out / 'compare_paths.json'} ({report['seconds']} s)")
    return 0
