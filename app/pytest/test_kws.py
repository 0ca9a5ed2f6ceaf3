"""Twister pytest harness: every built-in clip of the image is detected as its own label.

The firmware prints, for each clip, `CLIP <i> <label> ...`, its `DETECTED <keyword> score=.. t=..ms`
lines, and `CLIP_END <i> <label> detections=<n>`, then `ALL_CLIPS_DONE`. A keyword clip must give at
least one detection, all of its keyword; a _silence_ or _noise_ clip must give none.
"""

from __future__ import annotations

import re

from twister_harness import DeviceAdapter

NON_KEYWORDS = ("_silence_", "_noise_", "_unknown_")


def parse(lines: list[str]) -> list[tuple[str, list[str]]]:
    """[(label, [detected keywords])] in clip order."""
    clips: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in lines:
        if m := re.search(r"^CLIP (\d+) (\S+)", line):
            current = []
            clips.append((m.group(2), current))
        elif m := re.search(r"DETECTED (\S+) score=(\d+\.\d+) t=(\d+)ms", line):
            assert current is not None, f"detection outside a clip: {line}"
            current.append(m.group(1))
        elif m := re.search(r"^CLIP_END (\d+) (\S+) detections=(\d+)", line):
            assert current is not None and int(m.group(3)) == len(current), line
            current = None
    return clips


def test_builtin_clips_are_detected(dut: DeviceAdapter) -> None:
    lines = dut.readlines_until(regex="ALL_CLIPS_DONE", timeout=540.0)
    assert any("arena used" in line for line in lines), "the model did not start"
    clips = parse(lines)
    assert clips, "no clips ran"
    wrong = []
    for label, found in clips:
        if label in NON_KEYWORDS:
            if found:
                wrong.append(f"{label}: false detection(s) {found}")
        elif not found or any(k != label for k in found):
            wrong.append(f"{label}: detected {found or 'nothing'}")
    assert not wrong, "; ".join(wrong)
