"""The pieces of the HTML report: provenance, per-benchmark tables and figures, history.

Each function takes the long results table (or a summary of it) and returns template
context: HTML tables rendered by pandas' Styler and SVG figures from ``plots``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from watchbench.report import plots
from watchbench.report.questions import sweeps
from watchbench.report.tables import as_text, styled, wrapping
from watchbench.report.text import fmt_value
from watchbench.results.schema import KERNEL_IDENTITY
from watchbench.stats.changepoints import history_changes, trend
from watchbench.stats.summary import across_boots, boot_medians
from watchbench.vm.qemu import MEASURES, Accel

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


def short_kernel_names(df: pd.DataFrame) -> dict[tuple, str]:
    """K1, K2, ... per kernel identity, in the order the kernels were first measured: the
    one name tables use, the full identity being listed once (``kernel_list``)."""
    keys = list(KERNEL_IDENTITY)
    first = df.groupby(keys, observed=True, sort=False, dropna=False)["timestamp"].min()
    first = first.sort_values(kind="stable").reset_index()
    first = first[keys].astype("string").fillna("")
    return {tuple(key): f"K{i + 1}" for i, key in
            enumerate(first.itertuples(index=False, name=None))}


def kernel_list(df: pd.DataFrame, short: dict[tuple, str]) -> str:
    """One row per kernel: its short name and everything that identifies it."""
    keys = list(KERNEL_IDENTITY)
    grouped = df.groupby(keys, observed=True, sort=False, dropna=False)
    first = grouped.agg(name=("kernel", "first"), version=("kernel_version", "first"),
                        runs=("run_id", "nunique")).reset_index()
    first = as_text(first).astype({k: "string" for k in keys}).fillna({k: "" for k in keys})
    table = pd.DataFrame({
        "kernel": [short.get(tuple(k), "?") for k in
                   first[keys].itertuples(index=False, name=None)],
        "base + series": first["name"], "version": first["version"],
        "tree base": first["tree_base"].str[:12], "series hash": first["series_hash"].str[:12],
        "config hash": first["config_hash"].str[:12], "runs": first["runs"],
    }).sort_values("kernel", key=lambda k: k.str[1:].astype(int))
    return styled(table, "kernels", classes=wrapping(table, ["base + series"]))


def measures(df: pd.DataFrame) -> list[str]:
    """What each accelerator in ``df`` measures, as ``accel: text``."""
    out = []
    for accel in sorted(map(str, df["accel"].unique())):
        try:
            out.append(f"{accel}: {MEASURES[Accel(accel)]}")
        except ValueError:
            out.append(f"{accel}: unknown accelerator")
    return out


def provenance(df: pd.DataFrame, short: dict[tuple, str]) -> tuple[str, list[str]]:
    """One row per run: where, when, how and on which kernel (its short name) its samples
    were taken.

    Returns the table and, as ``"column value"`` texts, what all runs have in common (left
    out of the table)."""
    counts = pd.crosstab(df["run_id"], df["status"])
    columns = ["run_id", "timestamp", "label", "suite", "accel", *KERNEL_IDENTITY,
               "qemu_argv_hash", "host", "cpu_model", "arch", "patch_index", "patch_subject"]
    first = as_text(df[columns].groupby("run_id", observed=True).first())
    identity = first[list(KERNEL_IDENTITY)].astype("string").fillna("")
    runs = pd.DataFrame({
        "run": first.index,
        "when (UTC)": first["timestamp"].dt.strftime("%Y-%m-%d %H:%M").to_numpy(),
        "label": first["label"].to_numpy(),
        "suite": first["suite"].to_numpy(),
        "accel": first["accel"].to_numpy(),
        "kernel": [short.get(tuple(k), "?") for k in identity.itertuples(index=False,
                                                                         name=None)],
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
    table = styled(runs, "runs", classes=wrapping(runs, ["run", "label", "host", "patch"]))
    return table, common


def sweep_figures(ok: pd.DataFrame) -> list[dict[str, str]]:
    """The declared sweeps (``questions.SWEEPS``) the rows of one kernel and accelerator
    (``questions.focus``) cover, drawn with their bands."""
    out = []
    for answer in sweeps(ok):
        sweep = answer.sweep
        lines = [(line.label, line.x, line.value, line.low, line.high) for line in answer.lines]
        ylabel = f"{sweep.metric} ({answer.unit}, {answer.direction} is better)"
        fixed = ", ".join(f"{k}={v}" for k, v in answer.fixed.items())
        if answer.most_boots < 2:
            bands = "one boot per point: no interval"
        elif answer.boots < 2:
            bands = "bands where a point has two or more boots"
        else:
            bands = f"bands: 95 % interval across {answer.boots}+ boots"
        notes = [n for n in (sweep.note, f"at {fixed}" if fixed else "", bands) if n]
        out.append({"key": sweep.key, "title": f"{sweep.title} ({sweep.benchmark})",
                    "svg": plots.sweep_svg(lines, xlabel=sweep.x, ylabel=ylabel),
                    "note": "; ".join(notes)})
    return out


def distribution_figure(groups: list[tuple[str, np.ndarray]], unit: str) -> tuple[str, str]:
    """Box plots of one metric's cases (labelled by their varying params); the caption
    notes any cap."""
    note = f" (first {MAX_BOXES} of {len(groups)} cases)" if len(groups) > MAX_BOXES else ""
    return plots.distribution_svg(groups[:MAX_BOXES], xlabel=unit), note


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
    """Per patch index: the geometric mean of its boot medians and the interval across
    those boots (``stats.summary``), when runs of at least two patch indices exist."""
    rows = rows[rows["patch_index"].notna()]
    if rows["patch_index"].nunique() < 2:
        return None
    # Each boot reduced first (a few rows per patch), then the baseline shared out.
    rows = as_text(boot_medians(rows.assign(series_name=rows["series_name"].astype(
        "string").fillna("")), ["series_name", "params", "patch_index", "patch_subject"]))
    # A baseline (patch 0) is usually built without the series, so its series_name is
    # empty: it belongs to every series measured on top of it.
    names = rows.loc[rows["patch_index"] > 0, "series_name"].unique()
    base = rows["patch_index"] == 0
    if base.any() and len(names):
        rows = pd.concat([rows[~base]] + [rows[base].assign(series_name=n) for n in names],
                         ignore_index=True)
    ticks = {int(i): f"{int(i)}: {s}" if s else str(int(i)) for i, s in
             rows.groupby("patch_index")["patch_subject"].first().fillna("").items()}
    keys = ["series_name", "params", "patch_index"]
    stats = across_boots(rows, keys)
    lines = {}
    for (series, params), part in stats.groupby(["series_name", "params"], observed=True):
        if len(lines) >= MAX_LINES:
            break
        x, med = part["patch_index"].to_numpy(float), part["centre"].to_numpy(float)
        lo, hi = part["ci_low"].to_numpy(float), part["ci_high"].to_numpy(float)
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
