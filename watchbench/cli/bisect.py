"""bisect: the commit that slowed a benchmark, each step saying how sure it is."""

from __future__ import annotations

from typing import Any

from watchbench.cli import command, settings_of
from watchbench.flows.bisect import bisect as find_first_bad
from watchbench.host.progress import Progress


@command
def bisect(c: Any, good: str, bad: str, benchmark: str, metric: str | None, params: str,
           rounds: str | None, accel: str | None, suite: str | None) -> None:
    first, steps = find_first_bad(settings_of(c), good, bad, benchmark, metric, params, suite,
                                  accel, int(rounds) if rounds else None,
                                  progress=Progress("bisect"))
    print("\n".join(step.describe() for step in steps))
    print(f"first bad commit: {first}")
