"""Locks between real processes: who holds it is named, a killed holder leaves no stale
lock, a waiter gets it when the holder is done, and a process re-enters its own lock."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from watchbench.host.lock import Lock, LockBusy, _short
from watchbench.host.progress import Progress

CTX = multiprocessing.get_context("fork")


def _hold(path: str, ready, seconds: float) -> None:
    with Lock(Path(path), "the test tree"):
        ready.set()
        time.sleep(seconds)


def _holder(tmp_path: Path, seconds: float):
    ready = CTX.Event()
    child = CTX.Process(target=_hold, args=(str(tmp_path / "lock"), ready, seconds))
    child.start()
    assert ready.wait(10), "the child never took the lock"
    return child


def test_no_wait_names_the_holder_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    child = _holder(tmp_path, 60)
    try:
        with pytest.raises(LockBusy) as err:
            with Lock(tmp_path / "lock", "the test tree", wait=False):
                pass
        assert f"the test tree is in use by pid {child.pid} (" in err.value.message
        assert "since" in err.value.message and "--no-wait" in err.value.hint
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    with Lock(tmp_path / "lock", "the test tree", wait=False):  # recovered at once
        assert f'"pid": {os.getpid()}' in (tmp_path / "lock").read_text()


class _Lines(Progress):
    def __init__(self):
        super().__init__("test")
        self.lines: list[str] = []

    def step(self, message):
        self.lines.append(message)


def test_a_waiter_says_whom_it_waits_for_and_gets_the_lock_after(tmp_path):
    child = _holder(tmp_path, 1.0)
    progress, start = _Lines(), time.monotonic()
    with Lock(tmp_path / "lock", "the test tree", progress=progress):
        waited = time.monotonic() - start
    child.join()
    assert 0.3 < waited < 30
    assert progress.lines == [f"waiting for the test tree: in use by pid {child.pid} "
                              + progress.lines[0].split(f"pid {child.pid} ", 1)[1]]


def test_a_process_re_enters_its_own_lock(tmp_path):
    with Lock(tmp_path / "lock", "t", wait=False):
        with Lock(tmp_path / "lock", "t", wait=False):
            pass
        child_saw = CTX.Queue()
        probe = CTX.Process(target=_try, args=(str(tmp_path / "lock"), child_saw))
        probe.start()
        probe.join()
        assert child_saw.get(timeout=5) == "busy"  # still held after the inner exit
    assert (tmp_path / "lock").read_text() == ""  # released, holder note cleared


def _try(path: str, out) -> None:
    try:
        with Lock(Path(path), "t", wait=False):
            out.put("free")
    except LockBusy:
        out.put("busy")


def _hold_and_start_a_straggler(path: str, pidfile: str) -> None:
    """Holds the lock and starts, through the Runner, a child that ignores the SIGTERM its
    parent's death sends (as a compiler under a killed make's shell would run on)."""
    from watchbench.host.runner import Runner

    with Lock(Path(path), "the test tree"):
        script = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  f"open({pidfile!r}, 'w').write(str(os.getpid())); time.sleep(3); "
                  f"open({pidfile!r} + '.done', 'w')")
        with Runner().spawn(["python3", "-c", script]) as proc:
            proc.wait()


def test_the_lock_lasts_until_the_last_process_under_it_is_gone(tmp_path):
    pidfile = tmp_path / "straggler.pid"
    child = CTX.Process(target=_hold_and_start_a_straggler,
                        args=(str(tmp_path / "lock"), str(pidfile)))
    child.start()
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text()):
        assert time.monotonic() < deadline, "the straggler never started"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)  # the holder dies; its straggler runs on
    child.join(10)
    with pytest.raises(LockBusy):
        with Lock(tmp_path / "lock", "the test tree", wait=False):
            pass
    start = time.monotonic()
    with Lock(tmp_path / "lock", "the test tree"):  # free once the straggler has finished
        assert time.monotonic() - start < 10
        # its last act before exiting (it may still be exiting now: files closed, not yet
        # a zombie, so its /proc state cannot tell)
        assert Path(str(pidfile) + ".done").exists(), "free while its straggler still ran"


@pytest.mark.parametrize("command,shown", [
    ("/w/.venv/bin/python -m watchbench.cli.program ci --series slow-post", "ci --series slow-post"),
    ("/usr/bin/python3 -m invoke -r /work/main build --force", "build --force"),
    ("/w/.venv/bin/wb bisect --good v1 --bad v2 --benchmark kernel-post --params x",
     "bisect --good v1 --bad v2..."),
    ("", "?"),
])
def test_the_holder_is_named_by_its_command_in_a_few_words(command, shown):
    """The waiting line names the holder's task, not the interpreter's path (80 columns)."""
    assert _short(command) == shown


def _wait_then_hold(path: str, started, holding, seconds: float) -> None:
    started.set()
    with Lock(Path(path), "the kernel build"):
        holding.set()
        time.sleep(seconds)


def test_a_lock_file_removed_by_its_holder_is_taken_anew_by_a_waiter(tmp_path):
    """``wb gc`` removes a kernel's build lock with the kernel, while it holds it. A
    command that opened the old file and waited must not end up holding a file nobody
    else opens (two builds of one kernel at once): it takes the new one, and the next
    comer finds it busy."""
    from watchbench.host.lock import remove_held

    path = tmp_path / "k1.lock"
    started, holding = CTX.Event(), CTX.Event()
    with Lock(path, "the kernel build"):
        child = CTX.Process(target=_wait_then_hold, args=(str(path), started, holding, 30))
        child.start()
        assert started.wait(10)
        time.sleep(0.5)  # the child has opened the old file and waits on its flock
        remove_held(path)
        assert not path.exists()
    try:
        assert holding.wait(10), "the waiter never took the lock"
        assert path.exists()
        with pytest.raises(LockBusy, match=f"pid {child.pid} "):
            with Lock(path, "the kernel build", wait=False):
                pass
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    with pytest.raises(RuntimeError, match="not held"):
        remove_held(path)
