"""tools/compare_paths.py on the tiny config: the builtin-op int8 .tflite (TFLM), the fused int8 C
core (host build) and PyTorch float run on a handful of feature windows; the table's structure and
the agreement arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mamba_kws.compare_paths import (
    INT8_PATHS,
    PAIRS,
    PATHS,
    CompareError,
    check_tflite,
    reference,
    summarize,
    top1_agreement,
)

FEATURE_MAX = 26.0
STEPS = 16  # the unrolled graph over 16 steps, not 49: same ops, faster conversion


def _features(cfg, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth, feature-like windows (per-channel level + a slow wobble), so that int8 has a real range to cover
    base = rng.uniform(2, 14, (n, 1, cfg.features.channels))
    wobble = np.cumsum(rng.normal(0, 0.8, (n, STEPS * cfg.model.frame_stack, cfg.features.channels)), axis=1) * 0.3
    return np.clip(base + wobble, 0, FEATURE_MAX).astype(np.float32)


@pytest.fixture(scope="module")
def run(tiny_cfg):
    from mamba_kws.compare_paths import Paths, builtin_int8, compare
    from mamba_kws.model import build_model

    torch.manual_seed(0)
    model = build_model(tiny_cfg).eval()
    with torch.no_grad():  # non-trivial batchnorm statistics, so that folding them matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    calib = _features(tiny_cfg, 16, 1)
    data = builtin_int8(model, calib, steps=STEPS)
    paths = Paths(model, tiny_cfg, data, calib)
    x = _features(tiny_cfg, 8, 2)
    y = np.arange(8) % len(tiny_cfg.labels)
    return {"paths": paths, "data": data, "x": x, "y": y, "report": compare(paths, {"test": (x, y)}, progress=False)}


def test_top1_agreement_arithmetic():
    a = np.array([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0]])
    b = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert top1_agreement(a, a) == 1.0
    assert top1_agreement(a, b) == pytest.approx(1 / 3)
    with pytest.raises(CompareError):
        top1_agreement(a, b[:2])


def test_summarize_self_agreement_and_errors():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(20, 5)).astype(np.float32)
    other = ref + rng.normal(0, 0.5, size=ref.shape).astype(np.float32)
    targets = ref.argmax(1)
    s = summarize({"torch_float": ref, "builtin_int8": ref.copy(), "fused_int8": other}, targets)
    assert s["n"] == 20
    assert s["accuracy"]["torch_float"] == 1.0 and s["accuracy"]["builtin_int8"] == 1.0
    assert s["agreement"]["builtin_int8 vs torch_float"] == 1.0
    assert s["max_abs_logit_error_vs_float"]["builtin_int8"] == 0.0
    want = float(np.mean(other.argmax(1) == ref.argmax(1)))
    assert s["agreement"]["fused_int8 vs torch_float"] == pytest.approx(want)
    assert s["agreement"]["fused_int8 vs builtin_int8"] == pytest.approx(want)
    assert s["accuracy"]["fused_int8"] == pytest.approx(want)
    assert s["max_abs_logit_error_vs_float"]["fused_int8"] == pytest.approx(float(np.abs(other - ref).max()))


def test_per_class_accuracy():
    y = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    s = summarize({"torch_float": y}, np.array([0, 1, 1, 0]), ("a", "b", "c"))
    assert s["per_class_accuracy"]["torch_float"] == {"a": 0.5, "b": 0.5, "c": None}
    assert "per_class_accuracy" not in summarize({"torch_float": y}, np.array([0, 1, 1, 0]))


def test_three_paths_table_on_tiny(run):
    r = run["report"]["test"]
    assert r["n"] == len(run["x"])
    assert set(r["accuracy"]) == set(PATHS)
    assert set(r["agreement"]) == {f"{a} vs {b}" for a, b in PAIRS}
    assert set(r["max_abs_logit_error_vs_float"]) == set(INT8_PATHS)
    for v in r["accuracy"].values():
        assert 0.0 <= v <= 1.0
    # measured on these 8 windows: each int8 path agrees with float on 7 (the 8th has a top-2 margin
    # of 0.36) and the two int8 paths on all 8; the float model's commonest class covers only 4
    assert r["agreement"]["builtin_int8 vs torch_float"] >= 6 / 8
    assert r["agreement"]["fused_int8 vs torch_float"] >= 6 / 8
    assert r["agreement"]["fused_int8 vs builtin_int8"] >= 7 / 8
    assert r["agreement"]["fused_int8_stream vs torch_float_stream"] >= 6 / 8


def test_agreement_is_that_of_the_paths_logits(run):
    """The reported figures are the argmax agreement of what each path actually computed."""
    logits = run["paths"].logits(run["x"], progress=False)
    assert set(logits) == set(PATHS)
    for y in logits.values():
        assert y.shape == (len(run["x"]), len(run["paths"].cfg.labels)) and y.dtype == np.float32
    r = run["report"]["test"]
    for a, b in PAIRS:
        assert r["agreement"][f"{a} vs {b}"] == float(np.mean(logits[a].argmax(1) == logits[b].argmax(1)))
    for p in PATHS:
        assert r["accuracy"][p] == float(np.mean(logits[p].argmax(1) == run["y"]))
    # both int8 paths approximate the same float model: measured largest logit error 1.85 (0.12 of the
    # float logits' span, 15.3) and mean 0.12 / 0.11 (under 0.01 of the span)
    span = float(np.ptp(logits["torch_float"]))
    for p in INT8_PATHS:
        assert r["max_abs_logit_error_vs_float"][p] < 0.2 * span
        assert float(np.abs(logits[p] - logits[reference(p)]).mean()) < 0.02 * span
    # the streaming runs start from the state the previous clip left: not the clip-alone figures
    assert not np.allclose(logits["torch_float_stream"], logits["torch_float"], atol=1e-3)


def test_stream_path_is_the_firmware_image(run, tiny_cfg, tmp_path):
    """fused_int8_stream is what the firmware computes: the streaming .tflite of the same quantisation run
    hop by hop by firmware.ImageModel (app/src/inference.cc on the host) gives the same posteriors after a
    clip heard right after another one."""
    from mamba_kws.firmware import ImageModel
    from mamba_kws.fused.quantize import float_weights
    from mamba_kws.fused_tflite import build_int8
    from mamba_kws.stream import softmax

    paths, cfg = run["paths"], tiny_cfg
    path = tmp_path / "stream.tflite"
    path.write_bytes(build_int8(float_weights(paths.model), paths.qm, cfg, streaming=True))
    image = ImageModel(cfg, path, "stream")
    k, frames = cfg.model.frame_stack, cfg.features.frames
    rng = np.random.default_rng(5)
    ch = cfg.features.channels
    seq = np.clip(rng.uniform(2, 14, (1, ch)) + rng.normal(0, 2, (2 * frames, ch)), 0, FEATURE_MAX).astype(np.float32)
    for i in range(0, len(seq) // k * k, k):
        p = image.hop(seq[i:i + k])
    got = softmax(paths._stream(seq, cfg.steps).astype(np.float64))
    assert np.allclose(got, p, atol=1e-6), (got, p)


def test_check_tflite_refuses_a_model_of_another_length(run, tiny_cfg):
    check_tflite(run["data"], tiny_cfg, STEPS * tiny_cfg.model.frame_stack, "ok.tflite")
    with pytest.raises(CompareError, match="input shape"):
        check_tflite(run["data"], tiny_cfg, tiny_cfg.features.frames, "short.tflite")


def test_builtin_path_takes_an_int16x8_model_and_refuses_float(run, tiny_cfg):
    """--tflite model_int16x8.tflite (tools/export.py --kinds int16x8) runs as the builtin path; its logits
    are closer to float than the int8 model's; a float32 .tflite is refused in one line."""
    from mamba_kws.compare_paths import Paths, compare
    from mamba_kws.export.convert import convert
    from mamba_kws.export.pipeline import postprocess
    from mamba_kws.export.tfgraph import build_tf_function

    model, frames = run["paths"].model, STEPS * tiny_cfg.model.frame_stack
    calib = _features(tiny_cfg, 16, 1)
    concrete = build_tf_function(model, steps=STEPS)
    data16 = postprocess(convert(concrete, "int16x8", calib))
    assert check_tflite(data16, tiny_cfg, frames, "x16.tflite") == "int16"
    assert check_tflite(run["data"], tiny_cfg, frames, "x8.tflite") == "int8"
    p16 = Paths(model, tiny_cfg, data16, None, ("builtin_int8",))
    r16 = compare(p16, {"test": (run["x"], run["y"])}, progress=False)["test"]
    r8 = run["report"]["test"]
    err = lambda r: r["max_abs_logit_error_vs_float"]["builtin_int8"]  # noqa: E731
    assert err(r16) < err(r8), (err(r16), err(r8))
    with pytest.raises(CompareError, match="not int8"):
        check_tflite(postprocess(convert(concrete, "float32")), tiny_cfg, frames, "f32.tflite")


def test_cli_missing_tflite_is_one_line(tmp_path, capsys):
    from mamba_kws.compare_paths import main
    from mamba_kws.errors import cli_main

    code = cli_main(main, ["--checkpoint", str(tmp_path / "x.pt"), "--tflite", str(tmp_path / "none.tflite")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file" in err[0]


def _tree(root) -> None:
    """A small Speech Commands v2 layout of tones: 3 keywords x 6 speakers, 2 of them the test split."""
    from mamba_kws.audio import write_wav

    test = []
    t = np.arange(16000) / 16000
    for wi, word in enumerate(("yes", "no", "up", "bed")):
        for s in range(6):
            rel = f"{word}/{s:08x}_nohash_0.wav"
            write_wav(root / rel, (8000 * np.sin(2 * np.pi * (200 + 150 * wi + 10 * s) * t)).astype(np.int16))
            if s < 2:
                test.append(rel)
    (root / "validation_list.txt").write_text("\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    rng = np.random.default_rng(0)
    write_wav(root / "_background_noise_" / "white.wav", (rng.standard_normal(16000 * 5) * 3000).astype(np.int16))


def test_cli_end_to_end_writes_json_and_reuses_tflite(tmp_path, tiny_cfg, capsys):
    """The whole tool on a tiny checkpoint: export, three paths, table, JSON; then again with --tflite
    (the exported file): the same figures."""
    import json

    from mamba_kws.checkpoint import save_checkpoint
    from mamba_kws.compare_paths import main
    from mamba_kws.model import build_model

    _tree(tmp_path / "sc")
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "run" / "best.pt", build_model(tiny_cfg).eval(), tiny_cfg)
    common = ["--checkpoint", str(tmp_path / "run" / "best.pt"), "--data", str(tmp_path / "sc"), "--calib", "fake",
              "--calib-clips", "8", "--no-progress"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    table = capsys.readouterr().out
    assert "fused_int8 vs builtin_int8" in table and "top-1 acc" in table
    a = json.loads((tmp_path / "a" / "compare_paths.json").read_text())
    assert (tmp_path / "a" / "model_int8.tflite").is_file()
    r = a["sets"]["test"]
    assert r["n"] > 0 and set(r["accuracy"]) == set(PATHS) and a["calibration_clips"] == 8
    assert a["calibration"] == "fake"
    assert main(common + ["--out", str(tmp_path / "b"), "--tflite", str(tmp_path / "a" / "model_int8.tflite")]) == 0
    b = json.loads((tmp_path / "b" / "compare_paths.json").read_text())
    assert b["sets"] == a["sets"]
    # the fused paths alone: no builtin export, the float references still there
    assert main(common + ["--out", str(tmp_path / "c"), "--paths", "fused_int8,fused_int8_stream"]) == 0
    c = json.loads((tmp_path / "c" / "compare_paths.json").read_text())
    assert not (tmp_path / "c" / "model_int8.tflite").exists() and c["builtin_int8_tflite"] is None
    assert set(c["sets"]["test"]["accuracy"]) == set(PATHS) - {"builtin_int8"}
    assert c["sets"]["test"]["accuracy"]["fused_int8"] == a["sets"]["test"]["accuracy"]["fused_int8"]


def test_context_order_is_a_fixed_shuffle():
    from mamba_kws.compare_paths import context_order

    before = context_order(50)
    assert sorted(before.tolist()) == list(range(50)) and (before != np.arange(50)).all()
    assert (before == context_order(50)).all()
    # sets are stored word by word: the clip just before in the set's own order must rarely be the context
    assert (before == np.arange(50) - 1).sum() <= 2


def test_existing_fused_images_are_scored_as_the_firmware_runs_them(run, tiny_cfg):
    """--fused-tflite / --fused-stream-tflite: the window image gives the C core's logits within 2 int8 steps;
    the streaming image, made as compare_paths makes its own, gives its figures exactly; an image of the wrong
    kind or shape is one clear error."""
    from mamba_kws.compare_paths import Paths
    from mamba_kws.fused.quantize import float_weights
    from mamba_kws.fused_tflite import build_int8

    paths, cfg = run["paths"], tiny_cfg
    fm, qm = float_weights(paths.model), paths.qm
    window, stream = build_int8(fm, qm, cfg), build_int8(fm, qm, cfg, streaming=True)
    rng = np.random.default_rng(7)
    x = np.clip(rng.uniform(2, 14, (6, 1, cfg.features.channels))
                + rng.normal(0, 2, (6, cfg.features.frames, cfg.features.channels)), 0, FEATURE_MAX).astype(np.float32)
    paths_fused = ("fused_int8", "fused_int8_stream")
    ours = Paths(paths.model, cfg, None, _features(cfg, 16, 1), paths_fused).logits(x, progress=False)
    theirs = Paths(paths.model, cfg, None, _features(cfg, 16, 1), paths_fused, fused_window=window,
                   fused_stream=stream).logits(x, progress=False)
    assert np.abs(theirs["fused_int8"] - ours["fused_int8"]).max() <= 2.001 * qm.logit_scale
    assert np.array_equal(theirs["fused_int8_stream"], ours["fused_int8_stream"])
    with pytest.raises(CompareError, match="fused window image: expected an int8 fused model"):
        Paths(paths.model, cfg, None, None, ("fused_int8",), fused_window=stream)
    with pytest.raises(CompareError, match="fused streaming image: not a fused streaming model"):
        Paths(paths.model, cfg, None, None, ("fused_int8_stream",), fused_stream=window)
    with pytest.raises(CompareError, match="fused window image: expected"):
        Paths(paths.model, cfg, None, None, ("fused_int8",), fused_window=run["data"])  # the builtin model


def test_stream_path_refuses_an_rmsnorm_model():
    """The firmware has no int8 streaming image of an rmsnorm model: one clear error, not another readout."""
    from mamba_kws.compare_paths import Paths
    from mamba_kws.config import load_config
    from mamba_kws.fused.quantize import fake_calibration
    from mamba_kws.model import build_model

    cfg = load_config("kws_mamba_ref")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    calib = fake_calibration(cfg, n=2)
    Paths(model, cfg, None, calib, ("fused_int8",))  # the C core runs it
    with pytest.raises(CompareError, match="rmsnorm has no int8 streaming"):
        Paths(model, cfg, None, calib, ("fused_int8", "fused_int8_stream"))
