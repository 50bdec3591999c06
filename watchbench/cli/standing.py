"""Where a command's kernel comes from when no --tree or --tarball says so: the kernel
checkout the developer stands in (``kernel.checkout``), else the Debian default as
before. One answer for ``ci``, ``check``, ``all``, ``bench``, ``profile`` and ``bisect``,
and one set of refusals (uncommitted changes, a --base that is no ancestor)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import InputError
from watchbench.host.progress import Progress
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel.build import Kernel
from watchbench.kernel.checkout import (
    UNCOMMITTED,
    Checkout,
    branch_commits,
    branch_series,
    commit_of,
    standing_in,
)
from watchbench.kernel.variant import composing, stack
from watchbench.settings import Settings

WIDTH = 79


@dataclass(frozen=True)
class Place:
    """The tree, base and series a flow is given, and what to say about them first."""

    tree: str | None = None
    base: str | None = None
    series: str = ""
    lines: tuple[str, ...] = ()
    checkout: Checkout | None = None  # the checkout the command stands in

    @property
    def here(self) -> bool:
        """The kernel comes from the checkout the command stands in."""
        return self.checkout is not None

    def say(self) -> None:
        for line in self.lines:
            print(line)


def _not_here(uncommitted: bool, given: str | None, flag: str = "--tree") -> None:
    if uncommitted:
        where = f"{flag} {given!r} builds what it names" if given else \
            f"{Path.cwd()} is not inside a kernel git checkout"
        raise InputError(f"{UNCOMMITTED} measures the uncommitted changes of the kernel "
                         f"checkout you stand in; {where}",
                         hint="cd ~/linux, then e.g. ./wb ci --base v6.12 --uncommitted")


def _joined(*names: str | Path) -> str:
    return ",".join(str(n) for n in names if str(n))


def _intro(checkout: Checkout, what: str) -> list[str]:
    branch = checkout.branch if checkout.branch != "HEAD" else "a detached HEAD"
    return textwrap.wrap(f"watchbench: your checkout {checkout.root}, {branch} at "
                         f"{checkout.head[:12]}: {what}", WIDTH, subsequent_indent="  ",
                         break_on_hyphens=False, break_long_words=False)


def _commit_lines(commits: list[tuple[str, str]], uncommitted: bool) -> list[str]:
    rows = [f"  patch {i:<2} {commit[:12]} {subject}"[:WIDTH]
            for i, (commit, subject) in enumerate(commits, 1)]
    if uncommitted:
        rows.append(f"  patch {len(commits) + 1:<2} your uncommitted changes")
    return rows


def gate_place(settings: Settings, *, tree: str | None, base: str | None, series: str,
               uncommitted: bool, runner: Runner = default_runner,
               cwd: Path | None = None) -> Place:
    """``ci``: inside a kernel checkout, ``--base REF`` gates ``REF..HEAD`` as a series
    (the baseline is REF with our bench series); ``--series`` with it gates that series
    on REF instead; no ``--base`` measures HEAD (an A/A run, or --series on HEAD)."""
    if tree:
        _not_here(uncommitted, tree)
        return Place(tree, base, series)
    checkout = standing_in(cwd, runner)
    if checkout is None:
        _not_here(uncommitted, None)
        if base:
            raise InputError(f"--base {base!r} gates the commits REF..HEAD of the kernel "
                             f"checkout you stand in; {cwd or Path.cwd()} is not inside one",
                             hint="cd ~/linux && ./wb ci --base v6.12 (or name the checkout: "
                                  "./wb ci --tree ~/linux --base v6.12 --series my-fix)")
        return Place(None, None, series)
    if base and series.strip():
        if uncommitted:
            raise InputError(f"{UNCOMMITTED} goes with your commits, not with --series",
                             hint=f"e.g. ./wb ci --base {base} {UNCOMMITTED}")
        commit_of(checkout, base, "--base", runner)
        return Place(str(checkout.root), base, series, tuple(_intro(
            checkout, f"gating --series {series} on {base}")), checkout)
    if not uncommitted:
        checkout.refuse_changes("ci", f"ci --base {base}" if base else "ci")
    else:
        checkout.require_changes("ci", f"ci --base {base}" if base else "ci")
    start = commit_of(checkout, base, "--base", runner) if base else checkout.head
    commits = branch_commits(checkout, start, runner) if base else []
    if base and not commits and not uncommitted:
        raise InputError(f"{base}..HEAD holds no commit: nothing to gate",
                         hint="give the commit your branch starts from, e.g. ./wb ci --base "
                              "HEAD~2 (or ./wb ci with no --base: an A/A run of HEAD)")
    mine = branch_series(settings, checkout, start, uncommitted=uncommitted, runner=runner) \
        if commits or uncommitted else ""
    what = (f"gating {len(commits)} commit(s) {base}..HEAD" if base else "measuring HEAD") + \
        (" and your uncommitted changes" if uncommitted else "")
    lines = [*_intro(checkout, what), *_commit_lines(commits, uncommitted)]
    return Place(str(checkout.root), base or checkout.head, _joined(series, mine), tuple(lines),
                 checkout)


def head_place(settings: Settings, task: str, *, tree: str | None = None,
               base: str | None = None, tarball: str | None = None, series: str = "",
               uncommitted: bool, runner: Runner = default_runner,
               cwd: Path | None = None) -> Place:
    """``check``, ``all``, ``bench`` and ``profile``: inside a kernel checkout they work on
    HEAD (with ``--series`` on top, and the uncommitted changes when asked)."""
    if tree or tarball:
        _not_here(uncommitted, tree or tarball, "--tree" if tree else "--tarball")
        return Place(tree, base, series)
    checkout = standing_in(cwd, runner)
    if checkout is None:
        _not_here(uncommitted, None)
        return Place(None, None, series)
    if not uncommitted:
        checkout.refuse_changes(task, task)
    else:
        checkout.require_changes(task, task)
    mine = branch_series(settings, checkout, checkout.head, uncommitted=True, runner=runner) \
        if uncommitted else ""
    what = "HEAD" + (" with your uncommitted changes" if uncommitted else "")
    return Place(str(checkout.root), checkout.head, _joined(series, mine),
                 tuple(_intro(checkout, f"{task} on {what}")), checkout)


def bisect_place(*, good: str, bad: str, runner: Runner = default_runner,
                 cwd: Path | None = None) -> tuple[Place, str, str]:
    """``bisect``: inside a kernel checkout, between its commits, in a worktree of it (git
    bisect's refs there are the worktree's own); else the active tree as before. GOOD and
    BAD are resolved in your checkout, since HEAD or a branch there is not the worktree's:
    the place, and the two commit ids (or the refs as given, outside a checkout)."""
    checkout = standing_in(cwd, runner)
    if checkout is None:
        return Place(), good, bad
    good_id = commit_of(checkout, good, "GOOD", runner)
    bad_id = commit_of(checkout, bad, "BAD", runner)
    lines = _intro(checkout, f"bisecting {good} ({good_id[:12]}) to {bad} ({bad_id[:12]})")
    return Place(str(checkout.root), good_id, "", tuple(lines), checkout), good_id, bad_id


def built_here(settings: Settings, place: Place, progress: Progress,
               force: bool = False) -> Kernel | None:
    """The kernel of the checkout the command stands in (HEAD, our bench series, and the
    uncommitted changes when asked), built in its worktree; None: the built kernel of
    the active tree, as without a checkout."""
    if not place.here:
        return None
    place.say()
    with composing(settings, None, tree=place.tree, base=place.base, tarball=None,
                   runner=default_runner, progress=progress, wait=True,
                   purpose="bench") as kernels:
        return kernels.kernel(stack(settings, place.series), force=force)
