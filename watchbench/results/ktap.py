"""KTAP (Documentation/dev-tools/ktap.rst), as our conformance suite, the checks' programs
and scripts print it: read into results, and written back as one nested report.

Only the top level of a report is read: a ``# `` line before a result is its diagnostic,
``# SKIP`` after a result's name skips it, and any other text there is a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

RESULT = re.compile(r"^(ok|not ok) (\d+)(?: -)? ?([^#]*?)\s*(?:#\s*(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Case:
    number: int
    name: str
    outcome: Outcome
    note: str = ""  # the skip's reason, or the text after '#'
    diagnostics: tuple[str, ...] = ()  # the '# ' lines just before the result


@dataclass(frozen=True)
class Report:
    cases: tuple[Case, ...] = ()
    planned: int | None = None
    skip_all: str = ""  # the reason of a '1..0 # SKIP' plan
    header: bool = False  # it began with a 'KTAP version' or 'TAP version' line

    @property
    def complete(self) -> bool:
        """The plan was printed and every planned result arrived."""
        return self.planned is not None and len(self.cases) >= self.planned

    @property
    def failed(self) -> list[Case]:
        return [c for c in self.cases if c.outcome is Outcome.FAIL]


def parse(lines: list[str]) -> Report:
    """The top-level results of one KTAP report (indented subtests are not read)."""
    cases: list[Case] = []
    planned: int | None = None
    skip_all = ""
    header = False
    pending: list[str] = []
    for line in lines:
        if line.startswith(("KTAP version", "TAP version")):
            header = True
            continue
        if line.startswith((" ", "\t")):
            continue
        plan = PLAN.match(line)
        if plan:
            pending = []  # the report's own diagnostics, not its first result's
            planned = int(plan[1])
            if planned == 0 and (plan[2] or "").upper().startswith("SKIP"):
                skip_all = plan[2][4:].strip()
            continue
        result = RESULT.match(line)
        if result:
            note = (result[4] or "").strip()
            if result[1] == "not ok":
                outcome = Outcome.FAIL
            elif note.upper().startswith("SKIP"):
                outcome, note = Outcome.SKIP, note[4:].strip()
            else:
                outcome = Outcome.PASS
            cases.append(Case(int(result[2]), result[3].strip(), outcome, note, tuple(pending)))
            pending = []
        elif line.startswith("#"):
            pending.append(line[1:].strip())
    return Report(tuple(cases), planned, skip_all, header)


@dataclass(frozen=True)
class Part:
    """One run's report inside the nested report: its own verdict and why."""

    name: str
    report: Report
    outcome: Outcome
    reasons: tuple[str, ...] = field(default=())


def render(parts: list[Part]) -> str:
    """One KTAP report with each run as a subtest (indented by two spaces, as kunit does)."""
    out = ["KTAP version 1", f"1..{len(parts)}"]
    for number, part in enumerate(parts, 1):
        rep = part.report
        out.append("  KTAP version 1")
        out.append(f"  1..{rep.planned if rep.planned is not None else len(rep.cases)}"
                   + (f" # SKIP {rep.skip_all}" if rep.skip_all else ""))
        for case in rep.cases:
            out += [f"  # {d}" for d in case.diagnostics]
            word = "not ok" if case.outcome is Outcome.FAIL else "ok"
            tail = (f" # SKIP {case.note}" if case.outcome is Outcome.SKIP
                    else f" # {case.note}" if case.note else "")
            out.append(f"  {word} {case.number} {case.name}{tail}")
        out += [f"# {r}" for r in part.reasons]
        word = "not ok" if part.outcome is Outcome.FAIL else "ok"
        skip = (f" # SKIP {rep.skip_all or (part.reasons[0] if part.reasons else '')}"
                if part.outcome is Outcome.SKIP else "")
        out.append(f"{word} {number} {part.name}{skip}")
    return "\n".join(out) + "\n"
