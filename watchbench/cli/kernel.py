"""kernel.fetch, kernel.status, config, build: the tree and the kernel made from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watchbench.cli import command, settings_of, split_list
from watchbench.cli.options import boot_options, non_empty, tree_options
from watchbench.host.progress import Progress
from watchbench.host.runner import Runner, alive, default_runner
from watchbench.kernel import journal, trees
from watchbench.kernel.configure import configure, fragment_paths, fragments_for
from watchbench.kernel.trees import Tree
from watchbench.kernel.variant import Composer


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


@command
def status(c: Any) -> None:
    print("\n".join(status_lines(trees.active(settings_of(c)))))


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
def build(c: Any, force: bool, kconfig_add: list[str] | None = None) -> None:
    settings = boot_options(settings_of(c), "build", kconfig_add=kconfig_add)
    Composer(settings, trees.active(settings), progress=Progress("build")).current(force=force)
