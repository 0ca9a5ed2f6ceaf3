"""Cut an exported .tflite into K partitions run in order in TFLM: python tools/split.py --help"""

from mamba_kws.errors import cli_main
from mamba_kws.export.split import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
