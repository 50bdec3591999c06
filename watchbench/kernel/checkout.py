"""The kernel checkout a command stands in, as virtme-ng and b4 work where the developer
is: inside ``~/linux``, ``wb ci --base v6.12`` gates the branch's commits ``v6.12..HEAD``
and ``wb bench`` measures HEAD. The checkout is only read: its commits become a series
under the cache (``branch_series``) and are built in a worktree (``trees.fetch_user``),
so the developer's branch, index, stash and files stay as they were."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from watchbench.errors import InputError
from watchbench.host.git import Git
from watchbench.host.prune import prune_children
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel.patching import QUIET, UNCOMMITTED_DIFF, import_branch
from watchbench.settings import Settings, kernel_checkout_of

UNCOMMITTED = "--uncommitted"
# Series written from branches, kept by the cache (each a few patches; a run that is
# composing reads its series first, and a newer one is never pruned).
KEEP_BRANCHES = 20


@dataclass(frozen=True)
class Checkout:
    """Where the command stands: the top of a kernel git checkout and its state."""

    root: Path
    head: str
    branch: str  # "HEAD" when detached
    changed: tuple[str, ...]  # tracked files with uncommitted changes

    @property
    def git(self) -> Git:
        return Git(self.root)

    @property
    def name(self) -> str:
        """The branch as a series name (a directory name), e.g. ``my-fix``."""
        label = self.branch if self.branch != "HEAD" else f"HEAD-{self.head[:12]}"
        return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")[:64] or "branch"

    def refuse_changes(self, task: str, example: str) -> None:
        """Uncommitted changes are not measured by surprise: refused, with the two ways on."""
        if self.changed:
            shown = ", ".join(self.changed[:3]) + (" ..." if len(self.changed) > 3 else "")
            raise InputError(f"{self.root} has uncommitted changes ({shown}); `./wb {task}` "
                             "measures commits",
                             hint=f"commit them (git commit -a), or measure them too: "
                                  f"./wb {example} {UNCOMMITTED}")


    def require_changes(self, task: str, example: str) -> None:
        """--uncommitted with nothing uncommitted is a mistake, not an empty patch."""
        if not self.changed:
            raise InputError(f"{UNCOMMITTED}: {self.root} has no uncommitted change to a "
                             "tracked file",
                             hint=f"leave it out: ./wb {example}")


def standing_in(cwd: Path | None = None, runner: Runner = default_runner) -> Checkout | None:
    """The kernel git checkout ``cwd`` (default: the current directory) is inside, or None
    (not a git checkout, or not a kernel): the same rule that keeps reports out of it
    (``settings.kernel_checkout_of``)."""
    root = kernel_checkout_of(cwd or Path.cwd())
    if root is None:
        return None
    git = Git(root, runner)
    head = git.rev("HEAD")
    if head is None:  # a repository without a commit yet
        return None
    branch = git.out("rev-parse", "--abbrev-ref", "HEAD")
    return Checkout(root, head, branch, tuple(git.dirty()))


def commit_of(checkout: Checkout, ref: str, flag: str, runner: Runner = default_runner) -> str:
    """``ref`` as a commit of the checkout, refused by name when it is none."""
    commit = Git(checkout.root, runner).rev(ref) if ref.strip() and not ref.startswith("-") \
        else None
    if commit is None:
        raise InputError(f"{flag} {ref!r} does not name a commit in {checkout.root}",
                         hint="use a tag, branch or commit id that `git rev-parse` knows "
                              "there, e.g. ./wb ci --base v6.12")
    return commit


def branch_commits(checkout: Checkout, base: str, runner: Runner = default_runner
                   ) -> list[tuple[str, str]]:
    """(commit, subject) of ``base..HEAD``, oldest first; refused when ``base`` is not an
    ancestor of HEAD (the commits would not apply to it) or a merge is among them (a
    series is a line of patches)."""
    git = Git(checkout.root, runner)
    if git("merge-base", "--is-ancestor", base, checkout.head, check=False).returncode != 0:
        raise InputError(f"--base {base[:12]} is not an ancestor of HEAD in {checkout.root}: "
                         "your commits were not made on it",
                         hint="give the commit your branch starts from, e.g. "
                              "./wb ci --base $(git merge-base v6.12 HEAD)")
    merges = git.out("rev-list", "--merges", f"{base}..{checkout.head}").split()
    if merges:
        raise InputError(f"{base[:12]}..HEAD holds {len(merges)} merge commit(s) "
                         f"({merges[0][:12]}): the gate measures a line of commits",
                         hint=f"give a --base after the last merge, e.g. ./wb ci --base "
                              f"{merges[0][:12]}")
    text = git.out("log", "--reverse", "--format=%H %s", f"{base}..{checkout.head}")
    return [(line[:40], line[41:]) for line in text.splitlines() if line.strip()]


def branch_series(settings: Settings, checkout: Checkout, base: str, *, uncommitted: bool,
                  runner: Runner = default_runner) -> Path:
    """``base..HEAD`` (and, with ``uncommitted``, the uncommitted changes) written as a
    series under the cache, keyed by what it holds, so the same branch is written once.
    Its path is the series the flows take (``load_series`` reads a path as is)."""
    digest = hashlib.sha256(f"{checkout.root}\0{base}\0{checkout.head}".encode())
    if uncommitted:
        diff = Git(checkout.root, runner)(*UNCOMMITTED_DIFF, env=QUIET).stdout
        digest.update(diff.encode("utf-8", "surrogateescape"))
    branches = settings.cache_dir / "branches"
    out = branches / digest.hexdigest()[:16] / checkout.name
    if not (out / "series").is_file():
        import_branch(checkout.root, base, checkout.head, out, uncommitted=uncommitted,
                      runner=runner)
    out.parent.touch()  # the newest; the cache keeps the newest KEEP_BRANCHES
    prune_children(branches, KEEP_BRANCHES, protect=frozenset({out.parent}), dirs_only=True)
    return out
