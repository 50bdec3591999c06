"""Assemble the report: index.html (self-contained), summary.md and results.csv."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from watchbench.errors import ResultsError
from watchbench.host.files import write_atomically
from watchbench.report import plots, sections
from watchbench.report.ab import ab_section
from watchbench.report.tables import as_text
from watchbench.report.text import compare_markdown, fmt_value, markdown_table
from watchbench.results.schema import KERNEL_IDENTITY, SERIES_KEYS
from watchbench.settings import JUDGEMENT
from watchbench.stats.compare import compare_frames, summarize
from watchbench.stats.perpatch import per_patch_steps

MAX_MARKDOWN_ROWS = 200
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("watchbench.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


PLOT_COLUMNS = ["benchmark", "metric", "unit", "direction", "kernel", "accel", "params",
                "run_id", "timestamp", "series_name", "patch_index", "patch_subject", "value"]


def _benchmarks(df: pd.DataFrame, summary: pd.DataFrame, *, threshold: float, alpha: float,
                noise_floor: float) -> list[dict[str, Any]]:
    """Per benchmark: its summary table and, per metric, distribution/history/patch plots
    (the per-patch steps decided at ``threshold`` and family-wise ``alpha``)."""
    ok = df.loc[(df["status"] == "ok") & df["value"].notna(), PLOT_COLUMNS]
    steps = None
    if ok["patch_index"].nunique() >= 2:
        steps = per_patch_steps(df, threshold=threshold, alpha=alpha, noise_floor=noise_floor)
        steps = {key: part for key, part in steps.groupby(["benchmark", "metric"])}
    many_accels = df["accel"].nunique() > 1
    values = ok["value"].to_numpy(float)
    boxes: dict[tuple, dict[tuple, np.ndarray]] = {}
    keys = ["benchmark", "metric", "kernel", "accel", "params"]
    for key, index in ok.groupby(keys, observed=True, sort=False).indices.items():
        boxes.setdefault(key[:2], {})[key[2:]] = values[index]
    figures: dict[str, list[dict[str, str]]] = {}
    for (name, metric), part in ok.groupby(["benchmark", "metric"], observed=True, sort=True):
        unit = f"{metric} ({part['unit'].iloc[0]}, {part['direction'].iloc[0]} is better)"
        svg, note = sections.distribution_figure(boxes[(name, metric)], unit)
        found = [{"title": f"{metric}: distribution", "svg": svg, "note": note}]
        history = sections.history_figure(part, unit, many_accels)
        if history:
            found.append({"title": f"{metric}: median per run over time", "svg": history,
                          "note": ""})
        patch = sections.patch_figure(part, unit)
        if patch:
            found.append({"title": f"{metric}: median and 95 % CI per patch", "svg": patch,
                          "note": ""})
        part_steps = steps.get((name, metric)) if steps else None
        waterfall = sections.waterfall_figure(part_steps) if part_steps is not None else None
        if waterfall:
            found.append({"title": f"{metric}: change vs baseline after each patch (waterfall)",
                          "svg": waterfall,
                          "note": "each bar is one patch's step, coloured by its verdict "
                                  "against the previous prefix (a step needs at least two "
                                  "boots per patch to be decided); figures in %"})
        figures.setdefault(name, []).extend(found)
    sources = df.groupby("benchmark", observed=True)["source"].unique()
    out = []
    for i, name in enumerate(sorted(map(str, df["benchmark"].unique()))):
        rows = summary[summary["benchmark"] == name]
        table = sections.benchmark_table(rows, f"sum{i}") if len(rows) else None
        out.append({"name": name, "source": ", ".join(sorted(map(str, sources[name]))),
                    "table": table,
                    "figures": figures.get(name, [])})
    return out


def _summary_csv(summary: pd.DataFrame, path: Path) -> None:
    columns = [*SERIES_KEYS, "kernel", *KERNEL_IDENTITY, "n", "median", "ci_low", "ci_high",
               "mean", "stddev", "cv"]
    write_atomically(path, summary[columns].to_csv(index=False))


def _changes_md(history: dict[str, Any]) -> list[str]:
    """The history's change points as a Markdown section."""
    parts = ["## Change points in the history", ""]
    changes = history["changes"]
    if changes.empty:
        return parts + [f"No level shift in the headline metrics over {history['entries']} "
                        "recorded entries.", ""]
    table = pd.DataFrame({
        "benchmark": changes["benchmark"], "params": changes["params"].replace("", "–"),
        "metric": changes["metric"], "accel": changes["accel"],
        "at entry": changes["history_index"], "verdict": changes["verdict"],
        "change": changes["change"].map(lambda c: f"{c * 100:+.1f} %"),
        "before": changes["before"].map(fmt_value), "after": changes["after"].map(fmt_value),
        "unit": changes["unit"],
    })
    return parts + [f"{len(changes)} level shift(s) over {history['entries']} recorded "
                    "entries (median of each entry's samples; binary segmentation).", "",
                    markdown_table(table), ""]


def _summary_md(df: pd.DataFrame, summary: pd.DataFrame, comparisons: pd.DataFrame | None,
                generated: str, history: dict[str, Any] | None = None) -> str:
    parts = ["# watchbench report", "",
             f"{df['run_id'].nunique()} run(s), {len(df):,} samples; generated {generated}.", ""]
    if comparisons is not None:
        parts.append(compare_markdown(comparisons))
    if history is not None:
        parts += _changes_md(history)
    table = pd.DataFrame({
        "benchmark": summary["benchmark"], "params": summary["params"].replace("", "–"),
        "metric": summary["metric"], "kernel": summary["kernel"], "accel": summary["accel"],
        "n": summary["n"], "median": summary["median"].map(fmt_value),
        "95% CI": [f"{fmt_value(a)} … {fmt_value(b)}"
                   for a, b in zip(summary["ci_low"], summary["ci_high"], strict=True)],
        "unit": summary["unit"],
    })
    parts += ["## Medians", ""]
    if len(table) > MAX_MARKDOWN_ROWS:
        parts += [f"First {MAX_MARKDOWN_ROWS} of {len(table)} rows; all are in results.csv.", ""]
    parts += [markdown_table(table.head(MAX_MARKDOWN_ROWS)), ""]
    bad = df[df["status"] != "ok"]
    if not bad.empty:
        listing = bad.groupby(["benchmark", "params", "status", "reason"], observed=True,
                              dropna=False).size().reset_index(name="records")
        listing = as_text(listing)
        parts += ["## Skipped or failed", "", markdown_table(listing), ""]
    return "\n".join(parts)


def write_report(
    df: pd.DataFrame,
    out_dir: Path,
    *,
    baseline: list[str] | None,
    candidate: list[str] | None,
    threshold: float = JUDGEMENT.threshold,
    alpha: float = JUDGEMENT.alpha,
    noise_floor: float = JUDGEMENT.noise_floor,
    history: pd.DataFrame | None = None,
    comparisons: pd.DataFrame | None = None,
) -> Path:
    """Write index.html, summary.md and results.csv into ``out_dir``; return the HTML path.

    With both ``baseline`` and ``candidate`` run ids, the report leads with their A/B
    comparison (ComparisonError if they are not comparable, e.g. different accelerators).
    ``history`` (from ``results.history.load_history``) adds the trend of each
    benchmark's headline metric over the recorded entries, change points marked.
    ``comparisons`` are decisions already made (``inv ci``'s looks); without them the
    runs are compared here in one look.
    """
    if df.empty:
        raise ResultsError("no results to report", hint="run a suite and ingest it first")
    if (baseline is None) != (candidate is None):
        raise ResultsError("give both baseline and candidate run ids, or neither")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    kernels = sections.kernel_labels(df)
    df = df.assign(kernel=kernels)
    summary = summarize(df)
    identity = list(KERNEL_IDENTITY)
    names = df.groupby(identity, observed=True)["kernel"].first().reset_index()
    summary = summary.merge(names, on=identity, how="left")
    ab = None
    if baseline is not None and candidate is not None:
        if comparisons is None:
            comparisons = compare_frames(df, baseline, candidate, threshold=threshold,
                                         alpha=alpha, noise_floor=noise_floor)
        ab = ab_section(comparisons, df, baseline=baseline, candidate=candidate,
                        threshold=threshold, alpha=alpha)
    trend = None
    if history is not None and not history.empty:
        trend = sections.history_section(history)
    bad_files = [why for _, why in df.attrs.get("bad_files", [])]
    provenance, common = sections.provenance(df, kernels)
    context = {
        "generated": generated,
        "n_runs": df["run_id"].nunique(),
        "n_rows": f"{len(df):,}",
        "accels": ", ".join(sorted(df["accel"].unique())),
        "provenance": provenance,
        "common": common,
        "ab": ab,
        "history": trend,
        "benchmarks": _benchmarks(df, summary, threshold=threshold, alpha=alpha,
                                  noise_floor=noise_floor),
        "threshold": ab["threshold"] if ab else threshold,
        "alpha": ab["alpha"] if ab else alpha,
        "problems": sections.problems(df),
        "bad_files": bad_files,
        "colours": plots.VERDICT_COLOURS,
        "isfinite": math.isfinite,
    }
    html = _ENV.get_template("report.html.j2").render(**context)
    # The page last: a report killed while written keeps its old page, or has none.
    write_atomically(out_dir / "summary.md",
                     _summary_md(df, summary, comparisons, generated, trend))
    _summary_csv(summary, out_dir / "results.csv")
    return write_atomically(out_dir / "index.html", html)
