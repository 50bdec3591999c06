"""Exclusive locks between watchbench processes sharing one cache.

A lock is ``flock`` on a file: the kernel drops it when its holder exits or is killed,
so a stale lock is never left behind and nothing has to be cleaned up. The holder writes
its pid, command and start time into the file, so a command that waits, or one told not
to wait, says who holds the lock. Locks are reentrant within a process (a flow that
holds a tree's lock may call code that takes it again).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path
from typing import IO

from watchbench.errors import WatchbenchError
from watchbench.host.progress import Progress, Silent

_HELD: dict[Path, tuple[IO[str], int]] = {}  # path -> (open file, depth), this process
_INHERITED: list[IO[str]] = []  # a forked child's copies: kept open, not held


def _forget_in_child() -> None:
    """A forked child holds none of the locks. Its copies of the files stay open: closing
    them here would also close what subprocess is about to hand to the program it execs."""
    _INHERITED.extend(handle for handle, _ in _HELD.values())
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def held_fds() -> tuple[int, ...]:
    """The descriptors of the locks this process holds. Children get them (``host.runner``),
    so a lock lasts until the last process working under it is gone: a compiler orphaned by
    a killed ``inv`` keeps the tree locked until it has finished writing."""
    return tuple(handle.fileno() for handle, _ in _HELD.values())


class LockBusy(WatchbenchError):
    """Another watchbench command holds a lock this one was told not to wait for."""


def holder(path: Path) -> str:
    """Who holds ``path``, as its holder wrote it (or a plain note when unreadable)."""
    try:
        data = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        data = {}
    if not data:
        return "another process (it has not said which yet)"
    since = time.strftime("%H:%M:%S", time.localtime(data.get("since", 0)))
    return f"pid {data.get('pid')} ({_short(str(data.get('command', '?')))}) since {since}"


PROGRAMS = ("wb", "inv", "invoke", "watchbench.cli.program", "pytest")


def _short(command: str, width: int = 28) -> str:
    """The holder's command as a person knows it (``ci --series x``, not the interpreter's
    path and invoke's flags), cut to ``width`` so the waiting line fits 80 columns."""
    words = command.split()
    start = next((i + 1 for i, w in enumerate(words) if Path(w).name in PROGRAMS), 0)
    words = words[start:] or [Path(words[0]).name if words else "?"]
    if len(words) > 1 and words[0] == "-r":  # invoke's -r ROOT
        words = words[2:] or words
    text = " ".join(words)
    return text if len(text) <= width else text[:width - 3] + "..."


class Lock:
    """``with Lock(path, "the kernel tree X"):`` waits for the lock (or, with
    ``wait=False``, raises ``LockBusy`` naming the holder at once)."""

    def __init__(self, path: Path, what: str, *, wait: bool = True,
                 progress: Progress | None = None):
        self.path, self.what, self.wait = Path(path), what, wait
        self.progress = progress or Silent()

    def __enter__(self) -> Lock:
        key = Path(os.path.abspath(self.path))
        if key in _HELD:
            handle, depth = _HELD[key]
            _HELD[key] = (handle, depth + 1)
            self._key, self.first = key, False
            return self
        while True:
            handle = self._take()
            if _still_named(handle, self.path):
                break
            handle.close()  # removed (wb gc) while we waited: lock the file now there
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv)[:200],
                                 "since": time.time()}))
        handle.flush()
        _HELD[key] = (handle, 1)
        self._key, self.first = key, True  # taken now, not re-entered
        return self

    def _take(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held until __exit__
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(self.path)
            if not self.wait:
                handle.close()
                raise LockBusy(f"{self.what} is in use by {who}",
                               log=self.path,
                               hint="wait for it to finish, or run again without --no-wait "
                                    "to wait for it") from None
            self.progress.step(f"waiting for {self.what}: in use by {who}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    def __exit__(self, *exc: object) -> None:
        handle, depth = _HELD[self._key]
        if depth > 1:
            _HELD[self._key] = (handle, depth - 1)
            return
        del _HELD[self._key]
        handle.seek(0)
        handle.truncate()
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _still_named(handle: IO[str], path: Path) -> bool:
    """Whether the locked file is still the one at ``path``. A lock file may be removed
    by its holder (``remove_held``): whoever opened it before and waited got a lock on a
    file nobody else will open again, and must take the new one instead."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)


def remove_held(path: Path) -> None:
    """Remove the lock file at ``path``, which this process holds (``wb gc`` after removing
    what it guards). A command waiting on it then takes a fresh file (``_still_named``)."""
    key = Path(os.path.abspath(path))
    if key not in _HELD:
        raise RuntimeError(f"{path}: not held by this process")  # a caller's bug
    path.unlink(missing_ok=True)


def flocks_now() -> set[tuple[int, int, int]] | None:
    """(major, minor, inode) of every file a process holds a flock on, from /proc/locks;
    None when it cannot be read."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    found = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK":
            try:
                major, minor, inode = parts[5].split(":")
                found.add((int(major, 16), int(minor, 16), int(inode)))
            except ValueError:
                continue
    return found


def held_by(path: Path, flocks: set[tuple[int, int, int]] | None = None) -> dict | None:
    """Who holds the lock ``path`` now (what its holder wrote: pid, command, since; {} when
    it has not said yet), or None when nobody does: how ``wb gc`` tells what a running
    command is using. Read from /proc/locks (``flocks``: read once for many files), so it
    takes nothing; where that cannot be read, a shared lock tried for an instant."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    known = flocks_now() if flocks is None else flocks
    if known is not None:
        if (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino) not in known:
            return None
        return _holder_data(path)
    try:
        handle = open(path)  # noqa: SIM115 - closed below
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_data(path)
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _holder_data(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        data = {}
    return data if isinstance(data, dict) else {}
