#!/usr/bin/env python3
"""Entry point: see mamba_kws/firmware_models.py (`python tools/firmware_models.py --help`)."""

from mamba_kws.errors import cli_main
from mamba_kws.firmware_models import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
