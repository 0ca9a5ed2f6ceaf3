"""Instructions, flash and RAM of the fused Mamba kernels on Cortex-M3/M4 under QEMU."""

from mamba_kws.errors import cli_main
from mamba_kws.fused.bench import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
