"""One row per benchmark case: its parameters as columns, its primary metric with the
interval across boots, and the metrics derived from it folded in as further columns
(in four significant digits with a k/M/G suffix, so the table fits the page).

Params that are the same in every row of a benchmark are said once under its table, and
the kernel appears as its short name (K1, K2: listed in the provenance section) and only
when the report holds more than one; the same for the accelerator.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from watchbench.report.questions import param_table
from watchbench.report.text import fmt_short, fmt_value
from watchbench.results.profile import MODEL_METRIC
from watchbench.results.schema import KERNEL_IDENTITY
from watchbench.stats.compare import primary_flags

_ARROW = {"lower": "↓", "higher": "↑"}


def primary_metrics(df: pd.DataFrame) -> set[tuple[str, str, str]]:
    """(benchmark, params, metric) of every primary metric in ``df``."""
    rows = df.loc[primary_flags(df), ["benchmark", "params", "metric"]].drop_duplicates()
    return set(rows.astype(str).itertuples(index=False, name=None))


def _ci(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    return f"{fmt_value(low)}–{fmt_value(high)}"


def _numbers_first(column: pd.Series) -> pd.Series:
    """Sort key: a column of numbers (``–`` last) by value, any other by its text."""
    numbers = pd.to_numeric(column.replace("–", math.inf), errors="coerce")
    return numbers if numbers.notna().all() else column.astype(str)


def case_tables(summary: pd.DataFrame, df: pd.DataFrame, short: dict[tuple, str]
                ) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Per benchmark: the display frame of its cases and the params constant in it.

    ``summary`` is ``stats.summary.summarize`` output; ``short`` maps a kernel identity
    (tree_base, series_hash, config_hash) to its short name.
    """
    primary = primary_metrics(df)
    params = param_table(df[df["status"] == "ok"])
    identity = list(KERNEL_IDENTITY)
    many_kernels = len(summary[identity].drop_duplicates()) > 1
    many_accels = summary["accel"].nunique() > 1
    keys = [*identity, "accel", "params"]
    out: dict[str, tuple[pd.DataFrame, list[str]]] = {}
    # Each benchmark's params rows, split once (the table has every benchmark's params).
    by_bench = dict(tuple(params.groupby("benchmark", sort=False, observed=True)))
    for bench, rows in summary.groupby("benchmark", sort=True, observed=True):
        mine = by_bench.get(bench, params.iloc[:0])
        given = mine.notna().any()
        names = [c for c in mine.columns if c not in ("benchmark", "params") and given[c]]
        varying = [c for c in names if mine[c].nunique(dropna=False) > 1]
        constant = [f"{c}={mine[c].dropna().iloc[0]}" for c in names if c not in varying]
        flags = [(bench, p, m) in primary for p, m in zip(rows["params"], rows["metric"],
                                                           strict=True)]
        rows = rows.assign(_primary=flags)
        # A case's measured primary leads; the cache model's estimate (also primary, in
        # ci --cache-model's boots) is folded in as a further column.
        primaries = rows[rows["_primary"]]
        main = primaries.assign(_model=primaries["metric"] == MODEL_METRIC).sort_values(
            "_model", kind="stable").drop_duplicates(keys).drop(columns="_model")
        derived = [m for m in dict.fromkeys(rows["metric"]) if m not in set(main["metric"])]
        cases = rows[keys].drop_duplicates().merge(main, on=keys, how="left")
        frame = pd.DataFrame(index=cases.index)
        if many_kernels:
            frame["kernel"] = [short.get(tuple(k), "?") for k in
                               cases[identity].itertuples(index=False, name=None)]
        if many_accels:
            frame["accel"] = cases["accel"].astype(str)
        values = cases[["params"]].merge(mine[["params", *varying]], on="params", how="left")
        for column in varying:
            frame[column] = values[column].astype("string").fillna("–").to_numpy()
        if "reader" in frame and (cases["accel"].astype(str) == "icount").any():
            # Under icount the guest's CPUs take turns on one host thread.
            simulated = (cases["accel"].astype(str) == "icount").to_numpy() & (
                frame["reader"] == "other-cpu").to_numpy()
            frame.loc[simulated, "reader"] = "other-cpu†"
            if simulated.any():
                constant = [*constant, "† under icount the other CPU is simulated round-robin "
                            "on one host thread: not real parallelism"]
        one_metric = main["metric"].nunique() == 1
        arrow = cases["direction"].map(_ARROW).fillna("")
        if not one_metric:
            frame["metric"] = (cases["metric"].astype("string") + " " + arrow).fillna("–")
        header = "value"
        if one_metric:
            header = f"{main['metric'].iloc[0]} {_ARROW.get(main['direction'].iloc[0], '')}"
        frame[header] = [f"{fmt_value(v)} {u}" if pd.notna(u) else "–"
                         for v, u in zip(cases["centre"], cases["unit"], strict=True)]
        frame["95 % CI"] = [_ci(lo, hi) for lo, hi in zip(cases["ci_low"], cases["ci_high"],
                                                          strict=True)]
        # ``cases`` are the groups of ``keys`` in order of first appearance, as these.
        grouped = rows.groupby(keys, observed=True, sort=False, dropna=False)
        frame["boots"] = [str(int(b)) for b in grouped["boots"].max().to_numpy()]
        if derived:
            units = rows.groupby("metric", observed=True)["unit"].first()
            # Per derived metric, each case's first centre that is not NaN.
            codes = grouped.ngroup().to_numpy()
            chosen = rows["metric"].isin(derived).to_numpy(bool)
            first: dict[str, np.ndarray] = {m: np.full(len(cases), np.nan) for m in derived}
            for code, metric, centre in reversed(list(zip(
                    codes[chosen], rows["metric"][chosen], rows["centre"][chosen],
                    strict=True))):
                if not np.isnan(centre):
                    first[metric][code] = centre
            for metric in derived:
                frame[f"{metric} ({units[metric]})"] = [fmt_short(v)
                                                         for v in first[metric].tolist()]
        sort = [c for c in ("kernel", "accel", *varying) if c in frame]
        if sort:
            frame = frame.sort_values(sort, key=_numbers_first, kind="stable")
        out[str(bench)] = (frame.reset_index(drop=True), constant)
    return out
