"""Do the builtin-op int8 and the fused int8 models of a checkpoint agree? python tools/compare_paths.py --help"""

from mamba_kws.compare_paths import main
from mamba_kws.errors import cli_main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
