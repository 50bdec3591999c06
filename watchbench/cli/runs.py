"""runs: the stored runs, newest first, so that compare, report and export can be given
their ids. Reads manifests only (results.catalog): it must start as fast as --list."""

from __future__ import annotations

import time
from typing import Any

from watchbench.cli import WIDTH, as_typed, command, fit, settings_of
from watchbench.errors import InputError
from watchbench.results.catalog import StoredRun, stored_runs

LIMIT = 20  # runs shown when --limit is left out


def parse_limit(text: object) -> int:
    """--limit: a whole number >= 0 (0: every run)."""
    if text is None:
        return LIMIT
    raw = str(text).strip()
    if not raw.isdigit():
        raise InputError(f"--limit {text!r}: must be a whole number >= 0 (0: every run)",
                         hint=f"e.g. ./wb runs --limit {LIMIT}")
    return int(raw)


def _clip(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _when(run: StoredRun) -> str:
    """``2026-12-07 00:50`` from the manifest's ISO timestamp (UTC)."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.strptime(run.timestamp, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return run.timestamp[:16] or "?"


def run_lines(runs: list[StoredRun]) -> list[str]:
    """Two lines a run, in 80 columns: id, time (UTC), accelerator, suite and label; then
    the kernel (release + series, and the base it was built from); a third for the
    user's extra boot parameters and kconfig options, which make runs incomparable."""
    lines = [f"{'run':33}  {'time (UTC)':16}  {'accel':6}  suite / label",
             "    kernel (release + series, base)"]
    for run in runs:
        if run.problem:
            lines += [_clip(f"{run.run_id:33}  {run.problem}"), ""]
            continue
        state = "" if run.ingested else "  [no results]"
        label = f"  {run.label}" if run.label else ""
        lines.append(_clip(f"{run.run_id:33}  {_when(run):16}  {run.accel:6}  "
                           f"{run.suite}{label}{state}"))
        base = f"  ({run.base_label})" if run.base_label else ""
        lines.append(_clip(f"    {run.kernel or '?'}{base}"))
        extra = "  ".join(f"{name} {value}" for name, value in (
            ("args:", run.kernel_args), ("kconfig:", run.kconfig_add)) if value)
        if extra:  # a third line, only for a run that has them
            lines.append(_clip(f"    {extra}"))
    return lines


@command
def runs(c: Any, limit: object = None) -> None:
    settings = settings_of(c)
    count = parse_limit(limit)
    stored = stored_runs(settings.runs_dir)
    if not stored:
        print(fit(as_typed(f"no runs stored under {settings.runs_dir} (./wb bench makes one)")))
        return
    shown = stored[:count] if count else stored
    for line in run_lines(shown):
        print(line)
    more = f" (the newest {len(shown)}; all of them: ./wb runs --limit 0)" \
        if len(shown) < len(stored) else ""
    print(fit(as_typed(f"{len(stored)} runs under {settings.runs_dir}{more}")))
