"""Model size by measurement (accuracy, flash, RAM, instructions per step): python tools/size_table.py --help"""

from mamba_kws.errors import cli_main
from mamba_kws.size_table import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
