"""Which component a symbol belongs to: ONE table of rules, first match wins.

A rule looks at the symbol's source path (the DWARF compile unit's DW_AT_name, joined to its
DW_AT_comp_dir; or, without debug info, the object file the linker map placed it from) or at
its (mangled) symbol name. Path rules only apply when one of those is known; symbol-name rules
catch what is left (libc without -g, mangled C++ namespaces, the model array wherever it is).

A path inside one of the build's roots comes relative to it ("@app/src/main.c", "@zephyr/kernel/sched.c",
"@module/<name>/...", "@build/..."; build.workspace_roots), so the folder the workspace lies in (say
~/zephyr/kws-workspace/) cannot decide the component. Other paths (no build folder beside the ELF, a
linker-map path relative to the build folder) are matched as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OTHER = "other"
NO_SYMBOL = "(no symbol)"  # bytes of a section that no sized symbol covers: padding, literal pools

# The order of the report's rows.
COMPONENTS = [
    "model weights", "tflm_mamba kernels", "TFLM", "CMSIS-NN", "app",
    "Zephyr kernel", "Zephyr drivers/subsys", "libc/runtime", OTHER, NO_SYMBOL,
]


@dataclass(frozen=True)
class Rule:
    component: str
    field: str  # "path" or "symbol"
    pattern: str
    why: str


_LIBC_NAMES = (
    r"_?mem(cpy|set|move|cmp|chr)|str\w*|v?s?n?f?printf|puts|putchar|fput[cs]|fwrite|__?s?fputs\w*"
    r"|malloc|free|calloc|realloc|abort|exit|_exit|atexit|ato[il]|strto\w+|qsort|bsearch|s?rand"
    r"|errno|__errno\w*|_impure_ptr|_?_?dtoa\w*|__assert\w*|__libc\w*|__retarget\w*"
    r"|(exp|log|log2|log10|sqrt|tanh|sin|cos|pow|floor|ceil|round|fabs|frexp|ldexp|fmax|fmin)f?"
)

RULES: list[Rule] = [
    # 1. the model first: a g_model[] defined in the app's sources is still the model
    Rule("model weights", "symbol",
         r"^g_\w*model\w*$|\w*_tflite(_data|_len)?$|^model_(data|weights|tflite)\w*$|^tm_h_\w+$|^kws_model\w*$",
         "the model array (g_model, kws_model, *_tflite, model_data; tm_h_* from fused/cgen.py)"),
    Rule("model weights", "path", r"(^|/)\w*model_data\w*\.(c|cc|cpp|h)$", "a generated model_data.c"),
    # 2. where the code comes from (needs DWARF), most specific first
    Rule("tflm_mamba kernels", "path", r"modules/tflm_mamba/", "the project's kernel module"),
    Rule("CMSIS-NN", "path", r"(?i)cmsis[-_]nn", "CMSIS-NN sources"),
    Rule("TFLM", "path", r"tflite-micro|tflite_micro|tensorflow/lite|flatbuffers", "TFLM sources"),
    Rule("app", "path", r"^@app/", "the application's folder (a ztest suite's too)"),
    Rule("Zephyr kernel", "path", r"(^@|/)zephyr/(kernel|arch|soc|lib/os)/", "zephyr/kernel, arch, soc"),
    Rule("libc/runtime", "path", r"picolibc|newlib|/libc/|/lib[cgm](_nano)?\.a|libgcc|libstdc\+\+|libsupc|compiler-rt",
         "C/C++ runtime"),
    Rule("Zephyr drivers/subsys", "path", r"^@zephyr/|^@build/|^@module/hal_|/zephyr/|/modules/hal/",
         "drivers, subsys, HALs, generated"),
    Rule("app", "path", r"/app/|/tests/.*/src/", "the application (app/), or a ztest suite (tests/.../src/)"),
    # 3. what the name says (no debug info, or a library built without -g)
    Rule("tflm_mamba kernels", "symbol", r"^tm_|tflm_mamba|(?i:mamba)", "tm_* C core, MAMBA op registration"),
    Rule("CMSIS-NN", "symbol", r"^arm_\w*_s(4|8|16)\w*$|^arm_nn_\w+", "arm_*_s8 kernels"),
    Rule("TFLM", "symbol", r"^_Z(Z|T[VIS]|GVZ?)?N[KVRO]*(6tflite|11flatbuffers)", "C++ namespace tflite::"),
    Rule("Zephyr kernel", "symbol",
         r"^(k_|z_|_k_|arch_|_isr_wrapper|_sw_isr_table|_irq_vector_table|_vector_table|_kernel$|_main_stack)",
         "k_*, z_*, arch_*, ISR tables"),
    Rule("Zephyr drivers/subsys", "symbol", r"^__device_dts_ord|^__devstate|^__init_|^_?log_", "devices, logging"),
    Rule("libc/runtime", "symbol",
         rf"^(__aeabi_\w+|__gnu_\w+|__cxa_\w+|_Unwind\w*|__gxx\w*|__(u?div|mod|mul|add|sub|fix|float|cmp|"
         rf"extend|trunc|clz|ctz|ffs|popcount)\w*|_ZSt\w*|_ZNSt\w*|_ZN9__gnu_cxx\w*|_?({_LIBC_NAMES}))$",
         "libc function names, compiler helpers"),
    Rule("app", "symbol", r"^main$", "main()"),
]

_COMPILED = [(r, re.compile(r.pattern)) for r in RULES]


def classify(name: str, path: str | None) -> str:
    """The component of a symbol `name` whose source file is `path` (None when unknown)."""
    for rule, rx in _COMPILED:
        subject = path if rule.field == "path" else name
        if subject and rx.search(subject):
            return rule.component
    return OTHER
