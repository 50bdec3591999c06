"""What the tree/patch/config tasks do, as functions the CLI and the tests call alike."""

from __future__ import annotations

from pathlib import Path

from watchbench import deps, patching
from watchbench import tree as trees
from watchbench.configure import Configured, configure, fragments_for
from watchbench.errors import InputError
from watchbench.progress import Progress
from watchbench.runner import Runner, default_runner
from watchbench.series import Series, list_series, load_many, load_series
from watchbench.settings import Settings
from watchbench.tree import Tree


def ensure_deps(install: bool = True, tests: bool = False, runner: Runner = default_runner) -> None:
    needs = deps.PIPELINE + (deps.TESTS if tests else ())
    if install:
        installed = deps.ensure(needs, runner)
        print(f"host tools: installed {', '.join(installed)}" if installed else "host tools: all present")
        return
    missing = deps.missing(needs)
    if missing:
        raise deps.DepsError(f"missing host packages: {', '.join(missing)}",
                             hint=f"apt-get install -y {' '.join(missing)}")
    print("host tools: all present")


def fetch(settings: Settings, tree: str | None = None, base: str | None = None,
          tarball: str | None = None, runner: Runner = default_runner) -> Tree:
    """Select (and if needed create) the kernel tree later steps work on."""
    if tree and tarball:
        raise InputError("give either --tree or --tarball, not both")
    if tree:
        if not base:
            raise InputError("--tree needs --base REF (the commit the series applies to)")
        result = trees.fetch_user(settings, Path(tree), base, runner)
    elif tarball:
        result = trees.fetch_tarball(settings, Path(tarball), runner)
    else:
        result = trees.fetch_debian(settings, runner)
    trees.set_active(settings, result)
    print(f"tree {result.id}: {result.src} at {result.base_label} ({result.base[:12]})")
    return result


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
        lines.append(f"config:  {tree.config_hash} from {names}{stale}")
    lines.append("state:   " + (f"DIRTY ({len(dirty)} files: {', '.join(dirty[:4])})" if dirty else "clean"))
    return lines


def series_table(settings: Settings) -> list[str]:
    rows = []
    for directory in list_series(settings.patches_dir):
        try:
            series = load_series(settings.patches_dir, directory.name)
            rows.append(f"{series.name:24} {len(series.patches):3} patches  {series.hash}")
            rows += [f"    {i:2}. {p.subject}" for i, p in enumerate(series.patches, 1)]
        except InputError as exc:
            rows.append(f"{directory.name:24} INVALID: {exc.message}")
    return rows or [f"no series under {settings.patches_dir}"]


def load(settings: Settings, name: str) -> Series:
    """One series, or several joined with commas and applied in that order."""
    return load_many(settings.patches_dir, name)


def check_series(settings: Settings, name: str, runner: Runner = default_runner) -> bool:
    tree = trees.active(settings)
    series = load(settings, name)
    results = patching.check(tree, series, runner)
    for result in results:
        print(result.describe())
    return all(r.ok for r in results) and len(results) == len(series.patches)


def apply_series(settings: Settings, name: str, runner: Runner = default_runner) -> Tree:
    tree = trees.active(settings)
    series = load(settings, name)
    Progress("patches").step(f"applying {series.name} ({len(series.patches)} patches) "
                             f"to {tree.base_label}")
    tree = patching.apply(tree, series, runner)
    print(f"applied {series.name}: HEAD {tree.applied_head[:12]}")
    return tree


def configure_tree(settings: Settings, fragments: list[str] | None,
                   runner: Runner = default_runner) -> Configured:
    tree = trees.active(settings)
    names = fragments_for(settings, tree, fragments)
    Progress("config").step(f"allnoconfig + {', '.join(names)}")
    result = configure(tree, settings, names, runner)
    print(f"config {result.hash}: {len(result.requested)} requested options all survived "
          f"({result.dotconfig})")
    return result
