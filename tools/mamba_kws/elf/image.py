"""Read a linked firmware ELF with pyelftools: sections, sized symbols, and their source files.

Flash and RAM are counted the way the linker placed the sections:
  flash = every allocated section with contents stored outside RAM (text, rodata, and the
          init image of data, at its load address);
  RAM   = every allocated section that runs from RAM (data, bss, noinit, stacks, ramfunc).
When the board's RAM range is known (board table or linker map) "runs from RAM" is its
address; otherwise it is "has no contents, or runs elsewhere than it is loaded" (bss, and
data copied at boot) -- a writable section that stays where it is loaded (Zephyr's
sw_isr_table, iterable sections) is flash, as in an XIP image.
`text`, `data` and `bss` follow `arm-none-eabi-size` (Berkeley format) exactly; for an
ordinary image flash = text + data and RAM = data + bss, while in a Zephyr image `size`
counts writable sections kept in flash as "data" too.
"""

from __future__ import annotations

import bisect
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from tqdm import tqdm

from ..errors import KWSError
from .build import Roots
from .components import classify


class ElfReportError(KWSError):
    """A file that is not a usable firmware ELF."""


_MACHINES = {"EM_X86_64": "x86-64 (host)", "EM_386": "x86 (host)", "EM_AARCH64": "AArch64", "EM_RISCV": "RISC-V",
             "EM_XTENSA": "Xtensa"}


@dataclass
class Section:
    name: str
    addr: int  # where it runs (VMA)
    lma: int  # where it is stored (LMA); == addr unless copied at boot
    size: int
    flags: str  # "AX", "WA", ...
    nobits: bool
    berkeley: str  # "text" | "data" | "bss", as arm-none-eabi-size counts it
    flash: int  # bytes it takes in flash
    ram: int  # bytes it takes in RAM


@dataclass
class Symbol:
    name: str
    addr: int
    size: int
    kind: str  # "func" | "object"
    section: str
    path: str | None  # source file (DWARF), None when unknown
    component: str = ""
    flash: int = 0  # bytes it adds to flash / RAM (bytes shared with an overlapping symbol count once)
    ram: int = 0


@dataclass
class ElfImage:
    path: Path
    machine: str
    sections: list[Section]
    symbols: list[Symbol]
    has_symtab: bool
    has_dwarf: bool
    warnings: list[str] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        """text/data/bss as arm-none-eabi-size; flash and RAM: the sum of their sections, and
        their span (first to last byte, alignment gaps included: the linker's "Memory region
        Used Size" when the region starts at its first section)."""
        out = {"text": 0, "data": 0, "bss": 0, "flash": 0, "ram": 0}
        for s in self.sections:
            out[s.berkeley] += s.size
            out["flash"] += s.flash
            out["ram"] += s.ram
        fl = [(s.lma, s.lma + s.size) for s in self.sections if s.flash]
        rm = [(s.addr, s.addr + s.size) for s in self.sections if s.ram]
        out["flash_span"] = max(e for _, e in fl) - min(b for b, _ in fl) if fl else 0
        out["ram_span"] = max(e for _, e in rm) - min(b for b, _ in rm) if rm else 0
        return out


def _open(path: Path) -> tuple[ELFFile, object]:
    if not path.exists():
        raise ElfReportError(f"{path}: no such file (build first: west build, then give build/zephyr/zephyr.elf)")
    if path.is_dir():
        raise ElfReportError(f"{path} is a directory: give the ELF file, e.g. {path}/zephyr/zephyr.elf")
    fh = open(path, "rb")  # noqa: SIM115 (kept open while pyelftools reads lazily)
    if fh.read(4) != b"\x7fELF":
        fh.close()
        raise ElfReportError(f"{path} is not an ELF file (give the .elf of a build, not a .bin/.hex)")
    fh.seek(0)
    try:
        elf = ELFFile(fh)
        machine = elf["e_machine"]
        etype = elf["e_type"]
    except (ELFError, ValueError, KeyError) as exc:
        fh.close()
        raise ElfReportError(f"{path} is a corrupt ELF file ({exc})") from None
    if machine != "EM_ARM":
        fh.close()
        what = _MACHINES.get(machine, machine)
        raise ElfReportError(
            f"{path} is an {what} ELF, not an ARM Cortex-M firmware image: give the zephyr.elf of a west build")
    if etype != "ET_EXEC":
        fh.close()
        raise ElfReportError(f"{path} is an ARM ELF of type {etype}, not a linked firmware image (ET_EXEC)")
    return elf, fh


def _flags(sh_flags: int) -> str:
    return "".join(c for c, bit in (("W", SH_FLAGS.SHF_WRITE), ("A", SH_FLAGS.SHF_ALLOC),
                                    ("X", SH_FLAGS.SHF_EXECINSTR)) if sh_flags & bit)


def _sections(elf: ELFFile, ram_range: tuple[int, int] | None) -> list[Section]:
    loads = [seg for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD"]
    out = []
    for sec in elf.iter_sections():
        fl = sec["sh_flags"]
        if not fl & SH_FLAGS.SHF_ALLOC or sec["sh_size"] == 0:
            continue
        addr, size = sec["sh_addr"], sec["sh_size"]
        nobits = sec["sh_type"] == "SHT_NOBITS"
        lma = addr
        if not nobits:
            for seg in loads:
                if seg.section_in_segment(sec):
                    lma = seg["p_paddr"] + (addr - seg["p_vaddr"])
                    break
        write, exe = bool(fl & SH_FLAGS.SHF_WRITE), bool(fl & SH_FLAGS.SHF_EXECINSTR)
        # binutils size.c, berkeley_or_gnu_sum: code or read-only -> text; has contents -> data; else bss
        berkeley = "text" if exe or not write else ("bss" if nobits else "data")
        if ram_range is not None:
            lo, hi = ram_range
            flash = 0 if nobits or lo <= lma < hi else size
            ram = size if lo <= addr < hi else 0
        else:
            flash = 0 if nobits else size
            ram = size if (nobits or lma != addr) else 0
        out.append(Section(sec.name, addr, lma, size, _flags(fl), nobits, berkeley, flash, ram))
    return out


def _symbols(elf: ELFFile, sections: list[Section]) -> list[Symbol] | None:
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None:
        return None
    by_index = {}
    for i, sec in enumerate(elf.iter_sections()):
        by_index[i] = sec.name
    alloc = {s.name: s for s in sections}
    out = []
    for sym in symtab.iter_symbols():
        st = sym["st_info"]["type"]
        size = sym["st_size"]
        shndx = sym["st_shndx"]
        if st not in ("STT_FUNC", "STT_OBJECT") or size == 0 or not isinstance(shndx, int):
            continue
        sec_name = by_index.get(shndx)
        if sec_name not in alloc:
            continue
        addr = sym["st_value"] & ~1 if st == "STT_FUNC" else sym["st_value"]  # Thumb bit
        out.append(Symbol(sym.name, addr, size, "func" if st == "STT_FUNC" else "object", sec_name, None))
    return sorted(out, key=lambda s: (s.addr, s.name))


def _attr_int(die, name: str) -> int | None:
    a = die.attributes.get(name)
    return a.value if a is not None and isinstance(a.value, int) else None


def _cu_path(top) -> str | None:
    name = top.attributes.get("DW_AT_name")
    if name is None:
        return None
    p = name.value.decode(errors="replace")
    cdir = top.attributes.get("DW_AT_comp_dir")
    if cdir is not None and not p.startswith("/"):
        p = posixpath.join(cdir.value.decode(errors="replace"), p)
    return posixpath.normpath(p)


def _var_addr(die, addr_size: int) -> int | None:
    loc = die.attributes.get("DW_AT_location")
    if loc is None or not isinstance(loc.value, list) or len(loc.value) != 1 + addr_size or loc.value[0] != 0x03:
        return None  # only a plain DW_OP_addr: a static-storage variable
    return int.from_bytes(bytes(loc.value[1:]), "little")


def _dwarf_sources(elf: ELFFile, progress: bool) -> tuple[list[tuple[int, int, str]], dict[int, str]]:
    """(code ranges [(lo, hi, path)], {variable address: path}) from the compile units."""
    dwarf = elf.get_dwarf_info()
    ranges: list[tuple[int, int, str]] = []
    variables: dict[int, str] = {}
    aranges = dwarf.get_aranges()
    cu_paths: dict[int, str] = {}
    cus = list(dwarf.iter_CUs())
    for cu in tqdm(cus, desc="DWARF compile units", unit="CU", disable=not progress or len(cus) < 50, leave=False):
        top = cu.get_top_DIE()
        path = _cu_path(top)
        if path is None:
            continue
        cu_paths[cu.cu_offset] = path
        if aranges is None:
            lo = _attr_int(top, "DW_AT_low_pc")
            hi_attr = top.attributes.get("DW_AT_high_pc")
            if lo is not None and hi_attr is not None:
                hi = hi_attr.value if hi_attr.form == "DW_FORM_addr" else lo + hi_attr.value
                ranges.append((lo, hi, path))
        stack = list(top.iter_children())
        while stack:
            die = stack.pop()
            if die.tag == "DW_TAG_variable":
                a = _var_addr(die, cu["address_size"])
                if a is not None:
                    variables.setdefault(a, path)
            elif die.tag in ("DW_TAG_namespace", "DW_TAG_subprogram", "DW_TAG_lexical_block"):
                stack.extend(die.iter_children())  # namespaced globals, function-local statics
    if aranges is not None:
        for e in aranges.entries:
            path = cu_paths.get(e.info_offset)
            if path is not None and e.length:
                ranges.append((e.begin_addr, e.begin_addr + e.length, path))
    ranges.sort()
    return ranges, variables


def _lookup(ranges: list[tuple[int, int, str]], starts: list[int], addr: int) -> str | None:
    i = bisect.bisect_right(starts, addr) - 1
    return ranges[i][2] if i >= 0 and ranges[i][0] <= addr < ranges[i][1] else None


def load_elf(path: str | Path, dwarf: bool = True, progress: bool = True,
             map_objects: list[tuple[int, int, str]] | None = None,
             ram_range: tuple[int, int] | None = None, roots: Roots | None = None) -> ElfImage:
    """Sections, symbols (with source file and component) of a linked ARM firmware ELF.

    `ram_range` (start, end) is the board's RAM, when known: sections whose addresses lie
    there count as RAM (see the module's docstring for the rule without it).

    A symbol's source is its DWARF compile unit; failing that (no -g, a library built without
    it), the object file the linker map (`map_objects`, from build.map_objects) placed it from.
    `roots` (build.workspace_roots): the build's folders, so that components match paths inside them.
    """
    path = Path(path)
    elf, fh = _open(path)
    try:
        sections = _sections(elf, ram_range)
        symbols = _symbols(elf, sections)
        warnings = []
        has_dwarf = False
        if symbols is None:
            warnings.append("no symbol table (stripped ELF): section sizes only; per-component attribution "
                            "and top symbols need the unstripped build/zephyr/zephyr.elf")
            symbols = []
        elif dwarf and elf.has_dwarf_info() and elf.get_section_by_name(".debug_info") is not None:
            has_dwarf = True
            ranges, variables = _dwarf_sources(elf, progress)
            starts = [r[0] for r in ranges]
            for s in symbols:
                if s.kind == "object" and s.addr in variables:
                    s.path = variables[s.addr]
                else:
                    s.path = _lookup(ranges, starts, s.addr)
        elif symbols and not map_objects:
            warnings.append("no DWARF debug info and no linker map: components come from symbol names only "
                            "(keep -g, or give the build's .map, for source-path attribution)")
        if map_objects and symbols:
            starts = [r[0] for r in map_objects]
            for s in symbols:
                if s.path is None:
                    s.path = _lookup(map_objects, starts, s.addr)
        by_name = {s.name: s for s in sections}
        covered: dict[str, int] = {}  # per section: the end of the bytes already counted
        for s in sorted(symbols, key=lambda s: (s.section, s.addr, -s.size)):
            s.component = classify(s.name, roots.relative(s.path) if roots else s.path)
            sec = by_name[s.section]
            # overlapping symbols (libgcc's several entry points into one routine) count their bytes once
            end = s.addr + s.size
            own = max(0, end - max(s.addr, covered.get(s.section, 0)))
            covered[s.section] = max(covered.get(s.section, 0), end)
            s.flash = own if sec.flash else 0
            s.ram = own if sec.ram else 0
        return ElfImage(path, elf["e_machine"], sections, symbols, symbols != [] or
                        elf.get_section_by_name(".symtab") is not None, has_dwarf, warnings)
    finally:
        fh.close()
