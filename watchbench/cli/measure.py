"""bench and all: boots that make runs, one at a time or as the whole pipeline."""

from __future__ import annotations

from typing import Any

from watchbench.cli import command, settings_of, split_list
from watchbench.flows.pipeline import run_all
from watchbench.host.progress import Progress
from watchbench.suite.run import run_bench


@command
def bench(c: Any, suite: str | None, accel: str | None, label: str) -> None:
    settings = settings_of(c)
    print(run_bench(settings, suite or settings.suite, accel, label, progress=Progress("bench")))


@command
def all_(c: Any, series: str | None, fragments: str | None, suite: str | None,
         accel: str | None, tree: str | None, base: str | None, tarball: str | None) -> None:
    settings = settings_of(c)
    result = run_all(settings, series, split_list(fragments) or None, suite or settings.suite,
                     accel, tree, base, tarball, progress=Progress("all"))
    print(result.report)
