"""Stream building, scoring and the stream_eval tool end to end on a tiny stream."""

import json

import numpy as np
import pytest
import torch
from mamba_kws.checkpoint import save_checkpoint
from mamba_kws.data.clips import ClipSet
from mamba_kws.data.noise import rms
from mamba_kws.data.streams import NOISE_RMS, Event, Stream, build_stream, speech_extent
from mamba_kws.detection import Detection
from mamba_kws.errors import KWSError
from mamba_kws.model import build_model
from mamba_kws.stream import hop_end_sample
from mamba_kws.stream_eval import main, score

LABELS = ("_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def synthetic_pool(n: int = 24) -> tuple[ClipSet, list[str]]:
    """Clips with a tone burst at 300-700 ms; targets cycle over keywords and _unknown_."""
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    audio = np.zeros((n, 16000), np.int16)
    targets = []
    for i in range(n):
        burst = (t >= 0.3) & (t < 0.7)
        audio[i] = (rng.normal(0, 20, 16000) + burst * 4000 * np.sin(2 * np.pi * (200 + 40 * i) * t)).astype(np.int16)
        targets.append(1 + i % (len(LABELS) - 1))
    words = [LABELS[k] if k > 1 else "bed" for k in targets]
    cs = ClipSet(LABELS, audio, np.asarray(targets, np.int64), words, [f"s{i % 5}" for i in range(n)], [""] * n)
    return cs, ["real"] * n


def noise() -> list[np.ndarray]:
    rng = np.random.default_rng(2)
    return [rng.normal(0, 1000, 16000 * 8).astype(np.int16), rng.normal(0, 500, 16000 * 6).astype(np.int16)]


def test_speech_extent_finds_the_burst():
    cs, _ = synthetic_pool(2)
    s0, s1 = speech_extent(cs.audio[0])
    assert abs(s0 - 0.3 * 16000) <= 160 and abs(s1 - 0.7 * 16000) <= 160


def test_build_stream_is_deterministic_and_well_formed():
    pool, src = synthetic_pool()
    a = build_stream(pool, src, noise(), 60, 10.0, np.random.default_rng(5), (2.0, 4.0))
    b = build_stream(pool, src, noise(), 60, 10.0, np.random.default_rng(5), (2.0, 4.0))
    c = build_stream(pool, src, noise(), 60, 10.0, np.random.default_rng(6), (2.0, 4.0))
    np.testing.assert_array_equal(a.audio, b.audio)
    assert [e.start for e in a.events] == [e.start for e in b.events]
    assert [e.start for e in a.events] != [e.start for e in c.events]
    assert a.audio.dtype == np.int16 and len(a.audio) == 60 * 16000
    assert 10 <= len(a.events) <= 20  # 1 s words, 2-4 s gaps
    for prev, nxt in zip(a.events, a.events[1:], strict=False):
        assert nxt.start - (prev.start + 16000) >= 2 * 16000  # no overlap, gap kept
    assert a.events[-1].start + 16000 <= len(a.audio)
    assert {e.name for e in a.events} <= set(LABELS[1:])
    # The word is at the SNR: speech rms (the burst) vs the noise bed's rms.
    e = a.events[0]
    seg = a.audio[e.speech_start + 800 : e.speech_end - 800].astype(np.float64)
    snr = 20 * np.log10(np.sqrt(max(rms(seg) ** 2 - NOISE_RMS**2, 1e-9)) / NOISE_RMS)
    assert snr == pytest.approx(10.0, abs=1.5)


def test_score_hits_false_alarms_and_latency(tiny_cfg):
    sr = 16000
    events = [Event(0, 8000, 16000, 2, "yes", "yes", "real", "a"),
              Event(64000, 72000, 80000, 3, "no", "no", "real", "b"),
              Event(128000, 136000, 144000, 1, "_unknown_", "bed", "real", "c")]
    stream = Stream(np.zeros(sr * 10, np.int16), events, 10.0, sr)

    def at(sample: int, label: str) -> Detection:  # the first hop whose decision is at or after `sample`
        hop = int(np.ceil((sample - hop_end_sample(0, tiny_cfg)) / 320))
        return Detection(hop, LABELS.index(label), label, 0.9)

    dets = [at(20000, "yes"),  # hit, 0.25 s after the end of "yes"
            at(22000, "yes"),  # repeat: false alarm
            at(74000, "yes"),  # wrong word during "no": false alarm
            at(140000, "go"),  # during an unknown word: false alarm
            ]
    s = score(dets, stream, tiny_cfg, tolerance_s=1.0)
    assert (s["keywords"], s["hits"], s["false_alarms"]) == (2, 1, 3)
    assert s["latencies"][0] == pytest.approx(0.25, abs=0.02)
    late = score([at(80000 + sr + 1000, "no")], stream, tiny_cfg, tolerance_s=1.0)  # after the tolerance
    assert (late["hits"], late["false_alarms"]) == (0, 1)


def test_stream_eval_end_to_end(tmp_path, tiny_cfg, shared_sc, capsys):
    torch.manual_seed(0)
    ckpt = tmp_path / "run" / "best.pt"
    save_checkpoint(ckpt, build_model(tiny_cfg).eval(), tiny_cfg)
    out = tmp_path / "out"
    args = ["--checkpoint", str(ckpt), "--minutes", "0.4", "--snr", "10,20", "--out", str(out), "--quiet"]
    assert main(args) == 0
    rep = json.loads((out / "stream_eval.json").read_text())
    assert (out / "det.png").stat().st_size > 1000
    assert set(rep["results"]) == {"window", "stream_mean", "stream_last", "device"}
    assert rep["results"]["device"]["kind"] == "device"
    assert rep["device_image"] == str(out / "device_stream_int8.tflite")
    assert [s["snr_db"] for s in rep["streams"]] == [10.0, 20.0]
    assert sum(s["keywords"] for s in rep["streams"]) > 0
    for r in rep["results"].values():
        assert 0.0 <= r["yaml_policy"]["detection_rate"] <= 1.0
        assert r["macs_per_hop"] > 0
    thresholds = [r["threshold"] for r in rep["det"]["window"]]
    assert thresholds == sorted(thresholds) and len(thresholds) > 20
    assert rep["det"]["window"][-1]["false_alarms"] <= rep["det"]["window"][0]["false_alarms"]
    assert "det@1FA/h" in capsys.readouterr().out
    # Same seed, same streams.
    assert main([*args[:-3], "--out", str(tmp_path / "again"), "--quiet", "--readouts", "stream_last"]) == 0
    again = json.loads((tmp_path / "again" / "stream_eval.json").read_text())
    assert again["streams"] == rep["streams"]
    assert again["results"]["stream_last"]["yaml_policy"] == rep["results"]["stream_last"]["yaml_policy"]


def test_stream_eval_scores_a_teacher_on_the_same_streams(tmp_path, tiny_cfg, shared_sc, teachers_ready, capsys):
    torch.manual_seed(0)
    ckpt = tmp_path / "run" / "best.pt"
    save_checkpoint(ckpt, build_model(tiny_cfg).eval(), tiny_cfg)
    out = tmp_path / "out"
    args = ["--checkpoint", str(ckpt), "--minutes", "0.3", "--snr", "20", "--readouts", "stream_mean",
            "--teachers", "mlperf_int8", "--out", str(out), "--quiet"]
    assert main(args) == 0
    rep = json.loads((out / "stream_eval.json").read_text())
    assert set(rep["results"]) == {"stream_mean", "mlperf_int8"} and rep["teachers"] == ["mlperf_int8"]
    t = rep["results"]["mlperf_int8"]
    assert t["kind"] == "teacher" and t["macs_per_hop"] > 1_000_000 and t["host_ms_per_hop_live"] is None
    assert rep["results"]["stream_mean"]["kind"] == "model"
    assert len(rep["det"]["mlperf_int8"]) == len(rep["det"]["stream_mean"])
    # The teacher hears real words: it detects some of them at its best threshold.
    assert max(r["hits"] for r in rep["det"]["mlperf_int8"]) > 0
    assert "mlperf_int8" in capsys.readouterr().out
    with pytest.raises(KWSError, match="--teachers: unknown nope"):
        main([*args[:-5], "--teachers", "nope", "--out", str(tmp_path / "x"), "--quiet"])


def test_device_readout_is_the_firmware_image_hop_by_hop(tmp_path, tiny_cfg, shared_sc):
    """`device` scores the firmware's streaming image (--device-image): its posteriors are ImageModel's, hop by
    hop from a reset, on each stream."""
    from mamba_kws.firmware import ImageModel
    from mamba_kws.fused_tflite import export
    from mamba_kws.stream_eval import device_posteriors

    torch.manual_seed(0)
    ckpt = tmp_path / "run" / "best.pt"
    save_checkpoint(ckpt, build_model(tiny_cfg).eval(), tiny_cfg)
    image = tmp_path / "img.tflite"
    export(ckpt, None, image, int8=True, streaming=True, calib="fake", calib_clips=8)
    rng = np.random.default_rng(0)
    feats = rng.uniform(0, 20, (31, tiny_cfg.features.channels)).astype(np.float32)
    a, b = ImageModel(tiny_cfg, image, "stream"), ImageModel(tiny_cfg, image, "stream")
    post = device_posteriors(a, feats)
    k = tiny_cfg.model.frame_stack
    assert post.shape == (len(feats) // k, len(tiny_cfg.labels))
    assert np.array_equal(post, np.stack([b.hop(feats[i:i + k]) for i in range(0, len(feats) // k * k, k)]))
    assert np.array_equal(device_posteriors(a, feats), post)  # from a reset each time
    out = tmp_path / "out"
    args = ["--checkpoint", str(ckpt), "--minutes", "0.3", "--snr", "20", "--readouts", "stream_mean,device",
            "--device-image", str(image), "--out", str(out), "--quiet"]
    assert main(args) == 0
    rep = json.loads((out / "stream_eval.json").read_text())
    assert rep["device_image"] == str(image) and not (out / "device_stream_int8.tflite").exists()
    assert set(rep["results"]) == {"stream_mean", "device"}
    assert rep["results"]["device"]["macs_per_hop"] == rep["results"]["stream_mean"]["macs_per_hop"]
    with pytest.raises(KWSError, match="no such file"):
        main([*args[:-5], "--device-image", str(tmp_path / "none.tflite"), "--out", str(tmp_path / "x"), "--quiet"])
    window = tmp_path / "window.tflite"
    export(ckpt, None, window, int8=True, streaming=False, calib="fake", calib_clips=8)
    with pytest.raises(KWSError, match="not a fused streaming model"):
        main([*args[:-5], "--device-image", str(window), "--out", str(tmp_path / "y"), "--quiet"])
    from mamba_kws.config import REPO_ROOT

    fs1 = tmp_path / "tiny_fs1.yaml"  # another step: 1 frame
    fs1.write_text((REPO_ROOT / "models" / "tiny.yaml").read_text().replace("frame_stack: 2", "frame_stack: 1"))
    other = tmp_path / "other.tflite"
    export(None, str(fs1), other, int8=True, streaming=True, calib="fake", calib_clips=2)
    with pytest.raises(KWSError, match=r"takes \(1, 40\).*gives \(1, 80\)"):
        main([*args[:-5], "--device-image", str(other), "--out", str(tmp_path / "z"), "--quiet"])


def test_device_readout_of_an_rmsnorm_model(tmp_path, capsys):
    """No fused int8 image of an rmsnorm model: left out of the default with a note, an error when asked for."""
    from mamba_kws.config import load_config
    from mamba_kws.stream_eval import device_image

    cfg = load_config("kws_mamba_ref")
    assert device_image(tmp_path / "x.pt", cfg, None, tmp_path, explicit=False) is None
    assert "no device readout" in capsys.readouterr().out
    with pytest.raises(KWSError, match="rmsnorm has no fused int8 streaming image"):
        device_image(tmp_path / "x.pt", cfg, None, tmp_path, explicit=True)
