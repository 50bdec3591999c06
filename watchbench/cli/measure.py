"""bench and all: boots that make runs, one at a time or as the whole pipeline."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from watchbench.cli import command, settings_of, split_list
from watchbench.cli.options import (
    BENCH_ACCEL,
    TOP,
    boot_options,
    non_empty,
    suite_named,
    tree_options,
)
from watchbench.cli.standing import built_here, head_place
from watchbench.errors import InputError
from watchbench.flows.pipeline import run_all
from watchbench.flows.shard import RUN_ID
from watchbench.host.progress import Progress
from watchbench.kernel.configure import fragment_paths
from watchbench.kernel.series import load_many
from watchbench.report.headline import focus_text, headline_lines
from watchbench.report.profile import profile_lines
from watchbench.report.questions import focus, headlines
from watchbench.results.profile import PROFILE_FILE, read_profile
from watchbench.results.store import load_runs
from watchbench.settings import Settings
from watchbench.suite.run import run_bench
from watchbench.vm.cachemodel import CacheModel
from watchbench.vm.qemu import Accel


def print_headline(settings: Settings, run_dir: Path, where: Path, label: str) -> None:
    """The run's headline figures (at most 15 lines), over every stored boot comparable
    with it (the same kernel, accelerator, host and suite: ``questions.focus``), and
    where the details are. A stored run that cannot be read is left out here."""
    df = load_runs(settings.runs_dir, skip_bad=True)
    ok = focus(df, [run_dir.name])
    width = min(shutil.get_terminal_size().columns, 80)
    for line in headline_lines(headlines(ok), focus_text(ok, brief=True), str(where), width,
                               label=label):
        print(line)


def with_cache_model(settings: Settings, given: bool) -> Settings:
    """--cache-model: this run's profile simulates caches (settings profile.cache_model
    on); not given, the setting decides."""
    if not given:
        return settings
    return replace(settings, profile=replace(settings.profile, cache_model=CacheModel.ON.value))


@command
def bench(c: Any, suite: str | None, accel: str | None, label: str,
          profile: bool = False, kernel_args: str | None = None,
          kconfig_add: list[str] | None = None, uncommitted: bool = False,
          cache_model: bool = False) -> None:
    settings = boot_options(settings_of(c), "bench", kernel_args, kconfig_add)
    accel = BENCH_ACCEL.parse(accel)
    suite_named(settings.project_root, settings.suite if suite is None else suite)
    if profile and accel not in (None, Accel.ICOUNT):
        raise InputError(f"--profile counts instructions under icount, not {accel}",
                         hint="leave --accel out, or give --accel icount")
    if cache_model and not profile:
        raise InputError("--cache-model simulates caches in a profile's plugin: it needs "
                         "--profile", hint="e.g. ./wb bench --profile --cache-model")
    settings = with_cache_model(settings, cache_model)
    progress = Progress("bench")
    kernel = built_here(settings, head_place(settings, "bench", uncommitted=uncommitted),
                        progress)
    run_dir = run_bench(settings, suite or settings.suite, Accel.ICOUNT if profile else accel,
                        label, kernel=kernel, progress=progress, profile=profile)
    print_headline(settings, run_dir, run_dir, "run")
    if profile:
        print(f"profile: {run_dir / PROFILE_FILE} (top functions: ./wb profile --run "
              f"{run_dir.name})")


@command
def profile(c: Any, suite: str | None, top: object, run: str | None,
            uncommitted: bool = False, cache_model: bool = False) -> None:
    """One boot under the instruction-count plugin (or a stored profiled run): the top
    functions of every case, in instructions per operation (with the cache model, its
    misses and estimate beside them)."""
    settings = with_cache_model(settings_of(c), cache_model)
    top = TOP.parse(top) or 5
    if run is not None and uncommitted:
        raise InputError("--run shows a stored run; --uncommitted builds your changes",
                         hint="give one of them, e.g. wb profile --uncommitted")
    if run is not None and cache_model:
        raise InputError("--run shows a stored run as it was profiled; --cache-model "
                         "profiles a new boot", hint="give one of them, e.g. wb profile "
                                                     "--cache-model")
    if run is not None:
        if not RUN_ID.match(run):
            raise InputError(f"--run {run!r}: not a run id (a directory name under the runs "
                             "dir)", hint="the ids: ./wb report; e.g. ./wb profile --run ID")
        run_dir = settings.runs_dir / run
        if not (run_dir / PROFILE_FILE).is_file():
            raise InputError(f"--run {run!r}: no profiled run of that id in {settings.runs_dir}",
                             hint="profile one first: ./wb profile (or ./wb bench --profile)")
    else:
        suite_named(settings.project_root, settings.ci.suite if suite is None else suite)
        progress = Progress("profile")
        kernel = built_here(settings, head_place(settings, "profile", uncommitted=uncommitted),
                            progress)
        run_dir = run_bench(settings, suite or settings.ci.suite, Accel.ICOUNT, "profile",
                            kernel=kernel, progress=progress, profile=True)
    width = min(shutil.get_terminal_size().columns, 80)
    for line in profile_lines(read_profile(run_dir), n=top, width=width):
        print(line)
    print(f"profile: {run_dir / PROFILE_FILE}")


@command
def all_(c: Any, series: str | None, fragments: str | None, suite: str | None,
         accel: str | None, tree: str | None, base: str | None, tarball: str | None,
         kernel_args: str | None = None, kconfig_add: list[str] | None = None,
         uncommitted: bool = False) -> None:
    settings = boot_options(settings_of(c), "all", kernel_args, kconfig_add)
    accel = BENCH_ACCEL.parse(accel)
    tree_options(tree, base, tarball)
    if series is not None:
        load_many(settings.series_dirs, series)
    if fragments is not None:
        fragment_paths(settings, non_empty("--fragments", split_list(fragments),
                                           "./wb all --fragments base,watch_queue"))
    suite_named(settings.project_root, settings.suite if suite is None else suite)
    place = head_place(settings, "all", tree=tree, base=base, tarball=tarball,
                       series=series or "", uncommitted=uncommitted)
    place.say()
    result = run_all(settings, place.series or None, split_list(fragments) or None,
                     suite or settings.suite, accel, place.tree, place.base, tarball,
                     progress=Progress("all"))
    print_headline(settings, result.run_dir, result.report, "report")
