"""The TFLite converter: float32, full-integer int8 and int16x8 from the unrolled graph."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import ExportError

KINDS = ("float32", "int8", "int16x8")


@contextlib.contextmanager
def quiet_fds() -> Iterator[None]:
    """Silence the converter's C++ logging (it writes to fd 1/2 directly)."""
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def import_tf() -> Any:
    """tensorflow, imported without the C++ start-up lines it writes to stderr (oneDNN, CUDA probing)
    and with its Python deprecation warnings about the conversion path silenced."""
    import sys

    if "tensorflow" not in sys.modules:
        with quiet_fds():
            import tensorflow  # noqa: F401
    import absl.logging
    import tensorflow as tf

    absl.logging.set_verbosity(absl.logging.ERROR)
    return tf


def convert(concrete: Any, kind: str, rep_features: np.ndarray | None = None) -> bytes:
    """One .tflite from a concrete function. rep_features (n, frames, channels) float32 for int8/int16x8."""
    tf = import_tf()

    if kind not in KINDS:
        raise ExportError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if kind != "float32":
        if rep_features is None or len(rep_features) == 0:
            raise ExportError(f"{kind} needs a representative data set (training features)")
        feats = np.asarray(rep_features, np.float32)

        def rep() -> Iterator[list[np.ndarray]]:
            for f in feats:
                yield [f[None]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        if kind == "int8":
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        else:
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            conv.inference_input_type = tf.int16
            conv.inference_output_type = tf.int16
    try:
        with quiet_fds():
            return bytes(conv.convert())
    except Exception as exc:  # the converter raises many types; keep its first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"TFLite conversion to {kind} failed: {first}") from None


def tf_logits(concrete: Any, feats: np.ndarray) -> np.ndarray:
    """Float TF logits (n, classes) of features (n, frames, channels)."""
    tf = import_tf()

    return np.concatenate([concrete(tf.constant(f[None], tf.float32)).numpy() for f in feats])
