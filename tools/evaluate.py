#!/usr/bin/env python3
"""Entry point: see mamba_kws/evaluate.py (`python tools/evaluate.py --help`)."""

from mamba_kws.errors import cli_main
from mamba_kws.evaluate import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
