"""`./wb check`: does the candidate still keep the watch_queue API's promises? One boot.

The candidate (base + our bench series + the series under test: ``kernel.variant.stack``,
the same kernel ``ci`` measures) is built with the debug fragments (settings
``check.fragments``: KASAN, lockdep, KFENCE, kmemleak, fault injection) and booted once,
under TCG or KVM but never icount (the race stress needs vCPUs that really run side by
side). The boot runs the steps of ``suite.check.plan``: our conformance suite, the fault
pass, the race stress, keyutils' own client and test suite and the tree's own sample;
``suite.check.judge`` turns what came back into one verdict.

Exit codes: 0 every step passed (a client that could not be had is a skip with its
reason); 4 a correctness failure: a test failed, the kernel printed a splat (KASAN,
KFENCE, lockdep, BUG, WARNING), kmemleak found a leak, or the guest hung or died during a
step; 2 infrastructure: the series does not apply, the configuration or build fails, QEMU
cannot start.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from watchbench.errors import InputError
from watchbench.flows.kernels import KernelSource
from watchbench.guest import clients
from watchbench.host import sandbox
from watchbench.host.files import write_atomically
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel import decode
from watchbench.kernel.build import Kernel
from watchbench.kernel.trees import Tree
from watchbench.kernel.variant import composing, stack
from watchbench.report import correctness
from watchbench.results import ktap
from watchbench.settings import CheckSettings, Settings, kernel_words
from watchbench.suite.check import (
    Booted,
    Finding,
    Ran,
    Step,
    by_step,
    judge,
    plan,
    splats,
    write_booted,
)
from watchbench.suite.check_steps import STEPS
from watchbench.suite.provenance import booted_on, timestamp
from watchbench.suite.run import normalized_argv
from watchbench.vm.accel import AUTO
from watchbench.vm.boot import prepare
from watchbench.vm.errors import GuestError
from watchbench.vm.qemu import Accel
from watchbench.vm.session import CommandResult, qemu_version

EXIT_OK, EXIT_INFRA, EXIT_CORRECTNESS = 0, 2, 4
ACCELS = (AUTO, Accel.TCG, Accel.KVM)  # never icount: its vCPUs take turns
# KASAN reports every bug, not only a boot's first: a later step's own bug is named too.
APPEND = ("kasan_multi_shot",)
MAX_STRESS_SECONDS = 86400  # what userspace/wq-stress.c accepts
CHECK_DIR = "check"  # under the report directory: check.ktap, junit.xml, summary.md, check.json
BOOT_FILE = "boot.json"  # what the boot gave back (suite.check.write_booted), beside them


@dataclass
class CheckOptions:
    """What to check and how; the defaults are ``settings.CheckSettings``'s."""

    series: str = ""
    stress_seconds: int = CheckSettings.stress_seconds
    accel: str = CheckSettings.accel
    only: frozenset[str] | None = None  # these steps of suite.check_steps.STEPS (None: all)
    out: Path = Path("reports")
    wait: bool = True  # for a kernel tree another command is changing (False: fail at once)
    tree: str | None = None
    base: str | None = None
    tarball: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, series: str, **given: object) -> CheckOptions:
        options = cls(series=series, stress_seconds=settings.check.stress_seconds,
                      accel=settings.check.accel, out=settings.reports_dir)
        for name, value in given.items():
            if value is not None:
                setattr(options, name, value)
        return options

    def validate(self) -> None:
        """Refuse bad options before anything is built."""
        if self.accel == Accel.ICOUNT:
            raise InputError("./wb check does not run under icount: its CPUs take turns on "
                             "one host thread, so the race stress would race nothing",
                             hint="leave --accel out, or ./wb check --accel tcg (or kvm "
                                  "where it works)")
        if self.accel not in ACCELS:
            raise InputError(f"--accel {self.accel!r}: not an accelerator the check runs under",
                             hint=f"use one of {', '.join(ACCELS)}")
        if not 1 <= self.stress_seconds <= MAX_STRESS_SECONDS:
            raise InputError(f"--stress-seconds {self.stress_seconds}: give 1 to "
                             f"{MAX_STRESS_SECONDS} (a day; wq-stress takes no more)")
        unknown = sorted(set(self.only or ()) - set(STEPS))
        if unknown:
            raise InputError(f"--only {','.join(unknown)}: no such step",
                             hint=f"the steps: {', '.join(STEPS)}")


# One check boot (``boot_steps``; replayed from recorded boots in the unit tests).
BootFn = Callable[[Settings, Kernel, list[Step], str, float, Runner, Progress], Booted]


class DecodeFn(Protocol):
    """Findings' evidence to file:line (``kernel.decode.decode``; a fake in tests)."""

    def __call__(self, kernel: Kernel, texts: list[str], *, sandboxed: bool,
                 runner: Runner) -> list[decode.Decoded]: ...


# The clients for a kernel, each a path, the reason it is missing or why the candidate
# could not make it (``find_clients``).
ClientsFn = Callable[[Settings, Tree, Kernel, Runner],
                     tuple[Path | str | clients.Broken, Path | str]]


@dataclass
class CheckResult:
    parts: list[ktap.Part]
    findings: list[Finding]
    steps: list[Step]
    kernel: Kernel
    booted: Booted
    ktap: Path
    junit: Path
    summary: Path
    record: Path
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.findings

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.passed else EXIT_CORRECTNESS

    @property
    def step_seconds(self) -> dict[str, float | None]:
        """How long each step that ran took in the guest."""
        return {s.name: r.seconds for s, r in zip(self.steps, by_step(self.steps,
                                                                       self.booted.ran),
                                                    strict=True) if r}

    @property
    def line(self) -> str:
        """The verdict in one sentence."""
        return correctness.verdict_line(self.parts, self.findings, self.exit_code,
                                        self.booted.accel)


def _ran(result: CommandResult) -> Ran | None:
    if result.guest_start <= 0 and result.returncode is None and not result.output:
        return None  # its WB-BEGIN never came
    seconds = (result.guest_end - result.guest_start
               if result.returncode is not None and result.guest_end else None)
    return Ran(list(result.output), result.returncode, result.console_begin,
               tuple(result.output_console), result.console_end, seconds)


def boot_steps(settings: Settings, kernel: Kernel, steps: list[Step], accel: str,
               timeout: float, runner: Runner = default_runner,
               progress: Progress | None = None) -> Booted:
    """Boot ``kernel`` once and run the steps that are not skipped. Console incidents are
    kept for ``judge``; a guest that hangs or dies mid-step is returned as such (with what
    each step printed so far), since on a candidate that is a finding, not an accident."""
    progress = progress or Silent()
    prepared = prepare(settings, accel, kernel, runner, progress, judge_probe=False)
    guest = prepared.guest
    if guest.accel == Accel.ICOUNT:
        raise InputError("the check boot resolved to icount, which runs its CPUs in turn",
                         hint="set check.accel to auto, tcg or kvm")
    runnable = [s for s in steps if not s.skip]
    counts = [-1] * len(runnable)  # -1: no line yet

    def seen(index: int, line: str) -> None:
        if counts[index] < 0:
            counts[index] = 0
            progress.step(f"step {index + 1}/{len(runnable)}: {runnable[index].name}")
        if ktap.RESULT.match(line):  # a header or a note is not progress
            counts[index] += 1
            progress.update(f"{runnable[index].name}: {counts[index]} results")

    progress.step(f"check boot on {kernel.release} [{guest.accel}]: "
                  f"{', '.join(s.name for s in runnable)}")
    start = time.monotonic()
    commands = [s.command() for s in runnable]
    argv = normalized_argv(guest.spec(Path("WORK"), Path("RESULTS"),
                                      any(s.side == "host" for s in runnable), APPEND, commands))
    try:
        result = guest.run(commands, timeout=timeout, on_output=seen,
                           judge=False, boot_limit=settings.qemu.boot_timeout,
                           append=APPEND)
    except GuestError as exc:
        if exc.commands is None:  # not a guest that stopped: QEMU itself failed
            raise
        return Booted([_ran(r) for r in exc.commands], splats(exc.console or []),
                      exc.message.splitlines()[0], exc.log, guest.accel, argv,
                      round(time.monotonic() - start, 1), qemu_version(runner))
    return Booted([_ran(r) for r in result.commands], splats(result.console), "",
                  result.console_log, guest.accel, argv, result.wall_seconds,
                  qemu_version(runner))


def find_clients(settings: Settings, tree: Tree, kernel: Kernel, runner: Runner = default_runner
                 ) -> tuple[Path | str | clients.Broken, Path | str]:
    """The tree's watch_test sample (built while the tree stands at ``kernel``) and
    keyutils' test suite; what cannot be had is the reason why (a skip, never a pass)."""
    sample = clients.watch_test(settings, tree, kernel, runner)
    suite = clients.keyutils_tests(settings, runner)
    return (sample.reason if isinstance(sample, clients.Missing) else sample,
            suite.reason if isinstance(suite, clients.Missing) else suite)


def decode_findings(settings: Settings, kernel: Kernel, findings: list[Finding],
                    runner: Runner, progress: Progress,
                    decoder: DecodeFn = decode.decode) -> list[Finding]:
    """The findings with their stack traces decoded to file:line by the tree's own
    decode_stacktrace.sh (in the build sandbox), or the reason each stays raw. Best effort:
    the findings are the same ones, decoded or not."""
    texts = [f.evidence for f in findings]
    count = sum(map(decode.has_frames, texts))
    if not count:
        return findings
    progress.step(f"decoding {count} stack trace{'s' if count > 1 else ''} with the "
                  "tree's decode_stacktrace.sh")
    if not settings.sandbox and decode.cannot(kernel) is None:
        progress.step(sandbox.off_warning())
    done = decoder(kernel, texts, sandboxed=settings.sandbox, runner=runner)
    return [replace(f, decoded=d.text, not_decoded=d.reason())
            for f, d in zip(findings, done, strict=True)]


def compose(settings: Settings, options: CheckOptions, runner: Runner, progress: Progress,
            kernels: KernelSource | None,
            get_clients: ClientsFn) -> tuple[Kernel, Path | str | clients.Broken, Path | str]:
    """The candidate's debug kernel and its clients. The tree and the active tree are put
    back as they were."""
    fragments = [*settings.fragments, *settings.check.fragments]
    with composing(settings, kernels, tree=options.tree, base=options.base,
                   tarball=options.tarball, runner=runner, progress=progress,
                   wait=options.wait, purpose="check") as source:
        series = stack(settings, options.series)
        progress.step(f"debug kernel: {series.name if series else 'base'} with "
                      f"{', '.join(fragments)}")
        kernel = source.kernel(series, fragments)
        sample, suite = get_clients(settings, source.tree, kernel, runner)
    return kernel, sample, suite


def run_check(settings: Settings, options: CheckOptions, runner: Runner = default_runner,
              progress: Progress | None = None, kernels: KernelSource | None = None,
              boot: BootFn = boot_steps, get_clients: ClientsFn = find_clients,
              decoder: DecodeFn = decode.decode) -> CheckResult:
    """Build the candidate's debug kernel, boot it through the checks, judge, decode the
    findings' traces, write the files (KTAP, JUnit, summary, the record with its
    provenance). ``kernels``, ``boot``, ``get_clients`` and ``decoder`` are the seams the
    fast tests fill."""
    progress = progress or Silent()
    options.validate()
    start = time.monotonic()
    kernel, sample, suite = compose(settings, options, runner, progress, kernels, get_clients)
    steps = plan(options.stress_seconds, sample, suite, settings.check.keyutils_tests,
                 options.only)
    # The boot's deadline: booting, then every step's own limit (suite.check_steps.TABLE).
    deadline = settings.qemu.boot_timeout + sum(s.limit or 0 for s in steps if not s.skip)
    booted = boot(settings, kernel, steps, options.accel, deadline, runner, progress)
    parts, findings = judge(steps, by_step(steps, booted.ran), booted.incidents,
                            booted.stopped)
    findings = decode_findings(settings, kernel, findings, runner, progress, decoder)
    out = options.out / CHECK_DIR
    out.mkdir(parents=True, exist_ok=True)
    write_booted(out / BOOT_FILE, steps, booted)  # to judge again, or replay in a test
    if booted.console_log is not None and booted.console_log.exists():
        shutil.copyfile(booted.console_log, out / "console.log")  # boots/ is pruned
        booted = replace(booted, console_log=out / "console.log")
    seconds = round(time.monotonic() - start, 1)
    result = CheckResult(parts, findings, steps, kernel, booted, out / "check.ktap",
                         out / "junit.xml", out / "summary.md", out / "check.json", seconds)
    write_atomically(result.ktap, ktap.render(parts))
    write_atomically(result.junit, correctness.junit_xml(parts, findings, kernel.release))
    record = provenance(result, options, settings)
    write_atomically(result.summary, correctness.markdown(result.line, parts, findings, record))
    write_atomically(result.record, json.dumps(record, indent=1) + "\n")
    progress.done(f"check: {'PASS' if result.passed else 'FAIL'} in {seconds:.0f} s")
    return result


def provenance(result: CheckResult, options: CheckOptions,
               settings: Settings) -> dict[str, object]:
    """What was checked, how and where: every check result carries it (check.json),
    with the user's extra boot parameters and kconfig additions (settings kernel_args,
    kconfig_add) as the boot and the build had them. The fields it shares with a run's
    manifest are ``suite.provenance``'s; a check has no argv hash (it is compared with
    nothing)."""
    b = result.booted
    shared = booted_on(result.kernel, b.accel, b.qemu, b.qemu_argv,
                       kconfig_add=settings.kconfig_add,
                       kernel_args=kernel_words(settings.kernel_args))
    del shared["qemu_argv_hash"]
    return {
        "timestamp": timestamp(),
        "verdict": "pass" if result.passed else "fail",
        "exit_code": result.exit_code,
        **shared,
        "stress_seconds": options.stress_seconds,
        "console_log": str(b.console_log) if b.console_log else None,
        "boot_seconds": b.wall_seconds, "seconds": result.seconds,
        "steps": [{"name": p.name, "outcome": p.outcome, "reasons": list(p.reasons)}
                  for p in result.parts],
        "findings": [{"step": f.step, "test": f.test, "what": f.what, "count": f.count,
                      "evidence": f.evidence, "decoded": f.decoded,
                      "not_decoded": f.not_decoded}
                     for f in result.findings],
    }
