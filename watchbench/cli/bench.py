"""bench: one boot of the built kernel with a suite, stored as a run."""

from __future__ import annotations

from typing import Any

from watchbench.cli import command, settings_of
from watchbench.host.progress import Progress
from watchbench.suite.run import run_bench


@command
def bench(c: Any, suite: str | None, accel: str | None, label: str) -> None:
    settings = settings_of(c)
    print(run_bench(settings, suite or settings.suite, accel, label, progress=Progress("bench")))
