"""The paper's deployment path (Drabinski, "Adapting Mamba Models for Deployment on Microcontrollers").

A trained MambaKWS becomes a TensorFlow graph built from its weights with the selective scan
unrolled over time into builtin ops, then a .tflite (float32, int8, int16x8) that runs in TFLM
with its stock kernels, then, optionally, K partition .tflite files run one after another.

- tfgraph.py: PyTorch weights -> tf.function (batchnorm folded, conv1d as DEPTHWISE_CONV_2D,
  SiLU as x * LOGISTIC(x), the scan unrolled step by step).
- convert.py: the TFLite converter (float32 / int8 / int16x8) and the representative data set.
- flatbuf.py: reading a .tflite (ops, tensors, quantisation) and cutting it into sub-models.
- tflm.py: running a .tflite in TFLM (PyPI tflite-micro), measuring its arena, naming the op TFLM refuses.
- codegen.py: `write_model_sources` (a .tflite as a C array + its arena size).
- pipeline.py / split.py / bench.py: the entry points behind tools/export.py, tools/split.py,
  tools/bench_export.py.
"""

import os

from ..errors import KWSError

# TensorFlow is imported lazily by this package; keep its C++ logging and GPU probing quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


class ExportError(KWSError):
    """A model, file or setting the export path cannot use; the message says which and why."""


__all__ = ["ExportError"]
