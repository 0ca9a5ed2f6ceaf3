import pytest
import torch
from mamba_kws.config import ConfigError, config_from_dict, load_config
from mamba_kws.model import build_model, selective_scan


@pytest.mark.parametrize("name", ["kws_mamba", "kws_mamba_ref", "tiny"])
def test_configs_build_and_stream_equals_window(repo_root, name):
    cfg = load_config(repo_root / "models" / f"{name}.yaml")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    feats = torch.rand(2, cfg.features.frames, cfg.features.channels) * 20
    with torch.no_grad():
        assert model(feats).shape == (2, cfg.num_classes)
        enc = model.encode(feats)
        state = model.init_state(2)
        frames = model.stack_frames(feats)
        steps = []
        for t in range(frames.shape[1]):
            h, state = model.step(frames[:, t], state)
            steps.append(h)
    assert enc.shape[1] == cfg.steps == 49
    torch.testing.assert_close(torch.stack(steps, 1), enc, rtol=1e-4, atol=1e-4)


def test_selective_scan_matches_closed_form_for_constant_inputs():
    # With constant dt, B, C and x, h_t = sum_k Abar^k dt B x: a geometric series.
    d, n, steps = 3, 2, 6
    x = torch.ones(1, steps, d)
    dt = torch.full((1, steps, d), 0.5)
    A = -torch.ones(d, n)
    B = torch.ones(1, steps, n)
    C = torch.ones(1, steps, n)
    D = torch.zeros(d)
    y = selective_scan(x, dt, A, B, C, D, "exp")
    abar = torch.exp(torch.tensor(-0.5))
    expected = [n * 0.5 * sum(abar**k for k in range(t + 1)) for t in range(steps)]
    torch.testing.assert_close(y[0, :, 0], torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_bad_config_names_its_key():
    with pytest.raises(ConfigError, match="model.dt_activaton"):
        config_from_dict({"model": {"dt_activaton": "relu"}})
    with pytest.raises(ConfigError, match="model.decay"):
        config_from_dict({"model": {"decay": "tanh"}})
    with pytest.raises(ConfigError, match="model.d_model.*integer"):
        config_from_dict({"model": {"d_model": "big"}})
