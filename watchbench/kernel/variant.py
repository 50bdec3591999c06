"""Base + our bench series + your series[:k] -> a configured, built kernel: the one composer.

Every command that measures a kernel (``all``, ``ci``, ``bisect``, the test fixtures) gets
it from here, so "what is applied, with which fragments" has one answer: the bench series
(``settings.bench_series``) always goes first, then the first ``k`` patches of the series
under test, then the default fragments plus the bench fragment (``fragments_for``).
Builds are content-keyed (``kernel.build``), so composing a variant built before costs a
hash, and switching between variants rebuilds only what changed.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel import journal, patching, trees
from watchbench.kernel.build import Kernel, build
from watchbench.kernel.configure import configure, fragments_for
from watchbench.kernel.series import Series, load_many
from watchbench.kernel.trees import Tree
from watchbench.settings import Settings


def own_series(settings: Settings, series_names: str) -> Series | None:
    """The named series (comma-separated names joined), without our bench series, which
    ``stack`` puts first anyway; None when no other series is named."""
    names = [n.strip() for n in series_names.split(",")
             if n.strip() and n.strip() != settings.bench_series]
    return load_many(settings.series_dirs, ",".join(dict.fromkeys(names))) if names else None


def stack(settings: Settings, series_names: str = "", count: int | None = None) -> Series | None:
    """The bench series, then the first ``count`` (default: all) patches of the named
    series (``own_series``); None when nothing is to be applied."""
    bench = load_many(settings.series_dirs, settings.bench_series) if settings.bench_series else None
    series = own_series(settings, series_names)
    if series is None:
        return bench
    count = len(series.patches) if count is None else count
    mine = series if count == len(series.patches) else series.prefix(count)
    name = "+".join(n for n in (bench.name if bench else "", mine.name if count else "") if n)
    if not name:
        return None
    return Series(name, series.directory, (*(bench.patches if bench else ()), *mine.patches))


# What a tree's state file says about what is on it (kernel.trees.Tree).
STATE_FIELDS = ("series", "series_hash", "series_patches", "applied_head", "config_hash",
                "config_head", "config_fragments", "config_additions")


@dataclass
class Composer:
    """Puts one variant at a time on ``tree`` and builds it. ``restore`` puts the tree back
    as the composer found it (commit, applied series, configuration); callers do that in a
    ``finally`` so a failure or Ctrl-C never strands a variant on the user's tree."""

    settings: Settings
    tree: Tree
    runner: Runner = default_runner
    progress: Progress | None = None
    wait: bool = True  # for the tree's lock, when another command holds it
    purpose: str = "build"  # named in the journal (kernel.journal) while the tree is held

    def __post_init__(self) -> None:
        self.progress = self.progress or Silent()
        self._head: str | None = None  # taken when the lock is first held
        self._state: dict[str, object] = {}

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """The tree's lock: a flow holds it from its first variant to ``restore``, so no
        other command changes the tree in between (re-entered by the calls below). The
        state to restore is taken the first time, under the lock, from the tree on disk."""
        with trees.lock(self.tree, wait=self.wait, progress=self.progress, runner=self.runner):
            if self._head is None:
                disk = trees.Tree.load(self.tree.root)
                for name in STATE_FIELDS:
                    setattr(self.tree, name, getattr(disk, name))
                self._head = self.tree.git(self.runner).head()
                self._state = {n: copy.deepcopy(getattr(self.tree, n)) for n in STATE_FIELDS}
            with journal.journaled(self.tree.root, self.tree.git(self.runner),
                                   self.purpose):
                yield

    def kernel(self, series: Series | None, fragments: list[str] | None = None,
               force: bool = False) -> Kernel:
        """Apply ``series`` on the base (nothing: the bare base), configure, build."""
        with self.hold():
            return self._kernel(series, fragments, force)

    def _kernel(self, series: Series | None, fragments: list[str] | None,
                force: bool) -> Kernel:
        tree = patching.reset(self.tree, self.runner)
        if series is not None:
            tree = patching.apply(tree, series, self.runner)
            self.progress.step(f"applied {series.name} ({len(series.patches)} patches): "
                               f"HEAD {tree.applied_head[:12]}")
        return self._configured_build(tree, fragments, force)

    def at_commit(self, commit: str) -> Kernel:
        """The tree at ``commit`` (bisect: the commit carries its own changes) with our
        bench series on top, as every measured variant has it, so that the in-kernel
        benchmark can be bisected too and every step shares the bench configuration."""
        with self.hold():
            git = self.tree.git(self.runner)
            git("checkout", "-q", "--detach", commit)
            bench = stack(self.settings)
            if bench is None:
                self.tree.series, self.tree.series_hash = "", ""
                self.tree.series_patches, self.tree.applied_head = [], ""
                return self._configured_build(self.tree, None, False)
            tree = patching.apply(self.tree, bench, self.runner, onto=commit)
            self.progress.step(f"applied {bench.name} on {commit[:12]}: "
                               f"HEAD {tree.applied_head[:12]}")
            return self._configured_build(tree, None, False)

    def current(self, force: bool = False) -> Kernel:
        """The tree as it stands, whatever is applied (``./wb build``, ``./wb vm.run``):
        reconfigured first when it has no configuration, one made on another commit or
        with other --kconfig-add options (settings ``kconfig_add``), with the fragments it
        had (the bench fragment follows the bench series)."""
        with self.hold():
            return self._current(force)

    def _current(self, force: bool) -> Kernel:
        head = self.tree.git(self.runner).head()
        if not self.tree.config_hash or self.tree.config_head != head or \
                self.tree.config_additions != list(self.settings.kconfig_add):
            kept = [f for f in self.tree.config_fragments
                    if Path(f).stem != self.settings.bench_series]
            self.progress.step("configuring for the current commit")
            return self._configured_build(self.tree, kept or None, force)
        return build(self.settings, self.tree, self.runner, self.progress, force=force,
                     wait=self.wait)

    def restore(self) -> Tree:
        """The commit and the state file as they were when the composer took the tree."""
        with self.hold():
            return self._restore()

    def _restore(self) -> Tree:
        assert self._head is not None  # hold() took it
        git = self.tree.git(self.runner)
        git("am", "--abort", check=False)
        git("reset", "-q", "--hard")
        git("checkout", "-q", "--detach", self._head)
        for name, value in self._state.items():
            setattr(self.tree, name, copy.deepcopy(value))
        self.tree.save()
        return self.tree

    def _configured_build(self, tree: Tree, fragments: list[str] | None, force: bool) -> Kernel:
        names = fragments_for(self.settings, tree, fragments)
        done = configure(tree, self.settings, names, self.runner)
        self.progress.step(f"config {done.hash} (allnoconfig + {', '.join(names)}): "
                           f"{len(done.requested)} requested options all survived")
        return build(self.settings, tree, self.runner, self.progress, force=force,
                     wait=self.wait)


@contextlib.contextmanager
def composing(settings: Settings, kernels: Any, *, tree: str | None, base: str | None,
              tarball: str | None, runner: Runner, progress: Progress, wait: bool,
              purpose: str) -> Iterator[Any]:
    """A kernel source held for one flow's variants (``ci``, ``check``): ``kernels``, or a
    ``Composer`` on the tree ``tree``/``base``/``tarball`` select. The tree is put back as
    it was (``restore``) and the active tree stays the active one, whatever happens, since
    --tree or --tarball must not move the user's."""
    previous = trees.active_id(settings)
    try:
        if kernels is None:
            chosen = trees.select(settings, tree, base, tarball, runner, progress)
            progress.step(f"tree {chosen.id}: {chosen.src} at {chosen.base_label} "
                          f"({chosen.base[:12]})")
            kernels = Composer(settings, chosen, runner, progress, wait=wait, purpose=purpose)
        with kernels.hold():  # another flow waits here, then builds while this one boots
            try:
                yield kernels
            finally:
                kernels.restore()
    finally:
        if previous is not None:
            trees.set_active(settings, previous)
