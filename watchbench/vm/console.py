"""Reading a guest's console log: panics, oopses, BUGs and WARNINGs, with an excerpt.

Pure functions over text, tested against console logs recorded from real boots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TIMESTAMP = re.compile(r"^\[\s*(\d+\.\d+)\]\s?")
PATTERNS = (
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("oops", re.compile(r"\bOops\b|general protection fault|BUG: kernel NULL pointer|"
                        r"BUG: unable to handle|unable to handle (kernel|page)")),
    ("bug", re.compile(r"\bBUG: |kernel BUG at |KASAN: |UBSAN: ")),
    # WARN(); lockdep's own report headers (circular or recursive locking, inconsistent
    # lock state, bad unlock balance, held lock freed, lock held returning to user space,
    # irq lock inversion, lock order) and lockdep-RCU's; lockdep's "non-static key" INFO
    # (after which it switches itself off) and RCU stall reports.
    ("warning", re.compile(r"\bWARNING: (CPU: \d+ PID: \d+ at |possible \w+ locking|"
                           r"possible irq lock inversion|inconsistent lock state|"
                           r"bad unlock balance|held lock freed|lock held when returning|"
                           r"\S+-safe -> \S+-unsafe lock order|suspicious RCU)|"
                           r"\bINFO: trying to register non-static key|"
                           r"\brcu: INFO: \w+ detected (expedited )?stalls")),
)


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


def root_cause(found: list[Incident]) -> Incident | None:
    """The first crash (panic/Oops/BUG) — later ones are usually its consequences — else the
    first WARNING."""
    crashes = [i for i in found if i.kind != "warning"]
    return (crashes or found or [None])[0]


def last_timestamp(lines: list[str]) -> float | None:
    """The guest's own clock at its last timestamped console line (seconds since boot)."""
    for raw in reversed(lines):
        match = TIMESTAMP.match(raw)
        if match:
            return float(match[1])
    return None
