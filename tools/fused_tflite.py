#!/usr/bin/env python3
"""Entry point: see mamba_kws/fused_tflite.py (`python tools/fused_tflite.py --help`)."""

from mamba_kws.errors import cli_main
from mamba_kws.fused_tflite import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
