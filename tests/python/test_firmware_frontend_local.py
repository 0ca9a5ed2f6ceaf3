"""Local only: the firmware's front end (app/src/frontend.c + the TFLM micro-frontend C code of the
tflite-micro module) built for the host equals pymicro-features on the built-in clips, bit for bit.

The micro-frontend sources are fetched code that CI does not have: this test runs where a Zephyr
workspace with tflite-micro exists (KWS_TFLM_DIR, default <west workspace>/modules/lib/tflite-micro, the workspace being
the folder above this repo)
and is skipped, saying so, elsewhere. CI checks the constants instead (test_firmware.py).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mamba_kws.features import FEATURE_SCALE, compute_features
from mamba_kws.firmware import read_clips

REPO = Path(__file__).resolve().parents[2]
TFLM = Path(os.environ.get("KWS_TFLM_DIR", REPO.parent / "modules" / "lib" / "tflite-micro"))
MF = "tensorflow/lite/experimental/microfrontend/lib"
C_FILES = ["filterbank.c", "filterbank_util.c", "frontend.c", "frontend_util.c", "log_lut.c", "log_scale.c",
           "log_scale_util.c", "noise_reduction.c", "noise_reduction_util.c", "pcan_gain_control.c",
           "pcan_gain_control_util.c", "window.c", "window_util.c"]
CC_FILES = ["fft.cc", "fft_util.cc", "kiss_fft_int16.cc"]

pytestmark = pytest.mark.skipif(not (TFLM / MF / "frontend.c").is_file(),
                                reason=f"no tflite-micro workspace at {TFLM} (local-only test)")


@pytest.fixture(scope="module")
def fe_lib(tmp_path_factory):
    gxx = shutil.which("g++")
    gcc = shutil.which("gcc")
    if gxx is None or gcc is None:
        pytest.fail("gcc/g++ needed to build the front end for the host")
    d = tmp_path_factory.mktemp("fe")
    inc = ["-I", str(TFLM), "-I", str(TFLM / "third_party_static/kissfft"), "-I", str(REPO / "app/src/generated")]
    objs = []
    for f in C_FILES + ["app"]:
        src = REPO / "app/src/frontend.c" if f == "app" else TFLM / MF / f
        o = d / (f + ".o")
        subprocess.run([gcc, "-std=c99", "-O2", "-fPIC", "-c", *inc, str(src), "-o", str(o)], check=True)
        objs.append(str(o))
    for f in CC_FILES:
        o = d / (f + ".o")
        subprocess.run([gxx, "-std=c++17", "-O2", "-fPIC", "-c", *inc, str(TFLM / MF / f), "-o", str(o)], check=True)
        objs.append(str(o))
    so = d / "libfe.so"
    subprocess.run([gxx, "-shared", *objs, "-o", str(so)], check=True)
    return ctypes.CDLL(str(so))


FRAME_CB = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_uint16), ctypes.c_void_p)


def firmware_features(lib, audio: np.ndarray) -> np.ndarray:
    frames: list[np.ndarray] = []

    @FRAME_CB
    def on_frame(values, _user):
        frames.append(np.ctypeslib.as_array(values, shape=(40,)).copy())

    assert lib.kws_frontend_init() == 0
    a = np.ascontiguousarray(audio, dtype=np.int16)
    for i in range(0, len(a) - 159, 160):  # 10 ms chunks, as the firmware
        chunk = a[i:i + 160]
        lib.kws_frontend_push(chunk.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(160), on_frame, None)
    return np.stack(frames).astype(np.float64)


def test_firmware_front_end_equals_pymicro_features(fe_lib) -> None:
    clips = read_clips(REPO / "app" / "clips")
    for label, samples in clips:
        dev = firmware_features(fe_lib, samples) * FEATURE_SCALE
        host = compute_features(samples).astype(np.float64)
        assert dev.shape == host.shape == (98, 40), label
        assert np.abs(dev - host).max() < 1e-4, f"{label}: front ends differ"
