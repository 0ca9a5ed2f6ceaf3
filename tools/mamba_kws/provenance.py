"""Provenance of a model file: a JSON beside it (<name>.tflite -> <name>.json) that says where it came from.

    {"file": "fused_int8.tflite", "sha256": "...", "bytes": 39368,
     "source": {"checkpoint": "runs/kws_mamba/best.pt", "sha256": "..."},   # or {"model": <file>, "sha256"}
     "config": {"name": "kws_mamba", "path": "models/kws_mamba.yaml", "sha256": "..."},
     "commands": ["python tools/fused_tflite.py --checkpoint ... --int8 --out ..."],
     "git": {"revision": "<commit>", "dirty": false},
     "accuracy": {...} or null,                                              # what the making tool measured
     "note": "..."}

The tool that writes a model file writes this beside it (tools/firmware_models.py, tools/gen_firmware.py
for the streaming body); `check` says what does not match the file (tests/python/test_firmware.py).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# what identifies a model file and its source; the rest (git revision, commands) may differ between two
# runs that make the same bytes
_IDENTITY = ("file", "sha256", "bytes", "source")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def json_path(model: Path) -> Path:
    return Path(model).with_suffix(".json")


def git_revision() -> dict[str, Any] | None:
    """The repository's commit and whether its tracked files differ from it (None outside git)."""
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip() != ""
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"revision": rev, "dirty": dirty}


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def config_entry(name: str, path: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if path is not None and Path(path).is_file():
        out |= {"path": _rel(Path(path)), "sha256": sha256_file(Path(path))}
    return out


def checkpoint_source(checkpoint: Path) -> dict[str, Any]:
    return {"checkpoint": _rel(Path(checkpoint)), "sha256": sha256_file(Path(checkpoint))}


def write(model: Path, source: dict[str, Any], commands: list[str], config: dict[str, Any] | None = None,
          accuracy: dict[str, Any] | None = None, note: str | None = None) -> Path:
    """Write <model>.json beside `model`; returns its path."""
    model = Path(model)
    meta: dict[str, Any] = {"file": model.name, "sha256": sha256_file(model), "bytes": model.stat().st_size,
                            "source": source, "config": config, "commands": commands, "git": git_revision(),
                            "accuracy": accuracy}
    if note:
        meta["note"] = note
    path = json_path(model)
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def derived(model: Path, src: Path, what: str, command: str) -> Path:
    """Provenance of a file made from another model file `src`: its source is `src` (name, sha256);
    config and accuracy are carried over from `src`'s provenance where it has one. A provenance that
    already names these bytes and this source is kept as it is (its revision is when they were made)."""
    old = load(model)
    if old is not None and old.get("sha256") == sha256_file(model) and old.get("file") == Path(model).name \
            and old.get("source") == {"model": Path(src).name, "sha256": sha256_file(src)}:
        return json_path(model)
    parent = load(src)
    return write(model, {"model": Path(src).name, "sha256": sha256_file(src)}, [command],
                 parent.get("config") if parent else None, parent.get("accuracy") if parent else None, what)


def load(model: Path) -> dict[str, Any] | None:
    path = json_path(model)
    return json.loads(path.read_text()) if path.is_file() else None


def differs(a: Path, b: Path) -> bool:
    """Whether two provenance files name different files or sources (not counting revision, commands)."""
    ja, jb = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    return any(ja.get(k) != jb.get(k) for k in _IDENTITY)


def check(model: Path) -> list[str]:
    """What is wrong with `model`'s provenance: missing, or naming other bytes than the file's."""
    model = Path(model)
    meta = load(model)
    if meta is None:
        return [f"{model.name}: no provenance {json_path(model).name} beside it"]
    problems = []
    if meta.get("file") != model.name:
        problems.append(f"{json_path(model).name} describes {meta.get('file')}, not {model.name}")
    if meta.get("sha256") != sha256_file(model) or meta.get("bytes") != model.stat().st_size:
        problems.append(f"{model.name}: its sha256/size differ from {json_path(model).name} (replaced without "
                        "make firmware-models?)")
    src = meta.get("source") or {}
    if "model" in src:
        other = model.with_name(src["model"])
        if not other.is_file() or sha256_file(other) != src.get("sha256"):
            problems.append(f"{model.name} was made from another {src['model']} than the one beside it")
    return problems
