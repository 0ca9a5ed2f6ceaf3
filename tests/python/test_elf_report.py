"""tools/elf_report.py on ELFs built here from tests/python/fixtures/elf (Cortex-M3, -g), checked
against arm-none-eabi-size and arm-none-eabi-nm; plus a stripped, a host (x86-64) and a garbage file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from mamba_kws import boards
from mamba_kws.elf import load_elf
from mamba_kws.elf.build import detect, workspace_roots
from mamba_kws.elf.report import analyse, components, main
from mamba_kws.errors import cli_main

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "python" / "fixtures" / "elf"
CFLAGS = ["-mcpu=cortex-m3", "-mthumb", "-g", "-Os", "-ffunction-sections", "-fdata-sections"]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)


SOURCES = ("startup.c", "app/main.c", "model/model_data.c", "modules/tflm_mamba/ssm_scan.c",
           "tflm_standin/tensorflow/lite/micro/micro_interpreter.cc")


def _build(out: Path, name: str, defines: tuple[str, ...] = (), sources: dict[str, Path] | None = None) -> Path:
    """Compile each source (default: the fixture's) to out/obj/<its path>.o (so the linker map names
    them), link with a map."""
    objs = []
    for src, path in (sources or {s: FIX / s for s in SOURCES}).items():
        obj = out / "obj" / f"{src}.o"
        obj.parent.mkdir(parents=True, exist_ok=True)
        cxx = ["arm-none-eabi-g++", "-fno-exceptions", "-fno-rtti"] if src.endswith(".cc") else ["arm-none-eabi-gcc"]
        _run([*cxx, *CFLAGS, *defines, "-c", str(path), "-o", str(obj)])
        objs.append(str(obj))
    elf = out / f"{name}.elf"
    r = _run(["arm-none-eabi-gcc", *CFLAGS, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
              "-Wl,--print-memory-usage", "-T", str(FIX / "cortex_m3.ld"), f"-Wl,-Map={out / name}.map", *objs,
              "-o", str(elf)])
    (out / f"{name}.usage").write_text(r.stdout)  # the linker's "Memory region Used Size" table
    return elf


def linker_usage(elf: Path) -> dict[str, int]:
    """{"FLASH": bytes, "RAM": bytes} as ld --print-memory-usage printed them when linking `elf`."""
    out = {}
    for line in elf.with_suffix(".usage").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith(":") and parts[2] == "B":
            out[parts[0][:-1]] = int(parts[1])
    return out


@pytest.fixture(scope="module")
def elves(tmp_path_factory) -> dict[str, Path]:
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size", "arm-none-eabi-nm", "gcc"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed (apt: gcc-arm-none-eabi gcc)")
    d = tmp_path_factory.mktemp("elf")
    e = {"fx": _build(d / "a", "fx"), "big": _build(d / "b", "fx", ("-DMODEL_BYTES=9000",))}
    e["nodebug"] = d / "nodebug.elf"  # no DWARF, no map beside it
    _run(["arm-none-eabi-strip", "--strip-debug", str(e["fx"]), "-o", str(e["nodebug"])])
    (d / "withmap").mkdir()
    e["nodebug_map"] = d / "withmap" / "nodebug.elf"  # no DWARF, but the build's linker map
    shutil.copy(e["nodebug"], e["nodebug_map"])
    shutil.copy(d / "a" / "fx.map", d / "withmap" / "nodebug.map")
    e["stripped"] = d / "stripped.elf"
    _run(["arm-none-eabi-strip", str(e["fx"]), "-o", str(e["stripped"])])
    (d / "host.c").write_text("int main(void) { return 0; }\n")
    e["host"] = d / "host.elf"
    _run(["gcc", str(d / "host.c"), "-o", str(e["host"])])
    e["garbage"] = d / "garbage.elf"
    e["garbage"].write_bytes(b"this is not an ELF\n" * 10)
    e["truncated"] = d / "truncated.elf"
    e["truncated"].write_bytes(e["fx"].read_bytes()[:40])
    return e


@pytest.fixture
def cli(capsys):
    """Run the tool in-process as the entry script does (cli_main: exit code, one-line errors)."""

    def run(*args) -> SimpleNamespace:
        capsys.readouterr()
        code = cli_main(main, [str(a) for a in args])
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


def test_entry_script():
    """The real script, in a subprocess: --help works, a bad file is one line without a traceback."""
    script = str(REPO / "tools" / "elf_report.py")
    r = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and "component rules" in r.stdout and "qemu_cortex_m3" in r.stdout
    r = subprocess.run([sys.executable, script, script], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "not an ELF" in r.stderr


def gnu_size(elf: Path) -> dict[str, int]:
    line = _run(["arm-none-eabi-size", str(elf)]).stdout.splitlines()[1].split()
    return {"text": int(line[0]), "data": int(line[1]), "bss": int(line[2])}


def gnu_nm(elf: Path) -> dict[str, int]:
    out = {}
    for line in _run(["arm-none-eabi-nm", "--size-sort", "-S", str(elf)]).stdout.splitlines():
        _, size, kind, name = line.split(maxsplit=3)
        if kind in "TtRrDdBbWwVv":  # W/V: weak (C++ inline member functions)
            out[name] = out.get(name, 0) + int(size, 16)
    return out


def test_sizes_match_arm_none_eabi_size(elves):
    for key in ("fx", "big", "nodebug", "stripped"):
        sizes = load_elf(elves[key], progress=False).sizes()
        ref = gnu_size(elves[key])
        assert {k: sizes[k] for k in ref} == ref, key
        assert sizes["flash"] == ref["text"] + ref["data"]
        assert sizes["ram"] == ref["data"] + ref["bss"]


def test_span_matches_the_linkers_memory_usage(elves):
    for key in ("fx", "big"):
        sizes = load_elf(elves[key], progress=False).sizes()
        ld = linker_usage(elves[key])
        assert (sizes["flash_span"], sizes["ram_span"]) == (ld["FLASH"], ld["RAM"]), key


def test_symbols_match_nm(elves):
    img = load_elf(elves["fx"], progress=False)
    assert {s.name: s.size for s in img.symbols} == gnu_nm(elves["fx"])


def test_attribution_from_dwarf(elves):
    img = load_elf(elves["fx"], progress=False)
    comp = {s.name: s.component for s in img.symbols}
    assert img.has_dwarf
    assert comp["g_model"] == comp["g_model_len"] == "model weights"
    # the kernel's names say nothing: only its source path (modules/tflm_mamba/) does
    assert comp["ssm_scan_step"] == comp["h_state"] == comp["exp_table"] == "tflm_mamba kernels"
    assert comp["_ZN6tflite11op_countersE"] == comp["tflm_invoke"] == "TFLM"
    assert comp["_ZN6tflite16MicroInterpreter6InvokeEi"] == "TFLM"
    assert comp["main"] == comp["features"] == comp["tensor_arena"] == comp["scores"] == "app"
    assert comp["memcpy"] == comp["memset"] == "libc/runtime"
    assert comp["reset_handler"] == "other"
    assert comp["__aeabi_fsub"] == comp["__subsf3"] == "libc/runtime"
    # initialised data counts in flash and RAM
    rows = {r["component"]: r for r in components(img)}
    nm = gnu_nm(elves["fx"])
    assert rows["app"]["ram"] == nm["scores"] + nm["result"] + nm["gain"] + nm["features"] + nm["tensor_arena"]
    assert rows["app"]["flash"] == nm["main"] + nm["scores"] + nm["gain"]
    assert rows["model weights"]["flash"] == nm["g_model"] + nm["g_model_len"]


def test_workspace_under_a_folder_named_zephyr(tmp_path):
    """~/zephyr/kws-workspace/: the DWARF paths of the app, the kernel module and the model all contain
    "/zephyr/"; relative to the build's roots (CMakeCache.txt, zephyr_modules.txt) they are still the
    app's, the module's and Zephyr's."""
    ws = tmp_path / "zephyr" / "kws-workspace"
    where = {"startup.c": ws / "zephyr" / "arch" / "arm" / "core" / "startup.c",
             "app/main.c": ws / "mamba-kws" / "app" / "src" / "main.c",
             "model/model_data.c": ws / "mamba-kws" / "app" / "src" / "model_data.c",
             "modules/tflm_mamba/ssm_scan.c": ws / "mamba-kws" / "modules" / "tflm_mamba" / "src" / "ssm_scan.c",
             "tflm_standin/tensorflow/lite/micro/micro_interpreter.cc":
                 ws / "optional" / "modules" / "lib" / "tflite-micro" / "tensorflow" / "lite" / "micro" / "mi.cc"}
    for src, dst in where.items():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIX / src, dst)
    build = ws / "mamba-kws" / "build"
    elf = _build(build / "zephyr", "zephyr", sources=dict(zip(SOURCES, where.values(), strict=True)))
    assert "/zephyr/" in str(where["app/main.c"])

    def comp_of() -> dict[str, str]:
        return {s.name: s.component for s in load_elf(elf, progress=False, roots=workspace_roots(elf)).symbols}

    assert workspace_roots(elf) is None  # no build folder: the absolute paths decide
    before = comp_of()
    assert before["main"] == before["tensor_arena"] == "Zephyr drivers/subsys"  # what the roots fix

    (build / "CMakeCache.txt").write_text(
        f"APPLICATION_SOURCE_DIR:PATH={ws / 'mamba-kws' / 'app'}\nZEPHYR_BASE:PATH={ws / 'zephyr'}\n")
    (build / "zephyr_modules.txt").write_text(
        f'"mamba-kws":"{ws / "mamba-kws"}":"{ws / "mamba-kws"}"\n'
        f'"tflite-micro":"{ws / "optional" / "modules" / "lib" / "tflite-micro"}":"x"\n')
    roots = workspace_roots(elf)
    assert roots.relative(str(where["app/main.c"])) == "@app/src/main.c"
    comp = comp_of()
    assert comp["main"] == comp["features"] == comp["tensor_arena"] == comp["scores"] == "app"
    assert comp["g_model"] == "model weights"
    assert comp["ssm_scan_step"] == comp["h_state"] == "tflm_mamba kernels"
    assert comp["_ZN6tflite16MicroInterpreter6InvokeEi"] == "TFLM"
    assert comp["reset_handler"] == "Zephyr kernel"  # zephyr/arch/


def test_overlapping_symbols_count_once(elves):
    # libgcc's soft-float routines share code (__aeabi_fsub enters __subsf3): the bytes the
    # components claim must be the union of the symbols' ranges, as nm lists them
    spans = []
    for line in _run(["arm-none-eabi-nm", "-S", "-n", str(elves["fx"])]).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "TtRrDdBbWwVv":
            lo = int(parts[0], 16) & ~1
            spans.append((lo, lo + int(parts[1], 16)))
    union, end = 0, 0
    for lo, hi in sorted(spans):
        union += max(0, hi - max(lo, end))
        end = max(end, hi)
    assert sum(hi - lo for lo, hi in spans) > union  # the fixture does have overlaps
    img = load_elf(elves["fx"], progress=False)
    by_sec = {s.name: s for s in img.sections}
    claimed = sum(s.flash if by_sec[s.section].flash else s.ram for s in img.symbols)
    assert claimed == union
    rows = {r["component"]: r for r in components(img)}
    assert rows["(no symbol)"]["flash"] >= 0 and rows["(no symbol)"]["ram"] == 2048  # the .stack


def test_without_dwarf_names_still_attribute(elves):
    img = load_elf(elves["nodebug"], progress=False)
    comp = {s.name: s.component for s in img.symbols}
    assert not img.has_dwarf and any("DWARF" in w for w in img.warnings)
    assert comp["g_model"] == "model weights"
    assert comp["_ZN6tflite11op_countersE"] == "TFLM"
    assert comp["memcpy"] == "libc/runtime" and comp["main"] == "app"
    assert comp["ssm_scan_step"] == "other"  # no path, no telling name


def test_without_dwarf_the_linker_map_gives_paths(elves):
    from mamba_kws.elf.build import find_map, map_objects

    objs = map_objects(find_map(elves["nodebug_map"]))
    img = load_elf(elves["nodebug_map"], progress=False, map_objects=objs)
    comp = {s.name: s.component for s in img.symbols}
    assert not img.has_dwarf and not img.warnings
    assert comp["ssm_scan_step"] == comp["h_state"] == comp["exp_table"] == "tflm_mamba kernels"
    assert comp["features"] == comp["tensor_arena"] == "app" and comp["tflm_invoke"] == "TFLM"
    paths = {s.name: s.path for s in img.symbols}
    assert paths["memcpy"].endswith("(lib_a-memcpy.o)") and comp["memcpy"] == "libc/runtime"
    # every symbol lies in one of the map's input sections
    assert all(p is not None for p in paths.values())


def test_cli_report_json_and_plot(cli, elves, tmp_path):
    r = cli(elves["fx"], "--board", "nrf52840dk_nrf52840", "--json", tmp_path / "r.json", "--plot",
            tmp_path / "r.png", "--top", "100")
    assert r.returncode == 0, r.stderr
    assert "tflm_mamba kernels" in r.stdout and "tflite::op_counters" in r.stdout  # demangled
    assert "warning" not in r.stdout
    rep = json.loads((tmp_path / "r.json").read_text())
    b = boards.get_board("nrf52840dk/nrf52840")
    assert rep["board"]["name"] == b.name
    assert rep["regions"]["flash"]["limit"] == b.flash_bytes and rep["regions"]["ram"]["limit"] == b.ram_bytes
    assert rep["size"] == gnu_size(elves["fx"])
    nm = gnu_nm(elves["fx"])
    assert len(rep["top_symbols"]) == len(nm)  # all of them: fewer than 100
    assert [s["size"] for s in rep["top_symbols"]] == sorted(nm.values(), reverse=True)
    top = {s["name"]: s for s in rep["top_symbols"]}
    assert top["_ZN6tflite11op_countersE"]["demangled"] == "tflite::op_counters"
    assert top["g_model"]["region"] == top["__subsf3"]["region"] == top["__aeabi_fsub"]["region"] == "flash"
    assert top["gain"]["region"] == "flash+RAM"
    assert top["h_state"]["source"].endswith("modules/tflm_mamba/ssm_scan.c")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "r.png").stat().st_size > 10_000


def test_budget(cli, elves):
    ref = gnu_size(elves["fx"])
    flash, ram = ref["text"] + ref["data"], ref["data"] + ref["bss"]
    ok = cli(elves["fx"], "--budget", f"flash={flash},ram={ram}")
    assert ok.returncode == 0, ok.stderr
    over = cli(elves["fx"], "--budget", f"flash={flash - 1},ram=64K")
    assert over.returncode == 1
    assert over.stderr.strip().splitlines() == [
        f"over budget: flash {flash} B ({flash / 1024:.1f} KiB) > budget {flash - 1} B "
        f"({(flash - 1) / 1024:.1f} KiB) by 1 B"]
    pct = cli(elves["fx"], "--board", "qemu_cortex_m3", "--budget", "ram=1%")  # 655 B
    assert pct.returncode == 1 and "over budget: RAM" in pct.stderr
    bad = cli(elves["fx"], "--budget", "flsh=2K")
    assert bad.returncode == 2 and bad.stderr.startswith("error: bad --budget")


def test_over_the_board(elves):
    from mamba_kws.elf.build import Limits
    from mamba_kws.elf.report import over_budget

    rep = analyse(load_elf(elves["fx"], progress=False), Limits("tiny", 4096, 4096, "test"), 3)
    lines = over_budget(rep, {})
    assert [x.split(":")[0] for x in lines] == ["over the board", "over the board"]
    assert lines[0].startswith(f"over the board: flash {rep['regions']['flash']['used']} B")


def test_bad_inputs_one_line(cli, elves, tmp_path):
    cases = {
        "host": "x86-64",
        "garbage": "not an ELF",
        "truncated": "corrupt ELF",
    }
    for key, text in cases.items():
        r = cli(elves[key])
        assert r.returncode == 2, key
        assert len(r.stderr.strip().splitlines()) == 1 and text in r.stderr and "Traceback" not in r.stderr, key
    for path, text in ((tmp_path / "missing.elf", "no such file"), (tmp_path, "is a directory")):
        r = cli(path)
        assert r.returncode == 2 and text in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli(elves["fx"], "--board", "nope")
    assert r.returncode == 2 and "unknown board 'nope'" in r.stderr


def test_stripped_reports_sections(cli, elves):
    r = cli(elves["stripped"], "--board", "qemu_cortex_m3")
    assert r.returncode == 0, r.stderr
    assert ".rodata" in r.stdout and "stripped" in r.stdout
    assert "\ncomponent " not in r.stdout and "symbols by size" not in r.stdout
    ref = gnu_size(elves["stripped"])
    assert f"text {ref['text']}  data {ref['data']}  bss {ref['bss']}" in r.stdout


def test_diff(cli, elves, tmp_path):
    r = cli("diff", elves["fx"], elves["big"], "--json", tmp_path / "d.json")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "d.json").read_text())
    a, b = gnu_size(elves["fx"]), gnu_size(elves["big"])
    regions = {x["name"]: x["delta"] for x in d["regions"]}
    assert regions["text"] == b["text"] - a["text"] and regions["flash"] == regions["text"] + regions["data"]
    grown = gnu_nm(elves["big"])["g_model"] - gnu_nm(elves["fx"])["g_model"]
    assert grown == 3000
    assert d["symbols"][0] == {"name": "g_model", "a": 6000, "b": 9000, "delta": grown, "status": "changed"}
    model = next(c for c in d["components"] if c["name"] == "model weights")
    assert model["flash_delta"] == grown and model["ram_delta"] == 0
    assert "g_model" in r.stdout and "+3000" in r.stdout


def _zephyr_build_dir(tmp_path: Path, elf: Path, config: str) -> Path:
    z = tmp_path / "build" / "zephyr"
    z.mkdir(parents=True)
    shutil.copy(elf, z / "zephyr.elf")
    (z / ".config").write_text(config)
    return z / "zephyr.elf"


def test_board_from_zephyr_config(elves, tmp_path):
    elf = _zephyr_build_dir(tmp_path, elves["fx"], 'CONFIG_BOARD="nrf52840dk"\n'
                            'CONFIG_BOARD_TARGET="nrf52840dk/nrf52840"\nCONFIG_FLASH_SIZE=1024\n')
    lim = detect(elf)
    assert (lim.board, lim.flash, lim.ram) == ("nrf52840dk/nrf52840", 1024 * 1024, 256 * 1024)
    rep = analyse(load_elf(elf, progress=False), lim, 3)
    assert rep["regions"]["ram"]["percent"] == round(100 * rep["regions"]["ram"]["used"] / (256 * 1024), 2)


def test_board_not_in_table_uses_kconfig_sizes(elves, tmp_path):
    elf = _zephyr_build_dir(tmp_path, elves["fx"], 'CONFIG_BOARD="my_board"\nCONFIG_FLASH_SIZE=512\n'
                            "CONFIG_SRAM_SIZE=128\n")
    lim = detect(elf)
    assert (lim.board, lim.flash, lim.ram) == ("my_board", 512 * 1024, 128 * 1024)


def test_limits_from_linker_map_and_dts(elves, tmp_path):
    # the map the fixture's own link wrote (MEMORY in cortex_m3.ld: 256K / 64K)
    lim = detect(elves["fx"])
    assert (lim.flash, lim.ram) == (256 * 1024, 64 * 1024) and "Memory Configuration" in lim.source
    d = tmp_path / "dts" / "zephyr"
    d.mkdir(parents=True)
    shutil.copy(elves["fx"], d / "zephyr.elf")
    (d / "zephyr.dts").write_text(
        '/ {\n\tchosen {\n\t\tzephyr,flash = &flash0;\n\t\tzephyr,sram = &sram0;\n\t};\n'
        "\tsram0: memory@20000000 {\n\t\tcompatible = \"mmio-sram\";\n\t\treg = < 0x20000000 0x18000 >;\n\t};\n"
        "\tflash0: flash@8000000 {\n\t\treg = < 0x8000000 0x80000 >;\n\t};\n};\n")
    lim = detect(d / "zephyr.elf")
    assert (lim.flash, lim.ram) == (0x80000, 0x18000) and "dts" in lim.source


@pytest.mark.parametrize("name,path,component", [
    ("z_sched_lock", "/ws/zephyr/kernel/sched.c", "Zephyr kernel"),
    ("foo", "/zephyr/kernel/libkernel.a(sched.c.obj)", "Zephyr kernel"),  # a map path, relative to build/
    ("uart_poll_out", "/ws/zephyr/drivers/serial/uart_stellaris.c", "Zephyr drivers/subsys"),
    ("memcpy", "/ws/zephyr/lib/libc/picolibc/libc-hooks.c", "libc/runtime"),
    ("_ZN6tflite12MicroAllocator6CreateEPhj", "/ws/optional/modules/lib/tflite-micro/tensorflow/lite/micro/a.cc",
     "TFLM"),
    ("_ZN6tflite19Register_MAMBA_BLOCKEv", "/ws/mamba-kws/modules/tflm_mamba/tflm/mamba_block_op.cc",
     "tflm_mamba kernels"),
    ("_ZN6tflite19Register_MAMBA_BLOCKEv", None, "tflm_mamba kernels"),
    ("arm_convolve_s8", "/ws/modules/lib/cmsis-nn/Source/ConvolutionFunctions/arm_convolve_s8.c", "CMSIS-NN"),
    ("g_model", "/ws/mamba-kws/app/src/main.c", "model weights"),
    ("td_f32_feats", "/ws/mamba-kws/tests/tflm_mamba/src/test_data.c", "app"),
    ("_ZNSt6vectorIiSaIiEE9push_backERKi", None, "libc/runtime"),
    ("__aeabi_fmul", None, "libc/runtime"),
    ("helper", "/ws/somewhere/else.c", "other"),
])
def test_rules(name, path, component):
    from mamba_kws.elf.components import classify

    assert classify(name, path) == component


def test_boards_table():
    assert boards.get_board("qemu_cortex_m3").flash_bytes == 256 * 1024
    assert boards.get_board("qemu_cortex_m3").ram_bytes == 64 * 1024
    assert boards.get_board("mps2_an386").cpu == "cortex-m4"
    assert boards.find_board("NRF52840DK/NRF52840").ram_bytes == 256 * 1024
    assert boards.parse_size("200K") == 204800 and boards.parse_size("1.5M") == 1572864
    assert boards.parse_size("50%", of=1000) == 500
    with pytest.raises(boards.BoardError):
        boards.parse_size("lots")
    b = boards.get_board("qemu_cortex_m3")
    assert boards.check_fit(b, b.flash_bytes, b.ram_bytes) == []
    assert len(boards.check_fit(b, b.flash_bytes + 1, b.ram_bytes + 1)) == 2
