"""tools/firmware_models.py: the firmware's model files (app/model/) from checkpoints, each with its
provenance, and the small headers that go with them (= make firmware-models).

    python tools/firmware_models.py --checkpoint runs/kws_mamba/best.pt \
        --qat-checkpoint runs/kws_mamba_int8/best.pt --config models/kws_mamba.yaml

Steps, each a command of the project's own tools (the commands go into the provenance):

  1. model_int8.tflite         tools/export.py --checkpoint <qat> --kinds int8 (the paper's builtin-op model;
                               its accuracy: the export's report.json, int8 in TFLM against PyTorch)
  2. fused_int8.tflite         tools/fused_tflite.py --checkpoint <ckpt> --int8
  3. fused_stream_int8.tflite  tools/fused_tflite.py --checkpoint <ckpt> --int8 --streaming
  4. <name>.json beside each (mamba_kws.provenance): checkpoint sha256, config, commands, git revision
  5. tools/gen_firmware.py: the headers in app/src/generated/ and the streaming body

The built-in clips (app/clips/) are kept: a new model may no longer detect them with margin; then pick
new ones with `python tools/gen_firmware.py --clips <Speech Commands folder>`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import provenance
from .errors import KWSError

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"


class FirmwareModelsError(KWSError):
    """The firmware's models cannot be made (missing checkpoint, a step failed)."""


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _run(script: str, args: list[str]) -> tuple[str, str]:
    """Run tools/<script> with this Python; returns (the command as written in the provenance, stdout)."""
    shown = "python " + " ".join(shlex.quote(a) for a in [f"tools/{script}", *args])
    print(f"\n$ {shown}", flush=True)
    r = subprocess.run([sys.executable, str(TOOLS / script), *args], cwd=REPO, stdout=subprocess.PIPE, text=True)
    print(r.stdout, end="", flush=True)
    if r.returncode != 0:
        raise FirmwareModelsError(f"step failed ({shown}, exit {r.returncode}); its message is above")
    return shown, r.stdout


def make_models(checkpoint: Path, qat_checkpoint: Path, config: Path, out: Path, work: Path) -> list[dict]:
    """Steps 1-4 of the module's docstring; returns a summary row per model file."""
    for ck in (checkpoint, qat_checkpoint):
        if not Path(ck).is_file():
            raise FirmwareModelsError(f"no checkpoint {ck} (train one: make model, then the --qat fine-tuning; "
                                      "or give CHECKPOINT=... QAT_CHECKPOINT=...)")
    from .config import load_config

    cfg = load_config(str(config))
    conf = provenance.config_entry(cfg.name, Path(config))
    out.mkdir(parents=True, exist_ok=True)
    rows = []

    export_dir = work / "export"
    cmd, _ = _run("export.py", ["--checkpoint", _rel(qat_checkpoint), "--config", _rel(config), "--kinds", "int8",
                                "--out", _rel(export_dir)])
    report = json.loads((export_dir / "report.json").read_text())
    int8 = report["models"]["int8"]
    shutil.copyfile(export_dir / "model_int8.tflite", out / "model_int8.tflite")
    accuracy = {"int8_in_tflm_vs_torch": int8.get("vs_torch_in_tflm"), "torch_accuracy": report.get("torch_accuracy"),
                "test_clips": report.get("test_clips")}
    provenance.write(out / "model_int8.tflite", provenance.checkpoint_source(qat_checkpoint),
                     [cmd, f"cp {_rel(export_dir)}/model_int8.tflite {_rel(out)}/"], conf, accuracy)
    rows.append({"file": "model_int8.tflite", "arena": int8.get("arena_bytes")})

    for name, extra in (("fused_int8.tflite", []), ("fused_stream_int8.tflite", ["--streaming"])):
        cmd, _ = _run("fused_tflite.py", ["--checkpoint", _rel(checkpoint), "--int8", *extra, "--out",
                                          _rel(out / name)])
        provenance.write(out / name, provenance.checkpoint_source(checkpoint), [cmd], conf, None)
        rows.append({"file": name, "arena": None})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Make app/model/*.tflite from checkpoints, with provenance, and "
                                            "regenerate the firmware's headers (make firmware-models).")
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="the float checkpoint for the fused models (runs/kws_mamba/best.pt)")
    p.add_argument("--qat-checkpoint", type=Path, default=None,
                   help="the int8-aware checkpoint for the builtin-op model (tools/train.py --qat; default "
                        "<checkpoint folder>_int8/best.pt)")
    p.add_argument("--config", type=Path, default=REPO / "models" / "kws_mamba.yaml", help="model YAML")
    p.add_argument("--out", type=Path, default=REPO / "app" / "model", help="model folder (default app/model)")
    p.add_argument("--work", type=Path, default=REPO / "build" / "firmware-models",
                   help="folder for the export's intermediate files (default build/firmware-models)")
    args = p.parse_args(argv)
    qat = args.qat_checkpoint or args.checkpoint.parent.with_name(args.checkpoint.parent.name + "_int8") / "best.pt"
    rows = make_models(args.checkpoint, qat, args.config, args.out, args.work)
    builtin_arena = rows[0]["arena"]
    gen = ["--config", _rel(args.config), "--tflite", _rel(args.out / "model_int8.tflite"),
           "--fused-tflite", _rel(args.out / "fused_int8.tflite"),
           "--stream-tflite", _rel(args.out / "fused_stream_int8.tflite")]
    if builtin_arena:
        gen += ["--arena-bytes", str(builtin_arena)]
    _run("gen_firmware.py", gen)
    print(f"\n{'model file':<32} {'bytes':>8}  sha256")
    for f in sorted(args.out.glob("*.tflite")):
        print(f"{f.name:<32} {f.stat().st_size:>8}  {provenance.sha256_file(f)[:16]}")
    print("\nprovenance: <name>.json beside each; headers: app/src/generated/. The built-in clips were kept: "
          "run tools/gen_firmware.py --clips DIR if the QEMU scenarios stop detecting them.")
    return 0
