"""The pieces of the HTML report: provenance, per-benchmark tables and figures, A/B.

Each function takes the long results table (or a summary of it) and returns template
context: HTML tables rendered by pandas' Styler and SVG figures from ``plots``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from watchbench.report import plots
from watchbench.report.text import (
    VERDICT_ORDER,
    comparison_cells,
    fmt_mde,
    fmt_value,
    missed_sentence,
    ordered,
    short_params,
)
from watchbench.results.schema import KERNEL_IDENTITY, MATCH_KEYS
from watchbench.stats.changepoints import history_changes, trend
from watchbench.stats.compare import boot_table, gate_exit, median_ci

MAX_BOXES = 30
MAX_LINES = 8
MAX_FOREST_ROWS = 40


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as plain text, so small frames can be concatenated and edited."""
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    return frame.astype(dict.fromkeys(cats, "string")) if cats else frame


def _styled(frame: pd.DataFrame, uuid: str, formats: dict[str, Any] | None = None,
            classes: pd.DataFrame | None = None, table_class: str = "data") -> str:
    """A compact Styler table: no index, no per-cell ids, HTML-escaped text."""
    styler = Styler(frame, cell_ids=False, uuid=uuid, escape="html", na_rep="–")
    styler = styler.hide(axis="index")
    if formats:
        styler = styler.format(formats)
    if classes is not None:
        styler = styler.set_td_classes(classes)
    return styler.to_html(table_attributes=f'class="{table_class}"')


def _wrapping(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Cell classes that let the long text ``columns`` of a table wrap (CSS ``td.wrap``)."""
    classes = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for column in columns:
        if column in classes:
            classes[column] = "wrap"
    return classes


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
    table = _styled(runs, "runs", classes=_wrapping(runs, ["series", "host", "patch"]))
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
    return _styled(table, uuid, formats, classes=_wrapping(table, ["kernel", "params", "metric"]))


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


# The verdicts in display order (failed first), as the terminal table orders them.
VERDICTS = tuple(VERDICT_ORDER)
MAX_BOOT_PANELS = 12
# Long text columns of the A/B table that may wrap, so the table fits the page.
_WRAP = {"params": "wrap", "metric": "wrap", "why": "why"}


_ARROW = {"lower": "↓", "higher": "↑"}
_DECISION_COLUMNS = ["verdict", "benchmark", "params", "metric", "baseline", "candidate",
                     "change", "CI", "p", "MDE", "why"]


def _noise_table(rows: pd.DataFrame, cells: pd.DataFrame) -> str:
    """Per gated metric: the noise behind its decision and the rounds it used."""
    table = pd.DataFrame({
        "benchmark": cells["benchmark"].to_numpy(), "params": cells["params"].to_numpy(),
        "metric": cells["metric"].to_numpy(), "boots": cells["boots"].to_numpy(),
        "rounds": cells["rounds"].to_numpy(),
        "CV between boots": [fmt_mde(v) for v in rows["between_cv"]],
        "CV within a boot": [fmt_mde(v) for v in rows["within_cv"]],
        "repeats per boot": [_count(v) for v in rows["repeats"]],
        "n eff": cells["n eff"].to_numpy(), "MDE": cells["MDE"].to_numpy(),
    })
    classes = pd.DataFrame("", index=table.index, columns=table.columns)
    classes["params"] = classes["metric"] = "wrap"
    return _styled(table, "abnoise", classes=classes, table_class="data ab")


def _count(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _ab_table(cells: pd.DataFrame, uuid: str) -> str:
    classes = pd.DataFrame("", index=cells.index, columns=cells.columns)
    for column, css in _WRAP.items():
        classes[column] = css
    classes["verdict"] = "v-" + cells["verdict"]
    classes["change"] = "v-" + cells["verdict"]
    return _styled(cells, uuid, classes=classes, table_class="data ab")


def _levels_text(rows: pd.DataFrame, fallback: float) -> tuple[str, str, float | None]:
    """The intervals' confidence as a fraction ("0.9983") and a percentage ("99.83 %"),
    and as a number when all rows share one level."""
    levels = sorted({float(v) for v in rows["level"] if v is not None and math.isfinite(v)}) \
        if "level" in rows and len(rows) else []
    if not levels:
        levels = [fallback]
    if len(levels) == 1:
        return f"{1 - levels[0]:.4g}", f"{(1 - levels[0]) * 100:.4g} %", 1 - levels[0]
    low, high = 1 - levels[-1], 1 - levels[0]
    return (f"{low:.4g} to {high:.4g} (the level of each look)",
            f"{low * 100:.4g} to {high * 100:.4g} % (the level of its look)", None)


def _boot_panels(comparisons: pd.DataFrame, df: pd.DataFrame, sides: dict[str, list[str]],
                 short: dict[tuple, str]) -> tuple[list[plots.BootPanel], int]:
    """Per gated metric (broken and moving ones first, at most MAX_BOOT_PANELS): its boots'
    medians by round on both sides, for ``plots.boots_svg``."""
    gated = ordered(comparisons[comparisons["gated"].astype(bool)
                                | (comparisons["verdict"] == "failed")])
    chosen = gated.iloc[:MAX_BOOT_PANELS]
    if chosen.empty:
        return [], len(gated)
    keys = list(zip(chosen["benchmark"], chosen["params"], chosen["metric"], strict=True))
    ids = [r for side in sides.values() for r in side]
    mine = df[df["run_id"].isin(ids)]
    wanted = pd.MultiIndex.from_tuples(keys)
    key_index = pd.MultiIndex.from_arrays([mine[k].astype(str) for k in MATCH_KEYS])
    boots = boot_table(mine[key_index.isin(wanted)], sides)
    order = {side: {r: i for i, r in enumerate(side_ids)} for side, side_ids in sides.items()}
    panels = []
    for row, key in zip(chosen.itertuples(index=False), keys, strict=True):
        part = boots[(boots["benchmark"] == key[0]) & (boots["params"] == key[1])
                     & (boots["metric"] == key[2]) & boots["log_median"].notna()]
        rounds = _round_numbers(part["pair"])
        xy, by_pair = {}, {}
        for side in sides:
            mask = (part["side"] == side).to_numpy()
            here = part[mask]
            if rounds is not None:
                x = rounds[mask]
            else:
                x = np.array([order[side][r] + 1 for r in here["run_id"]], dtype=float)
            y = np.exp(here["log_median"].to_numpy(float))
            xy[side] = (x, y)
            by_pair[side] = dict(zip(here["pair"], zip(x, y, strict=True), strict=True))
        pairs = []
        if rounds is not None and bool(row.paired):
            for pair, (x, ya) in by_pair["baseline"].items():
                if pair in by_pair["candidate"]:
                    pairs.append((float(x), float(ya), float(by_pair["candidate"][pair][1])))
        change = "" if not math.isfinite(row.change) else f" {row.change * 100:+.1f} %"
        title = (plots.shorten(f"{row.benchmark} · {short.get(key, '–')}", 38) + "\n"
                 + plots.shorten(str(row.metric), 22) + f" · {row.verdict}{change}")
        panels.append(plots.BootPanel(title, str(row.verdict), xy["baseline"], xy["candidate"],
                                      pairs, xlabel="round" if rounds is not None else "boot",
                                      ylabel=str(row.unit)))
    return panels, len(gated)


def _round_numbers(pair: pd.Series) -> np.ndarray | None:
    """1-based round numbers from the boots' ``ci_id#ci_round`` keys; with several CI runs
    (or rounds that repeat) the position of the key in sorted order; None if any is missing."""
    if pair.empty or pair.isna().any():
        return None
    keys = pair.astype(str)
    numbers = keys.str.rsplit("#", n=1).str[-1]
    if keys.str.rsplit("#", n=1).str[0].nunique() == 1 and numbers.str.isdigit().all():
        return numbers.astype(int).to_numpy(float) + 1
    rank = {k: i + 1 for i, k in enumerate(sorted(set(keys)))}
    return keys.map(rank).to_numpy(float)


def ab_section(comparisons: pd.DataFrame, df: pd.DataFrame | None = None, *,
               baseline: list[str] | None = None, candidate: list[str] | None = None,
               threshold: float | None = None, alpha: float | None = None) -> dict[str, Any]:
    """The A/B comparison: the gated metrics with their verdicts and noise, the display-only
    ones apart, a forest plot of the changes and, with the results ``df``, a dot plot of
    each gated metric's boots by round.

    The run ids, threshold and alpha default to the comparison's attrs (``compare_frames``).
    """
    attrs = comparisons.attrs
    threshold = attrs.get("threshold", threshold if threshold is not None else 0.05)
    alpha = attrs.get("alpha", alpha if alpha is not None else 0.01)
    baseline = list(baseline if baseline is not None else attrs.get("baseline", []))
    candidate = list(candidate if candidate is not None else attrs.get("candidate", []))
    rows = ordered(comparisons).reset_index(drop=True)
    cells = comparison_cells(comparisons)
    counting = (rows["gated"].astype(bool) | (rows["verdict"] == "failed")).to_numpy(bool)
    short, constant = short_params(rows) if len(rows) else ([], {})
    short = [p.replace(",", ", ") for p in short]  # lets a long params cell wrap
    cells["params"] = short
    cells["metric"] = [f"{m} ({u})\u00a0{_ARROW.get(d, '')}".rstrip() for m, u, d in
                       zip(rows["metric"], rows["unit"], rows["direction"], strict=True)]
    decision = cells[_DECISION_COLUMNS]
    table = _ab_table(decision[counting].reset_index(drop=True), "ab") if counting.any() \
        else None
    shown_only = decision[~counting].reset_index(drop=True)
    shown_table = _ab_table(shown_only, "abshown") if len(shown_only) else None
    gated = rows["gated"].astype(bool).to_numpy(bool)
    noise = _noise_table(rows[gated], cells[gated]) if gated.any() else None
    family_rows = rows.assign(short=short)[counting]
    family = int(attrs.get("family", int(rows["gated"].astype(bool).sum())))
    level = float(attrs.get("level", alpha / max(family, 1)))
    confidence_text, confidence_pct, confidence = _levels_text(
        family_rows[family_rows["rounds"].fillna(0) > 0] if len(family_rows) else family_rows,
        level)
    alpha_sentence = (f"family-wise alpha {alpha:g} over {family} gated metrics (Bonferroni "
                      f"over metrics and looks); each interval at {confidence_text}")
    forest, note = _forest(family_rows, threshold, confidence)
    dots, dots_note = None, ""
    if df is not None and baseline and candidate:
        keyed = dict(zip(zip(rows["benchmark"], rows["params"], rows["metric"], strict=True),
                         short, strict=True))
        panels, total = _boot_panels(comparisons, df, {"baseline": baseline,
                                                       "candidate": candidate}, keyed)
        if panels:
            dots = plots.boots_svg(panels)
            if total > len(panels):
                dots_note = f"the first {len(panels)} of {total} gated or failed metrics"
    counts = family_rows["verdict"].value_counts().to_dict()
    lo_band, hi_band = plots.margin_band(threshold)
    return {"table": table, "shown_table": shown_table, "n_shown": len(shown_only),
            "noise": noise,
            "forest": forest, "forest_note": note, "counts": counts, "verdicts": VERDICTS,
            "answer": str(gate_exit(comparisons)) if len(comparisons) else "undecided",
            "dots": dots, "dots_note": dots_note, "alpha_sentence": alpha_sentence,
            "confidence": confidence_text, "confidence_pct": confidence_pct,
            "family": family, "alpha": alpha,
            "threshold": threshold, "band": (lo_band, hi_band),
            "constant": [f"{b}: {c}" for b, c in constant.items()],
            "baseline": baseline, "candidate": candidate,
            "sentence": missed_sentence(comparisons)}


def _forest(rows: pd.DataFrame, threshold: float, confidence: float | None
            ) -> tuple[str | None, str]:
    """The forest plot of the gated metrics' changes, the largest MAX_FOREST_ROWS."""
    shown = rows[rows["change"].map(lambda c: math.isfinite(c))]
    note = ""
    if len(shown) > MAX_FOREST_ROWS:
        note = f"the {MAX_FOREST_ROWS} largest of {len(shown)} changes"
        shown = shown.reindex(shown["change"].abs().sort_values(ascending=False).index)
        shown = ordered(shown.iloc[:MAX_FOREST_ROWS])
    if shown.empty:
        return None, note
    labels = [f"{b} · {p} · {m}" for b, p, m in
              zip(shown["benchmark"], shown["short"], shown["metric"], strict=True)]
    svg = plots.forest_svg(labels, shown["change"].to_numpy(float),
                           shown["ci_low"].to_numpy(float), shown["ci_high"].to_numpy(float),
                           list(shown["verdict"]), threshold=threshold, confidence=confidence)
    return svg, note


def problems(df: pd.DataFrame) -> str | None:
    """Skipped and failed records with their reasons, or None when everything ran."""
    bad = df[df["status"] != "ok"]
    if bad.empty:
        return None
    table = bad.groupby(["run_id", "benchmark", "params", "status", "reason"], observed=True,
                        dropna=False).size().reset_index(name="records")
    table = as_text(table)
    table["params"] = table["params"].replace("", "–")
    return _styled(table.rename(columns={"run_id": "run"}), "bad")


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
        table = _styled(shown, "hist", classes=classes)
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
