"""patches.*: list, check, apply, reset, import and lint series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watchbench.cli import command, settings_of
from watchbench.cli.options import Option
from watchbench.errors import InputError
from watchbench.host.progress import Progress
from watchbench.kernel import patching, trees
from watchbench.kernel.series import check_name, list_series, load_many, load_series
from watchbench.settings import Rule, Settings

EXIT_FAILED = 1


def series_table(settings: Settings) -> list[str]:
    rows = []
    for directory in list_series(settings.series_dirs):
        try:
            series = load_series(directory.parent, directory.name)
            rows.append(f"{series.name:24} {len(series.patches):3} patches  {series.hash}")
            rows += [f"    {i:2}. {p.subject}" for i, p in enumerate(series.patches, 1)]
        except InputError as exc:
            rows.append(f"{directory.name:24} INVALID: {exc.message}")
    return rows or [f"no series under {' or '.join(map(str, settings.series_dirs))}"]


@command
def list_(c: Any) -> None:
    print("\n".join(series_table(settings_of(c))))


@command
def check(c: Any, series: str) -> int:
    settings = settings_of(c)
    chosen = load_many(settings.series_dirs, series)
    results = patching.check(trees.active(settings), chosen)
    for result in results:
        print(result.describe())
    ok = all(r.ok for r in results) and len(results) == len(chosen.patches)
    return 0 if ok else EXIT_FAILED


@command
def apply(c: Any, series: str) -> None:
    settings = settings_of(c)
    chosen = load_many(settings.series_dirs, series)
    tree = trees.active(settings)
    progress = Progress("patches")
    progress.step(f"applying {chosen.name} ({len(chosen.patches)} patches) to {tree.base_label}")
    with trees.lock(tree, progress=progress):
        tree = patching.apply(tree, chosen)
    print(f"applied {chosen.name}: HEAD {tree.applied_head[:12]}")


@command
def reset(c: Any, force: bool) -> None:
    tree = trees.active(settings_of(c))
    with trees.lock(tree, progress=Progress("patches")):
        patching.reset(tree, force=force)
    print("tree reset to its base")


VERSION = Option("--version", int, Rule(1), "./wb patches.import --name NAME --mbox "
                 "thread.mbox --version 2")


@command
def import_(c: Any, name: str, tree: str | None, git_range: str | None, mbox: str | None,
            directory: str | None, force: bool, version: str | None = None) -> None:
    """Every option checked before the source is read or anything is written."""
    out = settings_of(c).patches_dir / check_name(name)
    given = [flag for flag, value in (("--range", git_range), ("--mbox", mbox),
                                      ("--directory", directory)) if value is not None]
    example = f"./wb patches.import --name {name} --mbox thread.mbox"
    if len(given) != 1:
        raise InputError(f"give one source: --range (with --tree), --mbox or --directory"
                         f"{'' if not given else ', not ' + ' and '.join(given)}",
                         hint=f"e.g. {example}")
    chosen = VERSION.parse(version)
    if git_range is not None:
        if chosen is not None:
            raise InputError("--version chooses among the mails of an --mbox or a "
                             "--directory, not a --range", hint=f"e.g. {example} --version 2")
        if not tree:
            raise InputError(f"--range {git_range!r} needs --tree: the checkout it is in",
                             hint=f"e.g. ./wb patches.import --name {name} --tree ~/linux "
                                  f"--range {git_range!r}")
        names = patching.import_range(Path(tree), git_range, out, force=force)
    elif tree:
        raise InputError("--tree is for --range only", hint=f"e.g. {example}")
    elif mbox is not None:
        names = patching.import_mbox(Path(mbox), out, force=force, version=chosen)
    else:
        names = patching.import_directory(Path(directory or ""), out, force=force,
                                          version=chosen)
    print(f"wrote {out} with {len(names)} patches")


@command
def lint(c: Any, series: str, strict: bool) -> int:
    settings = settings_of(c)
    chosen = load_many(settings.series_dirs, series)
    results = patching.lint(trees.active(settings), chosen, strict=strict)
    for r in results:
        print(f"{r.patch.name:60} {r.errors} errors {r.warnings} warnings {r.checks} checks")
    return EXIT_FAILED if any(r.errors for r in results) else 0
