#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine: system packages (apt) and the Python venv (.venv).
# Used by `make setup` (and so by `make demo`, `make test` and .ci/run). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  gcc libc6-dev                              # host builds of the C kernels (ctypes, sanitizer fuzzing)
  clang libclang-rt-dev libflatbuffers-dev   # libFuzzer harnesses (make fuzz; the fuzzer and ASan runtimes), the options parser
  gcc-arm-none-eabi libnewlib-arm-none-eabi  # cross-compile the kernels + ELF fixtures for Cortex-M
  qemu-system-arm                            # run them bare-metal (lm3s6965evb = qemu_cortex_m3, mps2-an386 = M4)
  espeak-ng flite sox                        # speech synthesis for the generated data set
  festival festvox-kdlpc16k festvox-us-slt-hts  # more synthetic voices (part of the data cache key)
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch==2.13.0 is pinned in pyproject.toml: the CPU build (any other spec pulls GBs of CUDA wheels).
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
echo "environment ready: .venv ($(.venv/bin/python --version))"
