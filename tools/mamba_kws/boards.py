"""The project's board table (boards.yaml beside this file): flash and RAM budgets per board.

    >>> from mamba_kws.boards import get_board, check_fit
    >>> b = get_board("qemu_cortex_m3")
    >>> b.flash_bytes, b.ram_bytes
    (262144, 65536)
    >>> check_fit(b, flash=300_000, ram=10_000)
    ['flash: 300000 B used > 262144 B (256 KiB) on qemu_cortex_m3']

Board names are Zephyr board targets as given to `west build -b` (`nrf52840dk/nrf52840`);
the HWMv1 spelling (`nrf52840dk_nrf52840`) and listed aliases work too. Sizes in budgets and
on command lines are parsed by `parse_size` ("200K" = 200 KiB, "1M", "4096", "90%").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from .errors import KWSError

BOARDS_YAML = Path(__file__).with_name("boards.yaml")


class BoardError(KWSError):
    """An unknown board name or a malformed size."""


@dataclass(frozen=True)
class Board:
    name: str
    soc: str
    cpu: str
    flash_bytes: int
    ram_bytes: int
    flash_base: int
    ram_base: int
    qemu: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    notes: str = ""

    def in_flash(self, addr: int) -> bool:
        return self.flash_base <= addr < self.flash_base + self.flash_bytes

    def in_ram(self, addr: int) -> bool:
        return self.ram_base <= addr < self.ram_base + self.ram_bytes


@cache
def load_boards(path: Path = BOARDS_YAML) -> dict[str, Board]:
    """All boards of the table, by name."""
    data = yaml.safe_load(Path(path).read_text())
    boards = {}
    for row in data["boards"]:
        b = Board(
            name=row["name"], soc=row["soc"], cpu=row["cpu"],
            flash_bytes=int(row["flash_kb"]) * 1024, ram_bytes=int(row["ram_kb"]) * 1024,
            flash_base=int(row["flash_base"]), ram_base=int(row["ram_base"]),
            qemu=row.get("qemu"), aliases=tuple(row.get("aliases") or ()), notes=row.get("notes", ""),
        )
        boards[b.name] = b
    return boards


def _key(name: str) -> str:
    return name.strip().lower().replace("/", "_").replace("-", "_")


def find_board(name: str) -> Board | None:
    """The board called `name` (board target, HWMv1 name or alias), or None."""
    want = _key(name)
    for b in load_boards().values():
        if want in {_key(b.name), *(_key(a) for a in b.aliases)}:
            return b
    return None


def get_board(name: str) -> Board:
    """Like `find_board`, but an unknown name is a user error listing the known boards."""
    b = find_board(name)
    if b is None:
        known = ", ".join(load_boards())
        raise BoardError(f"unknown board {name!r}: known boards are {known} (add one to {BOARDS_YAML})")
    return b


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(k|kb|kib|m|mb|mib|b)?\s*$", re.IGNORECASE)


def parse_size(text: str, of: int | None = None) -> int:
    """Bytes from "200K", "1.5M", "4096", "512B" (K = 1024); "90%" needs `of` (the 100 % figure)."""
    t = text.strip()
    if t.endswith("%"):
        if of is None:
            raise BoardError(f"size {text!r} is a percentage, but there is no board limit to take it of")
        try:
            return int(float(t[:-1]) / 100 * of)
        except ValueError:
            raise BoardError(f"bad size {text!r}: use e.g. 200K, 1M, 4096 or 90%") from None
    m = _SIZE.match(t)
    if not m:
        raise BoardError(f"bad size {text!r}: use e.g. 200K, 1M, 4096 or 90%")
    unit = (m.group(2) or "b").lower()[0]
    return int(float(m.group(1)) * {"b": 1, "k": 1024, "m": 1024 * 1024}[unit])


def check_fit(board: Board, flash: int, ram: int) -> list[str]:
    """One line per region over the board's limit; empty when it fits."""
    problems = []
    for region, used, limit in (("flash", flash, board.flash_bytes), ("RAM", ram, board.ram_bytes)):
        if used > limit:
            problems.append(f"{region}: {used} B used > {limit} B ({limit // 1024} KiB) on {board.name}")
    return problems
