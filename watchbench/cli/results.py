"""report, compare and export: the stored runs as an HTML report, an A/B table or files
other tools read."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from watchbench.cli import command, settings_of, split_list
from watchbench.errors import InputError
from watchbench.host.progress import Progress
from watchbench.report import compare_markdown, compare_table, write_report
from watchbench.report.export import Format, export_table, write_export
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


@command
def export(c: Any, fmt: str | None, runs: str | None, out: str | None, skip_bad: bool) -> None:
    settings = settings_of(c)
    known = " | ".join(Format)
    if not fmt:
        raise InputError("export needs --format", hint=f"one of {known}")
    try:
        format_ = Format(fmt)
    except ValueError:
        raise InputError(f"unknown export format {fmt!r}", hint=f"one of {known}") from None
    wanted = list(dict.fromkeys(split_list(runs))) or None
    progress = Progress("export")
    progress.step(f"loading {len(wanted) if wanted else 'all'} runs from {settings.runs_dir}")
    df = load_runs(settings.runs_dir, run_ids=wanted, skip_bad=skip_bad)
    for path, why in df.attrs.get("bad_files", []):
        print(f"skipped bad result file: {path}: {why}", file=sys.stderr)
    table = export_table(df)
    if format_.direction:
        figures = int((table["direction"] == format_.direction).sum())
    else:
        figures = len(table)
    path = write_export(table, format_, Path(out) if out else settings.reports_dir / format_.filename)
    n_runs = df["run_id"].nunique()
    print(f"{figures} figures of {n_runs} run{'' if n_runs == 1 else 's'} as {format_.value}")
    print(path)
