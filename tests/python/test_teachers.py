"""The pretrained teachers: the project's runner reproduces their published accuracy on real clips, and
their size and compute are measured from the model files."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def real_subset(shared_sc):
    from mamba_kws.config import load_config
    from mamba_kws.data import load_real_clips

    cfg = load_config("tiny")
    real = load_real_clips("v2_test_dev", cfg)
    return cfg, real.subset(np.arange(0, len(real), 4))  # 551 clips, every label


@pytest.mark.parametrize("name, floor", [("mlperf_float", 0.88), ("ds_cnn_s", 0.85)])
def test_teacher_hears_real_speech(teachers_ready, real_subset, name, floor):
    from mamba_kws.teachers import load_teacher, to_labels

    cfg, clips = real_subset
    probs = to_labels(load_teacher(name)(clips.audio), tuple(cfg.labels))
    assert probs.shape == (len(clips), 12) and np.allclose(probs.sum(1), 1, atol=0.02)
    assert (probs.argmax(1) == clips.targets).mean() > floor  # shared README: 0.915 and 0.892 on all clips


def test_teacher_size_and_compute(teachers_ready):
    from mamba_kws.teachers import describe

    d = describe("mlperf_int8")
    # DS-CNN on 49 x 10 MFCCs: conv 10x4 stride 2 -> 25 x 5 x 64, four depthwise 3x3 + pointwise 64, dense 12
    conv, dw, pw, fc = 25 * 5 * 64 * 10 * 4, 25 * 5 * 64 * 9, 25 * 5 * 64 * 64, 12 * 64
    assert d["macs"] == conv + 4 * dw + 4 * pw + fc
    assert d["flash_bytes"] == (teachers_ready / "mlcommons_tiny_kws" / "kws_ref_model.tflite").stat().st_size
    assert 20_000 < d["params"] < 25_000 and 10_000 < d["arena_bytes"] < 64_000


def test_unknown_teacher_is_a_clear_error():
    from mamba_kws.errors import KWSError
    from mamba_kws.teachers import load_teacher

    with pytest.raises(KWSError, match="unknown teacher"):
        load_teacher("nope")
