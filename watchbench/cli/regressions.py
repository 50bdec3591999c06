"""ci and bisect: is a series slower (exit 0 ok, 1 regressed or broken, 2 infrastructure,
3 undecided, 4 incorrect: ``--check`` failed on the candidate), on one machine or sharded
and merged, and which commit made a benchmark slower."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchbench.cli import command, infrastructure_failure, settings_of, split_list
from watchbench.cli.correctness import options_of, report_check
from watchbench.cli.options import (
    BISECT_ACCEL,
    BISECT_JOBS,
    BISECT_ROUNDS,
    CI,
    benchmark_names,
    boot_options,
    out_dir,
    suite_named,
)
from watchbench.cli.standing import bisect_place, gate_place
from watchbench.errors import InputError, WatchbenchError
from watchbench.flows.at_once import boot_jobs
from watchbench.flows.bisect import run_bisect
from watchbench.flows.check import EXIT_CORRECTNESS, CheckOptions, run_check
from watchbench.flows.ci import (
    EXIT_INFRA,
    EXIT_OK,
    CiOptions,
    CiResult,
    gate_cache_model,
    run_ci,
)
from watchbench.flows.explain import parse_explain
from watchbench.flows.shard import parse_shard, run_merge, run_shard
from watchbench.host.progress import LOG_WIDTH, Progress
from watchbench.kernel import trees
from watchbench.kernel.series import load_many
from watchbench.report import compare_table, noise_table
from watchbench.report.profile import diff_lines
from watchbench.report.text import attribute
from watchbench.settings import Settings

WIDTH = 79


def gate(settings: Settings, options: CiOptions, check: CheckOptions | None = None,
         check_seams: dict[str, Any] | None = None, **seams: Any) -> int:
    """run_ci, printed (``report_gate``); with ``check``, ``./wb check`` on the candidate
    first (``checked``)."""
    code = checked(settings, check, seams.get("progress"), **(check_seams or {}))
    if code:
        return code
    return report_gate(lambda progress: run_ci(settings, options, progress=progress, **seams),
                       seams.pop("progress", None))


def checked(settings: Settings, check: CheckOptions | None, progress: Progress | None = None,
            **seams: Any) -> int:
    """``ci --check``: the candidate's correctness before any measurement, printed. Its exit
    code (4 incorrect, 2 infrastructure) is the gate's: a candidate that breaks the API is
    a finding, and its figures would mean nothing. 0: go on and measure."""
    if check is None:
        return EXIT_OK
    code = report_check(lambda p: run_check(settings, check, progress=p, **seams), progress)
    if code == EXIT_CORRECTNESS:
        print(f"watchbench ci: not measured: the candidate failed `./wb check` (exit {code})")
    elif code:
        print(f"watchbench ci: not measured: `./wb check` could not run (exit {code})")
    return code


def report_gate(flow: Callable[[Progress], CiResult], progress: Progress | None = None) -> int:
    """A gate's result printed: the tables, where the files are, the verdict; every failure
    of the pipeline itself (a merge refused too) is exit 2 with its reason."""
    try:
        result = flow(progress or Progress("ci", width=LOG_WIDTH))
    except WatchbenchError as exc:
        print(infrastructure_failure("ci", EXIT_INFRA, exc))
        return EXIT_INFRA
    print(compare_table(result.comparisons))
    print()
    print(noise_table(result.comparisons))
    if result.per_patch is not None:
        for line in attribute(result.per_patch, result.regressed):
            print("\n".join(textwrap.wrap(line, WIDTH,
                                           subsequent_indent="      ")))
    if result.explanation is not None:
        diff = result.explanation.diff
        modelled = "cand_est" in diff.columns and bool(diff["cand_est"].notna().any())
        print("\nwhere the instructions and misses went (icount, TCG plugin; misses: "
              "model):" if modelled else
              "\nwhere the instructions went (instr/op, icount, TCG plugin):")
        print("\n".join(diff_lines(result.explanation.diff, n=3, width=WIDTH)))
    elif result.profile_problem:
        print("\n".join(textwrap.wrap(result.profile_problem, WIDTH)))
    print(f"\nreport: {result.report}\njunit:  {result.junit}\nsummary: {result.summary}")
    print(f"stopped: {result.stop_reason}")
    print("\n".join(textwrap.wrap("watchbench ci: " + result.line, WIDTH,
                                   subsequent_indent="  ")))
    for failing in result.regressed:
        print("\n".join(textwrap.wrap(failing, WIDTH, initial_indent="  ",
                                       subsequent_indent="    ")))
    return result.exit_code


def shard_gate(settings: Settings, options: CiOptions, shard: str, **seams: Any) -> int:
    """One shard's boots: where they went, and how to merge. No verdict from a part."""
    try:
        done = run_shard(settings, options, shard, progress=seams.pop("progress", None)
                         or Progress("ci", width=LOG_WIDTH), **seams)
    except WatchbenchError as exc:
        print(infrastructure_failure("ci", EXIT_INFRA, exc))
        return EXIT_INFRA
    shown = ", ".join(str(r + 1) for r in done.rounds)
    print("\n".join(textwrap.wrap(
        f"watchbench ci: shard {done.index}/{done.count} booted rounds {shown} of the "
        f"design in {done.boot_seconds:.0f} s ({done.stop_reason})", WIDTH,
        subsequent_indent="  ")))
    print(f"shard:  {done.directory}")
    print("no verdict from one shard: merge them all with `./wb ci --merge DIR,DIR...`")
    return EXIT_OK


# What --merge takes besides the shards (with it, they say what was measured and how it
# is judged: every other option is refused, a setting's too).
WITH_MERGE = ("merge", "accept_undecided", "record", "out", "no_wait")


@command
def ci(c: Any, series: str = "", per_patch: bool = False, accept_undecided: bool = False,
       record: bool = False, out: str | None = None, tree: str | None = None,
       base: str | None = None, no_wait: bool = False, shard: str | None = None,
       merge: list[str] | None = None, check: bool = False, kernel_args: str | None = None,
       kconfig_add: list[str] | None = None, uncommitted: bool = False,
       **typed: str | None) -> int:
    """``typed``: the options that stand for a setting (``options.CI``), as typed; None:
    not given."""
    settings = settings_of(c)
    merging = merge is not None and merge != []
    dirs = [Path(d) for item in merge or [] for d in split_list(item)]
    if merging and not dirs:
        raise InputError(f"--merge {','.join(merge or [])!r}: no shard directory named (an unset "
                         "variable?); an empty merge is not a gate",
                         hint="e.g. ./wb ci --merge artifacts/ (the --out of the shards)")
    target = out_dir("--out", out)
    if dirs:
        given = {"series": series, "per_patch": per_patch, "tree": tree, "base": base,
                 "shard": shard, "check": check, "kernel_args": kernel_args is not None,
                 "kconfig_add": kconfig_add, "uncommitted": uncommitted, **typed}
        extra = [f"--{n.replace('_', '-')}" for n, value in given.items()
                 if value and n not in WITH_MERGE]
        if extra:
            raise InputError(f"--merge takes what was measured and how it is judged from the "
                             f"shards; {', '.join(extra)} cannot be given with it",
                             hint="give them to every shard instead: ./wb ci --shard I/N ...")
        return report_gate(lambda progress: run_merge(
            settings, dirs, target or settings.reports_dir, record=record,
            accept_undecided=accept_undecided, progress=progress))
    settings = boot_options(settings, "ci", kernel_args, kconfig_add)
    if shard is not None:
        parse_shard(shard)
    if tree and not Path(tree).is_dir():
        raise InputError(f"--tree {tree!r}: no such directory",
                         hint="give your kernel checkout, e.g. ./wb ci --tree ~/linux --base v6.12")
    if tree and not base:
        raise InputError(f"--tree {tree!r} needs --base REF (the commit the series applies to)",
                         hint=f"e.g. ./wb ci --tree {tree} --base v6.12 --series my-fix")
    if series.strip():
        load_many(settings.series_dirs, series)  # every series named exists and parses
    elif series:
        raise InputError(f"--series {series!r}: names no series",
                         hint="e.g. ./wb ci --series my-fix (leave it out for an A/A run)")
    # each by its setting's rule; --profile says its choices itself (flows.explain)
    chosen = {name: option.parse(typed.get(name)) if name != "profile" else typed.get(name)
              for name, option in CI.items()}
    suite_named(settings.project_root,
                settings.ci.suite if chosen["suite"] is None else chosen["suite"])
    if chosen["profile"] is not None:
        parse_explain(chosen["profile"])
    gate_cache_model(chosen["cache_model"] or settings.ci.cache_model,  # the model needs icount
                     chosen["accel"] or settings.ci.accel)
    # last, once every option is good: where the kernel comes from (your checkout's
    # commits are written as a series then)
    place = gate_place(settings, tree=tree, base=base, series=series, uncommitted=uncommitted)
    options = CiOptions.from_settings(
        settings, place.series, per_patch=per_patch, accept_undecided=accept_undecided,
        record=record, wait=not no_wait, out=target, tree=place.tree, base=place.base,
        **chosen)
    first = options_of(settings, place.series, out=str(options.out), tree=place.tree,
                       base=place.base, no_wait=no_wait) if check else None
    place.say()
    if shard is not None:
        return checked(settings, first) or shard_gate(settings, options, shard)
    return gate(settings, options, check=first)


@command
def bisect(c: Any, good: str, bad: str, benchmark: str, metric: str | None, params: str,
           rounds: object, accel: str | None, suite: str | None, no_wait: bool = False,
           jobs: object = None) -> None:
    settings = settings_of(c)
    for flag, ref in (("GOOD", good), ("BAD", bad)):
        if not ref.strip() or ref.startswith("-"):
            raise InputError(f"{flag} {ref!r}: give a commit", hint="e.g. ./wb bisect v6.11 "
                             "v6.12 keyctl-post")
    chosen = BISECT_ROUNDS.parse(rounds)
    accel = BISECT_ACCEL.parse(accel)
    jobs = BISECT_JOBS.parse(jobs)
    boot_jobs(settings.bisect.jobs if jobs is None else jobs,  # refused before any worktree
              accel or settings.bisect.accel, chosen or settings.bisect.rounds)
    defined = suite_named(settings.project_root, settings.bisect.suite if suite is None else suite)
    known = benchmark_names(defined)
    if known is not None and benchmark not in known:
        raise InputError(f"benchmark {benchmark!r} is not in suite {defined.name!r}",
                         hint=f"one of {', '.join(sorted(known))}, e.g. ./wb bisect GOOD BAD "
                              f"{sorted(known)[0]}")
    place, good, bad = bisect_place(good=good, bad=bad)
    tree = trees.fetch_user(settings, Path(place.tree), good, wait=not no_wait) \
        if place.tree else None
    place.say()
    first, steps = run_bisect(settings, good, bad, benchmark, metric, params, suite,
                              accel, chosen or None,
                              progress=Progress("bisect", width=LOG_WIDTH),
                              wait=not no_wait, tree=tree, jobs=jobs)
    print("\n".join(step.describe() for step in steps))
    print(f"first bad commit: {first}")
