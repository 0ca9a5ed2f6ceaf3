"""Cross-compile the C core with the bare-metal harness and run it under qemu-system-arm.

Targets: Cortex-M3 on `-M lm3s6965evb` (what Zephyr's qemu_cortex_m3 emulates) and Cortex-M4F
on `-M mps2-an386`. The harness prints `key value` lines (modules/tflm_mamba/harness/main.c).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import KWSError
from .cbind import INCLUDE_DIR, MODULE_DIR, sources

HARNESS_DIR = MODULE_DIR / "harness"


class QemuError(KWSError):
    """The cross build or the emulator run failed."""


@dataclass(frozen=True)
class Target:
    name: str
    machine: str
    cflags: tuple[str, ...]
    linker_script: str


TARGETS = {
    "cortex-m3": Target(
        "cortex-m3", "lm3s6965evb", ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"), "lm3s6965evb.ld"
    ),
    "cortex-m4": Target(
        "cortex-m4",
        "mps2-an386",
        ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
        "mps2_an386.ld",
    ),
}


def toolchain_missing() -> str | None:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            return tool
    return None


def _run(cmd: list[str], what: str, timeout: float = 300) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if res.returncode:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise QemuError(f"{what} failed: {' | '.join(msg[:4])}")
    return res.stdout


# The optimisation flags of the Zephyr library (modules/tflm_mamba/CMakeLists.txt, GCC).
DEFAULT_OPT = "-O2 -fno-schedule-insns"


def build(
    target: Target, model_c: Path, out_dir: Path, opt: str = DEFAULT_OPT, defines: tuple[str, ...] = ()
) -> tuple[Path, list[Path]]:
    """Objects of the C core (returned for size accounting) + harness + model, linked to an ELF.

    opt: optimisation flags (space-separated). defines (NAME or NAME=VALUE) apply to every file:
    TFLM_MAMBA_REFERENCE (the reference kernels), TFLM_MAMBA_PROFILE (the per-phase profile),
    TM_HARNESS_INT8_ONLY (no float32 path; the model file from cgen.model_source(with_float=False))."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cflags = [
        "-std=c99",
        *opt.split(),
        "-g",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-ffunction-sections",
        "-fdata-sections",
        *target.cflags,
        f"-I{INCLUDE_DIR}",
        f"-I{HARNESS_DIR}",
        *(f"-D{d}" for d in defines),
    ]
    core_objs = []
    for src in sources():
        obj = out_dir / f"{src.stem}.o"
        _run(["arm-none-eabi-gcc", *cflags, "-c", str(src), "-o", str(obj)], f"compiling {src.name}")
        core_objs.append(obj)
    other = []
    for src in (HARNESS_DIR / "startup.c", HARNESS_DIR / "main.c", model_c):
        obj = out_dir / f"h_{src.stem}.o"
        flags = [f for f in cflags if f != "-Werror"] if src == model_c else cflags
        _run(["arm-none-eabi-gcc", *flags, "-c", str(src), "-o", str(obj)], f"compiling {src.name}")
        other.append(obj)
    elf = out_dir / "harness.elf"
    _run(
        [
            "arm-none-eabi-gcc",
            *target.cflags,
            "-nostartfiles",
            "--specs=nano.specs",
            "-Wl,--gc-sections",
            f"-L{HARNESS_DIR}",
            f"-T{HARNESS_DIR / target.linker_script}",
            *map(str, core_objs + other),
            "-lm",
            "-lc",
            "-lgcc",
            "-lnosys",
            "-o",
            str(elf),
        ],
        "linking the harness",
    )
    return elf, core_objs


def run(target: Target, elf: Path, timeout: float = 120) -> dict[str, list[int]]:
    cmd = [
        "qemu-system-arm",
        "-M",
        target.machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        "shift=0",
        "-kernel",
        str(elf),
    ]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise QemuError(f"qemu {target.machine} did not finish in {timeout:.0f} s") from None
    text = res.stdout + res.stderr  # semihosting output may land on either
    if res.returncode or "done" not in text.splitlines():
        raise QemuError(f"qemu {target.machine} exited {res.returncode}: {(res.stdout + res.stderr).strip()[-300:]}")
    values: dict[str, list[int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values.setdefault(parts[0], []).append(int(parts[1]))
    return values


def symbol_sizes(objs: list[Path]) -> dict[str, int]:
    """Flash bytes per symbol (text and read-only data) over the kernel objects."""
    out = _run(["arm-none-eabi-nm", "--size-sort", "-S", *map(str, objs)], "nm")
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].lower() in "trd":
            sizes[parts[3]] = sizes.get(parts[3], 0) + int(parts[1], 16)
    return sizes


def elf_sections(elf: Path) -> dict[str, int]:
    out = _run(["arm-none-eabi-size", "-A", str(elf)], "size")
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            res[parts[0]] = int(parts[1])
    return res
