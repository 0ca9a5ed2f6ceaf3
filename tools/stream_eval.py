#!/usr/bin/env python3
"""Entry point: see mamba_kws/stream_eval.py (`python tools/stream_eval.py --help`)."""

from mamba_kws.errors import cli_main
from mamba_kws.stream_eval import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
