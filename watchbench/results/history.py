"""The history of recorded runs (``./wb ci --record``): an append-only index.

The history is an append-only JSON Lines index next to the runs: one line per recording
(a CI invocation's candidate runs, pooled into one point of the trend). Lines are never
rewritten, so a history shared by many CI jobs only ever grows, and a damaged line is
reported by its number instead of silently dropping the points after it.

The change points of a history are found in ``stats.changepoints``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import pandas as pd

from watchbench.errors import ResultsError
from watchbench.results.rundir import RESULTS_FILE
from watchbench.results.store import load_runs

log = logging.getLogger(__name__)

HISTORY_SCHEMA = 1
HISTORY_FILE = "history.jsonl"  # beside the run directories, in the runs dir


class HistoryError(ResultsError):
    """The history index is unreadable or names runs that cannot be loaded."""


def record(history_path: Path, run_ids: list[str], note: str = "") -> None:
    """Append one entry (these runs, pooled as one point of the trend) to the history.

    Existing lines are never touched. If the last line lacks its newline (a writer died
    mid-line), the new entry starts on a fresh line so only the damaged one is lost.
    """
    if isinstance(run_ids, str) or not run_ids or not all(isinstance(r, str) and r
                                                          for r in run_ids):
        raise HistoryError(f"{history_path}: nothing to record: run ids {run_ids!r}",
                           hint="pass the candidate's run ids as a non-empty list of names")
    entry = {"schema_version": HISTORY_SCHEMA,
             "recorded": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
             "run_ids": list(run_ids), "note": str(note)}
    line = json.dumps(entry, sort_keys=True) + "\n"
    history_path = Path(history_path)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    with open(history_path, "ab") as out:
        if out.tell() > 0:
            with open(history_path, "rb") as tail:
                tail.seek(-1, os.SEEK_END)
                if tail.read(1) != b"\n":
                    line = "\n" + line
        out.write(line.encode("utf-8"))
        out.flush()
        os.fsync(out.fileno())


def _parse_line(text: str, where: str) -> dict:
    try:
        entry = json.loads(text)
    except ValueError as exc:
        raise HistoryError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(entry, dict):
        raise HistoryError(f"{where}: an entry must be a JSON object")
    version = entry.get("schema_version")
    if version != HISTORY_SCHEMA:
        raise HistoryError(f"{where}: history schema {version!r}, this watchbench reads "
                           f"{HISTORY_SCHEMA}", hint="update watchbench")
    ids = entry.get("run_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(r, str) and r for r in ids):
        raise HistoryError(f"{where}: run_ids {ids!r} is not a non-empty list of names")
    return entry


def read_entries(history_path: Path, skip_bad: bool = False) -> list[dict]:
    """The valid entries in file order; a bad line raises (naming it) unless ``skip_bad``,
    which logs and skips it (``load_history`` lists them in ``attrs["bad_lines"]``)."""
    entries, _ = _read(Path(history_path), skip_bad)
    return entries


def _read(path: Path, skip_bad: bool) -> tuple[list[dict], list[tuple[int, str]]]:
    hint = "the history is append-only and left as it is; pass skip_bad=True (--skip-bad)"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise HistoryError(f"{path}: no history yet",
                           hint="record runs first (`./wb ci --record`)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryError(f"{path}: unreadable: {exc}", hint=hint) from exc
    entries, bad = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(_parse_line(line, f"{path}:{lineno}"))
        except HistoryError as exc:
            if not skip_bad:
                exc.hint = exc.hint or hint
                raise
            log.warning("skipped bad history line %s", exc.message)
            bad.append((lineno, exc.message))
    return entries, bad


def load_history(history_path: Path, runs_dir: Path, skip_bad: bool = False) -> pd.DataFrame:
    """``load_runs`` over the recorded runs, in recorded order, with ``history_index``.

    ``history_index`` is the entry's position (0-based, among valid lines) and
    ``history_note`` its note. With ``skip_bad``, bad lines and runs that are gone or
    unreadable are left out and listed in ``attrs["bad_lines"]`` / ``attrs["missing_runs"]``
    / ``attrs["bad_files"]``; without it they raise.
    """
    history_path, runs_dir = Path(history_path), Path(runs_dir)
    entries, bad_lines = _read(history_path, skip_bad)
    index: dict[str, tuple[int, str]] = {}
    for i, entry in enumerate(entries):
        for run_id in entry["run_ids"]:
            index.setdefault(run_id, (i, str(entry.get("note", ""))))
    missing = [r for r in index if not (runs_dir / r / RESULTS_FILE).is_file()]
    if missing and not skip_bad:
        raise HistoryError(
            f"{history_path}: {len(missing)} recorded run(s) missing or not ingested in "
            f"{runs_dir}: {', '.join(missing[:10])}",
            hint="restore or ingest those runs, or pass skip_bad=True (--skip-bad)",
        )
    wanted = [r for r in index if r not in missing]
    if not wanted:
        raise HistoryError(f"{history_path}: no loadable runs recorded",
                           hint="record runs first (`./wb ci --record`)")
    df = load_runs(runs_dir, wanted, skip_bad=skip_bad)
    bad_files = df.attrs.get("bad_files", [])
    run_ids = df["run_id"].astype("string")
    df["history_index"] = run_ids.map(lambda r: index[r][0]).astype("Int64")
    df["history_note"] = run_ids.map(lambda r: index[r][1]).astype("string")
    df = df.sort_values("history_index", kind="stable").reset_index(drop=True)
    df.attrs.update(bad_lines=bad_lines, missing_runs=missing, bad_files=bad_files)
    return df
