"""A fresh clone with nothing beside it: the demo's steps run end to end on a tiny config with no data root,
no teachers and no real clips; each absent input is one line that says what to run, and the rest goes on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def clone(repo_root, tmp_path_factory) -> Path:
    """The tracked files of the working tree, copied into an empty folder (no ../shared, no data/)."""
    dst = tmp_path_factory.mktemp("fresh") / "mamba-kws"
    files = subprocess.run(["git", "-C", str(repo_root), "ls-files", "-z"], capture_output=True, check=True,
                           ).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = repo_root / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    assert not (dst.parent / "shared").exists() and not (dst / "data").exists()
    return dst


def _run(clone: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KWS_")}
    env["PYTHONPATH"] = str(clone / "tools")  # the clone's package, not the one installed in the venv
    r = subprocess.run([sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{' '.join(args)} failed:\n{out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
    return out


def test_demo_steps_without_a_data_root(clone):
    run = "runs/tiny"
    out = _run(clone, "tools/train.py", "--config", "models/tiny.yaml", "--out", run, "--epochs", "2",
               "--workers", "0", "--quiet")
    assert (clone / run / "best.pt").is_file()
    noise = {p.name for p in (clone / "data" / "generated").glob("*/_background_noise_/*.wav")}
    assert "running_tap_8s.wav" in noise  # the excerpts that ship with the project stood in for the recordings

    out = _run(clone, "tools/evaluate.py", "--checkpoint", f"{run}/best.pt", "--teachers", "ds_cnn_l,mlperf_int8")
    assert "note: teachers ds_cnn_l, mlperf_int8 not found" in out
    assert "note: no real clips v2_test_dev" in out

    out = _run(clone, "tools/fused_tflite.py", "--checkpoint", f"{run}/best.pt", "--int8",
               "--out", f"{run}/fused/kws_fused_int8.tflite")
    assert (clone / run / "fused" / "kws_fused_int8.tflite").stat().st_size > 1000

    out = _run(clone, "tools/stream_eval.py", "--checkpoint", f"{run}/best.pt", "--minutes", "0.5",
               "--snr", "10", "--quiet")
    assert "note: no real clips v2_test_dev" in out
    assert (clone / run / "stream" / "stream_eval.json").is_file()

    out = _run(clone, "tools/compare_paths.py", "--checkpoint", f"{run}/best.pt", "--real", "v2_test_dev",
               "--test", "20", "--paths", "fused_int8,fused_int8_stream", "--no-progress")
    assert "note: no real clips v2_test_dev" in out and "test: 20 clips" in out

    out = _run(clone, "tools/size_table.py", run, "--targets", "cortex-m4", "--quiet")
    assert "note: no real clips v2_test_dev" in out and "generated test split clips" in out
