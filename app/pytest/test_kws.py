"""Twister pytest harness: every built-in clip of the image runs and is detected as its own label.

The firmware prints, for each clip, `CLIP <i> <label> samples=<n>`, its `DETECTED <keyword> score=..
t=..ms` lines, and `CLIP_END <i> <label> detections=<n>`, then `ALL_CLIPS_DONE`. The clips that ran
must be exactly the ones the build links in (app/src/generated/clips.json, all of them or the set
KWS_CLIP_SET of KWS_CLIPS_PER_SET), whole; a keyword clip must give at least one detection, all of its
keyword, each with a score between the keyword's threshold (kws_params.h) and 1; a _silence_ or
_noise_ clip must give none.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from twister_harness import DeviceAdapter

NON_KEYWORDS = ("_silence_", "_noise_", "_unknown_")
GENERATED = Path(__file__).resolve().parents[1] / "src" / "generated"


def parse(lines: list[str]) -> list[tuple[str, int, list[tuple[str, float]]]]:
    """[(label, samples, [(detected keyword, score)])] in clip order."""
    clips: list[tuple[str, int, list[tuple[str, float]]]] = []
    current: list[tuple[str, float]] | None = None
    for line in lines:
        if m := re.search(r"^CLIP (\d+) (\S+) samples=(\d+)", line):
            current = []
            clips.append((m.group(2), int(m.group(3)), current))
        elif m := re.search(r"DETECTED (\S+) score=(\d+\.\d+) t=(\d+)ms", line):
            assert current is not None, f"detection outside a clip: {line}"
            current.append((m.group(1), float(m.group(2))))
        elif m := re.search(r"^CLIP_END (\d+) (\S+) detections=(\d+)", line):
            assert current is not None and int(m.group(3)) == len(current), line
            current = None
    return clips


def thresholds() -> dict[str, float]:
    """Each label's detection threshold, from the generated kws_params.h the image was built with."""
    text = (GENERATED / "kws_params.h").read_text()
    labels = re.findall(r'"([^"]+)"', re.search(r"#define KWS_LABELS \{(.*)\}", text).group(1))
    values = re.search(r"#define KWS_THRESHOLDS \{(.*)\}", text).group(1).split(",")
    return {lab: float(v.strip().rstrip("f")) for lab, v in zip(labels, values, strict=True)}


def linked_clips(build_dir: Path) -> list[dict]:
    """The clips.json entries the build links in: all, or set KWS_CLIP_SET of KWS_CLIPS_PER_SET
    (the CMake variable, else the Kconfig option; app/CMakeLists.txt)."""
    clips = json.loads((GENERATED / "clips.json").read_text())["clips"]
    config = (build_dir / "zephyr" / ".config").read_text()
    per_set = int(re.search(r"^CONFIG_KWS_CLIPS_PER_SET=(\d+)", config, re.M).group(1))
    clip_set = int(re.search(r"^CONFIG_KWS_CLIP_SET=(-?\d+)", config, re.M).group(1))
    cache = build_dir / "CMakeCache.txt"
    if cache.is_file() and (m := re.search(r"^KWS_CLIP_SET:\w+=(-?\d+)", cache.read_text(), re.M)):
        clip_set = int(m.group(1))
    return clips if clip_set < 0 else clips[clip_set * per_set : (clip_set + 1) * per_set]


def test_builtin_clips_are_detected(dut: DeviceAdapter) -> None:
    lines = dut.readlines_until(regex="ALL_CLIPS_DONE", timeout=540.0)
    assert any("arena used" in line for line in lines), "the model did not start"
    clips = parse(lines)
    expected = linked_clips(Path(dut.device_config.build_dir))
    assert [(lab, n) for lab, n, _ in clips] == [(c["label"], c["samples"]) for c in expected], \
        f"clips run {[c[:2] for c in clips]}, linked in {[(c['label'], c['samples']) for c in expected]}"
    thr = thresholds()
    wrong = []
    for label, _, found in clips:
        keywords = [k for k, _ in found]
        if label in NON_KEYWORDS:
            if found:
                wrong.append(f"{label}: false detection(s) {found}")
        elif not found or any(k != label for k in keywords):
            wrong.append(f"{label}: detected {found or 'nothing'}")
        # printed with two decimals, rounded: a score that crossed the threshold prints >= it - 0.005
        elif any(not thr[k] - 0.005 <= s <= 1.0 for k, s in found):
            wrong.append(f"{label}: scores {found} outside [{thr[label]}, 1]")
    assert not wrong, "; ".join(wrong)
