"""What a command is about to do to a kernel tree, written down before it starts.

``patches.apply``, ``patches.reset`` and every flow of ``kernel.variant.Composer`` (ci,
bisect, build) move a tree's commit and rewrite its state file. Killed in the middle
(SIGKILL, an OOM kill, a lost CI runner), such a command leaves the tree mid-``git am`` or
mid-``git bisect``, at a commit its state file does not describe. So each one first writes
``journal.json`` beside the state file: the commit and the state as they were, and whether
the work tree was clean. Whoever takes the tree's lock next finds the journal and puts the
tree back (``recover``); a command that fails or is interrupted in-process does the same
before it re-raises. Finishing normally removes the journal.

Only the outermost operation of a process journals: an apply inside a ci is undone with
the ci, to the state the ci found.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from watchbench.errors import TreeError
from watchbench.host.files import write_atomically
from watchbench.host.git import Git
from watchbench.host.runner import alive

JOURNAL = "journal.json"
STATE = "tree.json"  # the tree's state file (kernel.trees.META)


@dataclass(frozen=True)
class Entry:
    """One operation in progress: who started it, and what to put back."""

    what: str
    pid: int
    command: str
    since: float
    head: str
    clean: bool  # the work tree had no changes then (see recover)
    state: dict

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"{self.what} (pid {self.pid}, {self.command}, since {since})"


def _write_json(path: Path, data: dict) -> None:
    write_atomically(path, json.dumps(data, indent=2) + "\n")


def pending(root: Path) -> Entry | None:
    """The journal of an operation that has not finished, if any."""
    path = Path(root) / JOURNAL
    try:
        return Entry(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise TreeError(f"the journal of an interrupted command is unreadable: {path}: {exc}",
                        log=path, hint="check the tree with `git status` in its src/, then "
                                       "delete the journal") from exc


@contextlib.contextmanager
def journaled(root: Path, git: Git, what: str) -> Iterator[None]:
    """Run the block as one operation on the tree at ``root``: undone if it does not finish.

    Call it with the tree's lock held (``kernel.trees.lock``).
    """
    path = Path(root) / JOURNAL
    outer = pending(root)
    if outer is not None and outer.pid == os.getpid():  # an outer operation of ours owns it
        yield
        return
    if outer is not None:  # another process's: stale, unless that process is still running
        if alive(outer.pid):
            raise TreeError(f"{git.path} is being changed by {outer.describe()}",
                            hint="take the tree's lock first (kernel.trees.lock)")
        recover(root, git)
    entry = Entry(what, os.getpid(), " ".join(sys.argv)[:200], time.time(), git.head(),
                  not git.dirty(), json.loads((Path(root) / STATE).read_text()))
    _write_json(path, asdict(entry))
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # what cannot be undone now is left to the next
            recover(root, git)
        raise
    path.unlink(missing_ok=True)


def recover(root: Path, git: Git) -> Entry | None:
    """Put the tree back as the journal says, if an operation did not finish; return it.

    Any ``git am`` or ``git bisect`` in progress is abandoned, a stale ``index.lock`` (its
    git was killed; we hold the tree's lock) is removed, the commit is checked out again
    and the state file is written back. The work tree is reset hard only when the operation
    had moved it (another commit, or git am/bisect under way) and it was clean before: what
    a build (which never moves the commit) finds edited is the user's, and stays.
    """
    entry = pending(root)
    if entry is None:
        return None

    def git_path(name: str) -> Path:
        return git.path / git.out("rev-parse", "--git-path", name)

    for name in ("index.lock", "HEAD.lock"):
        git_path(name).unlink(missing_ok=True)
    moved = git.head() != entry.head
    if git_path("rebase-apply").exists():
        moved = True
        git("am", "--abort", check=False)
    if git_path("BISECT_LOG").exists():
        moved = True
        git("bisect", "reset", check=False)
    if moved and entry.clean:
        git("reset", "-q", "--hard", entry.head)
    back = git("checkout", "-q", "--detach", entry.head, check=False)
    if back.returncode != 0 or git.head() != entry.head:
        raise TreeError(f"could not put {git.path} back at {entry.head[:12]} after the "
                        f"interrupted {entry.describe()}: {back.stderr.strip()}",
                        log=Path(root) / JOURNAL,
                        hint=f"look at `git -C {git.path} status`; delete the journal "
                             "when the tree is as you want it")
    _write_json(Path(root) / STATE, entry.state)
    (Path(root) / JOURNAL).unlink(missing_ok=True)
    return entry
