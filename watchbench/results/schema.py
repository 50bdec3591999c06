"""The long-format results table: its columns, its version and how old files are migrated.

One row per sample (one metric of one record). Everything a reader needs to know where a
number came from travels on the row, so any slice of the table stays self-describing.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from watchbench.errors import ResultsError
from watchbench.vm.qemu import Accel

if TYPE_CHECKING:  # pandas is imported where a frame is made: `wb runs` reads manifests only
    import numpy as np
    import pandas as pd

# Bump when a column is renamed, removed or changes meaning, and add a migration below.
SCHEMA_VERSION = 2

# Provenance copied from the run's manifest.json onto every row.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "run_id",
    "timestamp",
    "host",
    "cpu_model",
    "arch",
    "accel",
    "qemu_argv_hash",
    "kernel_version",
    "tree_base",
    "base_label",
    "series_name",
    "series_hash",
    "config_hash",
    "suite",
    "label",
    "patch_index",
    "patch_subject",
)

# Manifest keys copied onto the rows when a run's manifest has them (older runs and runs
# outside CI do not). Not part of COLUMNS, so adding one needs no schema bump: a loaded
# table always has them, all-missing where no run recorded them (see add_optional).
OPTIONAL_MANIFEST_COLUMNS: dict[str, type] = {
    "kernel_key": str,
    "dirty_hash": str,
    "compiler": str,
    "ci_id": str,
    "ci_role": str,
    "ci_round": int,
    "ci_position": int,
    # Lists in the manifest (the extra boot parameters, the --kconfig-add options), one
    # text on the rows: their items joined by spaces ("" when the run had none).
    "kernel_args": list,
    "kconfig_add": list,
}
# The boot and configuration the user added: runs that differ in them are not compared.
USER_ADDED: tuple[str, ...] = ("kernel_args", "kconfig_add")


class Role(StrEnum):
    """What a CI run measured (``ci_role``): the baseline kernel, a prefix of the series
    (``--per-patch``), or the whole candidate."""

    BASELINE = "baseline"
    PATCH = "patch"
    CANDIDATE = "candidate"


CI_ROLES = tuple(Role)

# What was measured, one row per metric of a record.
SAMPLE_COLUMNS: tuple[str, ...] = (
    "benchmark",
    "source",
    "params",
    "metric",
    "unit",
    "direction",
    "value",
    "primary",
    "iteration",
    "loops",
    "status",
    "reason",
    "raw_file",
)

# Fixed columns in file order; flattened ``param_*`` and ``count_*`` columns follow them.
COLUMNS: tuple[str, ...] = ("schema_version", *MANIFEST_COLUMNS, *SAMPLE_COLUMNS)
PARAM_PREFIX = "param_"
COUNT_PREFIX = "count_"

# One measured quantity: the rows of one series are comparable across runs and kernels.
SERIES_KEYS: list[str] = ["benchmark", "params", "metric", "unit", "direction", "accel"]
# What an A/B comparison matches baseline and candidate rows on.
MATCH_KEYS: list[str] = SERIES_KEYS[:3]

# Samples of the same kernel: the tree it started from, the patches on top, the config.
KERNEL_IDENTITY: tuple[str, ...] = ("tree_base", "series_hash", "config_hash")

# Metrics taken as primary where a record flags none (records and results files written
# before the ``primary`` flag, schema 1): a benchmark's time per operation or per record.
LEGACY_PRIMARY = ("ns_per_op", "ns_per_record")

ACCELS = frozenset(Accel)
DIRECTIONS = frozenset({"lower", "higher"})
STATUSES = frozenset({"ok", "skipped", "failed"})

STRING_COLUMNS = tuple(
    c
    for c in COLUMNS
    if c not in {"schema_version", "timestamp", "patch_index", "value", "primary", "iteration",
                 "loops"}
)
INT_COLUMNS = ("patch_index", "iteration", "loops")
# Text columns repeat a handful of values a million times: categories keep loading,
# grouping and memory cheap (Parquet stores them dictionary-encoded too).
TEXT = "category"

# MIGRATIONS[v] turns a frame of schema v into schema v + 1. Keep every step forever:
# a results.parquet from any earlier version must stay readable.
Migration = Callable[["pd.DataFrame"], "pd.DataFrame"]


def _add_primary(df: pd.DataFrame) -> pd.DataFrame:
    """1 -> 2: the ``primary`` column (the gated metric of each record), from LEGACY_PRIMARY."""
    df = df.copy(deep=False)
    df["primary"] = df["metric"].astype("string").isin(LEGACY_PRIMARY).fillna(False)
    return df


MIGRATIONS: dict[int, Migration] = {1: _add_primary}


def add_optional(df: pd.DataFrame) -> pd.DataFrame:
    """Add the optional manifest columns a frame lacks (all missing), in their dtypes."""
    import pandas as pd

    missing = [c for c in OPTIONAL_MANIFEST_COLUMNS if c not in df.columns]
    if not missing:
        return df
    extra = {c: pd.Series(pd.NA, index=df.index,
                          dtype="Int64" if OPTIONAL_MANIFEST_COLUMNS[c] is int else "string")
             for c in missing}
    return coerce_types(pd.concat([df, pd.DataFrame(extra)], axis=1))


def text_category(values: np.ndarray) -> pd.Categorical:
    """``values`` (an object array) as ``astype("string").astype("category")`` makes them:
    missing values NA, the rest as text, categories sorted and of dtype ``string``.

    Each distinct value is turned into text once (a run's file has ~30 text columns of a
    few values each; the two conversions cost ~0.5 ms a column, most of an ingest)."""
    import numpy as np
    import pandas as pd

    try:
        codes, uniques = pd.factorize(values)
    except TypeError:  # unhashable (a list in a hand-edited manifest)
        uniques = None
    if uniques is None or not all(type(u) is str for u in uniques):
        # The slow way: factorize takes True for 1 and 1.0 for 1, which text does not
        # ("True", "1.0").
        return pd.Series(values, dtype=object).astype("string").astype("category").array
    # Already text (the usual case): sorted here (code point order, as Arrow sorts UTF-8),
    # so no second factorize.
    order = sorted(range(len(uniques)), key=uniques.__getitem__)
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    if len(order):
        codes = np.where(codes >= 0, rank[codes], -1)
    categories = pd.Index(pd.array([uniques[i] for i in order], dtype="string"))
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories),
                                     validate=False)


def coerce_types(df: pd.DataFrame) -> pd.DataFrame:
    """Give the fixed columns one dtype each, so files of different runs concatenate cleanly."""
    import pandas as pd

    df = df.copy(deep=False)
    wanted = {**dict.fromkeys(STRING_COLUMNS, TEXT), **dict.fromkeys(INT_COLUMNS, "Int64"),
              "value": "float64", "schema_version": "int64", "primary": "bool"}
    for col, kind in OPTIONAL_MANIFEST_COLUMNS.items():
        if col in df.columns:
            wanted[col] = "Int64" if kind is int else TEXT
    for col, dtype in wanted.items():
        if dtype == TEXT:
            if not isinstance(df[col].dtype, pd.CategoricalDtype):
                df[col] = pd.Series(text_category(df[col].to_numpy(object)), index=df.index)
        elif df[col].dtype != dtype:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(dtype)
    if not isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype):
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


def migrate(df: pd.DataFrame, version: int, source: Path) -> pd.DataFrame:
    """Bring a frame read from ``source`` (written at ``version``) to the current schema."""
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{source}: written with results schema {version}, this watchbench reads up to "
            f"{SCHEMA_VERSION}",
            hint="update watchbench, or load the other runs with --skip-bad",
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ResultsError(
                f"{source}: no migration from results schema {version} to {version + 1}",
                hint="re-ingest the run from its raw/ directory, or load the rest with --skip-bad",
            )
        df = step(df)
        version += 1
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ResultsError(
            f"{source}: results schema {version} file lacks columns {', '.join(missing)}",
            hint="re-ingest the run from its raw/ directory, or load the others with --skip-bad",
        )
    df["schema_version"] = SCHEMA_VERSION
    return df
