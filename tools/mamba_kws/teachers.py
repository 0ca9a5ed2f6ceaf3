"""Pretrained 12-class Speech Commands keyword spotters: distillation teachers and baselines.

    from mamba_kws.teachers import load_teacher
    probs = load_teacher("ensemble")(clips)   # (N, 16000) int16 -> (N, 12) in TEACHER_LABELS order

The model files live in the teachers folder (`mamba_kws.paths.teachers_dir()`: --teachers, $KWS_TEACHERS,
else <data root>/teachers), laid out as published:

  ds_cnn_l, ds_cnn_s  arm_ml_kws_for_mcu/DS_CNN_{L,S}.pb: ARM ML-KWS-for-MCU DS-CNN frozen TF1 graphs
                      ("Hello Edge", Apache-2.0). Their front end is inside the graph (DecodeWav,
                      AudioSpectrogram 40 ms / 20 ms, Mfcc 40 mel 20-4000 Hz, 10 coefficients); the
                      decoded audio is fed straight in, many clips at once, as (16000, N).
  mlperf_float/_int8  mlcommons_tiny_kws/kws_ref_model{_float32,}.tflite: the MLPerf Tiny KWS reference
                      DS-CNN (Apache-2.0) on MFCCs of its get_dataset.py (see `mlperf_mfcc`).
  ensemble            ds_cnn_l and mlperf_float: equal-weight mean of log probabilities, renormalised.

Each teacher maps a batch of 1 s, 16 kHz clips (end-padded or cut, as their own pipelines do) to
posteriors over TEACHER_LABELS; `to_labels` reorders them for a model's labels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import KWSError
from .paths import TEACHERS_ENV, teachers_dir

TEACHER_LABELS = ("_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
MLPERF_LABELS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_")
FILES = {
    "ds_cnn_l": "arm_ml_kws_for_mcu/DS_CNN_L.pb",
    "ds_cnn_s": "arm_ml_kws_for_mcu/DS_CNN_S.pb",
    "mlperf_float": "mlcommons_tiny_kws/kws_ref_model_float32.tflite",
    "mlperf_int8": "mlcommons_tiny_kws/kws_ref_model.tflite",
}
ENSEMBLE = ("ds_cnn_l", "mlperf_float")
NAMES = (*FILES, "ensemble")
SAMPLES = 16000

Teacher = Callable[[np.ndarray], np.ndarray]


def as_float_clips(clips: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """(N, L) int16 / float array or list of 1-D clips -> (N, 16000) float32 in [-1, 1], end-padded or cut."""
    out = np.zeros((len(clips), SAMPLES), np.float32)
    for i, x in enumerate(clips):
        x = np.asarray(x)
        x = x / np.float32(32768) if np.issubdtype(x.dtype, np.integer) else np.clip(x, -1.0, 1.0)
        x = x[:SAMPLES]
        out[i, : len(x)] = x
    return out


def _tf():  # the tensorflow module, imported on first use
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf


def arm_ds_cnn(path: Path) -> Teacher:
    """ARM frozen graph; its DecodeWav output is replaced by a (16000, N) placeholder: N clips = N channels."""
    tf = _tf()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(path).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        audio = tf.compat.v1.placeholder(tf.float32, [SAMPLES, None])
        tf.import_graph_def(graph_def, name="", input_map={"decoded_sample_data:0": audio,
                                                           "decoded_sample_data:1": tf.constant(16000)})
    threads = tf.config.threading
    session = tf.compat.v1.Session(graph=graph, config=tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads.get_intra_op_parallelism_threads(),
        inter_op_parallelism_threads=threads.get_inter_op_parallelism_threads()))
    softmax = graph.get_tensor_by_name("labels_softmax:0")  # columns already in TEACHER_LABELS order

    def predict(clips: np.ndarray, batch: int = 256) -> np.ndarray:
        x = as_float_clips(clips)
        if not len(x):
            return np.zeros((0, len(TEACHER_LABELS)), np.float32)
        return np.concatenate([session.run(softmax, {audio: x[i : i + batch].T})
                               for i in range(0, len(x), batch)]).astype(np.float32)

    return predict


def mlperf_mfcc(x: np.ndarray) -> np.ndarray:
    """mlcommons/tiny keyword_spotting get_dataset.py, feature_type 'mfcc', at test time: divide each clip
    by its maximum (max, not max |x|; left as is when <= 0), |STFT| (frame 480, step 320, periodic Hann,
    FFT 512), 40 mel bins 20-4000 Hz, log(mel + 1e-6), DCT-II MFCCs, first 10 -> (N, 49, 10, 1)."""
    tf = _tf()
    peak = x.max(axis=1, keepdims=True)
    x = np.where(peak > 0, x / np.where(peak > 0, peak, 1), x).astype(np.float32)
    magnitude = tf.abs(tf.signal.stft(x, frame_length=480, frame_step=320, window_fn=tf.signal.hann_window))
    mel = tf.signal.linear_to_mel_weight_matrix(40, magnitude.shape[-1], 16000, 20.0, 4000.0)
    log_mel = tf.math.log(tf.tensordot(magnitude, mel, 1) + 1e-6)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10].numpy()[..., None]


def mlperf_kws(path: Path) -> Teacher:
    import warnings

    tf = _tf()
    warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    order = [MLPERF_LABELS.index(name) for name in TEACHER_LABELS]

    def predict(clips: np.ndarray, batch: int = 256) -> np.ndarray:
        x = as_float_clips(clips)
        probs = []
        for i in range(0, len(x), batch):
            for features in mlperf_mfcc(x[i : i + batch]):
                if inp["dtype"] == np.int8:
                    scale, zero = inp["quantization"]
                    features = np.clip(np.round(features / scale + zero), -128, 127)
                interpreter.set_tensor(inp["index"], features[None].astype(inp["dtype"]))
                interpreter.invoke()
                p = interpreter.get_tensor(out["index"])[0].astype(np.float32)
                if out["dtype"] == np.int8:
                    scale, zero = out["quantization"]
                    p = (p - zero) * scale
                probs.append(p[order])
        return np.array(probs, np.float32).reshape(-1, len(TEACHER_LABELS))

    return predict


def combine(*probs: np.ndarray) -> np.ndarray:
    """Equal-weight average of log probabilities (geometric mean), renormalised to sum to 1."""
    log_p = np.mean([np.log(p + 1e-9) for p in probs], axis=0)
    p = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def teacher_file(name: str, folder: Path | None = None) -> Path:
    if name not in FILES:
        raise KWSError(f"unknown teacher {name!r}; choose from {', '.join(NAMES)}")
    return teachers_dir(folder) / FILES[name]


def available(name: str, folder: Path | None = None) -> bool:
    members = ENSEMBLE if name == "ensemble" else (name,)
    return all(teacher_file(m, folder).is_file() for m in members)


def present(names: list[str], folder: Path | None = None) -> list[str]:
    """The teachers of `names` (a `--teachers` option's items) whose model files are here, in order; the missing
    ones noted in one line and left out. An unknown name raises KWSError."""
    bad = [t for t in names if t not in NAMES]
    if bad:
        raise KWSError(f"--teachers: unknown {', '.join(bad)} (choose from {', '.join(NAMES)})")
    missing = [t for t in names if not available(t, folder)]
    if missing:
        print(f"note: teachers {', '.join(missing)} not found in {teachers_dir(folder)} (set ${TEACHERS_ENV}): "
              "left out")
    return [t for t in names if t not in missing]


def load_teacher(name: str, folder: Path | None = None) -> Teacher:
    """name in NAMES -> callable(clips) -> (N, 12) probabilities in TEACHER_LABELS order."""
    if name == "ensemble":
        members = [load_teacher(m, folder) for m in ENSEMBLE]
        return lambda clips: combine(*(m(clips) for m in members))
    path = teacher_file(name, folder)
    if not path.is_file():
        raise KWSError(f"teacher model {path} not found: point --teachers or ${TEACHERS_ENV} at the folder "
                       "holding arm_ml_kws_for_mcu/ and mlcommons_tiny_kws/")
    return arm_ds_cnn(path) if path.suffix == ".pb" else mlperf_kws(path)


def check_labels(labels: tuple[str, ...]) -> None:
    """KWSError unless a model's labels are the teachers' 12 classes (in any order)."""
    if set(labels) != set(TEACHER_LABELS):
        raise KWSError(f"the teachers know the 12 Speech Commands classes; the model's labels are {labels}")


def to_labels(probs: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """Reorder teacher posteriors (TEACHER_LABELS columns) for a model's labels (the same names)."""
    check_labels(labels)
    return probs[:, [TEACHER_LABELS.index(lab) for lab in labels]]


def _macs(kind: str, ins: list[tuple[int, ...]], out: tuple[int, ...]) -> int:
    """Multiply-accumulates of one conv / depthwise conv / dense op from its shapes (NHWC)."""
    n = int(np.prod(out))
    if kind in ("CONV_2D", "Conv2D"):  # weights (O, kh, kw, I) in TFLite, (kh, kw, I, O) in TF
        w = ins[1]
        return n * int(np.prod(w[1:]) if kind == "CONV_2D" else np.prod(w[:3]))
    if kind in ("DEPTHWISE_CONV_2D", "DepthwiseConv2dNative"):
        w = ins[1]
        return n * int(w[1] * w[2] if kind == "DEPTHWISE_CONV_2D" else w[0] * w[1])
    if kind in ("FULLY_CONNECTED", "MatMul"):
        return n * int(ins[1][1] if kind == "FULLY_CONNECTED" else ins[1][0])
    return 0


def macs(name: str, folder: Path | None = None) -> int:
    """MACs of one 1 s inference (`describe`), the ensemble's being both members'."""
    return sum(int(describe(m, folder)["macs"]) for m in (ENSEMBLE if name == "ensemble" else (name,)))


def describe(name: str, folder: Path | None = None) -> dict:
    """A teacher's size and compute, measured from its file: parameters, weight bytes (flash), MACs of one
    1 s inference (convolutions and dense layers; the front end not counted), and for the TFLite models
    the smallest TFLM arena that runs them (PyPI interpreter, 64-bit host)."""
    path = teacher_file(name, folder)
    if path.suffix == ".tflite":
        from .export import ExportError
        from .export.flatbuf import load_model, op_name, tensor_info
        from .export.tflm import min_arena

        data = path.read_bytes()
        model = load_model(data)
        sg = model.subgraphs[0]
        macs, params = 0, 0
        for op in sg.operators:
            ins = [tensor_info(model, int(i)) for i in op.inputs if i >= 0]
            out = tensor_info(model, int(op.outputs[0]))
            macs += _macs(op_name(model, op), [t.shape for t in ins], out.shape)
            if op_name(model, op) != "RESHAPE":  # its second input is a shape, not a weight
                params += sum(int(np.prod(t.shape)) for t in ins if t.const)
        try:
            arena = min_arena(data)
        except ExportError:  # the PyPI TFLM build runs int8 convolutions only
            arena = None
        return {"name": name, "file": str(path), "flash_bytes": len(data), "params": params, "macs": macs,
                "arena_bytes": arena}
    tf = _tf()
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    params = 0
    for node in graph_def.node:
        if node.op == "Const" and node.attr["value"].tensor.dtype == 1:  # float weights
            shape = [d.size for d in node.attr["value"].tensor.tensor_shape.dim]
            params += int(np.prod(shape)) if shape else 0
    graph = tf.Graph()
    with graph.as_default():
        audio = tf.compat.v1.placeholder(tf.float32, [SAMPLES, 1])
        tf.import_graph_def(graph_def, name="", input_map={"decoded_sample_data:0": audio,
                                                           "decoded_sample_data:1": tf.constant(16000)})
    macs = 0
    for op in graph.get_operations():
        if op.type in ("Conv2D", "DepthwiseConv2dNative", "MatMul"):
            ins = [tuple(int(d) for d in t.shape) for t in op.inputs]
            macs += _macs(op.type, ins, tuple(int(d) for d in op.outputs[0].shape))
    return {"name": name, "file": str(path), "flash_bytes": 4 * params, "params": params, "macs": macs,
            "arena_bytes": None}
