"""Per-run Parquet files: written once by ingest, read (and migrated) by ``load_runs``.

A results file is never deleted or rewritten in place: ingest writes a temporary file and
renames it over the old one only when everything parsed, and a bad file is reported by
name so its owner can look at it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from watchbench.errors import ResultsError
from watchbench.results import schema
from watchbench.results.profile import model_rows
from watchbench.results.pytest_json import read_pytest_json
from watchbench.results.records import Row, param_text, read_jsonl
from watchbench.results.rundir import (
    PYTEST_GLOB,
    RECORDS_GLOB,
    RESULTS_FILE,
    raw_dir,
    read_manifest,
)
from watchbench.results.schema import (
    COLUMNS,
    COUNT_PREFIX,
    OPTIONAL_MANIFEST_COLUMNS,
    PARAM_PREFIX,
    STRING_COLUMNS,
    add_optional,
    coerce_types,
    migrate,
    text_category,
)

log = logging.getLogger(__name__)

VERSION_KEY = b"watchbench.schema_version"


def _flat_column(values: list[Any]) -> pd.Series:
    """Keep a param/count column numeric or boolean when all its values agree, else text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="boolean")
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="Int64")
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.Series(values, dtype="float64")
    return pd.Series([None if v is None else param_text(v) for v in values], dtype="string")


# The columns made text: straight to categories, each distinct value made text once
# (``schema.text_category``); coerce_types types the rest.
_TEXT_COLUMNS = frozenset({*STRING_COLUMNS, *(c for c, kind in OPTIONAL_MANIFEST_COLUMNS.items()
                                              if kind is not int)})


def rows_to_frame(rows: list[Row], provenance: dict[str, Any]) -> pd.DataFrame:
    """The run's table: provenance on every row, params and counts flattened to columns."""
    n = len(rows)
    data: dict[str, Any] = {}
    for col in COLUMNS:
        if col in rows[0]:
            values = [row.get(col) for row in rows]
            data[col] = text_category(np.fromiter(values, dtype=object, count=n)) \
                if col in _TEXT_COLUMNS else values
    for col, value in provenance.items():
        if col in _TEXT_COLUMNS:
            constant = np.empty(n, dtype=object)
            constant.fill(value)
            data[col] = text_category(constant)
        else:
            data[col] = [value] * n
    data["schema_version"] = np.full(n, schema.SCHEMA_VERSION, dtype=np.int64)
    extra: dict[str, pd.Series] = {}
    for prefix, field in ((PARAM_PREFIX, "param_values"), (COUNT_PREFIX, "count_values")):
        keys = sorted({k for row in rows for k in row[field]})
        for key in keys:
            extra[prefix + key] = _flat_column([row[field].get(key) for row in rows])
    optional = [c for c in OPTIONAL_MANIFEST_COLUMNS if c in provenance]
    df = coerce_types(pd.DataFrame({c: data[c] for c in [*COLUMNS, *optional]}))
    if extra:
        df = pd.concat([df, pd.DataFrame(extra)], axis=1)
    return df


def parse_run(run_dir: Path) -> pd.DataFrame:
    """Everything under ``run_dir/raw`` plus its manifest, as one frame (nothing written)."""
    provenance = read_manifest(run_dir)
    raw = raw_dir(run_dir)
    if not raw.is_dir():
        raise ResultsError(f"{raw}: no raw/ directory",
                           hint="the run produced no output; re-run it")
    rows: list[Row] = []
    for path in sorted(raw.glob(RECORDS_GLOB)):
        rows.extend(read_jsonl(path, path.name))
    for path in sorted(raw.glob(PYTEST_GLOB)):
        rows.extend(read_pytest_json(path, path.name))
    if not rows:
        raise ResultsError(
            f"{raw}: no benchmark records ({RECORDS_GLOB} or {PYTEST_GLOB})",
            hint="look at the run's boot log: the benchmarks did not report anything",
        )
    # A profile taken with the cache model adds its estimate per case (a model): a gate
    # over these boots decides it beside the measured metrics.
    params = {(r["benchmark"], r["params"]): r["param_values"] for r in rows}
    rows.extend(model_rows(run_dir, params))
    return rows_to_frame(rows, provenance)


def write_results(df: pd.DataFrame, path: Path) -> None:
    """Write atomically: a crash leaves either the old file or the new one, never half."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[VERSION_KEY] = str(schema.SCHEMA_VERSION).encode()
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ingest_run(run_dir: Path) -> Path:
    """Parse ``run_dir``'s raw outputs into ``run_dir/results.parquet``; return its path."""
    run_dir = Path(run_dir)
    df = parse_run(run_dir)
    path = run_dir / RESULTS_FILE
    write_results(df, path)
    return path


_BAD_HINT = "the file is left as it is; re-ingest the run from raw/ or pass --skip-bad"


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas straight into the store's dtypes (no second conversion pass)."""
    mapping = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow"),
               pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=mapping.get)


def _read_table(path: Path) -> pa.Table:
    """Read one results file as Arrow, migrated to the current schema; errors name the file."""
    try:
        columns = pq.read_schema(path).names
        table = pq.read_table(path, read_dictionary=[c for c in STRING_COLUMNS if c in columns])
    except (OSError, pa.ArrowException) as exc:
        raise ResultsError(f"{path}: not a readable Parquet file: {exc}", hint=_BAD_HINT) from exc
    raw_version = (table.schema.metadata or {}).get(VERSION_KEY)
    try:
        if raw_version is not None:
            version = int(raw_version)
        else:
            version = int(table.column("schema_version")[0].as_py())
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise ResultsError(f"{path}: no results schema version", hint=_BAD_HINT) from exc
    if version == schema.SCHEMA_VERSION and all(c in table.column_names for c in COLUMNS):
        return table
    try:
        df = coerce_types(migrate(_to_pandas(table), version, path))
    except (ValueError, TypeError, KeyError) as exc:
        raise ResultsError(f"{path}: columns of unexpected types: {exc}", hint=_BAD_HINT) from exc
    return pa.Table.from_pandas(df, preserve_index=False)


def _combine(tables: list[pa.Table]) -> pd.DataFrame:
    """One frame of many runs; params that changed type between runs fall back to text."""
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        df = pd.concat([_to_pandas(t) for t in tables], ignore_index=True)
        for col in df.columns:
            if col.startswith(PARAM_PREFIX) and df[col].dtype == object:
                df[col] = df[col].map(lambda v: None if pd.isna(v) else param_text(v))
                df[col] = df[col].astype("string")
        return coerce_types(df)
    return coerce_types(_to_pandas(table))


def read_results(path: Path) -> pd.DataFrame:
    """Read one results file, migrating older schemas; ResultsError names a bad file."""
    try:
        return add_optional(coerce_types(_to_pandas(_read_table(path))))
    except (ValueError, TypeError) as exc:
        raise ResultsError(f"{path}: columns of unexpected types: {exc}", hint=_BAD_HINT) from exc


def _requested_paths(runs_dir: Path, run_ids: list[str] | None) -> list[Path]:
    if run_ids is None:
        return sorted(runs_dir.glob(f"*/{RESULTS_FILE}"))
    paths = []
    for run_id in run_ids:
        path = runs_dir / run_id / RESULTS_FILE
        if not path.parent.is_dir():
            known = sorted(p.name for p in runs_dir.iterdir() if p.is_dir())
            raise ResultsError(
                f"{path.parent}: no such run",
                hint=f"known runs: {', '.join(known[-10:]) or 'none'}",
            )
        if not path.exists():
            raise ResultsError(
                f"{path}: run {run_id} has not been ingested",
                hint="ingest it first (watchbench.results.ingest_run)",
            )
        paths.append(path)
    return paths


def empty_frame() -> pd.DataFrame:
    """A zero-row table with the fixed columns, for when there is nothing to load."""
    return add_optional(
        coerce_types(pd.DataFrame({c: pd.Series([], dtype="object") for c in COLUMNS})))


def load_runs(
    runs_dir: Path, run_ids: list[str] | None = None, skip_bad: bool = False
) -> pd.DataFrame:
    """All (or the named) runs as one table; bad files raise unless ``skip_bad``.

    Skipped files are listed in ``df.attrs["bad_files"]`` as ``(path, reason)`` pairs.
    The optional manifest columns (``ci_id``, ``ci_role``, ``ci_round``, ``kernel_key``...)
    are always there, missing for runs whose manifest did not have them.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ResultsError(f"{runs_dir}: no runs directory", hint="run a benchmark suite first")
    tables, bad = [], []
    for path in _requested_paths(runs_dir, run_ids):
        try:
            tables.append(_read_table(path))
        except ResultsError as exc:
            bad.append((str(path), exc.message))
    if bad and not skip_bad:
        names = "\n".join(f"  {why}" for _, why in bad)
        raise ResultsError(
            f"{len(bad)} results file(s) could not be read (left untouched):\n{names}",
            hint="re-ingest those runs, or load the rest with --skip-bad",
        )
    for path, why in bad:
        log.warning("skipped bad results file %s: %s", path, why)
    df = add_optional(_combine(tables)) if tables else empty_frame()
    df.attrs["bad_files"] = bad
    return df
