"""Benchmark the unrolled TFLite export (bytes, TFLM arena, ops): python tools/bench_export.py --help"""

from mamba_kws.errors import cli_main
from mamba_kws.export.bench import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
