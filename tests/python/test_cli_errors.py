"""Bad input to the tools: one line on stderr starting with `error:` and exit status 2, never a
traceback, and never a run that goes on with garbage. Every case fails before any data is made."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import torch
from mamba_kws.audio import read_wav, write_wav
from mamba_kws.checkpoint import FORMAT, save_checkpoint
from mamba_kws.compare_paths import main as compare_paths_main
from mamba_kws.errors import cli_main
from mamba_kws.evaluate import main as evaluate_main
from mamba_kws.export.bench import main as bench_export_main
from mamba_kws.export.pipeline import main as export_main
from mamba_kws.export.split import main as split_main
from mamba_kws.fused_tflite import main as fused_tflite_main
from mamba_kws.int8_costs import main as int8_costs_main
from mamba_kws.model import build_model
from mamba_kws.size_table import main as size_table_main
from mamba_kws.stream_eval import main as stream_eval_main
from mamba_kws.train import main as train_main


def _one_line(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), (code, err)
    return err[0]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory, tiny_cfg):
    """A good tiny checkpoint and broken ones."""
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    save_checkpoint(d / "good.pt", build_model(tiny_cfg), tiny_cfg)
    (d / "text.pt").write_text("not a checkpoint\n")
    (d / "cut.pt").write_bytes((d / "good.pt").read_bytes()[:3000])
    torch.save({"weights": [1, 2]}, d / "other.pt")
    torch.save({"format": FORMAT, "config": tiny_cfg.to_dict()}, d / "noweights.pt")
    return d


BAD_CHECKPOINTS = [("none.pt", "checkpoint not found"), ("text.pt", "not a readable checkpoint"),
                   ("cut.pt", "not a readable checkpoint"), ("other.pt", "not a mamba_kws checkpoint"),
                   ("noweights.pt", "incomplete checkpoint")]
TOOLS = {
    "evaluate": (evaluate_main, ["--data", "", "--real", ""]),
    "export": (export_main, []),
    "stream_eval": (stream_eval_main, []),
    "compare_paths": (compare_paths_main, []),
    "int8_costs": (int8_costs_main, []),
    "fused_tflite": (fused_tflite_main, ["--out", "{tmp}/x.tflite"]),
    "bench_export": (bench_export_main, ["--config", "tiny"]),
    "train --init": (train_main, ["--config", "tiny", "--quiet", "--no-real-eval", "--out", "{tmp}/run"]),
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("name, msg", BAD_CHECKPOINTS)
def test_bad_checkpoint_is_one_line(tool, name, msg, ckpts, tmp_path, capsys):
    main, extra = TOOLS[tool]
    flag = "--init" if tool.startswith("train") else "--checkpoint"
    argv = [flag, str(ckpts / name), *(a.replace("{tmp}", str(tmp_path)) for a in extra)]
    line = _one_line(capsys, cli_main(main, argv))
    assert msg in line and name in line


def test_size_table_checks_every_run_first(ckpts, tmp_path, capsys):
    for i, name in enumerate(("good.pt", "cut.pt")):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "best.pt").write_bytes((ckpts / name).read_bytes())
    line = _one_line(capsys, cli_main(size_table_main, [str(tmp_path / "run0"), str(tmp_path / "run1")]))
    assert "run1/best.pt: not a readable checkpoint" in line or "install gcc-arm-none-eabi" in line
    line = _one_line(capsys, cli_main(size_table_main, [str(tmp_path / "run0"), str(tmp_path / "none")]))
    assert "no best.pt" in line or "install gcc-arm-none-eabi" in line


@pytest.mark.parametrize("argv, msg", [
    (["--snr", "abc"], "--snr: expected comma-separated numbers"),
    (["--snr", ""], "--snr"), (["--snr", "nan"], "finite"), (["--snr", "5,inf"], "finite"),
    (["--gap", "5,2"], "0 < min <= max"), (["--gap", "0,2"], "0 < min <= max"), (["--gap", "2"], "min,max"),
    (["--gap", "2,inf"], "finite"), (["--gap", "1,2,3"], "min,max"), (["--gap", "-1,2"], "--gap"),
    (["--readouts", "foo"], "--readouts: unknown foo"), (["--readouts", ""], "--readouts"),
    (["--minutes", "nan"], "--minutes"), (["--minutes", "0"], "--minutes"), (["--tolerance", "-1"], "--tolerance"),
    (["--seed", "-1"], "--seed"), (["--clips", ""], "--clips"), (["--clips", "bogus"], "--clips: unknown bogus"),
])
def test_stream_eval_options(argv, msg, ckpts, tmp_path, capsys):
    """Checked before the checkpoint is read or any stream is built."""
    code = cli_main(stream_eval_main, ["--checkpoint", str(ckpts / "good.pt"), "--out", str(tmp_path), *argv])
    assert msg in _one_line(capsys, code)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, msg", [
    (["--time-chunks", "0"], "--time-chunks must be an integer in 1..49"), (["--time-chunks", "-2"], "1..49"),
    (["--time-chunks", "50"], "1..49"), (["--time-chunks", "x"], "invalid int value"),
    (["--calib-clips", "0"], "--calib-clips"), (["--test", "-1"], "--test"),
    (["--kinds", "int4"], "unknown kind 'int4'"), (["--calib", "v2_test_dev"], "v2_test_dev is the reported real set"),
])
def test_export_options(argv, msg, ckpts, tmp_path, capsys):
    code = cli_main(export_main, ["--checkpoint", str(ckpts / "good.pt"), "--out", str(tmp_path / "e"), *argv])
    assert msg in _one_line(capsys, code)
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("argv, msg", [
    (["-k", "0"], "-k must be >= 1"), (["-k", "-3"], "-k must be >= 1"), (["--check", "0"], "--check"),
    (["-k"], "expected one argument"),
])
def test_split_options(argv, msg, tmp_path, capsys):
    code = cli_main(split_main, ["--model", str(tmp_path / "m.tflite"), "--out", str(tmp_path / "s"), *argv])
    assert msg in _one_line(capsys, code)


def test_split_more_partitions_than_ops(tmp_path, capsys, tiny_cfg):
    from mamba_kws.export.convert import convert
    from mamba_kws.export.tfgraph import build_tf_function

    torch.manual_seed(0)
    data = convert(build_tf_function(build_model(tiny_cfg).eval(), steps=2), "float32")
    (tmp_path / "m.tflite").write_bytes(data)
    code = cli_main(split_main, ["--model", str(tmp_path / "m.tflite"), "-k", "100000", "--out", str(tmp_path / "s")])
    assert "more partitions than the model has ops" in _one_line(capsys, code)


def test_usage_errors_are_one_line(capsys):
    assert "the following arguments are required: --checkpoint" in _one_line(capsys, cli_main(export_main, []))
    assert "argument --epochs: invalid int value" in _one_line(capsys, cli_main(train_main, ["--epochs", "x"]))


# ----------------------------------------------------------------------------- WAV files

def _wav(path, channels: int, width: int, rate: int, seconds: float = 1.0, data: bytes | None = None) -> None:
    n = int(rate * seconds)
    rng = np.random.default_rng(0)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data if data is not None else rng.integers(0, 256, n * channels * width, np.uint8).tobytes())


def _bad_wav(kind: str, path) -> None:
    if kind == "8-bit":
        _wav(path, 1, 1, 16000)
    elif kind == "24-bit":
        _wav(path, 1, 3, 16000)
    elif kind == "4 kHz":
        _wav(path, 1, 2, 4000)
    elif kind == "float":  # WAVE_FORMAT_IEEE_FLOAT: the wave module refuses it
        data = np.zeros(16000, np.float32).tobytes()
        fmt = (16).to_bytes(4, "little") + np.array([3, 1], "<u2").tobytes() + np.array([16000, 64000], "<u4").tobytes()
        fmt += np.array([4, 32], "<u2").tobytes()
        path.write_bytes(b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt " + fmt + b"data"
                         + len(data).to_bytes(4, "little") + data)
    elif kind == "truncated":
        _wav(path, 1, 2, 16000)
        path.write_bytes(path.read_bytes()[:1000])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not a WAV":
        path.write_bytes(b"RIFFxxxxjunk")


@pytest.mark.parametrize("kind, msg", [("8-bit", "8-bit samples"), ("24-bit", "24-bit samples"),
                                       ("4 kHz", "4000 Hz is too low"), ("float", "unknown format: 3"),
                                       ("truncated", "truncated"), ("empty", "ends early"),
                                       ("not a WAV", "not a readable PCM WAV")])
def test_evaluate_folder_with_a_bad_wav_names_it(kind, msg, ckpts, tmp_path, capsys):
    """A clip folder scored by evaluate.py loses no clip silently: a file it cannot read is named."""
    folder = tmp_path / "clips"
    write_wav(folder / "yes" / "a.wav", np.zeros(16000, np.int16))
    _bad_wav(kind, folder / "yes" / "b.wav")
    code = cli_main(evaluate_main, ["--checkpoint", str(ckpts / "good.pt"), "--data", "", "--real", str(folder),
                                    "--out", str(tmp_path / "out")])
    line = _one_line(capsys, code)
    assert msg in line and str(folder / "yes" / "b.wav") in line


def test_stereo_and_other_rates_are_converted(tmp_path):
    """What read_wav supports is converted correctly: stereo to the channels' mean, 8-48 kHz resampled."""
    t = np.arange(44100) / 44100
    left = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    right = (2000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    _wav(tmp_path / "st.wav", 2, 2, 44100, data=np.stack([left, right], 1).tobytes())
    got = read_wav(tmp_path / "st.wav")
    assert len(got) == 16000
    ref = 5000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.abs(got[200:-200] - ref[200:-200]).max() < 60  # the mean of 8000 and 2000, resampled


def test_gen_data_and_compare_paths_counts(ckpts, tmp_path, capsys):
    from mamba_kws.data.generate import main as gen_data_main

    for argv, msg in ((["--seed", "-1"], "'data.seed' must be >= 0"), (["--workers", "-1"], "--workers")):
        code = cli_main(gen_data_main, ["--config", "tiny", "--out", str(tmp_path / "g"), *argv])
        assert msg in _one_line(capsys, code)
    assert not (tmp_path / "g").exists()
    for argv, msg in ((["--test", "0"], "--test counts clips"), (["--real-clips", "-2"], "--real-clips"),
                      (["--calib-clips", "0"], "--calib-clips counts clips"),
                      (["--calib", "v2_test_dev"], "calibrate on mltk, generated or v1_sample")):
        code = cli_main(compare_paths_main, ["--checkpoint", str(ckpts / "good.pt"), *argv])
        assert msg in _one_line(capsys, code)


@pytest.mark.parametrize("main, argv, msg", [
    (compare_paths_main, ["--paths", "fused_int8,fast"], "--paths 'fused_int8,fast': choose from"),
    (compare_paths_main, ["--paths", ","], "choose from"),
    (compare_paths_main, ["--fused-tflite", "/nonexistent.tflite"], "--fused-tflite /nonexistent.tflite: no such file"),
    (compare_paths_main, ["--fused-stream-tflite", "/no.tflite"], "--fused-stream-tflite /no.tflite: no such file"),
    (int8_costs_main, ["--group", "y,why"], "unknown or empty points ['why']"),
    (int8_costs_main, ["-n", "0"], "-n counts clips"),
])
def test_int8_tools_bad_choices_are_one_line(main, argv, msg, ckpts, capsys):
    line = _one_line(capsys, cli_main(main, ["--checkpoint", str(ckpts / "good.pt"), *argv]))
    assert msg in line
