"""Host streaming inference (mamba_kws.stream): the streaming model against the whole-window model
where they must agree, the batch versions against the hop-by-hop one, and the compute count."""

import numpy as np
import pytest
import torch
from mamba_kws.features import compute_features
from mamba_kws.model import build_model
from mamba_kws.stream import (
    READOUTS,
    StreamingKWS,
    clip_posteriors_every_hop,
    hop_end_sample,
    macs_per_hop,
    macs_per_step,
    softmax,
    stream_features,
    stream_posteriors,
    stream_step_outputs,
)


@pytest.fixture(scope="module")
def model_and_cfg(tiny_cfg):
    torch.manual_seed(0)
    model = build_model(tiny_cfg).eval()
    # Non-trivial batchnorm statistics, so that the norm is not the identity.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model, tiny_cfg


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(0)
    t = np.arange(int(16000 * 1.6)) / 16000
    tone = 3000 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.7 * t) > 0.3)
    return (tone + rng.normal(0, 300, t.shape)).astype(np.int16)


def push_in_chunks(s: StreamingKWS, audio: np.ndarray, chunk: int) -> np.ndarray:
    return np.concatenate([s.push(audio[i : i + chunk]) for i in range(0, len(audio), chunk)])


@pytest.fixture(scope="module")
def hop_by_hop(model_and_cfg, audio):
    """Posteriors of each readout, hop by hop, audio pushed in odd-sized chunks (computed once:
    the window readout runs 49 steps a hop)."""
    model, cfg = model_and_cfg
    return {ro: push_in_chunks(StreamingKWS(model, cfg, ro), audio, 777) for ro in READOUTS}


def test_first_window_from_reset_equals_the_whole_window_model(model_and_cfg, audio, hop_by_hop):
    model, cfg = model_and_cfg
    first = audio[: cfg.features.clip_samples]
    with torch.no_grad():
        ref = softmax(model(torch.from_numpy(compute_features(first, cfg.features))[None]).numpy()[0])
    hop = cfg.steps - 1  # the hop that completes the first 98 frames
    for readout in ("window", "stream_mean"):
        np.testing.assert_allclose(hop_by_hop[readout][hop], ref, rtol=1e-5, atol=1e-6)
    assert hop_end_sample(hop, cfg) == cfg.features.clip_samples


def test_streaming_differs_from_window_after_one_second(model_and_cfg, hop_by_hop):
    # By design: the window model restarts from a zero state every hop, the streaming state remembers.
    _, cfg = model_and_cfg
    win, st = hop_by_hop["window"], hop_by_hop["stream_mean"]
    assert np.abs(win[cfg.steps + 10 :] - st[cfg.steps + 10 :]).max() > 1e-4


@pytest.mark.parametrize("readout", READOUTS)
def test_batch_posteriors_equal_hop_by_hop(model_and_cfg, audio, hop_by_hop, readout):
    model, cfg = model_and_cfg
    feats = stream_features(audio, cfg, chunk=5000)
    batch = stream_posteriors(model, cfg, feats, readout, batch=37)
    assert batch.shape == hop_by_hop[readout].shape == (len(feats) // 2, cfg.num_classes)
    np.testing.assert_allclose(batch, hop_by_hop[readout], rtol=1e-4, atol=1e-5)


def test_chunked_state_handover_equals_step(model_and_cfg, audio):
    model, cfg = model_and_cfg
    feats = stream_features(audio, cfg)
    whole = stream_step_outputs(model, cfg, feats, chunk_steps=10_000)
    chunked = stream_step_outputs(model, cfg, feats, chunk_steps=7)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-5)
    x = model.stack_frames(torch.from_numpy(feats)[None])[0]
    with torch.no_grad():
        state = model.init_state(1)
        out = []
        for t in range(len(x)):
            h, state = model.step(x[t : t + 1], state)
            out.append(h[0].numpy())
    np.testing.assert_allclose(whole, np.stack(out), rtol=1e-5, atol=1e-5)


def test_reset_restarts_the_stream(model_and_cfg, audio):
    model, cfg = model_and_cfg
    s = StreamingKWS(model, cfg, "stream_mean")
    a = s.push(audio[:20000])
    s.reset()
    b = s.push(audio[:20000])
    np.testing.assert_array_equal(a, b)


def test_macs_count_every_weight_once_per_step(model_and_cfg):
    model, cfg = model_and_cfg
    weights = sum(m.weight.numel() for m in model.modules()
                  if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d)) and m is not model.classifier)
    step = macs_per_step(cfg)["macs"]
    assert step >= weights
    assert step < 2 * weights  # the scan and norms are a small part
    cls = model.classifier.weight.numel()
    assert macs_per_hop(cfg, "stream_last") == step + cls
    assert macs_per_hop(cfg, "window") >= cfg.steps * step + cls


def test_training_with_stream_context_matches_streaming(model_and_cfg):
    # train.stream_context_steps: the logits a clip gets after the end of the previous clip equal
    # the streaming model's (state carried over the context, mean of the clip's own step outputs).
    from mamba_kws.train import context_logits

    model, cfg = model_and_cfg
    torch.manual_seed(1)
    x = torch.rand(3, cfg.features.frames, cfg.features.channels) * 20
    ctx = 10
    with torch.no_grad():
        logits = context_logits(model, x, ctx)
        frames = model.stack_frames(x)
        for i in range(3):
            seq = torch.cat([frames[i - 1, -ctx:], frames[i]])  # roll(1): clip i follows clip i - 1
            state, outs = model.init_state(1), []
            for t in range(len(seq)):
                h, state = model.step(seq[t : t + 1], state)
                outs.append(h[0])
            ref = model.classifier(torch.stack(outs[ctx:]).mean(0))
            torch.testing.assert_close(logits[i], ref, rtol=1e-4, atol=1e-4)
        assert (logits - model(x)).abs().max() > 1e-4  # the context does change the scores


def test_clip_classifier_every_hop_hears_the_last_second(model_and_cfg, audio, hop_by_hop):
    """A 1 s clip classifier (a teacher) run every hop sees exactly the second of audio that ends where the
    hop's features end (zeros before the stream), on the hop grid of the model's readouts."""
    _, cfg = model_and_cfg
    hops = len(hop_by_hop["window"])
    seen = []

    def classify(clips: np.ndarray) -> np.ndarray:
        assert clips.shape[1:] == (16000,) and clips.dtype == np.int16
        seen.append(clips.copy())
        return np.tile(np.eye(cfg.num_classes)[:1], (len(clips), 1))

    out = clip_posteriors_every_hop(classify, audio, cfg, hops, batch=7)
    assert out.shape == (hops, cfg.num_classes)
    clips = np.concatenate(seen)
    padded = np.concatenate([np.zeros(16000, np.int16), audio])
    for i in (0, 1, hops // 2, hops - 1):
        end = int(hop_end_sample(i, cfg))
        assert np.array_equal(clips[i], padded[end : end + 16000]), i
    assert not clips[0, : 16000 - int(hop_end_sample(0, cfg))].any()  # before the stream: zeros
    with pytest.raises(ValueError, match="hops need"):
        clip_posteriors_every_hop(classify, audio, cfg, hops + 10)
