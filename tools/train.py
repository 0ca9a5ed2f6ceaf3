#!/usr/bin/env python3
"""Entry point: see mamba_kws/train.py (`python tools/train.py --help`)."""

from mamba_kws.errors import cli_main
from mamba_kws.train import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
