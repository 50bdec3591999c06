"""The report and compare tasks: load stored runs, then hand them to the report package."""

from __future__ import annotations

import sys
from pathlib import Path

from watchbench.report import compare_markdown, compare_table, write_report
from watchbench.results import load_runs
from watchbench.settings import Settings
from watchbench.stats import compare_frames


def make_report(settings: Settings, runs: list[str], baseline: list[str], candidate: list[str],
                out: Path, skip_bad: bool = False) -> Path:
    wanted = (runs + baseline + candidate) or None
    df = load_runs(settings.runs_dir, run_ids=list(dict.fromkeys(wanted)) if wanted else None,
                   skip_bad=skip_bad)
    for bad in df.attrs.get("bad_files", []):
        print(f"skipped bad result file: {bad}", file=sys.stderr)
    both = bool(baseline and candidate)
    return write_report(df, out, baseline=baseline if both else None,
                        candidate=candidate if both else None)


def compare_runs(settings: Settings, a: list[str], b: list[str], markdown: Path | None = None,
                 skip_bad: bool = False, show_unchanged: bool = False) -> str:
    df = load_runs(settings.runs_dir, run_ids=[*a, *b], skip_bad=skip_bad)
    table = compare_frames(df, a, b)
    if markdown:
        markdown.write_text(compare_markdown(table))
    return compare_table(table, color=sys.stdout.isatty(), show_unchanged=show_unchanged)
