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


@pytest.mark.parametrize("override, msg", [
    ("train.epochs=-1", "'train.epochs' must be >= 1"), ("train.epochs=0", "'train.epochs'"),
    ("train.batch_size=0", "'train.batch_size'"), ("train.lr=0", "'train.lr' must be > 0"),
    ("train.lr=-0.1", "'train.lr'"), ("train.lr=.nan", "'train.lr'"), ("train.weight_decay=-1", "weight_decay"),
    ("train.warmup_epochs=-1", "warmup_epochs"), ("train.label_smoothing=1.5", "label_smoothing"),
    ("train.seed=-1", "'train.seed'"), ("train.silence_fraction=-0.1", "silence_fraction"),
    ("train.stream_context_steps=100", r"stream_context_steps' must be in \[0, 49\]"),
    ("train.augment.noise_prob=1.5", "augment.noise_prob"), ("train.augment.noise_snr_db=[30, 5]", "low, high"),
    ("train.augment.noise_snr_db=[5]", "list of 2 values"), ("train.augment.time_shift_ms=-5", "time_shift_ms"),
    ("train.feature_augment.level_db=-3", "level_db"), ("train.distill.temperature=0", "temperature"),
    ("train.sources=[{kind: generated, weight: .inf}]", "weight"), ("train.epochs=2.5", "integer"),
    ("train.bogus=1", "unknown key 'train.bogus'"), ("data.bogus=1", "unknown key 'data.bogus'"),
    ("data.clips_per_keyword=0", "clips_per_keyword"), ("data.silence_clips=-1", "silence_clips"),
    ("data.seed=-1", "'data.seed'"), ("data.test_fraction=1.5", "test_fraction"),
    ("data.engines=[espek]", "unknown espek"), ("qat.epochs=0", "'qat.epochs'"), ("qat.lr=0", "'qat.lr'"),
    ("qat.match=-1", "'qat.match'"), ("qat.equalize=2", "'qat.equalize'"),
])
def test_train_data_qat_values_are_range_checked(override, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config("tiny", [override])


def test_val_and_test_fractions_leave_a_training_split():
    with pytest.raises(ConfigError, match="below 1"):
        load_config("tiny", ["data.val_fraction=0.6", "data.test_fraction=0.5"])


def test_command_line_values_are_checked_like_the_yaml(repo_root, capsys):
    from mamba_kws.errors import cli_main
    from mamba_kws.train import main

    common = ["--config", str(repo_root / "models" / "tiny.yaml"), "--quiet", "--no-real-eval"]
    for extra, msg in ((["--epochs", "-1"], "'train.epochs' must be >= 1, got -1"),
                       (["--lr", "0"], "'train.lr' must be > 0"), (["--max-steps", "0"], "--max-steps"),
                       (["--qat", "--init", "x.pt", "--qat-equalize", "2"], "'qat.equalize'")):
        assert cli_main(main, [*common, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
