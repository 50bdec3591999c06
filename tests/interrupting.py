"""Killing a real watchbench process at a real point, for the interruption tests.

A point is real when the process is really there: git held inside one of its own hooks
(installed through git's GIT_CONFIG_* environment, so nothing in the tree changes), a
make or QEMU process found in /proc, or a line the command printed.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchbench.host.git import Git
from watchbench.host.runner import default_runner
from watchbench.kernel.series import SERIES_FILE
from watchbench.kernel.trees import BASE_TAG

ROOT = Path(__file__).resolve().parents[1]
INV = [sys.executable, "-m", "invoke", "-r", str(ROOT)]

HOOK = """#!/bin/sh
# Lets the first call through (unless WB_TEST_HOLD_FIRST is set) and holds the next one.
if [ -e "$WB_TEST_MARK/first" ] || [ -n "$WB_TEST_HOLD_FIRST" ]; then
    echo $$ > "$WB_TEST_MARK/held.tmp" && mv "$WB_TEST_MARK/held.tmp" "$WB_TEST_MARK/held"
    exec sleep 60
fi
touch "$WB_TEST_MARK/first"
"""


@dataclass
class GitHold:
    """A git hook that holds git at a real point until ``release``."""

    mark: Path
    env: dict[str, str]

    @property
    def held(self) -> bool:
        return (self.mark / "held").exists()

    def release(self) -> None:
        """Kill the hook (its sleep belongs to git, which may be gone already)."""
        if self.held:
            try:
                os.kill(int((self.mark / "held").read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def git_hold(tmp_path: Path, hook: str, hold_first: bool = False) -> GitHold:
    """Hold git in ``hook`` (the second call of it, or the first with ``hold_first``)."""
    hooks, mark = tmp_path / f"hooks-{hook}", tmp_path / f"mark-{hook}"
    hooks.mkdir()
    mark.mkdir()
    (hooks / hook).write_text(HOOK)
    (hooks / hook).chmod(0o755)
    env = {"WB_TEST_MARK": str(mark), "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": str(hooks)}
    if hold_first:
        env["WB_TEST_HOLD_FIRST"] = "1"
    return GitHold(mark, env)


def mini_tarball(path: Path, extra_files: int = 0) -> Path:
    """A tarball with the shape of a kernel tree (top-level Makefile and Kconfig)."""
    files = {"Makefile": "all:\n", "Kconfig": "mainmenu \"mini\"\n",
             "kernel/watch_queue.c": "".join(f"int line{i};\n" for i in range(60))}
    files.update({f"drivers/d{i}.c": f"int d{i};\n" for i in range(extra_files)})
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"mini/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def mini_series(src: Path, out: Path, patches: int = 3) -> Path:
    """A series of ``patches`` patches to kernel/watch_queue.c of a mini tree, as a series
    directory at ``out``; the tree is left at its base."""
    git = Git(src)
    source = src / "kernel" / "watch_queue.c"
    for i in range(patches):
        source.write_text(source.read_text().replace(f"int line{i * 20};", f"long line{i * 20};"))
        git("commit", "-q", "-am", f"watch_queue: patch {i + 1}")
    git("format-patch", "-q", "-o", str(out), f"{BASE_TAG}..HEAD")
    (out / SERIES_FILE).write_text("".join(p.name + "\n" for p in sorted(out.glob("*.patch"))))
    git("reset", "-q", "--hard", BASE_TAG)
    return out


def processes(needle: str) -> list[int]:
    """Pids of live processes whose command line contains ``needle``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle.encode() in cmdline and state != "Z" and int(pid) != os.getpid():
            found.append(int(pid))
    return found


def gone(needle: str, within: float = 10.0) -> bool:
    """True once no process matches ``needle`` (waiting up to ``within`` seconds)."""
    deadline = time.monotonic() + within
    while processes(needle):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@dataclass
class Outcome:
    returncode: int
    lines: list[str]
    pid: int = 0  # of the command, which names its boot directories (vm.session.boot_dir)

    def tail(self) -> str:
        return "\n".join(self.lines[-25:])


def interrupt(argv: list[str], env: dict[str, str], ready: Callable[[list[str]], bool],
              sig: signal.Signals, *, cwd: Path = ROOT, timeout: float = 600,
              after: Callable[[], None] = lambda: None) -> Outcome:
    """Run ``argv``; once ``ready(lines so far)``, send ``sig`` to that process alone (as a
    Ctrl-C, or the OOM killer, would); ``after`` runs once it has exited (release holds).
    Fails if the command ends before it was ready."""
    lines: list[str] = []
    with default_runner.spawn(argv, cwd=cwd, env=env) as proc:
        for line in proc.lines():
            if line is not None:
                lines.append(line)
            if ready(lines):
                os.kill(proc.pid, sig)
                break
            if proc.popen.poll() is not None and line is None:
                raise AssertionError("ended before the point to interrupt it:\n"
                                     + "\n".join(lines[-25:]))
            assert time.monotonic() - proc.started_at < timeout, lines[-25:]
        rc, pid = proc.wait(timeout=120), proc.pid
        after()
        deadline = time.monotonic() + 10
        for line in proc.lines(poll=0.1):
            if line is not None:
                lines.append(line)
            if time.monotonic() > deadline:
                break
    return Outcome(rc, lines, pid)


def killed_as(outcome: Outcome, sig: signal.Signals) -> bool:
    """SIGINT: watchbench's own exit (130, saying so); SIGKILL: killed, no last word."""
    if sig == signal.SIGINT:
        return outcome.returncode == 130 and "interrupted" in outcome.lines
    return outcome.returncode == -signal.SIGKILL


def run(argv: list[str], env: dict[str, str], timeout: float = 900) -> Outcome:
    done = default_runner.run(argv, cwd=ROOT, env=env, check=False, timeout=timeout)
    return Outcome(done.returncode, (done.stdout + done.stderr).splitlines())
