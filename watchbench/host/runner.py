"""The one place that starts host processes.

Everything else builds argv lists and hands them here, so tests can swap in a
fake runner and every child process is started the same way: in its own
session (process group), killed as a group on timeout or Ctrl-C, with its
output optionally teed to a log file.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from watchbench.errors import CommandError, CommandTimeout
from watchbench.host.lock import held_fds


@dataclass
class Completed:
    """What a finished command left behind."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when the thread that started it dies.

    Children run in sessions of their own (so Ctrl-C and timeouts kill whole groups), which
    also means nothing kills them when ``inv`` itself is SIGKILLed: a guest would run on and
    a build would keep writing objects. SIGTERM, not SIGKILL, so that make deletes the
    targets it was writing and passes the signal on to its compilers. Raising it at once
    when the parent is already gone closes the race between fork and prctl.
    """

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
        _keep_niceness()

    return preexec


def _keep_niceness() -> None:
    """Carry the starting thread's niceness over to the child's new session.

    With the scheduler's autogroups on (most distributions), CPU is shared between
    sessions first and niceness only counts within one: a `make` started at nice 19 in a
    session of its own competes as an equal with every other session, so `nice wb build`
    (or a build in the background) took half the cores from the work it was meant to
    yield to. The session's autogroup gets the same niceness (only ever raised: lowering
    it needs privileges). Best effort: without autogroups there is nothing to do."""
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    if nice <= 0:
        return
    try:
        fd = os.open("/proc/self/autogroup", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, str(nice).encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def alive(pid: int | str) -> bool:
    """Whether a process of that id exists (a journal's or a partial download's owner)."""
    return str(pid).isdigit() and os.path.exists(f"/proc/{pid}")


def _merged_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    if env is None:
        return None
    merged = dict(os.environ)
    merged.update(env)
    return merged


def _kill_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM the child's whole process group, then SIGKILL what is left."""
    if proc.poll() is not None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # reap stragglers of a finished leader
        except (ProcessLookupError, PermissionError):
            pass
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


LINE_LIMIT = 1 << 20  # bytes of one output line at most (a longer one is cut in pieces)
_LIVE: set[Process] = set()  # spawned and not yet killed, in this process
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()  # kill_all: nothing new may start until resume


class Process:
    """A running child whose merged stdout/stderr is read line by line.

    Used as a context manager: leaving the block (normally, by exception or by
    KeyboardInterrupt) kills the whole process group, so nothing outlives it.
    """

    def __init__(self, popen: subprocess.Popen, log: IO[str] | None):
        self.popen = popen
        self._log = log
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.last_line = ""
        self.last_line_at = time.monotonic()
        self.started_at = time.monotonic()
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _read(self) -> None:
        assert self.popen.stdout is not None
        stdout = self.popen.stdout
        # A line is cut every LINE_LIMIT bytes: a child (a guest's console) that prints
        # without a newline cannot grow one line without bound.
        for raw in iter(lambda: stdout.readline(LINE_LIMIT), b""):
            line = raw.decode("utf-8", "replace")
            if self._log:
                self._log.write(line)
                self._log.flush()
            self._lines.put(line.rstrip("\r\n"))
        self._lines.put(None)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def write(self, data: bytes) -> None:
        """Send bytes to the child's stdin (when it was started with stdin=PIPE)."""
        assert self.popen.stdin is not None
        self.popen.stdin.write(data)
        self.popen.stdin.flush()

    def close_stdin(self) -> None:
        """Signal end of input (e.g. the last path for git hash-object --stdin-paths)."""
        assert self.popen.stdin is not None
        self.popen.stdin.close()

    def lines(self, poll: float = 0.2) -> Iterator[str | None]:
        """Yield output lines; yield None every ``poll`` s of silence so callers can check deadlines."""
        while True:
            try:
                line = self._lines.get(timeout=poll)
            except queue.Empty:
                yield None
                continue
            if line is None:
                return
            self.last_line = line
            self.last_line_at = time.monotonic()
            yield line

    def wait(self, timeout: float | None = None) -> int:
        rc = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return rc

    def kill(self) -> None:
        _kill_group(self.popen)
        self._reader.join(timeout=5)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        if self._log:
            self._log.close()


class Runner:
    """Starts host commands. Tests replace it with a fake that records argv."""

    def run(
        self,
        argv: Sequence[str | os.PathLike],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        input: str | bytes | None = None,
        timeout: float | None = None,
        check: bool = True,
        log: Path | None = None,
    ) -> Completed:
        """Run to completion capturing output; raise CommandError on non-zero when check."""
        args = [os.fspath(a) for a in argv]
        start = time.monotonic()
        text = not isinstance(input, bytes)
        try:
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                env=_merged_env(env),
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=text,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
                pass_fds=held_fds(),
            )
        except OSError as exc:
            raise CommandError(args, None, str(exc), log=log) from exc
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(proc)
            raise CommandTimeout(
                f"command killed after {timeout:.0f} s: {' '.join(args)}", log=log
            ) from exc
        except BaseException:
            _kill_group(proc)
            raise
        if not text:
            out = out.decode("utf-8", "replace")
            err = err.decode("utf-8", "replace")
        seconds = time.monotonic() - start
        if log:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(f"$ {' '.join(args)}\n{out}{err}")
        if check and proc.returncode != 0:
            raise CommandError(args, proc.returncode, out + err, log=log)
        return Completed(args, proc.returncode, out, err, seconds)

    def spawn(
        self,
        argv: Sequence[str | os.PathLike],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        stdin_pipe: bool = False,
    ) -> Process:
        """Start a long-running child (build, QEMU) whose output is read line by line."""
        args = [os.fspath(a) for a in argv]
        if _STOPPING.is_set():
            raise CommandError(args, None, "not started: this command is stopping", log=log)
        logf = None
        if log:
            log.parent.mkdir(parents=True, exist_ok=True)
            logf = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed by Process
        try:
            popen = subprocess.Popen(
                args,
                cwd=cwd,
                env=_merged_env(env),
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
                pass_fds=held_fds(),
            )
        except OSError as exc:
            if logf:
                logf.close()
            raise CommandError(args, None, str(exc), log=log) from exc
        return Process(popen, logf)

    def stream(
        self,
        argv: Sequence[str | os.PathLike],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        log: Path,
        on_line: Callable[[str], None] | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> Completed:
        """Run a long command, teeing output to ``log`` and feeding each line to ``on_line``;
        raise CommandError on non-zero when ``check``."""
        start = time.monotonic()
        with self.spawn(argv, cwd=cwd, env=env, log=log) as proc:
            for line in proc.lines():
                if timeout is not None and time.monotonic() - start > timeout:
                    raise CommandTimeout(
                        f"command killed after {timeout:.0f} s: {' '.join(map(str, argv))}",
                        log=log,
                    )
                if line is not None and on_line:
                    on_line(line)
            rc = proc.wait()
        out = log.read_text(encoding="utf-8", errors="replace")
        if rc != 0 and check:
            raise CommandError([os.fspath(a) for a in argv], rc, out, log=log)
        return Completed([os.fspath(a) for a in argv], rc, out, "", time.monotonic() - start)

    def kill_all(self) -> None:
        """Kill every child still running that ``spawn`` started, in any thread, and start
        no new one until ``resume``: a Ctrl-C seen by the main thread stops the boots that
        worker threads wait for, and the ones they were about to start."""
        _STOPPING.set()
        with _LIVE_LOCK:
            live = list(_LIVE)
        for proc in live:
            proc.kill()

    def resume(self) -> None:
        """Children may be started again (after ``kill_all``)."""
        _STOPPING.clear()

    def interactive(
        self, argv: Sequence[str | os.PathLike], *, cwd: Path | str | None = None
    ) -> int:
        """Run attached to the user's terminal (vm.shell); return the exit code."""
        return subprocess.call([os.fspath(a) for a in argv], cwd=cwd,
                               preexec_fn=_die_with_parent(os.getpid()))


default_runner = Runner()
