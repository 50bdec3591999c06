"""Where a gated change went: profile the kernels the gate compared, diff per function.

After the verdict, the baseline and the candidate (and, with ``--per-patch``, every
prefix of the series) are booted once more, under icount with the instruction-count
plugin, running only the benchmarks whose metrics moved (``--profile changed``, the
default), all of them (``all``) or none (``none``). One profiled boot per kernel is
enough: the counts are exact, so there is nothing to average. When the gate's own boots
were profiled (the cache model on, the default under icount), the last of each kernel's
is read instead: no boot more.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import pandas as pd

from watchbench.errors import InputError
from watchbench.host.progress import Progress
from watchbench.host.runner import Runner
from watchbench.kernel.build import Kernel
from watchbench.results.profile import PROFILE_FILE, read_profile
from watchbench.settings import Settings
from watchbench.stats.decision import Verdict
from watchbench.stats.profilediff import Explanation, Step, profile_diff
from watchbench.vm.qemu import Accel

MOVED = (Verdict.REGRESSED, Verdict.IMPROVED)


class Explain(StrEnum):
    """Which metrics ``./wb ci`` profiles to say where their change went."""

    CHANGED = "changed"  # those the gate called regressed or improved
    ALL = "all"
    NONE = "none"


def parse_explain(text: str) -> Explain:
    try:
        return Explain(text)
    except ValueError:
        raise InputError(f"--profile {text!r}: choose {', '.join(Explain)}") from None


def to_explain(comparisons: pd.DataFrame, explain: Explain) -> pd.DataFrame:
    """The comparison rows to explain: moved gated metrics, or every gated one."""
    if explain is Explain.NONE or comparisons.empty:
        return comparisons.iloc[0:0]
    gated = comparisons[comparisons["gated"]]
    rows = gated if explain is Explain.ALL else gated[gated["verdict"].isin(MOVED)]
    return rows[["benchmark", "params", "metric", "verdict"]].reset_index(drop=True)


ProfileBoot = Callable[..., Path]


def explain_gate(settings: Settings, suite: str, kernels: list[tuple[int, str, Kernel]],
                 moved: pd.DataFrame, bench: ProfileBoot, runner: Runner,
                 progress: Progress, profiled: list[Path | None] | None = None
                 ) -> Explanation | None:
    """Profile ``kernels`` ((patch index, subject, kernel), baseline first, candidate
    last) on the benchmarks of ``moved``; the diff of the ends and of each step.
    ``profiled``: per kernel, a gate boot already profiled the same way (the cache model
    on: every gate boot is), read instead of booting again; the counts are exact, so a
    boot more would give the same."""
    if moved.empty:
        return None
    only = frozenset(moved["benchmark"])
    tables, run_dirs = [], []
    for position, (index, _, kernel) in enumerate(kernels):
        done = profiled[position] if profiled else None
        if done is not None and (done / PROFILE_FILE).is_file():
            table = read_profile(done)
            tables.append(table[table["benchmark"].isin(only)].reset_index(drop=True))
            run_dirs.append(done)
            continue
        progress.step(f"profile {index} of {len(kernels) - 1} patches: {', '.join(sorted(only))}")
        run_dir = bench(settings, suite, Accel.ICOUNT, label="profile", kernel=kernel,
                        runner=runner, progress=progress, profile=True, only=only,
                        extra={"profile_of": "ci", "profile_patch_index": index})
        tables.append(read_profile(run_dir))
        run_dirs.append(run_dir)
    steps = [Step(kernels[i][0], kernels[i][1], profile_diff(tables[i - 1], tables[i]))
             for i in range(1, len(kernels))] if len(kernels) > 2 else []
    return Explanation(moved, profile_diff(tables[0], tables[-1]), steps, run_dirs)
