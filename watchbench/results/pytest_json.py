"""Parse pytest-benchmark ``--benchmark-json`` output into sample rows.

Only the raw per-round samples (``stats.data``, present with ``--benchmark-save-data``) are
ingested: pytest-benchmark's own summary hides the spread our statistics need.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from watchbench.errors import ResultsError
from watchbench.results.records import Row, param_text, params_key

_HINT = "run pytest with --benchmark-json=FILE --benchmark-save-data"


def _benchmark_name(bench: dict[str, Any]) -> str:
    """``extra_info["benchmark"]`` names it (e.g. py-pipe-read); else the test function."""
    extra = bench.get("extra_info") or {}
    if isinstance(extra.get("benchmark"), str) and extra["benchmark"]:
        return extra["benchmark"]
    return str(bench.get("name", "")).split("[", 1)[0] or "pytest"


def _params(bench: dict[str, Any]) -> dict[str, Any]:
    """pytest parametrize values (stringified when not scalar) plus ``extra_info["params"]``."""
    params: dict[str, Any] = {}
    for key, value in (bench.get("params") or {}).items():
        params[key] = value if isinstance(value, str | int | float | bool) else param_text(value)
    extra = (bench.get("extra_info") or {}).get("params") or {}
    if isinstance(extra, dict):
        params.update(extra)
    return params


def read_pytest_json(path: Path, raw_file: str) -> list[Row]:
    """One row per round of every benchmark: ns per operation, lower is better.

    A call that performs several operations says so in ``extra_info["ops_per_round"]``
    (userspace/python does); its ``extra_info["counts"]`` become the ``count_*`` columns.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable pytest-benchmark JSON: {exc}", hint=_HINT) from exc
    benches = doc.get("benchmarks") if isinstance(doc, dict) else None
    if not isinstance(benches, list):
        raise ResultsError(f"{path}: no 'benchmarks' list; not pytest-benchmark JSON", hint=_HINT)
    rows: list[Row] = []
    for bench in benches:
        stats = bench.get("stats") or {}
        data = stats.get("data")
        where = f"{path}: benchmark {bench.get('fullname') or bench.get('name')!r}"
        if not isinstance(data, list) or not data:
            raise ResultsError(f"{where} has no raw samples (stats.data)", hint=_HINT)
        params = _params(bench)
        extra = bench.get("extra_info") or {}
        ops = extra.get("ops_per_round", 1)
        if isinstance(ops, bool) or not isinstance(ops, int | float) or ops <= 0:
            raise ResultsError(f"{where}: extra_info ops_per_round {ops!r} is not positive",
                               hint="set it to the operations one benchmarked call performs")
        counts = extra.get("counts") if isinstance(extra.get("counts"), dict) else {}
        base: Row = {
            "benchmark": _benchmark_name(bench),
            "source": "python",
            "params": params_key(params),
            "param_values": params,
            "count_values": counts,
            "loops": stats.get("iterations"),
            "status": "ok",
            "raw_file": raw_file,
            "metric": "ns_per_op",
            "unit": "ns",
            "direction": "lower",
            "primary": True,
            "reason": "",
        }
        for i, seconds in enumerate(data):
            if not isinstance(seconds, int | float) or not math.isfinite(seconds):
                raise ResultsError(f"{where}: sample {i} is {seconds!r}", hint=_HINT)
            rows.append({**base, "iteration": i, "value": float(seconds) * 1e9 / ops})
    return rows
