#!/usr/bin/env python3
"""Entry point: see mamba_kws/elf/report.py (`python tools/elf_report.py --help`)."""

from mamba_kws.elf.report import main
from mamba_kws.errors import cli_main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
