"""kernel.fetch, kernel.status, config, build: the tree and the kernel made from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watchbench.cli import command, fit, settings_of, split_list
from watchbench.cli.options import boot_options, non_empty, tree_options
from watchbench.cli.standing import built_here, head_place
from watchbench.host.progress import Progress
from watchbench.host.runner import Runner, alive, default_runner
from watchbench.kernel import journal, trees
from watchbench.kernel.checkout import Checkout, standing_in
from watchbench.kernel.configure import configure, fragment_paths, fragments_for
from watchbench.kernel.trees import Tree
from watchbench.kernel.variant import Composer
from watchbench.settings import Settings


@command
def fetch(c: Any, tree: str | None, base: str | None, tarball: str | None) -> None:
    tree_options(tree, base, tarball)
    result = trees.select(settings_of(c), tree, base, tarball, progress=Progress("kernel"))
    print(f"tree {result.id}: {result.src} at {result.base_label} ({result.base[:12]})")


def status_lines(tree: Tree, runner: Runner = default_runner) -> list[str]:
    git = tree.git(runner)
    head = git.head()
    dirty = git.dirty()
    lines = [
        f"tree:    {tree.id} ({tree.kind}) {tree.src}",
        f"origin:  {tree.origin}",
        f"base:    {tree.base_label} ({tree.base[:12]})",
    ]
    if tree.series:
        where = "applied" if head == tree.applied_head else f"HEAD moved to {head[:12]}"
        lines.append(f"series:  {tree.series} ({len(tree.series_patches)} patches, "
                     f"hash {tree.series_hash}) {where}")
    else:
        extra = "" if head == tree.base else f" (HEAD {head[:12]} is not the base)"
        lines.append(f"series:  none{extra}")
    if tree.config_hash:
        stale = "" if tree.config_head == head else " (made on another commit: will be redone)"
        names = ", ".join(Path(f).stem for f in tree.config_fragments)
        added = "".join(f" + {a}" for a in tree.config_additions)
        lines.append(f"config:  {tree.config_hash} from {names}{added}{stale}")
    lines.append("state:   " + (f"DIRTY ({len(dirty)} files: {', '.join(dirty[:4])})" if dirty else "clean"))
    interrupted = journal.pending(tree.root)
    if interrupted:
        if alive(interrupted.pid):
            lines.append(f"busy:    {interrupted.what} (pid {interrupted.pid}) is under way")
        else:
            lines.append(f"pending: {interrupted.what} (pid {interrupted.pid}) was interrupted;")
            lines.append("         the next command that takes the tree puts it back")
    return lines


def checkout_lines(settings: Settings, checkout: Checkout,
                   runner: Runner = default_runner) -> list[str]:
    """The checkout you stand in, then the worktree watchbench builds it in (if any)."""
    branch = checkout.branch if checkout.branch != "HEAD" else "a detached HEAD"
    changed = f"{len(checkout.changed)} uncommitted file(s): " \
        f"{', '.join(checkout.changed[:4])}" if checkout.changed else "clean"
    lines = [f"checkout: {checkout.root}", f"branch:   {branch} at {checkout.head[:12]}",
             f"state:    {changed}"]
    root = trees.trees_dir(settings) / trees.user_tree_id(checkout.root)
    if not (root / trees.META).is_file():
        return [*lines, "worktree: none yet (./wb build here makes it)"]
    return [*lines, f"worktree: {root}", *("  " + line for line in
                                            status_lines(Tree.load(root), runner))]


@command
def status(c: Any) -> None:
    settings = settings_of(c)
    checkout = standing_in()
    lines = checkout_lines(settings, checkout) if checkout is not None else \
        status_lines(trees.active(settings))
    print("\n".join(fit(line) for line in lines))


@command
def config(c: Any, fragments: str | None, kconfig_add: list[str] | None = None) -> None:
    settings = boot_options(settings_of(c), "config", kconfig_add=kconfig_add)
    if fragments is not None:
        fragment_paths(settings, non_empty("--fragments", split_list(fragments),
                                           "./wb config --fragments base,watch_queue"))
    tree = trees.active(settings)
    names = fragments_for(settings, tree, split_list(fragments) or None)
    progress = Progress("config")
    progress.step(f"allnoconfig + {', '.join(names)}")
    with trees.lock(tree, progress=progress):
        result = configure(tree, settings, names)
    print(f"config {result.hash}: {len(result.requested)} requested options all survived "
          f"({result.dotconfig})")


@command
def build(c: Any, force: bool, kconfig_add: list[str] | None = None,
          uncommitted: bool = False) -> None:
    settings = boot_options(settings_of(c), "build", kconfig_add=kconfig_add)
    progress = Progress("build")
    place = head_place(settings, "build", uncommitted=uncommitted)
    if built_here(settings, place, progress, force=force) is None:
        Composer(settings, trees.active(settings), progress=progress).current(force=force)
