"""The correctness checks of one boot of a debug kernel, and their judgement.

``plan`` lists the steps (as data: a name, a side, the argv); ``judge`` turns what the boot
gave back (each step's KTAP output and exit code, the console's splats) into one part per
step and the findings. Both are pure: the flow (flows.check) boots, this decides.

A step fails on any ``not ok``, on an exit code that no ``not ok`` explains, on a report
cut short, and on every kernel splat (KASAN, KFENCE, lockdep, BUG, WARNING) the console
shows while it runs or before the next step begins: the splat is quoted and named after
the step and the test whose result had not arrived yet.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from watchbench.errors import ResultsError
from watchbench.guest.clients import Broken
from watchbench.guest.initramfs import GuestCommand
from watchbench.host.files import write_atomically
from watchbench.results import ktap
from watchbench.results.ktap import Outcome, Part
from watchbench.suite.check_steps import TABLE
from watchbench.vm import console
from watchbench.vm.console import Incident

SCRIPTS = "userspace/check"  # relative to the project root, the host side's working directory
# Steps that may skip themselves, and steps that print their results only when they end
# (the table says why).
CLIENTS = frozenset(d.name for d in TABLE if d.client)
RESULTS_AT_END = frozenset(d.name for d in TABLE if d.results_at_end)


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...] = ()
    side: str = "guest"
    skip: str = ""  # a client that could not be had: not run, reported as a skip
    limit: float | None = None  # seconds it may run before the guest is killed as hung
    # The candidate could not make this client (its own sample did not build against its
    # own headers): not run, and a finding.
    broken: str = ""

    def command(self) -> GuestCommand:
        return GuestCommand(self.argv, self.side, limit=self.limit)


def plan(stress_seconds: int, watch_test: Path | str | Broken, keyutils_tests: Path | str,
         keyutils: tuple[str, ...], only: frozenset[str] | None = None) -> list[Step]:
    """The steps of a check boot. ``watch_test``, ``keyutils_tests``: the client's path,
    the reason it is missing (a str: a skip), or why the candidate could not make it (a
    ``Broken``: a finding); ``keyutils``: which of its tests (settings
    check.keyutils_tests: each runs under `keyctl watch_session`, and check_notify checks
    off the link, unlink, update, revoke, clear and setattr records it causes). ``only``:
    these steps (and those that come with them: kmemleak-clear with kmemleak). The steps,
    their order and time limits are ``suite.check_steps.TABLE``'s; each one's argv is
    here."""
    def script(name: str, *args: str) -> tuple[str, ...]:
        return ("bash", f"{SCRIPTS}/{name}", *args)

    def client(name: str, found: Path | str | Broken, argv: tuple[str, ...]) -> Step:
        if isinstance(found, Broken):
            return Step(name, broken=found.reason)
        return Step(name, argv, "host") if isinstance(found, Path) else Step(name, skip=found)

    steps = [
        Step("kmemleak-clear", script("kmemleak.sh", "clear"), "host"),
        Step("conformance", ("wq-conformance", "--record-timeout", "5000", "--gc-timeout",
                             "30000")),
        Step("faults", ("wq-faults",)),
        Step("stress", ("wq-stress", "--seconds", str(stress_seconds))),
        Step("keyctl-client", script("keyctl-client.sh"), "host"),
        client("watch-test", watch_test, script("watch-test.sh", str(watch_test))),
        client("keyutils-tests", keyutils_tests,
               script("keyutils-tests.sh", str(keyutils_tests), *keyutils)),
        Step("kmemleak", script("kmemleak.sh", "scan"), "host"),
    ]
    made = {s.name: s for s in steps}
    limits = {d.name: d.limit for d in TABLE}
    limits["stress"] += stress_seconds
    limits["keyutils-tests"] *= len(keyutils)
    steps = [replace(made[d.name], limit=limits[d.name]) for d in TABLE]
    if only is None:
        return steps
    wanted = set(only) | {d.name for d in TABLE if d.comes_with in only}
    return [s for s in steps if s.name in wanted]


class FindingKind(StrEnum):
    """Why a check failed: a test said not ok, the kernel printed a splat, a step broke
    (no report, cut short, a wrong exit code, killed), or it never ran."""

    FAILED_TEST = "not ok"
    SPLAT = "kernel"
    BROKEN = "broken"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class Finding:
    """One reason a check failed: where (step, test), what, and the evidence."""

    step: str
    test: str
    what: str
    evidence: str = ""
    kind: FindingKind = FindingKind.BROKEN
    count: int = 1  # the same splat, printed this many times (``collapse``)
    # The evidence's stack trace decoded to file:line (kernel.decode), or why it is not:
    # both empty when the evidence has no trace.
    decoded: str = ""
    not_decoded: str = ""

    def described(self) -> str:
        return f"{self.what} ({self.count} times)" if self.count > 1 else self.what

    def line(self) -> str:
        return f"{self.step}: {self.test}: {self.described()}"


# What differs between two prints of one splat: code offsets, the CPU and the task.
VARYING = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+|\b(CPU|PID): \d+|by task \S+")


def collapse(findings: list[Finding]) -> list[Finding]:
    """Repeats of one splat (same step, test and report title, offsets, CPU and task
    aside) as one finding with a count, the first one's evidence kept: a bug on a hot path
    prints thousands, and syzbot groups crashes by their title the same way."""
    out: list[Finding] = []
    first: dict[tuple[str, str, str], int] = {}
    for finding in findings:
        key = (finding.step, finding.test, VARYING.sub("", finding.what))
        if finding.kind is FindingKind.SPLAT and key in first:
            index = first[key]
            out[index] = replace(out[index], count=out[index].count + 1)
            continue
        if finding.kind is FindingKind.SPLAT:
            first[key] = len(out)
        out.append(finding)
    return out


@dataclass(frozen=True)
class Ran:
    """What the boot gave back for one step (vm.session.CommandResult, reduced)."""

    output: list[str]
    returncode: int | None
    console_begin: int = 0
    output_console: tuple[int, ...] = ()
    console_end: int | None = None
    seconds: float | None = None  # in the guest, from its first line to its exit


@dataclass
class Booted:
    """What one check boot gave back, reduced to what ``judge`` reads."""

    ran: list[Ran | None]  # per runnable step (not skipped), None: it never began
    incidents: list[Incident]
    stopped: str  # how the guest stopped early ('' when it finished)
    console_log: Path | None
    accel: str
    qemu_argv: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    qemu: str = ""  # the QEMU version line


BOOT_SCHEMA = 1
EXCERPT = 40  # console lines kept after a splat: a KASAN or lockdep report's trace


def splats(lines: list[str]) -> list[Incident]:
    """A check boot's console incidents, each with a report's worth of lines after it."""
    return console.incidents(lines, context=EXCERPT)


def write_booted(path: Path, steps: list[Step], booted: Booted) -> Path:
    """boot.json: each step's output with the console line counts it was read at, so a
    check can be judged again (and replayed in the tests) beside its console log. The
    incidents are not stored: they are found again in the console log."""
    runnable = [s for s in steps if not s.skip]
    data = {"schema": BOOT_SCHEMA, "stopped": booted.stopped, "accel": booted.accel,
            "qemu": booted.qemu, "qemu_argv": booted.qemu_argv,
            "wall_seconds": booted.wall_seconds,
            "steps": [{"name": s.name, "argv": list(s.argv), "side": s.side,
                       "ran": asdict(r) if r is not None else None}
                      for s, r in zip(runnable, booted.ran, strict=False)]}
    return write_atomically(path, json.dumps(data, indent=1) + "\n")


def read_booted(path: Path, console_log: Path) -> tuple[list[Step], Booted]:
    """A boot.json and its console log, back as the runnable steps and what they gave."""
    try:
        data = json.loads(path.read_text())
        if data.get("schema") != BOOT_SCHEMA:
            raise ResultsError(f"{path}: boot.json schema {data.get('schema')!r}, this "
                               f"watchbench reads {BOOT_SCHEMA}")
        steps = [Step(s["name"], tuple(s["argv"]), s["side"]) for s in data["steps"]]
        ran = [Ran(**{**r, "output_console": tuple(r["output_console"])}) if r else None
               for r in (s["ran"] for s in data["steps"])]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResultsError(f"{path} is not a readable boot.json: {exc}",
                           hint="run the check again") from exc
    lines = console_log.read_text(errors="replace").splitlines()
    return steps, Booted(ran, splats(lines), data["stopped"], console_log, data["accel"],
                         data["qemu_argv"], data["wall_seconds"], data["qemu"])


def by_step(steps: list[Step], ran: list[Ran | None]) -> list[Ran | None]:
    """``ran`` (one per runnable step, as the boot gave it back) laid out one per step of
    ``steps``: None for a skipped step, and for a step the guest never reached."""
    runnable = iter(ran)
    return [None if s.skip else next(runnable, None) for s in steps]


def running_test(ran: Ran, console_line: int, at_end: bool = False) -> str:
    """The test whose result had not yet arrived when the console printed ``console_line``
    (1-based): the first result line read after it; else, in words, where the step was.
    ``at_end``: the step prints its results only when it ends (RESULTS_AT_END)."""
    if at_end:
        ended = ran.console_end is not None and console_line > ran.console_end
        return "(after it ended)" if ended else "(while it ran)"
    results = 0
    for line, seen in zip(ran.output, ran.output_console, strict=False):
        match = ktap.RESULT.match(line)
        if match and seen >= console_line:
            return match[3].strip() or f"test {match[2]}"
        results += bool(match)
    if ran.console_end is not None and console_line > ran.console_end:
        return "(after it ended)"
    return "(after its last result)" if results else "(before its first result)"


def owner(steps: list[Step], ran: list[Ran | None], console_line: int) -> int | None:
    """Index of the step a console line belongs to: the last one begun before it (work a
    step leaves behind, like RCU callbacks, shows before the next begins). None: boot."""
    found = None
    for index, (step, result) in enumerate(zip(steps, ran, strict=True)):
        if step.skip or result is None:
            continue
        if result.console_begin < console_line:
            found = index
    return found


def judge(steps: list[Step], ran: list[Ran | None], incidents: list[Incident],
          stopped: str = "") -> tuple[list[Part], list[Finding]]:
    """Parts (one per step) and findings. ``ran[i]`` None: the step never ran (the guest
    stopped first, ``stopped`` says how)."""
    findings: list[Finding] = []
    per_step: dict[int | None, list[Finding]] = {}
    for incident in incidents:
        index = owner(steps, ran, incident.line_number)
        where = steps[index].name if index is not None else "boot"
        result = ran[index] if index is not None else None
        test = (running_test(result, incident.line_number, where in RESULTS_AT_END)
                if result else "-")
        per_step.setdefault(index, []).append(
            Finding(where, test, f"kernel {incident.kind}: "
                    f"{console.strip_timestamp(incident.line)}", incident.excerpt,
                    FindingKind.SPLAT))
    per_step = {index: collapse(found) for index, found in per_step.items()}
    findings += per_step.get(None, [])
    parts: list[Part] = []
    for index, (step, result) in enumerate(zip(steps, ran, strict=True)):
        if step.skip:
            parts.append(Part(step.name, ktap.Report(), Outcome.SKIP, (step.skip,)))
            continue
        mine = list(per_step.get(index, []))
        if step.broken or result is None:
            mine.append(Finding(step.name, "-", step.broken or
                                f"not run: {stopped or 'the guest stopped'}",
                                kind=FindingKind.BROKEN if step.broken else FindingKind.NOT_RUN))
            parts.append(Part(step.name, ktap.Report(), Outcome.FAIL,
                              tuple(f.described() for f in mine)))
            findings += mine
            continue
        report = ktap.parse(result.output)
        mine += _step_findings(step, result, report, stopped)
        outcome = (Outcome.FAIL if mine else Outcome.SKIP if report.skip_all
                   else Outcome.PASS)
        parts.append(Part(step.name, report, outcome,
                          tuple(f"{f.test}: {f.described()}" for f in mine)
                          or ((report.skip_all,) if report.skip_all else ())))
        findings += mine
    if stopped and all(r is not None and r.returncode is not None
                       for s, r in zip(steps, ran, strict=True) if not s.skip):
        # every step had finished: the guest hung or died on its way out
        findings.append(Finding("boot", "-", f"after the last step: {stopped}"))
    return parts, findings


def _step_findings(step: Step, result: Ran, report: ktap.Report,
                   stopped: str) -> list[Finding]:
    """What is wrong with one step that ran: its failed tests, and a report or exit code
    that does not add up."""
    tail = "\n".join(result.output[-15:])
    out = [Finding(step.name, case.name, "not ok", "\n".join(case.diagnostics),
                   FindingKind.FAILED_TEST) for case in report.failed]
    if result.returncode is None:
        out.append(Finding(step.name, "-", f"did not finish: {stopped or 'no exit code'}",
                           tail))
    elif not report.header:
        out.append(Finding(step.name, "-", f"exit {result.returncode} without a KTAP report",
                           tail))
    elif report.skip_all and step.name not in CLIENTS:
        out.append(Finding(step.name, "-", f"skipped everything on the debug kernel: "
                           f"{report.skip_all}", tail))
    elif not report.skip_all and not report.complete:
        out.append(Finding(step.name, "-", f"report cut short: {len(report.cases)} of "
                           f"{report.planned} results", tail))
    elif result.returncode != 0 and not report.failed:
        out.append(Finding(step.name, "-", f"exit {result.returncode} with every test ok",
                           tail))
    return out
