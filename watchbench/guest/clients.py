"""The real clients `inv check` runs in the guest, all downloaded or built, never kept here:
keyutils' own test suite (Debian's source package, pinned to the installed keyutils) and
the kernel tree's own ``samples/watch_queue/watch_test.c``, built from the tree under test.

Each is found or made on the host before the boot; what cannot be had is a ``Missing``
with its reason, which the check reports as a skip (never as a pass).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import CommandError, WatchbenchError
from watchbench.host.debsrc import extract_member, fetch_source, installed_source
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel.build import Kernel
from watchbench.kernel.kmake import KernelMake
from watchbench.kernel.trees import Tree
from watchbench.settings import Settings

KEYCTL = Path("/usr/bin/keyctl")
WATCH_TEST = Path("samples/watch_queue/watch_test.c")


@dataclass(frozen=True)
class Missing:
    """A client that could not be had, and why (a skip's reason)."""

    reason: str


def keyctl(runner: Runner = default_runner) -> Path | Missing:
    """The host's keyctl (the guest runs the host's root): Debian's keyutils package."""
    if shutil.which("keyctl") is None:
        return Missing("keyctl is not installed on the host (Debian package keyutils; "
                       "./wb deps installs it)")
    return Path(shutil.which("keyctl") or KEYCTL)


def keyutils_tests(settings: Settings, runner: Runner = default_runner) -> Path | Missing:
    """keyutils' tests/ directory at the installed keyutils' source version (fetched once
    into the download cache)."""
    try:
        package, version = installed_source("keyutils", runner)
        into = (settings.cache_dir / "downloads" / "keyutils-tests" / version.replace(":", "%3a")
                / "tests")
        return extract_member(fetch_source(settings.cache_dir, package, version, runner),
                                 "tests", into, runner)
    except WatchbenchError as exc:
        return Missing(f"keyutils' test suite is not available: {exc.message}")


def watch_test(settings: Settings, tree: Tree, kernel: Kernel,
               runner: Runner = default_runner) -> Path | Missing:
    """The tree's watch_test sample, static, against the tree's own exported UAPI headers,
    kept beside the kernel it was built with (the tree must stand at that kernel)."""
    binary = kernel.dir / "watch_test"
    if binary.exists():
        return binary
    source = tree.src / WATCH_TEST
    if not source.is_file():
        return Missing(f"the tree has no {WATCH_TEST}")
    out = tree.root / "build" / kernel.config_hash
    log = kernel.dir / "watch_test.log"
    headers = KernelMake(tree.src, out, jobs=settings.job_count, runner=runner).headers(log)
    partial = binary.with_name(".watch_test.tmp")
    linebuf = settings.project_root / "userspace" / "check" / "linebuf.c"
    try:
        runner.run(["gcc", "-static", "-O2", "-I", str(headers), "-o", str(partial),
                    str(source), str(linebuf)], timeout=300, log=log)
    except CommandError:
        return Missing(f"{WATCH_TEST} does not build against the tree's headers (log {log})")
    partial.rename(binary)
    return binary
