"""Every figure the README publishes, from the outputs of the commands that measured it.

`make results` runs the measuring commands on a trained run folder (below: STEPS), then this tool
collects their JSON outputs into one `results.json`: each figure with the command and the file it
came from, the git revision and the sha256 of the checkpoints. `--readme` rewrites the README's
result tables (between the `<!-- results:begin -->` and `<!-- results:end -->` markers) from it,
and a test checks that the committed README and results.json agree.

Figures that only a local Zephyr workspace can give (twister, image sizes) are not collected here;
the README marks them as such, with their commands.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from . import provenance
from .errors import ArgumentParser, KWSError

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# The measuring commands, in the order `make results` runs them ({run}: the run folder).
STEPS: dict[str, dict[str, str]] = {
    "training": {"command": "python tools/train.py --config models/kws_mamba.yaml --out {run} --compile",
                 "output": "{run}/summary.json"},
    "accuracy": {"command": "python tools/evaluate.py --checkpoint {run}/best.pt --teachers {teachers}",
                 "output": "{run}/eval_v2_test_dev_teachers.json"},
    "size": {"command": "python tools/size_table.py {run} --json {run}/size_table.json --plot {run}/size_table.png",
             "output": "{run}/size_table.json"},
    "int8": {"command": "python tools/compare_paths.py --checkpoint {run}/best.pt --real v2_test_dev "
                        "--paths fused_int8,fused_int8_stream --out {run}/compare_paths",
             "output": "{run}/compare_paths/compare_paths.json"},
    "kernels": {"command": "python tools/bench_kernels.py --checkpoint {run}/best.pt --clips 0 "
                           "--json {run}/bench_kernels.json",
                "output": "{run}/bench_kernels.json"},
    "stream": {"command": "python tools/stream_eval.py --checkpoint {run}/best.pt --minutes {minutes} "
                          "--teachers {stream_teachers} --out {run}/stream",
               "output": "{run}/stream/stream_eval.json"},
}
TEACHERS = "ds_cnn_l,ds_cnn_s,mlperf_float,mlperf_int8,ensemble"
# On the streams: the best single teacher and the MCU baseline (each runs every 20 ms hop on 1 s of audio).
STREAM_TEACHERS = "ds_cnn_l,mlperf_int8"


def git_revision() -> str:
    """The commit (12 hex digits), '-dirty' when tracked files differ from it; 'unknown' outside git."""
    rev = provenance.git_revision()
    if rev is None:
        return "unknown"
    return rev["revision"][:12] + ("-dirty" if rev["dirty"] else "")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise KWSError(f"{path}: unreadable ({exc}); rerun the command that writes it") from None


def collect(run: Path, minutes: float) -> dict[str, Any]:
    """results.json's content from the outputs of STEPS in `run` (each present output; absent ones noted)."""
    if not (run / "best.pt").is_file():
        raise KWSError(f"{run}: no best.pt (a run folder of tools/train.py)")
    fmt = {"run": str(run), "teachers": TEACHERS, "stream_teachers": STREAM_TEACHERS, "minutes": f"{minutes:g}"}
    out: dict[str, Any] = {
        "git_revision": git_revision(),
        "date": dt.date.today().isoformat(),
        "run": str(run),
        "checkpoints": {"best.pt": provenance.sha256_file(run / "best.pt")},
        "missing": [],
    }
    for key, step in STEPS.items():
        path = Path(step["output"].format(**fmt))
        if not path.is_file():
            out["missing"].append({"figures": key, "run": step["command"].format(**fmt)})
            continue
        data = _read(path)
        out[key] = {"command": step["command"].format(**fmt), "source": str(path), **_extract(key, data)}
    return out


# compare_paths' int8 paths that the per-class table shows, and their column names
DEVICE_PATHS = {"fused_int8": "fused int8 (clip alone)", "fused_int8_stream": "fused int8 (firmware, stream)"}


def _extract(key: str, data: Any) -> dict[str, Any]:
    if key == "training":
        return {k: data.get(k) for k in ("config", "params", "epochs", "train_seconds", "best_val_acc",
                                         "selected_on", "train_clips", "distill")}
    if key == "accuracy":
        return {"clips": next(iter(data.values()))["n"],
                "models": {name: round(r["accuracy"], 4) for name, r in data.items()},
                "per_class": {name: {lab: None if c["accuracy"] is None else round(c["accuracy"], 4)
                                     for lab, c in r.get("per_class", {}).items()} for name, r in data.items()}}
    if key == "size":
        return {"rows": [{"run": r["run"], "model": r["model"], "params": r["params"],
                          "float_acc": round(r["float_acc"], 4), "int8_acc": round(r["int8_acc"], 4),
                          "int8_agreement": round(r["int8_agreement"], 4), "clips": r["clips"],
                          "flash_bytes": r["flash_bytes"],
                          "ram_bytes": next(iter(r["targets"].values()))["ram_bytes"],
                          "step_instructions": {t: v["step_instructions"] for t, v in r["targets"].items()}}
                         for r in data]}
    if key == "int8":
        name, r = next((k, v) for k, v in data["sets"].items() if k.startswith("v2_test_dev"))
        return {"clips": r["n"], "set": name,
                "accuracy": {p: round(a, 4) for p, a in r["accuracy"].items()},
                "agreement": {p: round(a, 4) for p, a in r["agreement"].items()},
                "per_class": {p: {lab: None if a is None else round(a, 4) for lab, a in c.items()}
                              for p, c in r.get("per_class_accuracy", {}).items() if p in DEVICE_PATHS}}
    if key == "kernels":
        return {"budget_instructions": data["budget_cycles"],
                "targets": {f"{r['target']} {r['kernels']}": {
                    "step": round(r["q8_step_mean"]), "window": round(r["q8_inference"]),
                    "readout": round(r["q8_readout"]), "kernel_flash_bytes": r["flash"]["int8"],
                    "state_bytes": r["ram"]["q8_state_bytes"], "scratch_bytes": r["ram"]["q8_scratch_bytes"]}
                    for r in data["results"]}}
    if key == "stream":
        res = {}
        for ro, r in data["results"].items():
            res[ro] = {"kind": r.get("kind", "model"), "at_1_fa_per_hour": _point(r["at_1_fa_per_hour"]),
                       "at_10_fa_per_hour": _point(r["at_10_fa_per_hour"]),
                       "yaml_policy": {"detection_rate": round(r["yaml_policy"]["detection_rate"], 4),
                                       "false_alarms_per_hour": round(r["yaml_policy"]["false_alarms_per_hour"], 1)}}
        return {"minutes": data["minutes"], "snr_db": data["snr_db"],
                "keywords": sum(s["keywords"] for s in data["streams"]), "readouts": res}
    raise KeyError(key)


def _point(p: dict | None) -> dict | None:
    if p is None:
        return None
    return {"detection_rate": round(p["detection_rate"], 4), "threshold": round(float(p["threshold"]), 4),
            "false_alarms_per_hour": round(p["false_alarms_per_hour"], 2)}


# ------------------------------------------------------------------------------ README tables


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def render(res: dict[str, Any]) -> str:
    """The README's result tables (markdown) from results.json's content."""
    lines = [f"Generated by `make results` (`tools/results.py`) from `results.json`: git {res['git_revision']}, "
             f"{res['date']}, checkpoint `{res['run']}/best.pt` sha256 "
             f"`{res['checkpoints'].get('best.pt', '?')[:16]}…`.", ""]
    if "training" in res:
        t = res["training"]
        lines += [f"Training (`{t['command']}`): {t['params']:,} parameters, {t['epochs']} epochs in "
                  f"{t['train_seconds'] / 60:.0f} min on 2 CPU cores, {t['train_clips']:,} clips an epoch, "
                  f"selected on `{t['selected_on']}` ({_pct(t['best_val_acc'])}), distilled from "
                  f"`{t['distill']}`.", ""]
    if "accuracy" in res:
        a = res["accuracy"]
        lines += [f"Accuracy on real speech: all {a['clips']:,} `v2_test_dev` clips (speakers no tool of the project "
                  f"trains or selects on) through the device front end; `{a['command']}`:", "",
                  "| model | 12-class accuracy |", "|---|---|"]
        lines += [f"| {name} | {_pct(acc)} |" for name, acc in a["models"].items()]
        lines.append("")
        per = {m: c for m, c in a.get("per_class", {}).items() if c}
        if per:  # the firmware's model on the same clips, where compare_paths measured it
            per |= {DEVICE_PATHS[p]: c for p, c in res.get("int8", {}).get("per_class", {}).items() if c}
        if per:
            labels = list(next(iter(per.values())))
            lines += ["Per class (the same clips):", "", "| class | " + " | ".join(per) + " |",
                      "|---" * (1 + len(per)) + "|"]
            lines += [f"| `{lab}` | " + " | ".join(_pct(c.get(lab)) for c in per.values()) + " |" for lab in labels]
            lines.append("")
    if "size" in res:
        s = res["size"]
        targets = list(s["rows"][0]["step_instructions"]) if s["rows"] else []
        lines += [f"The device path (fused int8 C core, host build) on the same clips; `{s['command']}`:", "",
                  "| d_model | layers | d_state | expand | parameters | float | fused int8 | agreement | "
                  "model flash | kernel RAM | " + " | ".join(f"{t} instr./step" for t in targets) + " |",
                  "|---" * (10 + len(targets)) + "|"]
        for r in s["rows"]:
            m = r["model"]
            lines.append(f"| {m['d_model']} | {m['n_layers']} | {m['d_state']} | {m['expand']} | {r['params']:,} | "
                         f"{_pct(r['float_acc'])} | {_pct(r['int8_acc'])} | {_pct(r['int8_agreement'])} | "
                         f"{r['flash_bytes']:,} B | {r['ram_bytes']:,} B | "
                         + " | ".join(f"{r['step_instructions'][t]:,}" for t in targets) + " |")
        lines.append("")
    if "int8" in res:
        q = res["int8"]
        acc, agr = q["accuracy"], q["agreement"]
        rows = [("a clip on its own, from a zero state", "torch_float", "fused_int8"),
                ("the clip right after another clip, as the streaming firmware hears it", "torch_float_stream",
                 "fused_int8_stream")]
        lines += [f"The fused int8 model on the same {q['clips']:,} clips, heard two ways; `{q['command']}`:", "",
                  "| heard as | float | fused int8 | top-1 agreement |", "|---|---|---|---|"]
        for label, f, i in rows:
            if f in acc and i in acc:
                lines.append(f"| {label} | {_pct(acc[f])} | {_pct(acc[i])} | {_pct(agr.get(f'{i} vs {f}'))} |")
        lines.append("")
    if "kernels" in res:
        k = res["kernels"]
        lines += [f"Fused int8 kernels under QEMU, instructions (budget {k['budget_instructions']:,.0f} a step = 10 % "
                  f"of a 20 ms hop at 64 MHz); `{k['command']}`:", "",
                  "| target | one 20 ms step | 1 s window | readout | kernel flash | state + scratch |",
                  "|---|---|---|---|---|---|"]
        for name, r in k["targets"].items():
            lines.append(f"| {name} | {r['step']:,} | {r['window']:,} | {r['readout']:,} | "
                         f"{r['kernel_flash_bytes']:,} B | {r['state_bytes']:,} + {r['scratch_bytes']:,} B |")
        lines.append("")
    if "stream" in res:
        st = res["stream"]
        lines += [f"Streaming detection on {st['minutes']:g} min of continuous audio ({st['keywords']} keywords, "
                  f"SNR {', '.join(str(s) for s in st['snr_db'])} dB); `{st['command']}`:", "",
                  "| readout | detection at 1 false alarm / h | at 10 / h | the YAML policy: detection | "
                  "false alarms / h |", "|---|---|---|---|---|"]
        for ro, r in st["readouts"].items():
            d1, d10 = r["at_1_fa_per_hour"], r["at_10_fa_per_hour"]
            name = {"teacher": f"{ro} (pretrained teacher, 1 s every hop)",
                    "device": f"{ro} (the firmware's int8 streaming image)"}.get(r.get("kind"), ro)
            lines.append(f"| {name} | {_pct(d1 and d1['detection_rate'])} | {_pct(d10 and d10['detection_rate'])} | "
                         f"{_pct(r['yaml_policy']['detection_rate'])} | "
                         f"{r['yaml_policy']['false_alarms_per_hour']:g} |")
        lines.append("")
    for m in res.get("missing", []):
        lines.append(f"Not measured in this run ({m['figures']}): `{m['run']}`.")
    return "\n".join(lines).rstrip() + "\n"


def readme_block(text: str) -> str:
    """The part of the README between the results markers."""
    if BEGIN not in text or END not in text:
        raise KWSError(f"the README has no {BEGIN} ... {END} block")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def replace_block(text: str, block: str) -> str:
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="results.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="runs/kws_mamba", help="the trained run folder (default runs/kws_mamba)")
    p.add_argument("--minutes", type=float, default=60.0, help="the stream_eval length that `make results` uses")
    p.add_argument("--out", default="results.json", help="where to write the figures (default results.json)")
    p.add_argument("--readme", default=None, help="rewrite this README's result tables from the figures")
    p.add_argument("--check", action="store_true",
                   help="write nothing: exit 1 if the README's tables differ from an existing --out file")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.check:
        if not out.is_file() or not args.readme:
            raise KWSError("--check needs an existing --out results.json and --readme")
        ok = readme_block(Path(args.readme).read_text()) == render(_read(out))
        print(f"{args.readme} {'matches' if ok else 'DIFFERS FROM'} {out}")
        return 0 if ok else 1
    res = collect(Path(args.run), args.minutes)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(render(res))
    print(f"wrote {out}")
    if args.readme:
        readme = Path(args.readme)
        readme.write_text(replace_block(readme.read_text(), render(res)))
        print(f"updated the result tables of {readme}")
    return 0
