"""Generate the KWS firmware's sources into app/src/generated/: python tools/gen_firmware.py --help"""

from mamba_kws.errors import cli_main
from mamba_kws.firmware import main

if __name__ == "__main__":
    raise SystemExit(cli_main(main))
