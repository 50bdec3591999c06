"""The pieces of the HTML report: provenance, per-benchmark tables and figures, history.

Each function takes the long results table (or a summary of it) and returns template
context: HTML tables rendered by pandas' Styler and SVG figures from ``plots``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from watchbench.report import plots
from watchbench.report.tables import as_text, styled, wrapping
from watchbench.report.text import (
    fmt_value,
)
from watchbench.results.schema import KERNEL_IDENTITY
from watchbench.stats.changepoints import history_changes, trend
from watchbench.stats.compare import median_ci

MAX_BOXES = 30
MAX_LINES = 8


def kernel_labels(df: pd.DataFrame) -> pd.Series:
    """A readable name per row's kernel identity, disambiguated by hashes only if needed."""
    grouped = df.groupby(list(KERNEL_IDENTITY), observed=True, sort=True, dropna=False)
    ids = grouped[["base_label", "series_name"]].first().reset_index()
    ids = ids.astype("string").fillna("")
    names = ids["base_label"] + np.where(ids["series_name"] != "", " + " + ids["series_name"], "")
    if names.duplicated().any():
        names = (names + " [" + ids["tree_base"].str[:12] + "/" + ids["series_hash"].str[:12]
                 + "/" + ids["config_hash"].str[:12] + "]")
    if names.duplicated().any():
        names = names + " #" + pd.Series(range(len(names)), dtype="string")
    codes = grouped.ngroup().to_numpy()
    labels = pd.Categorical.from_codes(codes, categories=names.to_numpy())
    return pd.Series(labels, index=df.index, name="kernel")


def provenance(df: pd.DataFrame, kernels: pd.Series) -> tuple[str, list[str]]:
    """One row per run: where, when, how and on which kernel its samples were taken.

    Returns the table and, as ``"column value"`` texts, what all runs have in common (left
    out of the table)."""
    counts = pd.crosstab(df["run_id"], df["status"])
    first = as_text(df.assign(kernel=kernels).groupby("run_id", observed=True).first())
    runs = pd.DataFrame({
        "run": first.index,
        "when (UTC)": first["timestamp"].dt.strftime("%Y-%m-%d %H:%M").to_numpy(),
        "label": first["label"].to_numpy(),
        "suite": first["suite"].to_numpy(),
        "accel": first["accel"].to_numpy(),
        "kernel": first["kernel"].to_numpy(),
        "version": first["kernel_version"].to_numpy(),
        "tree base": first["tree_base"].str[:12].to_numpy(),
        "series": (first["series_name"].fillna("") + " " +
                   first["series_hash"].str[:12].fillna("")).str.strip().to_numpy(),
        "config": first["config_hash"].str[:12].to_numpy(),
        "QEMU argv": first["qemu_argv_hash"].str[:12].to_numpy(),
        "host": (first["host"] + " · " + first["cpu_model"] + " · " + first["arch"]).to_numpy(),
        "patch": [f"{i}: {s}" if not pd.isna(i) else "" for i, s in
                  zip(first["patch_index"], first["patch_subject"].fillna(""), strict=True)],
    })
    for status in ("ok", "skipped", "failed"):
        runs[status] = counts.reindex(first.index)[status].to_numpy() \
            if status in counts else 0
    runs = runs.sort_values("when (UTC)", kind="stable").reset_index(drop=True)
    # What every run shares is said once above the table, so the table stays narrow.
    common = []
    if len(runs) > 1:
        for column in runs.columns.drop(["run", "when (UTC)", "ok", "skipped", "failed"]):
            values = runs[column].astype("string").fillna("")
            if values.nunique() == 1:
                if values.iloc[0]:
                    common.append(f"{column} {values.iloc[0]}")
                runs = runs.drop(columns=column)
    table = styled(runs, "runs", classes=wrapping(runs, ["series", "host", "patch"]))
    return table, common


def benchmark_table(summary: pd.DataFrame, uuid: str) -> str:
    """The summary rows of one benchmark: n, median with CI, mean, stddev, CV."""
    table = pd.DataFrame({
        "kernel": summary["kernel"], "accel": summary["accel"],
        "params": summary["params"].replace("", "–"),
        "metric": summary["metric"] + " (" + summary["unit"] + ", " + summary["direction"]
        + ")",
        "n": summary["n"], "median": summary["median"],
        "95% CI of median": [f"{fmt_value(lo)} … {fmt_value(hi)}" for lo, hi in
                             zip(summary["ci_low"], summary["ci_high"], strict=True)],
        "mean": summary["mean"], "stddev": summary["stddev"], "CV": summary["cv"],
    })
    formats = {"median": fmt_value, "mean": fmt_value, "stddev": fmt_value,
               "CV": lambda v: "–" if not math.isfinite(v) else f"{v * 100:.1f} %"}
    return styled(table, uuid, formats, classes=wrapping(table, ["kernel", "params", "metric"]))


def distribution_figure(groups: dict[tuple, np.ndarray], unit: str) -> tuple[str, str]:
    """Box plots of (kernel, accel, params) groups of one metric; caption notes any cap."""
    keys = sorted(groups, key=lambda k: (k[2], k[0], k[1]))
    note = f" (first {MAX_BOXES} of {len(keys)} groups)" if len(keys) > MAX_BOXES else ""
    keys = keys[:MAX_BOXES]
    labelled = [(f"{params or '–'} · {kernel} · {accel}", groups[(kernel, accel, params)])
                for kernel, accel, params in keys]
    return plots.distribution_svg(labelled, xlabel=unit), note


def history_figure(rows: pd.DataFrame, unit: str, many_accels: bool) -> str | None:
    """Per-run medians over time, when the benchmark ran in at least two runs."""
    if rows["run_id"].nunique() < 2:
        return None
    per_run = rows.groupby(["params", "accel", "run_id"], observed=True).agg(
        when=("timestamp", "first"), median=("value", "median")).reset_index()
    per_run = as_text(per_run)
    per_run["line"] = per_run["params"].replace("", "–")
    if many_accels:
        per_run["line"] = per_run["line"] + " [" + per_run["accel"] + "]"
    busiest = per_run["line"].value_counts().index[:MAX_LINES]
    lines = {}
    for line in sorted(busiest):
        part = per_run[per_run["line"] == line].sort_values("when")
        lines[line] = (part["when"].dt.tz_localize(None).to_numpy(), part["median"].to_numpy())
    return plots.history_svg(lines, ylabel=unit)


def patch_figure(rows: pd.DataFrame, unit: str) -> str | None:
    """Median and CI after each patch, when runs of at least two patch indices exist."""
    rows = rows[rows["patch_index"].notna()]
    if rows["patch_index"].nunique() < 2:
        return None
    rows = as_text(rows[["series_name", "params", "patch_index", "patch_subject", "value"]])
    # A baseline (patch 0) is usually built without the series, so its series_name is
    # empty: it belongs to every series measured on top of it.
    names = rows.loc[rows["patch_index"] > 0, "series_name"].fillna("").unique()
    base = rows["patch_index"] == 0
    if base.any() and len(names):
        rows = pd.concat([rows[~base]] + [rows[base].assign(series_name=n) for n in names],
                         ignore_index=True)
    ticks = {int(i): f"{int(i)}: {s}" if s else str(int(i)) for i, s in
             rows.groupby("patch_index")["patch_subject"].first().fillna("").items()}
    lines = {}
    for (series, params), part in rows.groupby(["series_name", "params"], observed=True):
        if len(lines) >= MAX_LINES:
            break
        stats = []
        for index, values in part.groupby("patch_index")["value"]:
            lo, hi = median_ci(values.to_numpy())
            stats.append((int(index), float(values.median()), lo, hi))
        x, med, lo, hi = (np.array(c, dtype=float) for c in zip(*stats, strict=True))
        label = f"{series} · {params or '–'}" if series else (params or "–")
        lines[label] = (x, med, np.where(np.isnan(lo), med, lo), np.where(np.isnan(hi), med, hi))
    return plots.patch_svg(lines, ticks, ylabel=unit)


def problems(df: pd.DataFrame) -> str | None:
    """Skipped and failed records with their reasons, or None when everything ran."""
    bad = df[df["status"] != "ok"]
    if bad.empty:
        return None
    table = bad.groupby(["run_id", "benchmark", "params", "status", "reason"], observed=True,
                        dropna=False).size().reset_index(name="records")
    table = as_text(table)
    table["params"] = table["params"].replace("", "–")
    return styled(table.rename(columns={"run_id": "run"}), "bad")


def history_section(history: pd.DataFrame) -> dict[str, Any]:
    """Per benchmark, the trend of its headline metric over the recorded history with the
    change points marked, and a table of all change points."""
    points = trend(history)
    changes = history_changes(history)
    many_accels = points["accel"].nunique() > 1
    figures = []
    for (bench, metric), part in points.groupby(["benchmark", "metric"], sort=True):
        part = part.assign(line=part["params"].replace("", "–"))
        if many_accels:
            part["line"] = part["line"] + " [" + part["accel"] + "]"
        mine = changes[(changes["benchmark"] == bench) & (changes["metric"] == metric)]
        mine = mine.assign(line=mine["params"].replace("", "–"))
        if many_accels:
            mine["line"] = mine["line"] + " [" + mine["accel"] + "]"
        # Lines with a change point first, then the longest ones.
        stepped = list(dict.fromkeys(mine["line"]))
        rest = [k for k in part["line"].value_counts().index if k not in stepped]
        shown = (stepped + rest)[:MAX_LINES]
        lines, steps = {}, {}
        for label in sorted(shown):
            rows = part[part["line"] == label].sort_values("history_index")
            lines[label] = (rows["history_index"].to_numpy(float), rows["median"].to_numpy(float))
            steps[label] = [(float(i), float(c)) for i, c in
                            zip(mine.loc[mine["line"] == label, "history_index"],
                                mine.loc[mine["line"] == label, "change"], strict=True)]
        unit = f"{metric} ({part['unit'].iloc[0]}, {part['direction'].iloc[0]} is better)"
        note = f"{len(shown)} of {part['line'].nunique()} params" \
            if part["line"].nunique() > len(shown) else ""
        figures.append({"benchmark": bench, "metric": metric, "note": note,
                        "n_changes": len(mine),
                        "svg": plots.trend_svg(lines, steps, ylabel=unit)})
    table = None
    if not changes.empty:
        shown = changes.assign(params=changes["params"].replace("", "–"))
        for column in ("before", "after"):
            if column in shown:
                shown[column] = shown[column].map(fmt_value)
        for column in ("change", "ci_low", "ci_high"):
            if column in shown:
                shown[column] = shown[column].map(
                    lambda c: "–" if pd.isna(c) else f"{c * 100:+.1f} %")
        if "z" in shown:
            shown["z"] = shown["z"].map(lambda z: "–" if pd.isna(z) else f"{z:.1f}")
        shown = shown.rename(columns={"history_index": "at entry"})
        classes = pd.DataFrame("", index=shown.index, columns=shown.columns)
        classes["verdict"] = "v-" + shown["verdict"]
        table = styled(shown, "hist", classes=classes)
    entries = int(history["history_index"].nunique())
    return {"figures": figures, "table": table, "entries": entries,
            "n_changes": len(changes), "changes": changes}


MAX_WATERFALLS = 4


def waterfall_figure(steps: pd.DataFrame) -> str | None:
    """Waterfall of one metric's per-patch steps (``perpatch.per_patch_steps`` rows), when
    a baseline and at least one patch exist; params with a moving step are shown first."""
    patched = steps[steps["patch_index"] > 0]
    if patched.empty or not (steps["patch_index"] == 0).any():
        return None
    many_accels = steps["accel"].nunique() > 1
    moved = patched["step_verdict"].isin(["regressed", "improved"])
    size = patched["base_change"].abs().fillna(0)
    rank = patched.assign(_moved=moved, _size=size).groupby(["params", "accel"])[
        ["_moved", "_size"]].max().sort_values(["_moved", "_size"], ascending=False)
    panels = {}
    for params, accel in rank.index[:MAX_WATERFALLS]:
        rows = patched[(patched["params"] == params) & (patched["accel"] == accel)]
        rows = rows.sort_values("patch_index")
        after = rows["base_change"].to_numpy(float) * 100
        if np.isnan(after).all():
            continue
        after = np.nan_to_num(after)
        before = np.concatenate(([0.0], after[:-1]))
        label = (params or "–") + (f" [{accel}]" if many_accels else "")
        panels[label] = (rows["patch_index"].to_numpy(float), before, after,
                         list(rows["step_verdict"]))
    if not panels:
        return None
    ticks = {int(i): f"{int(i)}: {s}" if s else str(int(i)) for i, s in
             patched.groupby("patch_index")["patch_subject"].first().items()}
    return plots.waterfall_svg(panels, ticks)
