"""mamba_kws.calibration: the one owner of what both int8 paths calibrate on."""

from __future__ import annotations

import numpy as np
import pytest
from mamba_kws import calibration as C
from mamba_kws.errors import cli_main


def test_auto_is_the_real_feature_maps_where_the_data_root_has_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_DATA", str(tmp_path))
    assert C.resolve("auto") == "generated"
    (tmp_path / "speech_commands_mltk").mkdir()
    (tmp_path / "speech_commands_mltk" / "spectrograms.zip").write_bytes(b"")
    assert C.resolve("auto") == "mltk"
    assert C.resolve("v1_sample") == "v1_sample" and C.resolve("generated") == "generated"


def test_the_reported_set_is_never_calibrated_on():
    with pytest.raises(C.CalibrationError, match="v2_test_dev is the reported real set"):
        C.resolve("v2_test_dev")


def test_draws_are_seeded_sorted_and_bounded():
    a = C.draw(100, 10)
    assert np.array_equal(a, C.draw(100, 10)) and np.all(np.diff(a) > 0) and len(a) == 10
    assert not np.array_equal(a, C.draw(100, 10, seed=1))
    assert np.array_equal(C.draw(5, 50), np.arange(5))
    with pytest.raises(C.CalibrationError, match="at least one clip"):
        C.draw(5, 0)


def test_fake_features_have_the_model_input_shape(tiny_cfg):
    x = C.calibration_features(tiny_cfg, "fake", 3)
    assert x.shape == (3, tiny_cfg.features.frames, tiny_cfg.features.channels) and x.dtype == np.float32


def test_the_real_feature_maps_calibrate_the_default_model(shared_mltk):
    from mamba_kws.config import load_config

    cfg = load_config("kws_mamba")
    x = C.calibration_features(cfg, "auto", 6)
    assert x.shape == (6, cfg.features.frames, cfg.features.channels)
    assert np.array_equal(x, C.calibration_features(cfg, "mltk", 6))  # the same clips in every tool


def test_an_unknown_source_is_one_line(tiny_cfg, tmp_path, capsys):
    import torch
    from mamba_kws.checkpoint import save_checkpoint
    from mamba_kws.fused_tflite import main
    from mamba_kws.model import build_model

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "good.pt", build_model(tiny_cfg), tiny_cfg)
    code = cli_main(main, ["--checkpoint", str(tmp_path / "good.pt"), "--int8", "--calib", "nowhere",
                           "--out", str(tmp_path / "m.tflite")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "nowhere" in err, err
    assert not (tmp_path / "m.tflite").exists()
