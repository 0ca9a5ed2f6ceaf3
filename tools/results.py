#!/usr/bin/env python3
"""Every published figure in one results.json, and the README's tables from it: python tools/results.py --help"""

from mamba_kws.errors import cli_main
from mamba_kws.results import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
