"""A history of recorded runs (``inv ci --record``) and the level shifts in it.

The history is an append-only JSON Lines index next to the runs: one line per recording
(a CI invocation's candidate runs, pooled into one point of the trend). Lines are never
rewritten, so a history shared by many CI jobs only ever grows, and a damaged line is
reported by its number instead of silently dropping the points after it.

Change points are found by binary segmentation on medians (see ``change_points``): a
level shift is kept only when it is both large (a relative ``threshold``) and clear of the
run-to-run noise (``min_z`` robust standard errors), so a noisy but flat history stays
quiet and a single outlier run cannot make a step.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from watchbench.errors import ResultsError
from watchbench.results import load_runs
from watchbench.results.store import RESULTS_FILE

log = logging.getLogger(__name__)

HISTORY_SCHEMA = 1
SERIES_KEYS = ["benchmark", "params", "metric", "unit", "direction", "accel"]
# The metric a benchmark's trend shows, first one present; else its first metric by name.
HEADLINE_METRICS = ("ns_per_op", "ns_per_record")
# Median of n normal samples has about 1.2533 times the standard error of their mean.
_MEDIAN_SE = math.sqrt(math.pi / 2)


class HistoryError(ResultsError):
    """The history index is unreadable or names runs that cannot be loaded."""


# --- the index -------------------------------------------------------------------------


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
                           hint="record runs first (inv ci --record)") from exc
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
                           hint="record runs first (inv ci --record)")
    df = load_runs(runs_dir, wanted, skip_bad=skip_bad)
    bad_files = df.attrs.get("bad_files", [])
    run_ids = df["run_id"].astype("string")
    df["history_index"] = run_ids.map(lambda r: index[r][0]).astype("Int64")
    df["history_note"] = run_ids.map(lambda r: index[r][1]).astype("string")
    df = df.sort_values("history_index", kind="stable").reset_index(drop=True)
    df.attrs.update(bad_lines=bad_lines, missing_runs=missing, bad_files=bad_files)
    return df


# --- change points ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChangePoint:
    """A level shift: ``values[index:]`` sits at ``after``, the segment before at ``before``.

    ``change`` is ``after / before - 1`` (0.1 = +10 %); ``z`` is the shift in robust
    standard errors of the two segment medians.
    """

    index: int
    before: float
    after: float
    change: float
    z: float


def noise_scale(values: np.ndarray) -> float:
    """Robust standard deviation of the point-to-point noise, blind to a few level shifts.

    From first differences (a step moves only one of them), scaled by MAD; 0 for a
    perfectly flat series.
    """
    if len(values) < 3:
        return 0.0
    diffs = np.diff(values)
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    return 1.4826 * mad / math.sqrt(2)


def _best_split(x: np.ndarray, min_size: int) -> int | None:
    """The split of ``x`` with the lowest summed absolute deviation from segment medians."""
    best, where = math.inf, None
    for k in range(min_size, len(x) - min_size + 1):
        left, right = x[:k], x[k:]
        cost = (np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())
        if where is None or cost < best - 1e-12 * max(1.0, abs(best)):
            best, where = cost, k
    return where


def _judge(left: np.ndarray, right: np.ndarray, sigma: float) -> tuple[float, float, float, float]:
    before, after = float(np.median(left)), float(np.median(right))
    change = after / before - 1 if before != 0 else math.inf
    se = _MEDIAN_SE * sigma * math.sqrt(1 / len(left) + 1 / len(right))
    z = abs(after - before) / se if se > 0 else (math.inf if after != before else 0.0)
    return before, after, change, z


def change_points(
    values: Sequence[float],
    *,
    min_size: int = 3,
    threshold: float = 0.05,
    min_z: float = 4.0,
) -> list[ChangePoint]:
    """Where the level of ``values`` (per-run medians, in order) shifts, and by how much.

    Binary segmentation on medians: split a segment where the summed absolute deviation
    from the two halves' medians is smallest, keep the split if both halves hold at least
    ``min_size`` points on their side of the midpoint between the two medians, the medians
    differ by at least ``threshold`` (relative) and by at least ``min_z`` robust standard
    errors (noise from ``noise_scale``), and recurse into both halves. A final pass
    re-judges every kept point between its neighbours and drops the ones that no longer
    qualify. NaNs are not allowed; positions are indices of ``values``.
    """
    x = np.asarray(values, dtype=float)
    if np.isnan(x).any():
        raise ValueError("change_points: values contain NaN")
    if min_size < 1:
        raise ValueError("change_points: min_size must be at least 1")
    sigma = noise_scale(x)

    def qualifies(lo: int, k: int, hi: int) -> bool:
        before, after, change, z = _judge(x[lo:k], x[k:hi], sigma)
        if abs(change) < threshold or z < min_z:
            return False
        # Each level must be held by min_size points, not be the median of a short
        # segment that a couple of outliers dominate.
        mid, up = (before + after) / 2, after > before
        held_after = np.count_nonzero((x[k:hi] > mid) if up else (x[k:hi] < mid))
        held_before = np.count_nonzero((x[lo:k] < mid) if up else (x[lo:k] > mid))
        return held_after >= min_size and held_before >= min_size

    splits: list[int] = []
    pending = [(0, len(x))]
    while pending:
        lo, hi = pending.pop()
        if hi - lo < 2 * min_size:
            continue
        k = _best_split(x[lo:hi], min_size)
        if k is None or not qualifies(lo, lo + k, hi):
            continue
        splits.append(lo + k)
        pending += [(lo, lo + k), (lo + k, hi)]
    splits.sort()
    changed = True
    while changed and splits:
        changed = False
        bounds = [0, *splits, len(x)]
        for i in range(1, len(bounds) - 1):
            if not qualifies(bounds[i - 1], bounds[i], bounds[i + 1]):
                splits.remove(bounds[i])
                changed = True
                break
    bounds = [0, *splits, len(x)]
    out = []
    for i in range(1, len(bounds) - 1):
        before, after, change, z = _judge(x[bounds[i - 1]:bounds[i]],
                                          x[bounds[i]:bounds[i + 1]], sigma)
        out.append(ChangePoint(bounds[i], before, after, change, z))
    return out


# --- the trend of a history ------------------------------------------------------------


def headline_metrics(df: pd.DataFrame) -> dict[str, str]:
    """Per benchmark, the metric its trend shows (HEADLINE_METRICS first, else by name)."""
    ok = df[(df["status"] == "ok") & df["metric"].notna()]
    out = {}
    for bench, metrics in ok.groupby("benchmark", observed=True)["metric"]:
        names = sorted(set(map(str, metrics)))
        out[str(bench)] = next((m for m in HEADLINE_METRICS if m in names), names[0])
    return out


def trend(history: pd.DataFrame, headline_only: bool = True) -> pd.DataFrame:
    """Median of each series (benchmark/params/metric/unit/direction/accel) per entry.

    Columns: SERIES_KEYS, history_index, median, n, runs.
    """
    ok = history[(history["status"] == "ok") & history["value"].notna()]
    if headline_only:
        heads = headline_metrics(history)
        ok = ok[ok["metric"].astype("string") == ok["benchmark"].astype("string").map(heads)]
    cols = [*SERIES_KEYS, "history_index", "median", "n", "runs"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    grouped = ok.groupby([*SERIES_KEYS, "history_index"], observed=True, sort=True)
    out = grouped.agg(median=("value", "median"), n=("value", "size"),
                      runs=("run_id", "nunique")).reset_index()
    text = [c for c in SERIES_KEYS if isinstance(out[c].dtype, pd.CategoricalDtype)]
    return out.astype(dict.fromkeys(text, "string"))[cols]


def history_changes(history: pd.DataFrame, *, headline_only: bool = True, min_size: int = 3,
                    threshold: float = 0.05, min_z: float = 4.0) -> pd.DataFrame:
    """The change points of every series of ``trend(history)``, one row each.

    Columns: SERIES_KEYS, history_index (first entry at the new level), before, after,
    change, z, verdict ("regressed" or "improved" by the metric's direction).
    """
    rows = []
    for key, part in trend(history, headline_only).groupby(SERIES_KEYS, sort=True):
        part = part.sort_values("history_index")
        for cp in change_points(part["median"].to_numpy(float), min_size=min_size,
                                threshold=threshold, min_z=min_z):
            better = cp.change < 0 if key[4] == "lower" else cp.change > 0
            rows.append({**dict(zip(SERIES_KEYS, key, strict=True)),
                         "history_index": int(part["history_index"].iloc[cp.index]),
                         "before": cp.before, "after": cp.after, "change": cp.change,
                         "z": cp.z, "verdict": "improved" if better else "regressed"})
    return pd.DataFrame(rows, columns=[*SERIES_KEYS, "history_index", "before", "after",
                                       "change", "z", "verdict"])
