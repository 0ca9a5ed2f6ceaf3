"""Splitting a converted int8 .tflite into partitions (mamba_kws.export.split): running them in
order in TFLM must be bit-exact with the unsplit model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from mamba_kws.export import ExportError


@pytest.fixture(scope="module")
def tiny_int8(tiny_cfg):
    from mamba_kws.export.convert import convert
    from mamba_kws.export.pipeline import postprocess
    from mamba_kws.export.tfgraph import build_tf_function
    from mamba_kws.model import build_model

    torch.manual_seed(1)
    model = build_model(tiny_cfg).eval()
    rep = np.random.default_rng(0).uniform(0, 26, (12, 98, 40)).astype(np.float32)
    return postprocess(convert(build_tf_function(model, steps=20), "int8", rep[:, :40]))


@pytest.mark.parametrize("k", [2, 3])
def test_partitions_in_order_are_bit_exact(tiny_int8, tmp_path, k):
    from mamba_kws.export.split import SplitRunner, load_split, split_model
    from mamba_kws.export.tflm import TFLMModel

    manifest = split_model(tiny_int8, k, tmp_path, progress=False)
    assert manifest["k"] == k and len(manifest["carried"]) == k - 1
    ops = [p["ops"] for p in manifest["partitions"]]
    assert ops[0][0] == 0 and ops[-1][1] == manifest["source_ops"]
    assert all(a[1] == b[0] for a, b in zip(ops, ops[1:], strict=False))
    for p in manifest["partitions"]:
        assert p["arena_bytes"] > 0 and p["inputs"] and p["outputs"]
        for t in p["inputs"] + p["outputs"]:
            assert t["dtype"] == "int8" and "scale" in t and "zero_point" in t
    s = manifest["summary"]
    assert s["peak_ram_bytes"] >= s["max_partition_arena_bytes"]
    whole = TFLMModel(tiny_int8)
    runner = SplitRunner(*load_split(tmp_path))
    rng = np.random.default_rng(k)
    for _ in range(4):
        x = rng.integers(-128, 128, whole.inputs[0]["shape"]).astype(np.int8)
        assert np.array_equal(whole.run(x)[0], runner.run(x))


def test_a_partition_needs_less_arena_than_the_whole(tiny_int8, tmp_path):
    from mamba_kws.export.split import split_model
    from mamba_kws.export.tflm import min_arena

    manifest = split_model(tiny_int8, 3, tmp_path, progress=False)
    assert manifest["summary"]["max_partition_arena_bytes"] < min_arena(tiny_int8)


def test_split_cli_checks_and_writes_manifest(tiny_int8, tmp_path, capsys):
    from mamba_kws.export.split import main

    model = tmp_path / "m.tflite"
    model.write_bytes(tiny_int8)
    assert main(["--model", str(model), "-k", "2", "--check", "2"]) == 0
    manifest = json.loads((tmp_path / "split_k2" / "manifest.json").read_text())
    assert manifest["bit_exact_on"] == 2
    assert "peak RAM" in capsys.readouterr().out


def test_too_many_partitions_and_missing_manifest(tiny_int8, tmp_path):
    from mamba_kws.export.flatbuf import load_model
    from mamba_kws.export.split import choose_cuts, load_split

    n = len(load_model(tiny_int8).subgraphs[0].operators)
    with pytest.raises(ExportError, match="more partitions than the model has ops"):
        choose_cuts(load_model(tiny_int8), n + 1)
    with pytest.raises(ExportError, match="no manifest.json"):
        load_split(tmp_path)


def test_time_chunked_graph_splits_along_time_carrying_only_the_state(tiny_cfg, tmp_path):
    """export --time-chunks: float equal to PyTorch, and a cut between chunks carries per layer h and
    the conv window, the pooled sum and what is left of the stem output, nothing of a whole sequence."""
    from mamba_kws.export.convert import convert, tf_logits
    from mamba_kws.export.flatbuf import load_model, op_counts, tensor_info
    from mamba_kws.export.pipeline import postprocess
    from mamba_kws.export.split import SplitRunner, load_split, split_model
    from mamba_kws.export.tfgraph import build_tf_function
    from mamba_kws.export.tflm import TFLMModel
    from mamba_kws.model import build_model

    torch.manual_seed(2)
    model = build_model(tiny_cfg).eval()
    feats = np.random.default_rng(3).uniform(0, 26, (8, 98, 40)).astype(np.float32)
    concrete = build_tf_function(model, chunks=2)
    with torch.no_grad():
        ref = model(torch.from_numpy(feats[:2])).numpy()
    assert np.abs(tf_logits(concrete, feats[:2]) - ref).max() < 1e-4
    data = postprocess(convert(concrete, "int8", feats))
    fm = load_model(data)
    assert not set(op_counts(fm)) & {"QUANTIZE", "DEQUANTIZE"}
    assert all(tensor_info(fm, i).const or tensor_info(fm, i).dtype == "int8"
               for i in range(len(fm.subgraphs[0].tensors)))
    manifest = split_model(data, 2, tmp_path, progress=False)
    m = tiny_cfg.model
    state = m.n_layers * (m.d_inner * m.d_state + (m.d_conv - 1) * m.d_inner) + m.d_model
    stem_rest = (tiny_cfg.steps - tiny_cfg.steps // 2) * m.d_model
    assert manifest["summary"]["max_carried_bytes"] <= state + stem_rest
    whole = TFLMModel(data)
    runner = SplitRunner(*load_split(tmp_path))
    x = np.random.default_rng(4).integers(-128, 128, whole.inputs[0]["shape"]).astype(np.int8)
    assert np.array_equal(whole.run(x)[0], runner.run(x))


def test_int16x8_time_chunks_split_bit_exact(tiny_cfg, tmp_path):
    """The int16x8 graph in time chunks (one scale per tensor for all chunks, export.postprocess) splits
    into partitions that carry int16 tensors and, run in order, are bit-exact with the whole."""
    from mamba_kws.export.convert import convert
    from mamba_kws.export.pipeline import postprocess
    from mamba_kws.export.split import SplitRunner, load_split, split_model
    from mamba_kws.export.tfgraph import build_tf_function
    from mamba_kws.export.tflm import TFLMModel
    from mamba_kws.model import build_model

    torch.manual_seed(1)
    model = build_model(tiny_cfg).eval()
    rep = np.random.default_rng(0).uniform(0, 26, (12, 98, 40)).astype(np.float32)
    data = postprocess(convert(build_tf_function(model, steps=20, chunks=2), "int16x8", rep[:, :40]))
    manifest = split_model(data, 2, tmp_path, progress=False)
    assert {t["dtype"] for p in manifest["partitions"] for t in p["inputs"] + p["outputs"]} == {"int16"}
    whole, runner = TFLMModel(data), SplitRunner(*load_split(tmp_path))
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.integers(-32768, 32768, whole.inputs[0]["shape"]).astype(np.int16)
        assert np.array_equal(whole.run(x)[0], runner.run(x))
