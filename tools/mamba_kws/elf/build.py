"""The board and memory limits of a Zephyr build, found beside its zephyr.elf.

Looked up in this order (the first that answers wins; each says where its figures came from):
  1. build/zephyr/.config: CONFIG_BOARD_TARGET / CONFIG_BOARD -> the project's board table;
     for a board not in the table, CONFIG_FLASH_SIZE / CONFIG_SRAM_SIZE (KiB, from the devicetree);
  2. build/zephyr/zephyr.map "Memory Configuration": the FLASH and RAM regions the linker used;
  3. build/zephyr/zephyr.dts: the chosen zephyr,flash and zephyr,sram nodes' reg sizes.
When the linker map is there, its FLASH/RAM lengths are what this build may really use
(a bootloader or a partition can make them smaller than the board's), so they replace the table's.

`workspace_roots` reads the folders the build came from (CMakeCache.txt, zephyr_modules.txt), so that
a source is attributed by its path inside the app, Zephyr or a module, wherever the workspace lies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..boards import Board, find_board


@dataclass
class Limits:
    board: str | None  # board name, when known
    flash: int | None  # bytes
    ram: int | None
    source: str  # where the figures came from, for the report
    ram_base: int | None = None  # start of RAM, when known: sections there count as RAM

    @property
    def ram_range(self) -> tuple[int, int] | None:
        return None if self.ram_base is None or not self.ram else (self.ram_base, self.ram_base + self.ram)

    def describe(self) -> str:
        name = self.board or "unknown board"
        return f"{name} ({self.source})"


def _kconfig(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"^(CONFIG_\w+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip().strip('"')
    return out


def map_memory(path: Path) -> dict[str, tuple[int, int]]:
    """{region name: (origin, length)} from a GNU ld map's "Memory Configuration"."""
    regions = {}
    text = path.read_text(errors="replace")
    start = text.find("Memory Configuration")
    if start < 0:
        return regions
    for line in text[start:].splitlines()[1:40]:
        if line.startswith("Linker script and memory map"):
            break
        m = re.match(r"^(\S+)\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)", line)
        if m and m.group(1) != "*default*":
            regions[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16))
    return regions


_IN_SEC = re.compile(r"^ (\.?[^\s*]\S*)\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")
_WRAPPED = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")


def map_objects(path: Path) -> list[tuple[int, int, str]]:
    """[(start, end, object file)] of every input section a GNU ld map places, sorted.

    The object is "dir/lib.a(member.o)" or "dir/file.o"; a path relative to the build
    directory (Zephyr's "zephyr/kernel/libkernel.a(sched.c.obj)") gets a leading "/" so the
    path rules, which look for "/zephyr/kernel/", match it.
    """
    out = []
    lines = path.read_text(errors="replace").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Linker script and memory map"))
    except StopIteration:
        return out
    pending = None
    skip = False  # inside an output section that is not loaded (debug info, comments, /DISCARD/)
    for line in lines[start:]:
        if line[:1] not in ("", " "):
            skip = bool(re.match(r"(\.debug|\.comment|\.ARM\.attributes|\.stab|\.note|\.gnu|/DISCARD/)", line))
            pending = None
            continue
        if skip:
            continue
        m = _IN_SEC.match(line)
        if m:
            addr, size, obj = int(m.group(2), 16), int(m.group(3), 16), m.group(4).strip()
        elif pending and (w := _WRAPPED.match(line)):
            addr, size, obj = int(w.group(1), 16), int(w.group(2), 16), w.group(3).strip()
        else:
            pending = line[1:] if re.match(r"^ \.?[^\s*]\S*$", line) else None
            continue
        pending = None
        if size and not obj.startswith("0x"):
            out.append((addr, addr + size, obj if obj.startswith("/") else "/" + obj))
    return sorted(out)


def find_map(elf: Path) -> Path | None:
    """The linker map of the build that made `elf`: build/zephyr/zephyr.map, or <elf>.map beside it."""
    cands = [elf.with_suffix(".map"), *(d / "zephyr.map" for d in build_dirs(elf))]
    return next((c for c in cands if c.is_file()), None)


def _pick(regions: dict[str, tuple[int, int]], names: tuple[str, ...]) -> int | None:
    for want in names:
        for name, (_, length) in regions.items():
            if name.upper() == want:
                return length
    return None


def dts_memory(path: Path) -> tuple[int | None, int | None]:
    """(flash bytes, sram bytes) of the chosen zephyr,flash / zephyr,sram nodes of a zephyr.dts."""
    text = path.read_text(errors="replace")

    def size_of(chosen: str) -> int | None:
        m = re.search(rf"{re.escape(chosen)}\s*=\s*&(\w+)\s*;", text)
        if not m:
            return None
        node = re.search(rf"\b{m.group(1)}\s*:\s*[\w@,.-]+\s*\{{", text)
        if not node:
            return None
        reg = re.search(r"\breg\s*=\s*<\s*(0x[0-9a-fA-F]+|\d+)\s+(0x[0-9a-fA-F]+|\d+)", text[node.end():])
        return int(reg.group(2), 0) if reg else None

    return size_of("zephyr,flash"), size_of("zephyr,sram")


def build_dirs(elf: Path) -> list[Path]:
    """Where a build's .config / zephyr.map / zephyr.dts may be, for an ELF at `elf`."""
    d = elf.resolve().parent
    return [d, d / "zephyr", d.parent / "zephyr"]


def detect(elf: Path) -> Limits | None:
    """The limits of the Zephyr build that made `elf`, or None when it is not in a build directory."""
    dirs = [d for d in build_dirs(elf) if d.is_dir()]

    def first(name: str) -> Path | None:
        return next((d / name for d in dirs if (d / name).is_file()), None)

    board: Board | None = None
    board_name = None
    flash = ram = ram_base = None
    source = []
    cfg_path = first(".config")
    if cfg_path:
        cfg = _kconfig(cfg_path)
        board_name = cfg.get("CONFIG_BOARD_TARGET") or cfg.get("CONFIG_BOARD")
        board = find_board(board_name) if board_name else None
        if board is None and board_name and cfg.get("CONFIG_BOARD"):
            board = find_board(cfg["CONFIG_BOARD"])
        if board is not None:
            board_name, flash, ram, ram_base = board.name, board.flash_bytes, board.ram_bytes, board.ram_base
            source.append("board table via .config")
        elif "CONFIG_FLASH_SIZE" in cfg and "CONFIG_SRAM_SIZE" in cfg:
            flash, ram = int(cfg["CONFIG_FLASH_SIZE"]) * 1024, int(cfg["CONFIG_SRAM_SIZE"]) * 1024
            if "CONFIG_SRAM_BASE_ADDRESS" in cfg:
                ram_base = int(cfg["CONFIG_SRAM_BASE_ADDRESS"], 0)
            source.append(".config CONFIG_FLASH_SIZE/CONFIG_SRAM_SIZE")
    map_path = find_map(elf)
    if map_path:
        regions = map_memory(map_path)
        mf, mr = _pick(regions, ("FLASH", "ROM")), _pick(regions, ("RAM", "SRAM"))
        if mf and mr:
            origin = next(o for n, (o, ln) in regions.items() if n.upper() in ("RAM", "SRAM") and ln == mr)
            if (mf, mr, origin) != (flash, ram, ram_base):
                flash, ram, ram_base = mf, mr, origin
                source.append(f"{map_path.name} Memory Configuration")
    if flash is None:
        dts_path = first("zephyr.dts")
        if dts_path:
            df, dr = dts_memory(dts_path)
            if df and dr:
                flash, ram = df, dr
                source.append("zephyr.dts chosen nodes")
    if flash is None and board_name is None:
        return None
    return Limits(board_name, flash, ram, ", ".join(source) or "no sizes found", ram_base)


def from_board(board: Board) -> Limits:
    return Limits(board.name, board.flash_bytes, board.ram_bytes, "board table, --board", board.ram_base)


@dataclass
class Roots:
    """The workspace's folders a build names: the app, the build dir, ZEPHYR_BASE, each module.

    `relative(path)` writes a source path as "@<root>/<path inside it>" ("@app/src/main.c",
    "@zephyr/kernel/sched.c", "@module/tflite-micro/tensorflow/...", "@build/zephyr/..."): the
    innermost root that holds it wins, so an app inside a module is the app. A path under no
    root stays as it was (components.py's absolute-path rules then apply).
    """

    dirs: list[tuple[str, str]] = field(default_factory=list)  # (name, absolute folder)

    def add(self, name: str, folder: str | Path) -> None:
        d = str(folder).rstrip("/")
        if d.startswith("/") and len(d) > 1:
            self.dirs.append((name, d))
            self.dirs.sort(key=lambda nd: -len(nd[1]))

    def relative(self, path: str | None) -> str | None:
        if path is None:
            return None
        for name, d in self.dirs:
            if path.startswith(d + "/"):
                return f"@{name}/{path[len(d) + 1:]}"
        return path


def _cmake_cache(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"^([A-Za-z_][\w.-]*):[A-Z]+=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def workspace_roots(elf: Path) -> Roots | None:
    """The roots of the Zephyr build that made `elf` (build/zephyr/zephyr.elf: build/CMakeCache.txt and
    build/zephyr_modules.txt), or None when it is not in a build directory."""
    d = elf.resolve().parent
    cache = next((c / "CMakeCache.txt" for c in (d, d.parent) if (c / "CMakeCache.txt").is_file()), None)
    if cache is None:
        return None
    build = cache.parent
    roots = Roots()
    roots.add("build", build)
    values = _cmake_cache(cache)
    if values.get("APPLICATION_SOURCE_DIR"):
        roots.add("app", values["APPLICATION_SOURCE_DIR"])
    if values.get("ZEPHYR_BASE"):
        roots.add("zephyr", values["ZEPHYR_BASE"])
    modules = build / "zephyr_modules.txt"  # one line a module: "name":"folder":"cmake folder"
    if modules.is_file():
        for line in modules.read_text(errors="replace").splitlines():
            m = re.match(r'^"([^"]+)":"([^"]+)"', line)
            if m:
                roots.add(f"module/{m.group(1)}", m.group(2))
    return roots
