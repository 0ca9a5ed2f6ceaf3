#!/usr/bin/env python3
"""Generate the synthetic keyword data set: `python tools/gen_data.py --help`."""

from mamba_kws.data.generate import main
from mamba_kws.errors import cli_main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
