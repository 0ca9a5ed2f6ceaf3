"""Where int8 is not enough inside the fused kernels: python tools/int8_costs.py --help"""

from mamba_kws.errors import cli_main
from mamba_kws.int8_costs import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
