"""The stored runs in formats other tools read: Bencher, github-action-benchmark, tables.

Each figure is one measured series of one kernel, as ``stats.summary.summarize`` gives it:
the boot is the unit, ``centre`` the geometric mean of the boot medians and
``ci_low``/``ci_high`` a t interval across boots (NaN with one boot). Only ``ok`` samples
count. The formats:

- ``bmf``: Bencher Metric Format JSON, what ``bencher run --file results.json --adapter
  json`` takes: ``{benchmark: {measure: {"value", "lower_value"?, "upper_value"?}}}``, the
  bounds optional (https://bencher.dev/docs/reference/bencher-metric-format, its JSON
  schema https://bencher.dev/bmf.json, and https://bencher.dev/docs/how-to/track-custom-benchmarks
  for the command). The benchmark is ``figure_name`` (benchmark, params, accelerator), the
  measure slug the metric (``ns_per_op``), the bounds the interval when there is one.
  BMF carries neither unit nor direction: a Bencher Measure has its own units, and which
  way is worse is the threshold's business.
- ``github-smaller`` / ``github-bigger``: github-action-benchmark's ``customSmallerIsBetter``
  and ``customBiggerIsBetter`` input, a JSON list of ``{"name", "unit", "value", "range"?,
  "extra"?}`` with ``range`` and ``extra`` free text (the action's README,
  https://github.com/benchmark-action/github-action-benchmark#examples, and its
  ``BenchmarkResult`` type in src/extract.ts). Only the metrics whose direction is lower
  (resp. higher) go in; ``range`` is the interval, ``extra`` the provenance (kernel, hashes,
  accelerator, boots, runs), shown in the chart's tooltip.
- ``csv`` / ``parquet``: the tidy summary table, one row per series and kernel with the
  kernel identity, the accelerator, the boots and the runs on every row (``export_table``).

A JSON file names its figures by benchmark only, so it refuses runs of more than one kernel
(``KERNEL_IDENTITY``) rather than mixing them; the tables keep them apart by their columns.
The accelerator is part of every name: a tcg figure never shares a name with a kvm one.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd

from watchbench.errors import ResultsError
from watchbench.host.files import write_atomically
from watchbench.results.schema import KERNEL_IDENTITY
from watchbench.stats.summary import SUMMARY_COLUMNS, SUMMARY_KEYS, summarize

CONFIDENCE = 0.95
# Per kernel, copied from the runs' manifests onto each row of the tidy table.
KERNEL_LABELS = ["base_label", "series_name"]
EXPORT_COLUMNS = [*SUMMARY_KEYS, *KERNEL_LABELS, *SUMMARY_COLUMNS[len(SUMMARY_KEYS):],
                  "confidence", "run_ids"]
TEXT_COLUMNS = [*SUMMARY_KEYS, *KERNEL_LABELS, "run_ids"]
# Bencher's limit on a Measure slug.
MEASURE_SLUG_MAX = 64


class Format(StrEnum):
    """What ``./wb export --format`` writes."""

    BMF = "bmf"
    GITHUB_SMALLER = "github-smaller"
    GITHUB_BIGGER = "github-bigger"
    CSV = "csv"
    PARQUET = "parquet"

    @property
    def filename(self) -> str:
        """The default file name: the three JSON formats say which they are."""
        if self in (Format.CSV, Format.PARQUET):
            return f"export.{self.value}"
        return f"export.{self.value}.json"

    @property
    def direction(self) -> str | None:
        """The direction of the metrics a github-action-benchmark file holds."""
        return {Format.GITHUB_SMALLER: "lower", Format.GITHUB_BIGGER: "higher"}.get(self)


def export_table(df: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """The tidy summary of a results table: ``summarize`` per series and kernel, with the
    kernel's base label and series name, the interval's level and the runs whose ok
    samples went in (``run_ids``, comma-separated). Text columns missing a value hold ""."""
    ok = df.loc[(df["status"] == "ok") & df["value"].notna()]
    if ok.empty:
        raise ResultsError("no ok samples in the selected runs: nothing to export",
                           hint="pick runs that measured something with --runs")
    summary = summarize(ok, confidence)
    text = ok[[*SUMMARY_KEYS, *KERNEL_LABELS, "run_id"]].astype("string")
    grouped = text.groupby(SUMMARY_KEYS, sort=True, dropna=False)
    origin = grouped.agg(base_label=("base_label", "first"), series_name=("series_name", "first"),
                         run_ids=("run_id", lambda s: ",".join(sorted(s.dropna().unique()))))
    table = summary.merge(origin.reset_index(), on=SUMMARY_KEYS, how="left")
    table["confidence"] = confidence
    table[TEXT_COLUMNS] = table[TEXT_COLUMNS].astype("string").fillna("")
    return table[EXPORT_COLUMNS].reset_index(drop=True)


def figure_name(row: pd.Series | dict[str, Any]) -> str:
    """``benchmark k=v,k=v [accel]``: one name per measured series of one kernel."""
    params = str(row["params"]).replace(", ", ",")
    return " ".join(part for part in (str(row["benchmark"]), params, f"[{row['accel']}]") if part)


def kernel_label(row: pd.Series | dict[str, Any]) -> str:
    """``base label + series name`` (the base alone for no series)."""
    series = str(row["series_name"])
    return f"{row['base_label']} + {series}" if series else str(row["base_label"])


def _interval(row: pd.Series) -> tuple[float, float] | None:
    low, high = float(row["ci_low"]), float(row["ci_high"])
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None


def one_kernel(table: pd.DataFrame, fmt: Format) -> None:
    """Refuse (ResultsError) a table of more than one kernel: a JSON file would mix them."""
    kernels = table.groupby(list(KERNEL_IDENTITY), sort=True)
    if kernels.ngroups <= 1:
        return
    lines, first_runs = [], ""
    for identity, part in kernels:
        runs = sorted({r for ids in part["run_ids"] for r in ids.split(",") if r})
        first_runs = first_runs or ",".join(runs)
        tree, series, config = (v or "-" for v in identity)
        lines.append(f"  {kernel_label(part.iloc[0])} (tree {tree}, series {series}, "
                     f"config {config}): runs {', '.join(runs)}")
    raise ResultsError(
        f"the selected runs hold {kernels.ngroups} kernels; a {fmt.value} file names its "
        "figures by benchmark only and would mix them:\n" + "\n".join(lines),
        hint=f"export one kernel's runs with --runs (e.g. --runs {first_runs}), or all of "
             "them with --format csv or parquet, which keep the kernel columns",
    )


def _unique(names: list[str], fmt: Format) -> None:
    twice = sorted(name for name, count in Counter(names).items() if count > 1)
    if twice:
        raise ResultsError(f"{fmt.value}: two figures would share the name {twice[0]!r}",
                           hint="the series differ only in unit or direction; export them "
                                "as csv or parquet")


def bmf(table: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """Bencher Metric Format of one kernel's table (module docstring)."""
    one_kernel(table, Format.BMF)
    out: dict[str, dict[str, dict[str, float]]] = {}
    pairs = []
    for _, row in table.iterrows():
        name, measure = figure_name(row), str(row["metric"])
        if len(measure) > MEASURE_SLUG_MAX:
            raise ResultsError(f"bmf: metric {measure!r} is longer than a Bencher measure "
                               f"slug may be ({MEASURE_SLUG_MAX} characters)")
        metric = {"value": float(row["centre"])}
        interval = _interval(row)
        if interval:
            metric["lower_value"], metric["upper_value"] = interval
        out.setdefault(name, {})[measure] = metric
        pairs.append(f"{name} / {measure}")
    _unique(pairs, Format.BMF)
    return out


def _provenance(row: pd.Series) -> str:
    return "\n".join([
        f"kernel: {kernel_label(row)}",
        f"tree base: {row['tree_base'] or '-'}",
        f"series hash: {row['series_hash'] or '-'}",
        f"config hash: {row['config_hash'] or '-'}",
        f"accel: {row['accel']}",
        f"boots: {int(row['boots'])} ({int(row['n'])} samples)",
        f"runs: {row['run_ids']}",
    ])


def github_benchmarks(table: pd.DataFrame, fmt: Format) -> list[dict[str, Any]]:
    """github-action-benchmark's custom input for ``fmt`` (github-smaller or
    github-bigger): the metrics of that direction only (module docstring)."""
    direction = fmt.direction
    if direction is None:
        raise ValueError(f"{fmt.value} is not a github-action-benchmark format")
    one_kernel(table, fmt)
    rows = table[table["direction"] == direction]
    if rows.empty:
        raise ResultsError(f"{fmt.value}: no {direction}-is-better metrics in the selected runs",
                           hint="github-action-benchmark refuses an empty file; try the other "
                                "direction's format")
    out = []
    for _, row in rows.iterrows():
        entry: dict[str, Any] = {"name": f"{figure_name(row)} {row['metric']} ({row['unit']})",
                                 "unit": str(row["unit"]), "value": float(row["centre"])}
        interval = _interval(row)
        if interval:
            level = f"{float(row['confidence']):.0%}"
            entry["range"] = f"{level} CI [{interval[0]:.6g}, {interval[1]:.6g}]"
        entry["extra"] = _provenance(row)
        out.append(entry)
    _unique([e["name"] for e in out], fmt)
    return out


def render(table: pd.DataFrame, fmt: Format) -> str | bytes:
    """The file's content: JSON text, CSV text or Parquet bytes."""
    if fmt is Format.BMF:
        return _json(bmf(table))
    if fmt.direction:
        return _json(github_benchmarks(table, fmt))
    if fmt is Format.CSV:
        return table.to_csv(index=False)
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _json(data: object) -> str:
    # allow_nan=False: a NaN would make the file unreadable to a strict JSON parser.
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_export(table: pd.DataFrame, fmt: Format, out: Path) -> Path:
    """Write ``table`` (from ``export_table``) as ``fmt`` to ``out`` in one rename (its
    directory made if missing); return the path. Nothing is written if it raises."""
    data = render(table, Format(fmt))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(out, data)
