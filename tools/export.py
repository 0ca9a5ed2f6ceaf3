"""Export a checkpoint to TFLite with the scan unrolled into TFLM builtins: python tools/export.py --help"""

from mamba_kws.errors import cli_main
from mamba_kws.export.pipeline import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
