"""Training: a tiny config beats chance, the same seed gives the same weights, resume and DDP work."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from mamba_kws.checkpoint import load_checkpoint, read_checkpoint
from mamba_kws.train import main as train_main


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def _train(repo_root, cache, out, *extra: str) -> None:
    assert train_main([
        "--config", str(repo_root / "models" / "tiny.yaml"), "--cache", str(cache), "--out", str(out),
        "--workers", "0", "--quiet", "--no-real-eval", *extra,
    ]) == 0


@pytest.fixture(scope="module")
def trained(repo_root, data_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    _train(repo_root, data_cache, out, "--epochs", "40")
    return out


def test_tiny_model_beats_chance(trained, tiny_cfg):
    summary = json.loads((trained / "summary.json").read_text())
    chance = 1.0 / tiny_cfg.num_classes
    assert summary["test_acc"] > 2.5 * chance, summary
    report = json.loads((trained / "eval_test.json").read_text())
    assert set(report["per_class"]) == set(tiny_cfg.labels)
    assert (trained / "confusion_test.png").stat().st_size > 10_000
    model, cfg, _ = load_checkpoint(trained / "best.pt", tiny_cfg)
    assert cfg.model == tiny_cfg.model and cfg.labels == tiny_cfg.labels


def test_same_seed_same_weights(repo_root, data_cache, tmp_path):
    _train(repo_root, data_cache, tmp_path / "a", "--max-steps", "4")
    _train(repo_root, data_cache, tmp_path / "b", "--max-steps", "4")
    a = read_checkpoint(tmp_path / "a" / "last.pt")["model"]
    b = read_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_continues_from_last_epoch(repo_root, data_cache, tmp_path):
    _train(repo_root, data_cache, tmp_path, "--epochs", "1")
    first = read_checkpoint(tmp_path / "last.pt")
    assert first["epoch"] == 0
    _train(repo_root, data_cache, tmp_path, "--epochs", "2", "--resume")
    second = read_checkpoint(tmp_path / "last.pt")
    assert second["epoch"] == 1 and second["step"] == 2 * first["step"]
    assert [h["epoch"] for h in second["history"]] == [1, 2]


def test_resume_refusals_are_one_line(repo_root, data_cache, tmp_path, capsys):
    from mamba_kws.errors import cli_main

    _train(repo_root, data_cache, tmp_path, "--epochs", "1", "--max-steps", "2")
    common = ["--config", str(repo_root / "models" / "tiny.yaml"), "--cache", str(data_cache), "--out", str(tmp_path),
              "--quiet", "--no-real-eval", "--resume"]
    (tmp_path / "best.pt").replace(tmp_path / "kept.pt")
    for extra, msg in ((["--set", "model.d_model=8"], "was trained with another config"),
                       (["--epochs", "1"], "already trained 1 of 1 epochs"),
                       (["--epochs", "2", "--init", str(tmp_path / "kept.pt"), "--set", "train.lr=0.001"],
                        "was trained with another config")):
        assert cli_main(train_main, [*common, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    (tmp_path / "kept.pt").replace(tmp_path / "last.pt")  # a best.pt has no optimizer state
    assert cli_main(train_main, [*common, "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be resumed: it has no optimizer" in err[0], err


def test_init_from_another_model_is_one_line(repo_root, data_cache, tmp_path, capsys, tiny_cfg):
    from mamba_kws.checkpoint import save_checkpoint
    from mamba_kws.config import load_config
    from mamba_kws.errors import cli_main
    from mamba_kws.model import build_model

    common = ["--config", str(repo_root / "models" / "tiny.yaml"), "--cache", str(data_cache), "--out", str(tmp_path),
              "--quiet", "--no-real-eval", "--max-steps", "1"]
    other = load_config(repo_root / "models" / "tiny.yaml", ["model.d_model=8"])
    save_checkpoint(tmp_path / "d8.pt", build_model(other), other)
    (tmp_path / "cut.pt").write_bytes((tmp_path / "d8.pt").read_bytes()[:2000])
    for ckpt, msg in (("d8.pt", "model.d_model: checkpoint 8 vs config 16"), ("cut.pt", "not a readable checkpoint"),
                      ("none.pt", "checkpoint not found")):
        assert cli_main(train_main, [*common, "--init", str(tmp_path / ckpt)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err


def test_training_set_smaller_than_a_batch_is_refused(repo_root, data_cache, tmp_path, capsys):
    from mamba_kws.errors import cli_main

    assert cli_main(train_main, ["--config", str(repo_root / "models" / "tiny.yaml"), "--cache", str(data_cache),
                                 "--out", str(tmp_path), "--quiet", "--no-real-eval",
                                 "--set", "train.batch_size=100000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "make no full batch of 100000" in err[0], err
    assert not (tmp_path / "best.pt").exists()


@pytest.mark.parametrize("context_steps", [0, 5])
def test_ddp_two_processes_on_cpu(repo_root, data_cache, tmp_path, context_steps):
    """torchrun with the gloo backend: the same code path as multi-GPU DDP, on two CPU processes,
    with and without train.stream_context_steps (which must go through the DDP wrapper too)."""
    config = repo_root / "models" / "tiny.yaml"
    if context_steps:
        text = config.read_text().replace("  seed: 0\n", f"  seed: 0\n  stream_context_steps: {context_steps}\n", 1)
        config = tmp_path / "tiny_ctx.yaml"
        config.write_text(text)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(repo_root / "tools" / "train.py"), "--config", str(config),
           "--cache", str(data_cache), "--out", str(tmp_path), "--workers", "0", "--quiet",
           "--no-real-eval", "--epochs", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["steps"] >= 1
    stored = read_checkpoint(tmp_path / "best.pt")["config"]["train"]["stream_context_steps"]
    assert stored == context_steps


def test_missing_data_dir_is_one_clear_line(repo_root, tmp_path):
    res = subprocess.run([sys.executable, str(repo_root / "tools" / "train.py"), "--data", str(tmp_path / "nope"),
                          "--config", str(repo_root / "models" / "tiny.yaml"), "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_bad_config_is_one_clear_line(repo_root, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  d_stat: 4\n")
    res = subprocess.run([sys.executable, str(repo_root / "tools" / "train.py"), "--config", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "model.d_stat" in res.stderr and "Traceback" not in res.stderr


def test_weight_average_is_what_best_pt_holds(repo_root, data_cache, tmp_path):
    _train(repo_root, data_cache, tmp_path, "--epochs", "1", "--max-steps", "6", "--set", "train.ema_decay=0.9")
    last, best = read_checkpoint(tmp_path / "last.pt"), read_checkpoint(tmp_path / "best.pt")
    assert last["ema"].keys() == last["model"].keys() == best["model"].keys()
    for k, v in best["model"].items():
        assert torch.equal(v, last["ema"][k]), k  # validation and best.pt use the average ...
    moved = [k for k, v in last["model"].items() if v.is_floating_point() and not torch.equal(v, last["ema"][k])]
    assert moved  # ... which lags the trained weights
    from mamba_kws.train import WeightAverage

    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    avg = WeightAverage(a, 0.5)
    avg.update(b, step=100)  # decay min(0.5, 101 / 110) = 0.5
    torch.testing.assert_close(avg.model.weight, 0.5 * (a.weight + b.weight))
