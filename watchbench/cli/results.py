"""report and compare: the stored runs as an HTML report or an A/B table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from watchbench.cli import command, settings_of, split_list
from watchbench.host.progress import Progress
from watchbench.report import compare_markdown, compare_table, write_report
from watchbench.results.store import load_runs
from watchbench.stats.compare import compare_frames


@command
def report(c: Any, runs: str | None, baseline: str | None, candidate: str | None,
           out: str | None, skip_bad: bool) -> None:
    settings = settings_of(c)
    runs_, a, b = split_list(runs), split_list(baseline), split_list(candidate)
    wanted = (runs_ + a + b) or None
    progress = Progress("report")
    progress.step(f"loading {len(set(wanted)) if wanted else 'all'} runs from {settings.runs_dir}")
    df = load_runs(settings.runs_dir, run_ids=list(dict.fromkeys(wanted)) if wanted else None,
                   skip_bad=skip_bad)
    for bad in df.attrs.get("bad_files", []):
        print(f"skipped bad result file: {bad}", file=sys.stderr)
    both = bool(a and b)
    judged = settings.decision
    target = Path(out) if out else settings.reports_dir
    progress.step(f"{df['run_id'].nunique()} runs, {len(df):,} rows: writing {target}")
    print(write_report(df, target,
                       baseline=a if both else None, candidate=b if both else None,
                       threshold=judged.threshold, alpha=judged.alpha,
                       noise_floor=judged.noise_floor))


@command
def compare(c: Any, a: str, b: str, markdown: str | None, skip_bad: bool,
            show_unchanged: bool) -> None:
    settings = settings_of(c)
    a_ids, b_ids = split_list(a), split_list(b)
    df = load_runs(settings.runs_dir, run_ids=[*a_ids, *b_ids], skip_bad=skip_bad)
    judged = settings.decision
    table = compare_frames(df, a_ids, b_ids, threshold=judged.threshold, alpha=judged.alpha,
                           noise_floor=judged.noise_floor)
    if markdown:
        Path(markdown).write_text(compare_markdown(table))
    print(compare_table(table, color=sys.stdout.isatty(), show_unchanged=show_unchanged))
