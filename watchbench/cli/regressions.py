"""ci and bisect: is a series slower (exit 0 ok, 1 regressed or broken, 2 infrastructure,
3 undecided), and which commit made a benchmark slower."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from watchbench.cli import command, settings_of
from watchbench.errors import WatchbenchError
from watchbench.flows.bisect import run_bisect
from watchbench.flows.ci import EXIT_INFRA, CiOptions, parse_rounds, run_ci, verdict_line
from watchbench.host.progress import Progress
from watchbench.report import compare_table, noise_table
from watchbench.report.text import attribute
from watchbench.settings import Settings

WIDTH = 79


def gate(settings: Settings, options: CiOptions, **seams: Any) -> int:
    """run_ci, printed: the tables, where the files are, the verdict; every failure of the
    pipeline itself is exit 2 with its reason."""
    try:
        result = run_ci(settings, options, progress=seams.pop("progress", Progress("ci")),
                        **seams)
    except WatchbenchError as exc:
        print(f"watchbench ci: INFRASTRUCTURE FAILURE (exit {EXIT_INFRA}): {exc}")
        return EXIT_INFRA
    print(compare_table(result.comparisons))
    print()
    print(noise_table(result.comparisons))
    if result.per_patch is not None:
        for line in attribute(result.per_patch, result.regressed):
            print("\n".join(textwrap.wrap(line, WIDTH,
                                           subsequent_indent="      ")))
    print(f"\nreport: {result.report}\njunit:  {result.junit}\nsummary: {result.summary}")
    print(f"stopped: {result.stop_reason}")
    line = "watchbench ci: " + verdict_line(result.answer, result.comparisons, options,
                                            result.rounds, result.exit_code)
    print("\n".join(textwrap.wrap(line, WIDTH, subsequent_indent="  ")))
    for failing in result.regressed:
        print("\n".join(textwrap.wrap(failing, WIDTH, initial_indent="  ",
                                       subsequent_indent="    ")))
    return result.exit_code


@command
def ci(c: Any, series: str, rounds: str | None, accel: str | None, suite: str | None,
       per_patch: bool, threshold: str | None, alpha: str | None, accept_undecided: bool,
       record: bool, out: str | None, tree: str | None, base: str | None,
       no_wait: bool = False, jobs: int | None = None) -> int:
    settings = settings_of(c)
    options = CiOptions.from_settings(
        settings, series, accel=accel, suite=suite, per_patch=per_patch,
        threshold=float(threshold) if threshold is not None else None,
        alpha=float(alpha) if alpha is not None else None,
        accept_undecided=accept_undecided, record=record, wait=not no_wait,
        out=Path(out) if out else None, tree=tree, base=base, jobs=jobs)
    if rounds is not None:
        options.rounds = parse_rounds(rounds, "--rounds")
    return gate(settings, options)


@command
def bisect(c: Any, good: str, bad: str, benchmark: str, metric: str | None, params: str,
           rounds: int, accel: str | None, suite: str | None, no_wait: bool = False) -> None:
    first, steps = run_bisect(settings_of(c), good, bad, benchmark, metric, params, suite,
                              accel, rounds or None,
                              progress=Progress("bisect"), wait=not no_wait)
    print("\n".join(step.describe() for step in steps))
    print(f"first bad commit: {first}")
