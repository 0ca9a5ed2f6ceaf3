"""ELF analysis of a firmware build: where flash and RAM go, against the board's budget.

`python tools/elf_report.py build/zephyr/zephyr.elf` (see report.py). Reading the ELF is in
image.py, the component rules in components.py, the board detection in build.py.
"""

from .image import ElfImage, ElfReportError, load_elf

__all__ = ["ElfImage", "ElfReportError", "load_elf"]
