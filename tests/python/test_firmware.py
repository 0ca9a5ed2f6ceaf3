"""The KWS firmware's generated headers (app/src/generated) against the model files and the host tools.

No Zephyr here: the generated files are regenerated and compared, the model files' provenance is
checked against them, the front-end constants are checked against pymicro-features (the host front
end), the built-in clips (app/clips) are run through the image's model on the host
(mamba_kws.firmware.ImageModel: builtin ops in the PyPI TFLM, MAMBA_BLOCK in the C core), and the
firmware's detector (app/src/detector.c, plain C) is compiled for the host and run against mamba_kws.detection.Detector.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mamba_kws.config import SC_KEYWORDS, SILENCE_LABEL, load_config
from mamba_kws.detection import Detector, detection_params
from mamba_kws.features import FEATURE_SCALE, compute_features
from mamba_kws.firmware import (
    FRONTEND,
    NOISE_LABEL,
    FusedHost,
    ImageModel,
    body_path,
    check_generated,
    clip_ok,
    clips_header,
    host_scores,
    params_header,
    quantize_c,
    read_clips,
    sha256_samples,
)

REPO = Path(__file__).resolve().parents[2]
GEN = REPO / "app" / "src" / "generated"
MODELS = REPO / "app" / "model"
CLIPS = REPO / "app" / "clips"
MODEL_YAML = REPO / "models" / "kws_mamba.yaml"


def _defines(text: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (\w+) (.+)$", text, re.M))


def _cfloat(s: str) -> float:
    return float(s.rstrip("f"))


@pytest.fixture(scope="module")
def cfg():
    return load_config(MODEL_YAML)


def test_generated_sources_are_up_to_date(cfg) -> None:
    stale = check_generated(cfg, MODELS / "model_int8.tflite", GEN, MODELS / "fused_int8.tflite",
                            MODELS / "fused_stream_int8.tflite")
    assert stale == [], f"run make firmware-headers: {stale} differ"
    assert (GEN / "kws_params.h").read_text() == params_header(cfg)
    assert (GEN / "kws_clips.h").read_text() == clips_header(json.loads((CLIPS / "clips.json").read_text()))


def test_no_generated_c_in_git() -> None:
    """Model and clip data become C at build time (app/CMakeLists.txt): only small headers are committed."""
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "app"], capture_output=True,
                         text=True, check=True).stdout.split()
    big = [f for f in out if f.endswith((".c", ".cc", ".h")) and (REPO / f).stat().st_size > 40_000]
    assert big == [], f"large C sources in git (make them at build time): {big}"
    cmake = (REPO / "app" / "CMakeLists.txt").read_text()
    for model in ("model_int8.tflite", "fused_int8.tflite", body_path(MODELS / "fused_stream_int8.tflite").name):
        assert f"model/{model}" in cmake, model
    assert "generate_inc_file_for_target" in cmake


@pytest.mark.parametrize("name", ["model_int8.tflite", "fused_int8.tflite", "fused_stream_int8.tflite",
                                  "fused_stream_int8_body.tflite"])
def test_model_files_have_provenance(name) -> None:
    """Each app/model/*.tflite has a JSON beside it naming its bytes (sha256) and its source; the
    headers name the same bytes (kws_model.h states the sha256 of the file the image embeds)."""
    from mamba_kws import provenance

    assert sorted(p.name for p in MODELS.glob("*.tflite")) == sorted(
        ["model_int8.tflite", "fused_int8.tflite", "fused_stream_int8.tflite", "fused_stream_int8_body.tflite"])
    assert provenance.check(MODELS / name) == []
    meta = provenance.load(MODELS / name)
    assert meta["source"] and meta["commands"] and meta["config"]["name"] == "kws_mamba"
    header = {"model_int8.tflite": GEN, "fused_int8.tflite": GEN / "fused",
              "fused_stream_int8_body.tflite": GEN / "fused_stream"}.get(name)
    if header is not None:
        assert meta["sha256"] in (header / "kws_model.h").read_text()


def test_provenance_check_finds_a_replaced_model(tmp_path) -> None:
    from mamba_kws import provenance

    m = tmp_path / "m.tflite"
    m.write_bytes(b"TFL3 one")
    assert provenance.check(m) == ["m.tflite: no provenance m.json beside it"]
    provenance.write(m, {"checkpoint": "x.pt", "sha256": "0" * 64}, ["make firmware-models"])
    assert provenance.check(m) == []
    body = tmp_path / "m_body.tflite"
    body.write_bytes(b"TFL3 body")
    provenance.derived(body, m, "a part of m", "python tools/gen_firmware.py")
    assert provenance.check(body) == []
    m.write_bytes(b"TFL3 two")  # replaced, provenance and body not remade
    assert "differ" in provenance.check(m)[0]
    assert "another m.tflite" in provenance.check(body)[0]


class _Window(ctypes.Structure):
    _fields_ = [("size_ms", ctypes.c_size_t), ("step_size_ms", ctypes.c_size_t)]


class _Filterbank(ctypes.Structure):
    _fields_ = [("num_channels", ctypes.c_int), ("upper_band_limit", ctypes.c_float),
                ("lower_band_limit", ctypes.c_float), ("output_scale_shift", ctypes.c_int)]


class _NoiseReduction(ctypes.Structure):
    _fields_ = [("smoothing_bits", ctypes.c_int), ("even_smoothing", ctypes.c_float),
                ("odd_smoothing", ctypes.c_float), ("min_signal_remaining", ctypes.c_float)]


class _Pcan(ctypes.Structure):
    _fields_ = [("enable_pcan", ctypes.c_int), ("strength", ctypes.c_float), ("offset", ctypes.c_float),
                ("gain_bits", ctypes.c_int)]


class _LogScale(ctypes.Structure):
    _fields_ = [("enable_log", ctypes.c_int), ("scale_shift", ctypes.c_int)]


class _FrontendConfig(ctypes.Structure):
    """struct FrontendConfig of the TFLM micro-frontend (microfrontend/lib/frontend_util.h)."""

    _fields_ = [("window", _Window), ("filterbank", _Filterbank), ("noise_reduction", _NoiseReduction),
                ("pcan_gain_control", _Pcan), ("log_scale", _LogScale)]


class _FrontendOutput(ctypes.Structure):
    _fields_ = [("values", ctypes.POINTER(ctypes.c_uint16)), ("size", ctypes.c_size_t)]


# app/src/frontend.c: the FrontendConfig field each kws_params.h define sets.
_FIELDS = {
    "KWS_WINDOW_MS": ("window", "size_ms"), "KWS_STRIDE_MS": ("window", "step_size_ms"),
    "KWS_CHANNELS": ("filterbank", "num_channels"), "KWS_FE_LOWER_BAND_LIMIT": ("filterbank", "lower_band_limit"),
    "KWS_FE_UPPER_BAND_LIMIT": ("filterbank", "upper_band_limit"),
    "KWS_FE_SMOOTHING_BITS": ("noise_reduction", "smoothing_bits"),
    "KWS_FE_EVEN_SMOOTHING": ("noise_reduction", "even_smoothing"),
    "KWS_FE_ODD_SMOOTHING": ("noise_reduction", "odd_smoothing"),
    "KWS_FE_MIN_SIGNAL_REMAINING": ("noise_reduction", "min_signal_remaining"),
    "KWS_FE_ENABLE_PCAN": ("pcan_gain_control", "enable_pcan"),
    "KWS_FE_PCAN_STRENGTH": ("pcan_gain_control", "strength"),
    "KWS_FE_PCAN_OFFSET": ("pcan_gain_control", "offset"), "KWS_FE_PCAN_GAIN_BITS": ("pcan_gain_control", "gain_bits"),
    "KWS_FE_ENABLE_LOG": ("log_scale", "enable_log"), "KWS_FE_LOG_SCALE_SHIFT": ("log_scale", "scale_shift"),
}


def _frontend_with(defines: dict[str, str], audio: np.ndarray) -> np.ndarray:
    """The micro-frontend compiled into the installed pymicro-features, configured as app/src/frontend.c
    configures it from `defines`: the raw uint16 features (frames, channels)."""
    import micro_features_cpp

    lib = ctypes.CDLL(micro_features_cpp.__file__)
    lib.FrontendProcessSamples.restype = _FrontendOutput
    config = _FrontendConfig()
    lib.FrontendFillConfigWithDefaults(ctypes.byref(config))
    for name, (section, field) in _FIELDS.items():
        part = getattr(config, section)
        setattr(part, field, type(getattr(part, field))(_cfloat(defines[name])))
    state = ctypes.create_string_buffer(1 << 16)  # struct FrontendState: a few hundred bytes
    assert lib.FrontendPopulateState(ctypes.byref(config), state, int(defines["KWS_SAMPLE_RATE"]))
    frames, pos, read = [], 0, ctypes.c_size_t()
    samples = np.ascontiguousarray(audio, dtype=np.int16)
    while pos < len(samples):
        chunk = samples[pos:].ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
        out = lib.FrontendProcessSamples(state, chunk, len(samples) - pos, ctypes.byref(read))
        pos += read.value
        if out.size:
            frames.append(np.ctypeslib.as_array(out.values, (out.size,)).copy())
    lib.FrontendFreeStateContents(state)
    return np.array(frames)


def test_frontend_constants_match_pymicro_features(cfg) -> None:
    d = _defines((GEN / "kws_params.h").read_text())
    assert set(_FIELDS) <= set(d) and len(FRONTEND) == len([k for k in _FIELDS if k.startswith("KWS_FE_")])
    assert int(d["KWS_SAMPLE_RATE"]) == cfg.features.sample_rate
    assert _cfloat(d["KWS_FEATURE_SCALE"]) == FEATURE_SCALE == 1 / 25.6
    # The firmware's configuration run in pymicro-features' own micro-frontend gives, bit for bit,
    # what pymicro-features computes (its init_cfg): the constants are pymicro-features', not a copy.
    rng = np.random.default_rng(0)
    t = np.arange(cfg.features.sample_rate) / cfg.features.sample_rate
    audio = (rng.standard_normal(len(t)) * 300 + 6000 * np.sin(2 * np.pi * 440 * t) * (t > 0.4)).astype(np.int16)
    host = compute_features(audio, cfg.features).astype(np.float64) / _cfloat(d["KWS_FEATURE_SCALE"])
    firmware = _frontend_with(d, audio)
    assert firmware.shape == host.shape == (int(d["KWS_WINDOW_FRAMES"]), int(d["KWS_CHANNELS"])) == (98, 40)
    assert np.array_equal(firmware, np.round(host)) and host.max() > 100
    # the comparison sees every constant: one changed (PCAN offset 80 -> 81) changes the features
    assert not np.array_equal(_frontend_with({**d, "KWS_FE_PCAN_OFFSET": "81.0f"}, audio), firmware)


def test_builtin_clips_decode_with_expected_labels() -> None:
    clips = read_clips(CLIPS)
    manifest = json.loads((CLIPS / "clips.json").read_text())["clips"]
    assert sorted(p.name for p in CLIPS.glob("*.pcm")) == sorted(c["file"] for c in manifest)
    labels = [lab for lab, _ in clips]
    assert labels == [c["label"] for c in manifest]
    assert sorted(labels) == sorted([SILENCE_LABEL, *SC_KEYWORDS, NOISE_LABEL])
    for (lab, samples), entry in zip(clips, manifest, strict=True):
        assert len(samples) == entry["samples"] == 16000, lab
        assert sha256_samples(samples) == entry["sha256"], f"{lab}: samples differ from clips.json"
        assert entry["source"].startswith(lab + "/") or lab == NOISE_LABEL
    rms = {lab: float(np.sqrt(np.mean(s.astype(np.float64) ** 2))) for lab, s in clips}
    assert all(rms[k] > 100 for k in SC_KEYWORDS), "a keyword clip is (nearly) silent"


@pytest.fixture(scope="module")
def images(cfg):
    return {"fused_int8.tflite": ImageModel(cfg, MODELS / "fused_int8.tflite", "window"),
            "fused_stream_int8.tflite": ImageModel(cfg, MODELS / "fused_stream_int8.tflite", "stream")}


@pytest.mark.parametrize("k", [0, 1, 2])
def test_builtin_clips_are_detected_by_the_image_models_on_the_host(cfg, images, k) -> None:
    """What twister checks on QEMU, on the host: each clip through each image's model and mode
    (clips.json: qemu_cortex_m3's fused streaming default, the fused whole window, the builtin-op
    model of mps2/an385), with the recorded margin to the threshold."""
    meta = json.loads((CLIPS / "clips.json").read_text())
    want = [("fused_stream_int8.tflite", "stream"), ("fused_int8.tflite", "window"), ("model_int8.tflite", "window")]
    assert [(i["model"], i["mode"]) for i in meta["images"]] == want
    name, mode = want[k]
    image = images[name] if name in images else ImageModel(cfg, MODELS / name, mode)
    clips = read_clips(CLIPS)
    if k == 2:  # the builtin-op model is slow in the PyPI TFLM (~3 s a clip): clip set 0 here
        clips = clips[:3]  # (tools/gen_firmware.py --clips checked all of them when it picked them)
    for (lab, samples), entry in zip(clips, meta["clips"], strict=False):
        found, best = host_scores(image, cfg, samples)
        assert found == ([] if lab in (SILENCE_LABEL, NOISE_LABEL) else [lab]), f"{lab}: host detects {found}"
        assert clip_ok(cfg, lab, found, best, meta["margin"]), f"{lab}: {np.round(best, 3)} within the margin"
        if k == 0:
            assert np.allclose(best, [entry["host_best"][x] for x in cfg.labels], atol=1e-3), lab


def test_stream_readout_equals_window_model_on_the_first_window(cfg, images) -> None:
    """From a reset, 49 streaming steps see the same 98 frames through the same causal int8 blocks as
    the whole-window model: stream_mean (float mean of int8 h, float classifier) and the window
    model (int8 MEAN, int8 classifier, int8 softmax) differ only by their int8 roundings. The first
    step of the readout equals the streaming .tflite's own per-step softmax."""
    full = FusedHost((MODELS / "fused_stream_int8.tflite").read_bytes())
    w, s = images["fused_int8.tflite"], images["fused_stream_int8.tflite"]
    for lab, samples in read_clips(CLIPS)[:6]:
        f = compute_features(samples, cfg.features)
        w.reset()
        s.reset()
        full.reset()
        for i in range(cfg.steps):
            pw, ps = w.hop(f[2 * i:2 * i + 2]), s.hop(f[2 * i:2 * i + 2])
            if i == 0:
                y = full.run(quantize_c(f[:2].reshape(1, -1), s.in_scale, s.in_zp)).reshape(-1)
                assert np.abs((y.astype(np.float64) + 128) / 256 - ps).max() < 0.02, lab
        assert np.abs(pw - ps).max() < 0.05, lab
        assert pw.argmax() == ps.argmax(), lab


@pytest.fixture(scope="module")
def c_detector(tmp_path_factory, cfg):
    """app/src/detector.c built for the host against the generated kws_params.h."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler (cc/gcc) to build app/src/detector.c for the host")
    out = tmp_path_factory.mktemp("det") / "libdet.so"
    subprocess.run([cc, "-std=c99", "-O1", "-shared", "-fPIC", "-I", str(GEN), str(REPO / "app/src/detector.c"),
                    "-o", str(out)], check=True)
    lib = ctypes.CDLL(str(out))
    lib.kws_detector_update.restype = ctypes.c_int
    return lib


def test_firmware_detector_equals_host_detector(c_detector, cfg) -> None:
    params = detection_params(cfg)
    n = len(params["labels"])
    rng = np.random.default_rng(1)
    # a stream of posteriors with keyword bursts of random length (some cross the threshold)
    post = rng.dirichlet(np.ones(n) * 0.3, size=600)
    for start in range(20, 580, 45):
        k = int(rng.integers(2, n))
        post[start:start + int(rng.integers(3, 20)), :] = 0.02 / (n - 1)
        post[start:start + int(rng.integers(3, 20)), k] = 0.98
    post /= post.sum(1, keepdims=True)
    host = Detector(params)
    state = ctypes.create_string_buffer(1 << 16)
    c_detector.kws_detector_reset(state)
    got, want = [], []
    score = ctypes.c_float()
    for t, p in enumerate(post):
        d = host.update(p)
        if d is not None:
            want.append((t, d.label))
        arr = (ctypes.c_float * n)(*p.astype(np.float32))
        k = c_detector.kws_detector_update(state, arr, ctypes.byref(score))
        if k >= 0:
            got.append((t, k))
    assert len(want) >= 3
    assert got == want


def test_stream_body_refuses_a_whole_window_model_in_one_line(tmp_path, capsys) -> None:
    from mamba_kws.errors import cli_main
    from mamba_kws.firmware import FirmwareError, main, stream_body

    with pytest.raises(FirmwareError, match="not a fused streaming model"):
        stream_body((MODELS / "fused_int8.tflite").read_bytes())
    args = ["--stream-tflite", str(MODELS / "fused_int8.tflite"), "--out", str(tmp_path), "--fused-tflite", "none",
            "--clips-dir", str(tmp_path / "clips")]
    assert cli_main(main, args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--streaming" in err[0]


def test_firmware_models_records_provenance(tmp_path, monkeypatch, capsys) -> None:
    """tools/firmware_models.py (make firmware-models): each model file it makes gets a provenance naming
    the checkpoint's sha256, the config and the commands (the export and fused_tflite steps faked here;
    the real ones need a trained checkpoint). A missing checkpoint is one line."""
    from mamba_kws import firmware_models as fm
    from mamba_kws import provenance
    from mamba_kws.errors import cli_main

    assert cli_main(fm.main, ["--checkpoint", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint" in err[0]

    ck, qat = tmp_path / "run" / "best.pt", tmp_path / "run_int8" / "best.pt"
    for path, data in ((ck, b"float"), (qat, b"qat")):
        path.parent.mkdir()
        path.write_bytes(data)

    def fake_run(script: str, args: list[str]) -> tuple[str, str]:
        out = Path(args[args.index("--out") + 1])
        out = out if out.is_absolute() else REPO / out
        if script == "export.py":
            out.mkdir(parents=True)
            (out / "model_int8.tflite").write_bytes(b"TFL3 builtin")
            (out / "report.json").write_text(json.dumps({"torch_accuracy": 0.9, "test_clips": 10, "models": {
                "int8": {"arena_bytes": 1000, "vs_torch_in_tflm": {"top1_agreement": 0.98}}}}))
        else:
            out.write_bytes(b"TFL3 " + " ".join(args).encode())
        return f"python tools/{script} {' '.join(args)}", ""

    monkeypatch.setattr(fm, "_run", fake_run)
    models = tmp_path / "model"
    rows = fm.make_models(ck, qat, MODEL_YAML, models, tmp_path / "work")
    assert [r["file"] for r in rows] == ["model_int8.tflite", "fused_int8.tflite", "fused_stream_int8.tflite"]
    for row in rows:
        f = models / row["file"]
        assert provenance.check(f) == []
        meta = provenance.load(f)
        src = qat if row["file"] == "model_int8.tflite" else ck
        assert meta["source"]["sha256"] == provenance.sha256_file(src)
        assert meta["config"]["name"] == "kws_mamba" and meta["commands"][0].startswith("python tools/")
    assert provenance.load(models / "model_int8.tflite")["accuracy"]["int8_in_tflm_vs_torch"]["top1_agreement"] == 0.98
