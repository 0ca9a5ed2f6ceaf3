"""The fused Mamba kernels' Python side (modules/tflm_mamba).

- `fixed_point`: the integer maths of fixed_point.h (requantisation, Q30 decay tables), bit-exact.
- `quantize`: float weights of a MambaKWS as the C structs want them, and the int8 quantiser
  (calibration on features, per-channel weights, tables for the element-wise functions).
- `intmodel`: a bit-exact numpy model of the int8 kernels (the test oracle).
- `cbind`: builds the C core as a host shared library and calls it through ctypes (the optimized
  int8 kernels by default, the plain-C reference with `load(reference=True)`).
- `qemu`, `bench`, `sweep`: the bare-metal Cortex-M3/M4 builds and tools/bench_kernels.py.
"""
