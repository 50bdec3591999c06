"""report, compare and export: the stored runs as an HTML report, an A/B table or files
other tools read."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from watchbench.cli import command, settings_of, split_list
from watchbench.cli.options import non_empty, out_dir, out_file
from watchbench.errors import InputError
from watchbench.host.progress import Progress
from watchbench.report import compare_markdown, compare_table, write_report
from watchbench.report.export import Format, export_table, write_export
from watchbench.report.questions import focus
from watchbench.results.store import load_runs
from watchbench.stats.compare import compare_frames

if TYPE_CHECKING:
    import pandas as pd


@command
def report(c: Any, runs: str | None, baseline: str | None, candidate: str | None,
           out: str | None, skip_bad: bool) -> None:
    settings = settings_of(c)
    runs_, a, b = split_list(runs), split_list(baseline), split_list(candidate)
    for flag, given, items in (("--runs", runs, runs_), ("--baseline", baseline, a),
                               ("--candidate", candidate, b)):
        if given is not None:
            non_empty(flag, items, f"./wb report {flag} RUN_ID[,RUN_ID...]")
    if bool(a) != bool(b):
        raise InputError("--baseline and --candidate go together (an A/B table needs both)",
                         hint="e.g. ./wb report --baseline RUN_A --candidate RUN_B")
    target_dir = out_dir("--out", out)
    wanted = (runs_ + a + b) or None
    progress = Progress("report")
    progress.step(f"loading {len(set(wanted)) if wanted else 'all'} runs from {settings.runs_dir}")
    df = load_runs(settings.runs_dir, run_ids=list(dict.fromkeys(wanted)) if wanted else None,
                   skip_bad=skip_bad)
    for bad in df.attrs.get("bad_files", []):
        print(f"skipped bad result file: {bad}", file=sys.stderr)
    both = bool(a and b)
    target = target_dir or settings.reports_dir
    progress.step(f"{df['run_id'].nunique()} runs, {len(df):,} rows: writing {target}")
    print(write_report(df, target,
                       baseline=a if both else None, candidate=b if both else None,
                       judgement=settings.decision))


@command
def compare(c: Any, a: str, b: str, markdown: str | None, skip_bad: bool,
            show_unchanged: bool) -> None:
    settings = settings_of(c)
    a_ids = non_empty("A", split_list(a), "./wb compare RUN_A RUN_B")
    b_ids = non_empty("B", split_list(b), "./wb compare RUN_A RUN_B")
    target = out_file("--markdown", markdown)
    df = load_runs(settings.runs_dir, run_ids=[*a_ids, *b_ids], skip_bad=skip_bad)
    table = compare_frames(df, a_ids, b_ids, judgement=settings.decision)
    if target:
        target.write_text(compare_markdown(table))
    print(compare_table(table, color=sys.stdout.isatty(), show_unchanged=show_unchanged))


def newest_comparable(df: pd.DataFrame) -> pd.DataFrame:
    """The newest run and the runs comparable with it (same kernel, accelerator, host and
    suite: ``questions.focus``, as its headline pools them), so that a cache holding
    several kernels still exports one kernel's figures by default."""
    chosen = focus(df)
    if chosen.empty:
        return df
    ids = set(chosen["run_id"].astype(str))
    newest = chosen.loc[chosen["timestamp"].idxmax(), "run_id"]
    print(f"the newest run {newest} and the {len(ids) - 1} comparable with it "
          "(every stored run: --runs all)", file=sys.stderr)
    return df[df["run_id"].astype(str).isin(ids)]


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
    if runs is not None:
        non_empty("--runs", split_list(runs), "./wb export --format csv --runs RUN_ID")
    every = split_list(runs) == ["all"]
    wanted = None if every else list(dict.fromkeys(split_list(runs))) or None
    target = out_file("--out", out)
    progress = Progress("export")
    progress.step(f"loading {len(wanted) if wanted else 'all'} runs from {settings.runs_dir}")
    df = load_runs(settings.runs_dir, run_ids=wanted, skip_bad=skip_bad)
    for path, why in df.attrs.get("bad_files", []):
        print(f"skipped bad result file: {path}: {why}", file=sys.stderr)
    if runs is None:
        df = newest_comparable(df)
    table = export_table(df)
    if format_.direction:
        figures = int((table["direction"] == format_.direction).sum())
    else:
        figures = len(table)
    path = write_export(table, format_, target or settings.reports_dir / format_.filename)
    n_runs = df["run_id"].nunique()
    print(f"{figures} figures of {n_runs} run{'' if n_runs == 1 else 's'} as {format_.value}")
    print(path)
