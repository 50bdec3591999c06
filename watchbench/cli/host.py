"""deps and test: the host tools the pipeline needs, and the project's own test suite."""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Any

from watchbench.cli import command
from watchbench.errors import DepsError
from watchbench.host.deps import PIPELINE, TESTS, ensure, missing
from watchbench.host.runner import default_runner
from watchbench.settings import PROJECT_ROOT, Settings


def check_or_install(install: bool, tests: bool) -> str:
    needs = PIPELINE + (TESTS if tests else ())
    if install:
        installed = ensure(needs)
        return f"host tools: installed {', '.join(installed)}" if installed else "host tools: all present"
    absent = missing(needs)
    if absent:
        raise DepsError(f"missing host packages: {', '.join(absent)}",
                        hint=f"apt-get install -y {' '.join(absent)}")
    return "host tools: all present"


@command
def deps(c: Any, check: bool, tests: bool) -> None:
    print(check_or_install(install=not check, tests=tests))


class Tier(StrEnum):
    """The suite's two tiers: ``fast`` needs no kernel (about a minute, its tests spread
    over the cores by pytest-xdist: ``fast_workers``), ``kernel`` builds and boots the
    real one in two workers, each on trees of its own (tests/conftest.py: the Debian
    tree's tests one after another; the gates, bisect and the check on worktrees of it
    beside them)."""

    FAST = "fast"
    KERNEL = "kernel"


MARKS = {Tier.FAST: "not kernel", Tier.KERNEL: "kernel"}
KERNEL_SPREAD = ("-n", "2", "--dist", "loadgroup")  # a worker per tree (tests/conftest.py)
COUNTED = ("passed", "failed", "errors", "skipped")
PYTEST_SUMMARY = re.compile(r"^=+ (.*) in [\d.]+s(?: \([\d:]+\))? =+$")
NO_TESTS = 5  # pytest's exit code when a tier selects nothing (-k)


def suite_cache(settings: Settings) -> Path:
    """The suite's own cache (tests/conftest.py), beside the real one and never it."""
    return Path(os.environ.get("WATCHBENCH_TEST_CACHE", f"{settings.cache_dir}-tests"))


def tier_env() -> dict[str, str]:
    """Bytecode is written, even where PYTHONDONTWRITEBYTECODE is set (as on our CI
    machines): pytest then keeps each test module's rewritten assertions, and the workers
    write watchbench's bytecode, which every later process reads instead of compiling
    again (an `inv` itself writes none: invoke turns writing off unless --write-pyc). It
    goes to __pycache__ beside the sources, which git ignores; a prefix elsewhere
    (PYTHONPYCACHEPREFIX) would make every process compile pandas and the rest again,
    which cost a cold run more than it saved. (The fast tier here: 108 s without; 105 s
    with, the first time, 98 s after.)"""
    return {"PYTHONDONTWRITEBYTECODE": ""}  # empty is unset, to Python


def fast_workers() -> int:
    """One worker more than the cores this process may use: the fast tier waits on
    subprocesses (Chromium, the interrupted `inv` runs, the lock and timeout tests) about
    a sixth of its time, which the extra worker fills. Measured on 2 cores, runs
    alternating: 77-88 s with 3 workers, 93-97 s with 2, 98-103 s with 4."""
    return len(os.sched_getaffinity(0)) + 1


def tier_argv(tier: Tier, k: str | None, args: str) -> list[str]:
    """pytest's arguments for one tier."""
    spread = ("-n", str(fast_workers())) if tier is Tier.FAST else KERNEL_SPREAD
    return ["-m", MARKS[tier], *spread, *(["-k", k] if k else []), *shlex.split(args)]


def counts(output: str) -> Counter[str]:
    """passed/failed/errors/skipped of pytest's closing line in ``output``."""
    found: Counter[str] = Counter()
    lines = [m[1] for m in map(PYTEST_SUMMARY.match, output.splitlines()) if m]
    for part in (lines[-1].split(", ") if lines else []):
        number, _, word = part.strip().partition(" ")
        word = "errors" if word == "error" else word
        if number.isdigit() and word in COUNTED:
            found[word] += int(number)
    return found


@command
def test(c: Any, k: str | None, fast: bool, args: str, keep_going: bool = False) -> int:
    """The fast tier, then (unless --fast, or the fast tier failed and not --keep-going)
    the kernel tier; one closing line with the whole suite's counts."""
    if not fast:
        print(check_or_install(install=True, tests=True))
    total: Counter[str] = Counter()
    code = 0
    for tier in (Tier.FAST,) if fast else (Tier.FAST, Tier.KERNEL):
        if code and not keep_going:
            print(f"wb test: the {tier} tier is not run: the fast tier failed "
                  f"(`./wb test --keep-going` runs it anyway)")
            break
        argv = [sys.executable, "-m", "pytest", *tier_argv(tier, k, args)]
        print(f"wb test: {tier} tier: {shlex.join(argv[1:])}", flush=True)
        log = Path(tempfile.gettempdir()) / f"watchbench-test-{tier}-{os.getpid()}.log"
        try:  # the output is echoed as it comes; the file only buffers it for the counts
            done = default_runner.stream(argv, log=log, on_line=_echo, check=False,
                                         cwd=PROJECT_ROOT, env=tier_env())
        finally:
            log.unlink(missing_ok=True)
        total += counts(done.stdout)
        if done.returncode not in (0, NO_TESTS):
            code = code or done.returncode
    if not total["passed"] and not total["failed"] and not total["errors"]:
        return code or NO_TESTS  # nothing ran: never a pass
    print(f"{total['passed']} passed, {total['failed'] + total['errors']} failed"
          + (f", {total['skipped']} skipped" if total["skipped"] else ""))
    return code


def _echo(line: str) -> None:
    print(line, flush=True)

