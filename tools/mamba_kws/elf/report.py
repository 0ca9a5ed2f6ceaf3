"""`python tools/elf_report.py build/zephyr/zephyr.elf`: where flash and RAM go, against the board.

    python tools/elf_report.py build/zephyr/zephyr.elf                # board found in the build dir
    python tools/elf_report.py app.elf --board nrf52840dk/nrf52840 --json r.json --plot r.png
    python tools/elf_report.py app.elf --budget flash=200K,ram=60K    # exit 1 when over
    python tools/elf_report.py diff old.elf new.elf                   # what grew, what shrank

Exit status: 0 fine, 1 over the budget or the board's limits, 2 bad input (one line, no traceback).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from ..boards import get_board, load_boards, parse_size
from .build import Limits, detect, find_map, from_board, map_objects, workspace_roots
from .components import COMPONENTS, NO_SYMBOL, RULES
from .image import ElfImage, ElfReportError, load_elf

# ----------------------------------------------------------------------------- analysis


def components(img: ElfImage) -> list[dict]:
    """Flash and RAM bytes per component, in the order of COMPONENTS; the rows add up to the totals."""
    flash: dict[str, int] = defaultdict(int)
    ram: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    for s in img.symbols:
        flash[s.component] += s.flash
        ram[s.component] += s.ram
        count[s.component] += 1
    if not img.symbols:
        return []
    tot = img.sizes()
    flash[NO_SYMBOL] = tot["flash"] - sum(flash.values())
    ram[NO_SYMBOL] = tot["ram"] - sum(ram.values())
    return [{"component": c, "flash": flash[c], "ram": ram[c], "symbols": count[c]}
            for c in COMPONENTS if flash[c] or ram[c]]


def demangle(names: list[str]) -> dict[str, str]:
    """C++ names readable (arm-none-eabi-c++filt or c++filt when installed), else as they are."""
    tool = shutil.which("arm-none-eabi-c++filt") or shutil.which("c++filt")
    mangled = sorted({n for n in names if n.startswith("_Z")})
    if not tool or not mangled:
        return {}
    try:
        out = subprocess.run([tool], input="\n".join(mangled), capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = out.splitlines()
    return dict(zip(mangled, lines, strict=False)) if len(lines) == len(mangled) else {}


def region_of(flash: int, ram: int) -> str:
    return "flash+RAM" if flash and ram else ("flash" if flash else "RAM")


def analyse(img: ElfImage, limits: Limits | None, top: int) -> dict:
    """Everything the report shows, as plain data (this is the --json document)."""
    sizes = img.sizes()
    names = demangle([s.name for s in img.symbols])
    top_syms = sorted(img.symbols, key=lambda s: (-s.size, s.name))[:top]
    secs = {s.name: s for s in img.sections}
    regions = {}
    for key, label in (("flash", "flash"), ("ram", "RAM")):
        limit = getattr(limits, key) if limits else None
        span = sizes[f"{key}_span"]
        regions[key] = {"label": label, "used": sizes[key], "span": span, "limit": limit,
                        "percent": round(100 * span / limit, 2) if limit else None}
    return {
        "elf": str(img.path),
        "machine": img.machine,
        "board": None if limits is None else {"name": limits.board, "flash": limits.flash, "ram": limits.ram,
                                              "source": limits.source},
        "has_symbols": img.has_symtab and bool(img.symbols),
        "has_dwarf": img.has_dwarf,
        "size": {k: sizes[k] for k in ("text", "data", "bss")},
        "regions": regions,
        "sections": [{"name": s.name, "addr": s.addr, "lma": s.lma, "size": s.size, "flags": s.flags,
                      "berkeley": s.berkeley, "flash": s.flash, "ram": s.ram} for s in img.sections],
        "components": components(img),
        "top_symbols": [{"name": s.name, "demangled": names.get(s.name, s.name), "size": s.size, "kind": s.kind,
                         "section": s.section, "region": region_of(secs[s.section].flash, secs[s.section].ram),
                         "component": s.component, "source": s.path} for s in top_syms],
        "warnings": list(img.warnings),
    }


# ----------------------------------------------------------------------------- text output


def kib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f} KiB"


def table(headers: list[str], rows: list[list], right: set[int] | None = None) -> str:
    """A plain text table; columns in `right` (default: all but the first) are right-aligned."""
    right = set(range(1, len(headers))) if right is None else right
    cells = [[str(c) for c in r] for r in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        return "  ".join(padded).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])])


def _bar(pct: float | None, width: int = 20) -> str:
    if pct is None:
        return ""
    full = min(width, round(pct / 100 * width))
    return "[" + "#" * full + "." * (width - full) + "]" + (" OVER" if pct > 100 else "")


def render(rep: dict) -> str:
    out = []
    board = rep["board"]
    bdesc = f"{board['name'] or 'unknown board'} ({board['source']})" if board else "none (give --board)"
    out.append(f"{rep['elf']}  [{rep['machine']}, symbols: {'yes' if rep['has_symbols'] else 'no'}, "
               f"DWARF: {'yes' if rep['has_dwarf'] else 'no'}]")
    out.append(f"board: {bdesc}")
    sz = rep["size"]
    out.append(f"size (as arm-none-eabi-size): text {sz['text']}  data {sz['data']}  bss {sz['bss']}\n")
    rows = []
    for r in rep["regions"].values():
        pct = r["percent"]
        rows.append([r["label"], r["used"], r["span"], kib(r["span"]), kib(r["limit"]),
                     "-" if pct is None else f"{pct:.1f} %", _bar(pct)])
    out.append(table(["region", "sections", "span", "used", "limit", "use", ""], rows, right={1, 2, 3, 4, 5}))
    out.append("(sections: sum of section sizes; span: first to last byte, gaps included, as the linker's "
               "Memory region Used Size; use = span / limit)")
    out.append("")
    out.append(table(["section", "addr", "load addr", "size", "flash", "RAM", "flags"],
                     [[s["name"], f"0x{s['addr']:08x}", f"0x{s['lma']:08x}", s["size"], s["flash"], s["ram"],
                       s["flags"]] for s in rep["sections"]], right={3, 4, 5}))
    if rep["components"]:
        fl, rm = rep["regions"]["flash"]["used"] or 1, rep["regions"]["ram"]["used"] or 1
        out.append("")
        out.append(table(["component", "flash", "%", "RAM", "%", "symbols"],
                         [[c["component"], c["flash"], f"{100 * c['flash'] / fl:.1f}", c["ram"],
                           f"{100 * c['ram'] / rm:.1f}", c["symbols"]] for c in rep["components"]]))
    if rep["top_symbols"]:
        out.append("")
        out.append(f"top {len(rep['top_symbols'])} symbols by size")
        out.append(table(["size", "region", "component", "section", "symbol"],
                         [[s["size"], s["region"], s["component"], s["section"], _short(s["demangled"])]
                          for s in rep["top_symbols"]], right={0}))
    for w in rep["warnings"]:
        out.append(f"warning: {w}")
    return "\n".join(out)


def _short(name: str, n: int = 70) -> str:
    return name if len(name) <= n else name[: n - 3] + "..."


# ----------------------------------------------------------------------------- plot

_COLORS = {"model weights": "#1f77b4", "tflm_mamba kernels": "#d62728", "TFLM": "#ff7f0e", "CMSIS-NN": "#bcbd22",
           "app": "#2ca02c", "Zephyr kernel": "#9467bd", "Zephyr drivers/subsys": "#c5b0d5",
           "libc/runtime": "#8c564b", "other": "#7f7f7f", NO_SYMBOL: "#d9d9d9", "all sections (no symbols)": "#aec7e8"}


def plot(rep: dict, path: Path) -> None:
    """Two stacked bars (flash, RAM) per component, against the board's limit: a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comps = rep["components"] or [{"component": "all sections (no symbols)", "flash": rep["regions"]["flash"]["used"],
                                   "ram": rep["regions"]["ram"]["used"]}]
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.2))
    board = rep["board"]
    for ax, key in zip(axes, ("flash", "ram"), strict=True):
        reg = rep["regions"][key]
        left = 0.0
        for c in comps:
            v = c[key] / 1024
            if v <= 0:
                continue
            ax.barh(0, v, left=left, color=_COLORS.get(c["component"], "#999999"), edgecolor="white",
                    label=c["component"])
            if v > 0.06 * max(reg["limit"] or 0, reg["used"]) / 1024:  # wide enough for its number
                ax.text(left + v / 2, 0, f"{v:.1f}", ha="center", va="center", fontsize=8, color="white")
            left += v
        limit = reg["limit"]
        top = max(limit or 0, reg["span"]) / 1024 * 1.04
        if limit:
            ax.axvline(limit / 1024, color="black", linestyle="--", linewidth=1.5)
            ax.text(limit / 1024, 0.48, f"limit {limit / 1024:.0f} KiB", ha="right", va="bottom", fontsize=9)
        pct = f" = {reg['percent']:.1f} % of {limit / 1024:.0f} KiB" if limit else ""
        ax.set_title(f"{reg['label']}: {reg['span'] / 1024:.1f} KiB used{pct}", fontsize=10, loc="left")
        ax.set_xlim(0, top)
        ax.set_ylim(-0.5, 0.75)
        ax.set_yticks([])
        ax.set_xlabel("KiB")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    order = [labels.index(c) for c in [*COMPONENTS, "all sections (no symbols)"] if c in labels]
    by_name = {c["component"]: c for c in comps}
    texts = [f"{labels[i]}: {by_name[labels[i]]['flash'] / 1024:.1f} / {by_name[labels[i]]['ram'] / 1024:.1f}"
             for i in order]
    fig.legend([handles[i] for i in order], texts, loc="lower center", ncol=min(4, len(order)), fontsize=8,
               frameon=False, title="component: flash / RAM KiB", title_fontsize=8)
    if board and board["name"]:
        where = f"on {board['name']}"
    elif board:
        where = f"(limits: {board['source']})"
    else:
        where = "(no board limits: give --board)"
    fig.suptitle(f"{Path(rep['elf']).name} {where}", fontsize=12)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- budget


def parse_budget(text: str, limits: Limits | None) -> dict[str, int]:
    """{"flash": bytes, "ram": bytes} from "flash=200K,ram=60K" (a % is of the board's limit)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, val = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("flash", "ram"):
            raise ElfReportError(f"bad --budget {text!r}: use e.g. flash=200K,ram=60K (or flash=90%)")
        out[key] = parse_size(val, of=getattr(limits, key) if limits else None)
    return out


def over_budget(rep: dict, budget: dict[str, int]) -> list[str]:
    """One line per region over the budget or over the board's limit."""
    lines = []
    for key, reg in rep["regions"].items():
        used = reg["span"]
        if key in budget and used > budget[key]:
            lines.append(f"over budget: {reg['label']} {used} B ({kib(used)}) > budget {budget[key]} B "
                         f"({kib(budget[key])}) by {used - budget[key]} B")
        if reg["limit"] and used > reg["limit"]:
            name = rep["board"]["name"] or "the board"
            lines.append(f"over the board: {reg['label']} {used} B ({kib(used)}) > {kib(reg['limit'])} on {name}")
    return lines


# ----------------------------------------------------------------------------- diff


def diff(a: dict, b: dict, top: int) -> dict:
    """What changed from report `a` to report `b`: regions, sections, components, symbols."""

    def delta(da: dict[str, int], db: dict[str, int]) -> list[dict]:
        rows = [{"name": k, "a": da.get(k, 0), "b": db.get(k, 0), "delta": db.get(k, 0) - da.get(k, 0)}
                for k in dict.fromkeys([*da, *db])]
        return rows

    regions = delta({**a["size"], **{k: r["used"] for k, r in a["regions"].items()}},
                    {**b["size"], **{k: r["used"] for k, r in b["regions"].items()}})
    sections = delta({s["name"]: s["size"] for s in a["sections"]}, {s["name"]: s["size"] for s in b["sections"]})
    comp_rows = []
    ca = {c["component"]: c for c in a["components"]}
    cb = {c["component"]: c for c in b["components"]}
    for name in [c for c in COMPONENTS if c in ca or c in cb]:
        fa, fb = ca.get(name, {}).get("flash", 0), cb.get(name, {}).get("flash", 0)
        ra, rb = ca.get(name, {}).get("ram", 0), cb.get(name, {}).get("ram", 0)
        comp_rows.append({"name": name, "flash_a": fa, "flash_b": fb, "flash_delta": fb - fa,
                          "ram_a": ra, "ram_b": rb, "ram_delta": rb - ra})
    syms = delta(a["_symbols"], b["_symbols"])
    changed = sorted((s for s in syms if s["delta"]), key=lambda s: (-abs(s["delta"]), s["name"]))[:top]
    for s in changed:
        s["status"] = "added" if s["a"] == 0 else ("removed" if s["b"] == 0 else "changed")
    return {"a": a["elf"], "b": b["elf"], "regions": regions, "sections": sections, "components": comp_rows,
            "symbols": changed}


def _signed(n: int) -> str:
    return f"{n:+d}" if n else "0"


def render_diff(d: dict) -> str:
    out = [f"A: {d['a']}", f"B: {d['b']}", ""]
    labels = {"flash": "flash", "ram": "RAM"}
    out.append(table(["", "A", "B", "B - A"],
                     [[labels.get(r["name"], r["name"]), r["a"], r["b"], _signed(r["delta"])] for r in d["regions"]]))
    out.append("")
    out.append(table(["section", "A", "B", "B - A"],
                     [[r["name"], r["a"], r["b"], _signed(r["delta"])] for r in d["sections"]]))
    if d["components"]:
        out.append("")
        out.append(table(["component", "flash A", "flash B", "delta", "RAM A", "RAM B", "delta"],
                         [[r["name"], r["flash_a"], r["flash_b"], _signed(r["flash_delta"]), r["ram_a"], r["ram_b"],
                           _signed(r["ram_delta"])] for r in d["components"]]))
    out.append("")
    if d["symbols"]:
        names = demangle([s["name"] for s in d["symbols"]])
        out.append(f"symbols that changed (largest {len(d['symbols'])})")
        out.append(table(["B - A", "A", "B", "", "symbol"],
                         [[_signed(s["delta"]), s["a"], s["b"], s["status"], _short(names.get(s["name"], s["name"]))]
                          for s in d["symbols"]], right={0, 1, 2}))
    else:
        out.append("no symbol changed size")
    return "\n".join(out)


# ----------------------------------------------------------------------------- command line


def _limits(elf: Path, board: str | None) -> Limits | None:
    return from_board(get_board(board)) if board else detect(elf)


def _load(elf: Path, dwarf: bool, limits: Limits | None, map_path: Path | None = None) -> ElfImage:
    if map_path is not None and not map_path.is_file():
        raise ElfReportError(f"{map_path}: no such linker map")
    map_path = map_path or (find_map(elf) if elf.is_file() else None)
    return load_elf(elf, dwarf=dwarf, map_objects=map_objects(map_path) if map_path else None,
                    ram_range=limits.ram_range if limits else None,
                    roots=workspace_roots(elf) if elf.is_file() else None)


def _report(elf: Path, board: str | None, top: int, dwarf: bool) -> dict:
    limits = _limits(elf, board)
    img = _load(elf, dwarf, limits)
    rep = analyse(img, limits, top)
    sums: dict[str, int] = defaultdict(int)
    for s in img.symbols:
        sums[s.name] += s.size
    rep["_symbols"] = dict(sums)
    return rep


def _write_json(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: v for k, v in obj.items() if not k.startswith("_")}, indent=2) + "\n")


def _epilog() -> str:
    boards = ", ".join(load_boards())
    rules = "\n".join(f"  {r.component:22s} {r.field:6s} {r.why}" for r in RULES)
    return f"boards (mamba_kws/boards.yaml): {boards}\n\ncomponent rules, first match wins:\n{rules}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "diff":
        return main_diff(argv[1:])
    p = argparse.ArgumentParser(
        prog="elf_report.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Where the flash and RAM of a firmware ELF go (sections, components, top symbols), "
                    "against the board's limits. `elf_report.py diff A.elf B.elf` compares two builds.",
        epilog=_epilog())
    p.add_argument("elf", type=Path, help="the firmware ELF, e.g. build/zephyr/zephyr.elf")
    p.add_argument("--board", help="board whose limits to check against (default: found in the build dir)")
    p.add_argument("--budget", help="fail (exit 1) when over, e.g. flash=200K,ram=60K or flash=90%%")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the full report as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write a PNG: flash and RAM per component vs limit")
    p.add_argument("--top", type=int, default=15, help="how many of the largest symbols to list (default 15)")
    p.add_argument("--no-dwarf", action="store_true",
                   help="skip debug info: attribute by the linker map's object files and symbol names")
    p.add_argument("--map", type=Path, metavar="FILE",
                   help="the build's linker map (default: zephyr.map or <elf>.map beside the ELF)")
    args = p.parse_args(argv)
    limits = _limits(args.elf, args.board)
    budget = parse_budget(args.budget, limits) if args.budget else {}
    img = _load(args.elf, not args.no_dwarf, limits, args.map)
    rep = analyse(img, limits, args.top)
    print(render(rep))
    if args.json:
        _write_json(rep, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        plot(rep, args.plot)
        print(f"wrote {args.plot}")
    problems = over_budget(rep, budget)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


def main_diff(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="elf_report.py diff",
                                description="What grew and what shrank from build A to build B: "
                                            "flash/RAM, sections, components, symbols.")
    p.add_argument("a", type=Path, help="the old ELF")
    p.add_argument("b", type=Path, help="the new ELF")
    p.add_argument("--top", type=int, default=20, help="how many changed symbols to list (default 20)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the diff as JSON")
    p.add_argument("--no-dwarf", action="store_true", help="skip debug info: attribute by symbol names only")
    args = p.parse_args(argv)
    a = _report(args.a, None, 0, not args.no_dwarf)
    b = _report(args.b, None, 0, not args.no_dwarf)
    d = diff(a, b, args.top)
    print(render_diff(d))
    if args.json:
        _write_json(d, args.json)
        print(f"wrote {args.json}")
    return 0
