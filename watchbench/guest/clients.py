"""The real clients `./wb check` runs in the guest, all downloaded or built, never kept here:
keyutils' own test suite (Debian's source package, pinned to the installed keyutils) and
the kernel tree's own ``samples/watch_queue/watch_test.c``, built from the tree under test.

Each is found or made on the host before the boot; what cannot be had is a ``Missing``
with its reason, which the check reports as a skip (never as a pass); a sample the tree
under test cannot build is ``Broken``, a finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import (
    BuildError,
    CommandError,
    InputError,
    SandboxViolation,
    WatchbenchError,
)
from watchbench.host.debsrc import installed_member
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel.build import Kernel, build_dir
from watchbench.kernel.kmake import KernelMake
from watchbench.kernel.trees import Tree
from watchbench.settings import Settings

WATCH_TEST = Path("samples/watch_queue/watch_test.c")


@dataclass(frozen=True)
class Missing:
    """A client that could not be had, and why (a skip's reason)."""

    reason: str


@dataclass(frozen=True)
class Broken:
    """A client the tree under test could not make (its own sample does not build against
    its own headers): the candidate broke its interface, a finding and never a skip."""

    reason: str


def keyutils_tests(settings: Settings, runner: Runner = default_runner) -> Path | Missing:
    """keyutils' tests/ directory at the installed keyutils' source version (fetched once
    into the download cache). A test named in settings check.keyutils_tests that it does
    not hold is a settings error, not a test failure."""
    try:
        tests, version = installed_member(settings.cache_dir, "keyutils", "tests",
                                          "keyutils-tests", runner)
    except WatchbenchError as exc:
        return Missing(f"keyutils' test suite is not available: {exc.message}")
    unknown = [t for t in settings.check.keyutils_tests if not (tests / t / "runtest.sh").is_file()]
    if unknown:
        raise InputError(f"setting check.keyutils_tests names {', '.join(unknown)}, which "
                         f"keyutils {version}'s test suite does not have",
                         hint=f"its tests are the directories holding runtest.sh under {tests}")
    return tests


def watch_test(settings: Settings, tree: Tree, kernel: Kernel,
               runner: Runner = default_runner) -> Path | Missing | Broken:
    """The tree's watch_test sample, static, against the tree's own exported UAPI headers,
    kept beside the kernel it was built with (the tree must stand at that kernel)."""
    binary = kernel.dir / "watch_test"
    if binary.exists():
        return binary
    source = tree.src / WATCH_TEST
    if not source.is_file():
        return Missing(f"the tree has no {WATCH_TEST}")
    log = kernel.dir / "watch_test.log"
    make = KernelMake(tree.src, build_dir(tree, kernel.config_hash), jobs=settings.job_count,
                      sandboxed=settings.sandbox, runner=runner)
    try:
        headers = make.headers(log)
    except SandboxViolation:
        raise  # the tree under test tried to reach the host: stopped, never a finding
    except BuildError:
        return Broken(f"the tree's UAPI headers do not export (`make headers`, log {log})")
    partial = binary.with_name(".watch_test.tmp")
    linebuf = settings.project_root / "userspace" / "check" / "linebuf.c"
    try:
        # The tree's own code, compiled in make's sandbox: an #include of a host file fails.
        make.compile(["gcc", "-static", "-O2", "-I", str(headers), "-o", str(partial),
                      str(source), str(linebuf)], reads=(linebuf.parent,),
                     writes=(kernel.dir,), timeout=300, log=log)
    except CommandError:
        return Broken(f"{WATCH_TEST} does not build against the tree's own headers (log {log})")
    partial.rename(binary)
    return binary
