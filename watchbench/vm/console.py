"""Reading a guest's console log: panics, oopses, BUGs and WARNINGs, with an excerpt.

Pure functions over text, tested against console logs recorded from real boots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TIMESTAMP = re.compile(r"^\[\s*(\d+\.\d+)\]\s?")
PATTERNS = (
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("oops", re.compile(r"\bOops\b|general protection fault|unable to handle (kernel|page)",
                        re.I)),
    ("bug", re.compile(r"\bBUG: |kernel BUG at |KASAN: |UBSAN: ")),
    ("warning", re.compile(r"\bWARNING: (CPU: \d+ PID: \d+ at |.*possible .*lock|suspicious RCU)")),
)
SEVERITY = {"panic": 0, "oops": 1, "bug": 2, "warning": 3}


@dataclass(frozen=True)
class Incident:
    kind: str  # panic | oops | bug | warning
    line_number: int  # 1-based in the console log
    line: str
    excerpt: str  # the lines around it, for the error message


def strip_timestamp(line: str) -> str:
    return TIMESTAMP.sub("", line)


def incidents(lines: list[str], context: int = 12) -> list[Incident]:
    """Every panic/Oops/BUG/WARNING, in order, each with up to ``context`` following lines."""
    found = []
    for index, raw in enumerate(lines):
        text = strip_timestamp(raw)
        for kind, pattern in PATTERNS:
            if pattern.search(text):
                start = max(index - 2, 0)
                excerpt = "\n".join(lines[start:index + context])
                found.append(Incident(kind, index + 1, raw.strip(), excerpt))
                break
    return found


def worst(found: list[Incident]) -> Incident | None:
    return min(found, key=lambda i: (SEVERITY[i.kind], i.line_number)) if found else None


def last_timestamp(lines: list[str]) -> float | None:
    """The guest's own clock at its last timestamped console line (seconds since boot)."""
    for raw in reversed(lines):
        match = TIMESTAMP.match(raw)
        if match:
            return float(match[1])
    return None
