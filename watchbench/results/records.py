"""Parse the benchmark programs' JSON Lines records (bench/RECORDS.md) into sample rows.

Strict on purpose: a malformed record is a bug in the program that wrote it, and it is
cheaper to stop at ``file:line`` now than to average a wrong number into a report later.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from watchbench.errors import ResultsError
from watchbench.results.schema import DIRECTIONS, LEGACY_PRIMARY, STATUSES
from watchbench.vm.share import LIMITS, read_bytes

RECORD_SCHEMA = 1
SOURCES = frozenset({"c", "kernel", "python"})
_HINT = "the record format is bench/RECORDS.md; fix the program that wrote this line"

Row = dict[str, Any]


def param_text(value: object) -> str:
    """One spelling per value, so equal params always make equal group keys."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def round_robin(params: dict[str, Any]) -> bool:
    """Does the case's meaning depend on two CPUs running at once? Under icount they
    take turns (round-robin), so its figures depend on the interleaving."""
    return params.get("reader") == "other-cpu"


def params_key(params: dict[str, Any]) -> str:
    """Canonical ``k=v, k=v`` text of a params dict, keys sorted: the grouping key."""
    return ", ".join(f"{k}={param_text(params[k])}" for k in sorted(params))


def _fail(where: str, what: str) -> ResultsError:
    return ResultsError(f"{where}: {what}", hint=_HINT)


def _check_params(params: object, where: str) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise _fail(where, f"params must be an object, got {type(params).__name__}")
    for key, value in params.items():
        if not isinstance(value, str | int | float | bool):
            raise _fail(where, f"param {key!r} is not a flat str/int/float/bool value")
    return params


def _metric_rows(metrics: object, where: str) -> list[tuple[str, str, str, float, bool]]:
    """(name, unit, direction, value, primary) per metric; at most one is primary, and a
    record that flags none (written before the flag) has its LEGACY_PRIMARY one."""
    if not isinstance(metrics, dict) or not metrics:
        raise _fail(where, "an ok record needs a non-empty metrics object")
    out = []
    for name, metric in metrics.items():
        if not isinstance(metric, dict):
            raise _fail(where, f"metric {name!r} is not an object")
        value, unit, direction = metric.get("value"), metric.get("unit"), metric.get("direction")
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value):
            raise _fail(where, f"metric {name!r} has no finite numeric value ({value!r})")
        if not isinstance(unit, str):
            raise _fail(where, f"metric {name!r} has no unit")
        if direction not in DIRECTIONS:
            raise _fail(where, f"metric {name!r} direction {direction!r} is not lower/higher")
        primary = metric.get("primary", False)
        if not isinstance(primary, bool):
            raise _fail(where, f"metric {name!r} primary {primary!r} is not true/false")
        out.append((name, unit, direction, float(value), primary))
    flagged = [m[0] for m in out if m[4]]
    if len(flagged) > 1:
        raise _fail(where, f"metrics {', '.join(flagged)} are all primary; a record has one "
                    "primary metric (the others are derived from the same measurement)")
    if not flagged:
        legacy = next((n for n in LEGACY_PRIMARY if n in metrics), None)
        out = [(n, u, d, v, n == legacy) for n, u, d, v, _ in out]
    return out


def record_rows(record: object, where: str, raw_file: str) -> list[Row]:
    """Rows for one parsed record: one per metric when ok, one status row otherwise."""
    if not isinstance(record, dict):
        raise _fail(where, "a record must be a JSON object")
    if record.get("schema") != RECORD_SCHEMA:
        raise _fail(where, f"record schema {record.get('schema')!r}, expected {RECORD_SCHEMA}")
    benchmark, source, status = record.get("benchmark"), record.get("source"), record.get("status")
    if not isinstance(benchmark, str) or not benchmark:
        raise _fail(where, "record has no benchmark name")
    if source not in SOURCES:
        raise _fail(where, f"source {source!r} is not one of {', '.join(sorted(SOURCES))}")
    if status not in STATUSES:
        raise _fail(where, f"status {status!r} is not one of {', '.join(sorted(STATUSES))}")
    params = _check_params(record.get("params"), where)
    repeat, loops = record.get("repeat"), record.get("iterations")
    for name, number in (("repeat", repeat), ("iterations", loops)):
        if number is not None and (not isinstance(number, int) or number < 0):
            raise _fail(where, f"{name} {number!r} is not a non-negative integer")
    counts = record.get("counts") or {}
    if not isinstance(counts, dict):
        raise _fail(where, "counts must be an object")
    base: Row = {
        "benchmark": benchmark,
        "source": source,
        "params": params_key(params),
        "param_values": params,
        "count_values": counts,
        "iteration": repeat,
        "loops": loops,
        "status": status,
        "raw_file": raw_file,
    }
    if status != "ok":
        reason = record.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise _fail(where, f"a {status} record must say why in 'reason'")
        return [{**base, "metric": None, "unit": None, "direction": None, "value": None,
                 "primary": False, "reason": reason}]
    return [
        {**base, "metric": name, "unit": unit, "direction": direction, "value": value,
         "primary": primary, "reason": ""}
        for name, unit, direction, value, primary in _metric_rows(record.get("metrics"), where)
    ]


def read_jsonl(path: Path, raw_file: str) -> list[Row]:
    """Rows of every record line in ``path``; lines not starting with ``{`` are chatter."""
    rows: list[Row] = []
    try:
        text = read_bytes(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: unreadable: {exc}", hint=_HINT) from exc
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line.startswith("{"):
            continue
        where = f"{path}:{lineno}"
        if len(line) > LIMITS.record_bytes:
            raise _fail(where, f"a record of {len(line):,} bytes, over the "
                        f"{LIMITS.record_bytes:,} one may hold (vm.share.Limits)")
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise _fail(where, f"not valid JSON ({exc}); a truncated line means the "
                        "program died mid-record") from exc
        rows.extend(record_rows(record, where, raw_file))
    return rows
