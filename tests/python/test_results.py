"""results.json and the README's result tables: collected from the measuring commands' outputs, and current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mamba_kws import results
from mamba_kws.errors import KWSError


def test_readme_tables_match_results_json(repo_root):
    res = json.loads((repo_root / "results.json").read_text())
    block = results.readme_block((repo_root / "README.md").read_text())
    assert block == results.render(res), "README tables are stale: run `make results` (tools/results.py --readme)"


def _fake_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "stream").mkdir(parents=True)
    torch.save({"model": {}}, run / "best.pt")
    (run / "summary.json").write_text(json.dumps({
        "config": "kws_mamba", "params": 29092, "epochs": 40, "train_seconds": 4400.0, "best_val_acc": 0.9,
        "selected_on": "mltk validation speakers", "train_clips": 90000, "distill": "ensemble"}))
    rep = {"n": 2202, "accuracy": 0.9}
    (run / "eval_v2_test_dev_teachers.json").write_text(json.dumps(
        {"kws_mamba": rep, "mlperf_int8": {"n": 2202, "accuracy": 0.9137}}))
    (run / "size_table.json").write_text(json.dumps([{
        "run": str(run), "model": {"d_model": 40, "n_layers": 2, "d_state": 8, "expand": 2}, "params": 29092,
        "clips": 2202, "float_acc": 0.9, "int8_acc": 0.895, "int8_agreement": 0.98, "flash_bytes": 50000,
        "targets": {"cortex-m4": {"step_instructions": 104000, "ram_bytes": 5000}}}]))
    (run / "compare_paths").mkdir()
    (run / "compare_paths" / "compare_paths.json").write_text(json.dumps({"sets": {
        "test": {"n": 10, "accuracy": {}, "agreement": {}},
        "v2_test_dev": {"n": 2202, "accuracy": {"torch_float": 0.894, "fused_int8": 0.894,
                                                "torch_float_stream": 0.905, "fused_int8_stream": 0.899},
                        "agreement": {"fused_int8 vs torch_float": 0.977,
                                      "fused_int8_stream vs torch_float_stream": 0.979}}}}))
    return run


def test_collect_and_render(tmp_path):
    run = _fake_run(tmp_path)
    res = results.collect(run, 60)
    assert res["accuracy"]["models"] == {"kws_mamba": 0.9, "mlperf_int8": 0.9137}
    assert res["accuracy"]["command"].startswith("python tools/evaluate.py --checkpoint")
    assert len(res["checkpoints"]["best.pt"]) == 64
    assert {m["figures"] for m in res["missing"]} == {"kernels", "stream"}
    text = results.render(res)
    assert "| mlperf_int8 | 91.4 % |" in text
    assert "| 40 | 2 | 8 | 2 | 29,092 | 90.0 % | 89.5 % | 98.0 % | 50,000 B | 5,000 B | 104,000 |" in text
    assert "Not measured in this run (stream)" in text
    assert "| the clip right after another clip, as the streaming firmware hears it | 90.5 % | 89.9 % | 97.9 % |" \
        in text


def test_cli_writes_readme_block_and_checks_it(tmp_path, capsys):
    run = _fake_run(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{results.BEGIN}\nold\n{results.END}\n\nrest\n")
    out = tmp_path / "results.json"
    assert results.main(["--run", str(run), "--out", str(out), "--readme", str(readme)]) == 0
    assert results.main(["--check", "--out", str(out), "--readme", str(readme)]) == 0
    assert readme.read_text().endswith(f"{results.END}\n\nrest\n")
    readme.write_text(readme.read_text().replace("91.4 %", "95.0 %"))
    assert results.main(["--check", "--out", str(out), "--readme", str(readme)]) == 1


def test_bad_run_is_one_error(tmp_path):
    with pytest.raises(KWSError, match="no best.pt"):
        results.collect(tmp_path, 60)


def test_stream_table_marks_the_teachers(tmp_path):
    run = _fake_run(tmp_path)
    point = {"detection_rate": 0.3158, "threshold": 0.92, "false_alarms_per_hour": 1.0}
    res = {"yaml_policy": {"detection_rate": 0.556, "false_alarms_per_hour": 21.0},
           "at_1_fa_per_hour": point, "at_10_fa_per_hour": None}
    (run / "stream" / "stream_eval.json").write_text(json.dumps({
        "minutes": 60.0, "snr_db": [5.0, 10.0, 20.0], "streams": [{"keywords": 590}],
        "results": {"window": {**res, "kind": "model"}, "ds_cnn_l": {**res, "kind": "teacher"},
                    "device": {**res, "kind": "device"}}}))
    got = results.collect(run, 60)
    assert "--teachers ds_cnn_l,mlperf_int8" in got["stream"]["command"]
    text = results.render(got)
    assert "| window | 31.6 % | - | 55.6 % | 21 |" in text
    assert "| ds_cnn_l (pretrained teacher, 1 s every hop) | 31.6 % | - | 55.6 % | 21 |" in text
    assert "| device (the firmware's int8 streaming image) | 31.6 % | - | 55.6 % | 21 |" in text


def test_per_class_table_shows_the_firmware_model(tmp_path):
    """compare_paths' per-class accuracy of the int8 device paths joins evaluate's per-class table."""
    run = _fake_run(tmp_path)
    per = {"yes": {"accuracy": 0.9}, "no": {"accuracy": 0.8}}
    (run / "eval_v2_test_dev_teachers.json").write_text(json.dumps(
        {"kws_mamba": {"n": 2202, "accuracy": 0.9, "per_class": per}}))
    cp = json.loads((run / "compare_paths" / "compare_paths.json").read_text())
    cp["sets"]["v2_test_dev"]["per_class_accuracy"] = {"torch_float": {"yes": 0.1, "no": 0.1},
                                                      "fused_int8_stream": {"yes": 0.875, "no": None}}
    (run / "compare_paths" / "compare_paths.json").write_text(json.dumps(cp))
    res = results.collect(run, 60)
    assert res["int8"]["per_class"] == {"fused_int8_stream": {"yes": 0.875, "no": None}}
    text = results.render(res)
    assert "| class | kws_mamba | fused int8 (firmware, stream) |" in text
    assert "| `yes` | 90.0 % | 87.5 % |" in text and "| `no` | 80.0 % | - |" in text
