"""The detection policy (mamba_kws.detection) on synthetic posteriors: smoothing, thresholds,
suppression, the resolved parameters, and the offline sweep version against the streaming one."""

import numpy as np
import pytest
from mamba_kws.config import ConfigError, config_from_dict, load_config
from mamba_kws.detection import Detector, detect_offline, detection_params, smooth, with_threshold

LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def params(**detection):
    return detection_params(config_from_dict({"detection": detection}))


def onehot(label: str, n: int = 1, value: float = 1.0) -> np.ndarray:
    """n hops with `value` on `label` and the rest on _silence_."""
    p = np.zeros((n, len(LABELS)))
    p[:, LABELS.index(label)] = value
    p[:, 0] += 1.0 - value
    return p


def run(det: Detector, posts: np.ndarray) -> list:
    return [d for d in (det.update(p) for p in posts) if d is not None]


def test_params_from_the_model_yaml(repo_root):
    cfg = load_config(repo_root / "models" / "kws_mamba.yaml")
    p = detection_params(cfg)
    sec = cfg.detection
    assert p["window_hops"] == sec["smoothing_ms"] // sec["hop_ms"]
    assert p["suppression_hops"] == sec["suppression_ms"] // sec["hop_ms"]
    assert p["labels"] == list(cfg.labels)
    assert p["fires"] == [0 if lab in ("_silence_", "_unknown_") else 1 for lab in cfg.labels]
    assert all(t == sec["threshold"] for t, f in zip(p["thresholds"], p["fires"], strict=True) if f)
    assert all(isinstance(v, int) for v in (p["window_hops"], p["suppression_hops"]))


def test_params_per_keyword_threshold_and_errors():
    p = params(threshold=0.6, thresholds={"yes": 0.9})
    assert p["thresholds"][LABELS.index("yes")] == 0.9
    assert p["thresholds"][LABELS.index("no")] == 0.6
    with pytest.raises(ConfigError, match="thresholds.maybe"):
        params(thresholds={"maybe": 0.5})
    with pytest.raises(ConfigError, match="thresholds._silence_"):
        params(thresholds={"_silence_": 0.5})
    with pytest.raises(ConfigError, match="smoothing_ms"):
        params(smoothing_ms=210)
    with pytest.raises(ConfigError, match="hop_ms"):
        params(hop_ms=10)
    with pytest.raises(ConfigError, match="threshold"):
        params(threshold=1.5)
    with pytest.raises(ConfigError, match="detection.smoothin"):
        params(smoothin_ms=100)


def test_smoothing_delays_the_detection_by_the_average():
    # W = 5 hops; "yes" at 1.0 from hop 3 on. The mean over the last 5 reaches 0.6 when 3 of the
    # last 5 hops are "yes": hop 5.
    p = params(smoothing_ms=100, threshold=0.6, suppression_ms=0)
    posts = np.vstack([onehot("_silence_", 3), onehot("yes", 10)])
    dets = run(Detector(p), posts)
    assert dets[0].hop == 5 and dets[0].name == "yes"
    assert dets[0].score == pytest.approx(0.6)
    # A single 1-hop spike never reaches 0.6 with W = 5 (1/5 = 0.2), but does with W = 1.
    spike = np.vstack([onehot("_silence_", 3), onehot("no", 1), onehot("_silence_", 3)])
    assert run(Detector(p), spike) == []
    assert [d.hop for d in run(Detector(params(smoothing_ms=20, threshold=0.6)), spike)] == [3]


def test_smoothing_averages_over_hops_seen_after_reset():
    p = params(smoothing_ms=200, threshold=0.9)
    det = Detector(p)
    d = det.update(onehot("go")[0])  # the very first hop: the average over 1 hop is 1.0
    assert d is not None and d.hop == 0 and d.name == "go"


def test_suppression_blocks_for_its_hops_then_fires_again():
    s_ms = 200  # S = 10 hops
    p = params(smoothing_ms=20, threshold=0.5, suppression_ms=s_ms)
    dets = run(Detector(p), onehot("stop", 35))
    assert [d.hop for d in dets] == [0, 11, 22, 33]
    assert all(d.name == "stop" for d in dets)


def test_highest_keyword_wins_and_per_keyword_thresholds():
    post = np.zeros((1, len(LABELS)))
    post[0, LABELS.index("up")] = 0.45
    post[0, LABELS.index("down")] = 0.55
    p = params(smoothing_ms=20, threshold=0.4)
    assert run(Detector(p), post)[0].name == "down"
    # "down" needs 0.6 now: only "up" is over its threshold.
    p = params(smoothing_ms=20, threshold=0.4, thresholds={"down": 0.6})
    assert run(Detector(p), post)[0].name == "up"


def test_silence_and_unknown_never_fire():
    p = params(smoothing_ms=20, threshold=0.1)
    posts = np.vstack([onehot("_silence_", 5), onehot("_unknown_", 5)])
    assert run(Detector(p), posts) == []


def test_reset_forgets_the_average_and_the_suppression():
    p = params(smoothing_ms=100, threshold=0.5, suppression_ms=1000)
    det = Detector(p)
    assert run(det, onehot("left", 5))[0].hop == 0
    assert det.update(onehot("left")[0]) is None  # suppressed
    det.reset()
    d = det.update(onehot("left")[0])
    assert d is not None and d.hop == 0


def test_offline_equals_streaming_detector_at_many_thresholds():
    rng = np.random.default_rng(3)
    n = 3000
    posts = rng.dirichlet(np.full(len(LABELS), 0.3), size=n)
    # Bursts of confident keywords, like words in a stream.
    for start in rng.integers(0, n - 30, size=40):
        posts[start : start + 25] = onehot(LABELS[int(rng.integers(2, len(LABELS)))], 25, rng.uniform(0.5, 1.0))
    base = params(smoothing_ms=200, suppression_ms=600)
    s = smooth(posts, base["window_hops"])
    for thr in (0.3, 0.5, 0.7, 0.9):
        p = with_threshold(base, thr)
        online = run(Detector(p), posts)
        assert len(online) > 0
        offline = detect_offline(posts, p, smoothed=s)
        assert [(d.hop, d.label) for d in online] == [(d.hop, d.label) for d in offline]
        np.testing.assert_allclose([d.score for d in online], [d.score for d in offline], rtol=1e-9)
