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
from watchbench.report.cases import case_tables
from watchbench.report.headline import focus_text, headline_cards, headline_markdown
from watchbench.report.profile import diff_markdown, profile_section
from watchbench.report.questions import Answer, focus, headlines
from watchbench.report.tables import styled
from watchbench.report.text import compare_markdown, fmt_value, markdown_table, short_params
from watchbench.results.schema import KERNEL_IDENTITY, SERIES_KEYS
from watchbench.settings import JUDGEMENT, Judgement
from watchbench.stats.compare import compare_frames, primary_flags
from watchbench.stats.perpatch import per_patch_steps
from watchbench.stats.profilediff import Explanation
from watchbench.stats.summary import summarize

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("watchbench.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


# What the per-patch decisions read (a narrow copy of the rows is much cheaper to filter).
_STEP_COLUMNS = {"benchmark", "params", "metric", "unit", "direction", "accel", "value",
                 "status", "reason", "run_id", "primary", "ci_id", "ci_round", "patch_index",
                 "patch_subject"}
PLOT_COLUMNS = ["benchmark", "metric", "unit", "direction", "kernel", "accel", "params",
                "run_id", "timestamp", "series_name", "patch_index", "patch_subject", "value"]


def _case_labels(df: pd.DataFrame, short: dict[tuple, str]) -> pd.Series:
    """Per row: only the params that vary within its benchmark, with the kernel's short
    name and the accelerator when the report holds several (the box plots' labels).
    Computed once per distinct case and mapped onto the rows."""
    keys = ["benchmark", "params", *KERNEL_IDENTITY, "accel"]
    codes = df.groupby(keys, observed=True, sort=False, dropna=False).ngroup().to_numpy()
    cases = df[keys].iloc[np.unique(codes, return_index=True)[1]].astype("string").fillna("")
    pairs = cases[["benchmark", "params"]].drop_duplicates()
    texts, _ = short_params(pairs)
    label = dict(zip(pairs.itertuples(index=False, name=None), texts, strict=True))
    out = [label[(b, p)] for b, p in zip(cases["benchmark"], cases["params"], strict=True)]
    if len(short) > 1:
        out = [f"{o} · {short.get(tuple(k), '?')}" for o, k in zip(
            out, cases[list(KERNEL_IDENTITY)].itertuples(index=False, name=None), strict=True)]
    if df["accel"].nunique() > 1:
        out = [f"{o} · {a}" for o, a in zip(out, cases["accel"], strict=True)]
    return pd.Series(np.asarray(out, dtype=object)[codes], index=df.index, dtype="string")


def _benchmarks(df: pd.DataFrame, summary: pd.DataFrame, short: dict[tuple, str], *,
                judgement: Judgement) -> list[dict[str, Any]]:
    """Per benchmark: its case table and, per metric, distribution/history/patch plots
    (the per-patch steps decided by ``judgement``)."""
    # Figures for the primary (gated) metrics only: a derived metric (ops_per_s from
    # ns_per_op) would draw the same boots again; its figures are in the case tables.
    usable = (df["status"] == "ok") & df["value"].notna() & primary_flags(df)
    ok = df.loc[usable, [*PLOT_COLUMNS, *KERNEL_IDENTITY]]
    ok = ok.assign(case=_case_labels(ok, short))
    steps = None
    if ok["patch_index"].nunique() >= 2:
        primaries = set(ok["metric"].astype(str))
        patched = df.loc[df["patch_index"].notna(), [c for c in df.columns
                                                     if c in _STEP_COLUMNS]]
        steps = per_patch_steps(patched, primaries, judgement=judgement)
        steps = {key: part for key, part in steps.groupby(["benchmark", "metric"])}
    many_accels = df["accel"].nunique() > 1
    values = ok["value"].to_numpy(float)
    boxes: dict[tuple, list[tuple[str, np.ndarray]]] = {}
    for (name, metric, case), index in ok.groupby(["benchmark", "metric", "case"],
                                                  observed=True, sort=True).indices.items():
        boxes.setdefault((name, metric), []).append((case, values[index]))
    figures: dict[str, list[dict[str, str]]] = {}
    for (name, metric), part in ok.groupby(["benchmark", "metric"], observed=True, sort=True):
        unit = f"{metric} ({part['unit'].iloc[0]}, {part['direction'].iloc[0]} is better)"
        svg, note = sections.distribution_figure(boxes[(name, metric)], unit)
        found = [{"title": f"{metric}: every sample", "svg": svg, "note": note}]
        # Runs over time, unless they are the steps of a patch series: the per-patch
        # figures below show those runs in their order.
        history = None if steps else sections.history_figure(part, unit, many_accels)
        if history:
            found.append({"title": f"{metric}: median per run over time", "svg": history,
                          "note": ""})
        patch = sections.patch_figure(part, unit)
        if patch:
            found.append({"title": f"{metric}: across boots, after each patch", "svg": patch,
                          "note": "geometric mean of the boot medians with its 95 % "
                                  "interval across boots"})
        part_steps = steps.get((name, metric)) if steps else None
        # A waterfall attributes a change to patches: drawn when a step moved the metric
        # (the per-patch figure above shows the steps that did not).
        moved = part_steps is not None and part_steps["step_verdict"].isin(
            ["regressed", "improved"]).any()
        waterfall = sections.waterfall_figure(part_steps) if moved else None
        if waterfall:
            found.append({"title": f"{metric}: change vs baseline after each patch (waterfall)",
                          "svg": waterfall,
                          "note": "each bar is one patch's step, coloured by its verdict "
                                  "against the previous prefix (a step needs at least two "
                                  "boots per patch to be decided); figures in %"})
        figures.setdefault(name, []).extend(found)
    sources = df.groupby("benchmark", observed=True)["source"].unique()
    tables = case_tables(summary, df, short)
    out = []
    for i, name in enumerate(sorted(map(str, df["benchmark"].unique()))):
        table, constant = tables.get(name, (None, []))
        out.append({"name": name, "source": ", ".join(sorted(map(str, sources[name]))),
                    "table": None if table is None else styled(table, f"case{i}",
                                                               table_class="data cases"),
                    "constant": constant, "figures": figures.get(name, [])})
    return out


def _summary_csv(summary: pd.DataFrame, path: Path) -> None:
    columns = [*SERIES_KEYS, "kernel", *KERNEL_IDENTITY, "n", "boots", "centre", "scale", "ci_low",
               "ci_high", "between_cv", "mean", "stddev", "cv"]
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


def _summary_md(df: pd.DataFrame, answers: list[Answer], focus_line: str,
                comparisons: pd.DataFrame | None, generated: str,
                history: dict[str, Any] | None = None, verdict: str = "",
                explanation: Explanation | None = None, profile_problem: str = "") -> str:
    """summary.md, fit for a CI job summary: the gate's verdict first (``verdict``), then
    the gated metrics (the display-only ones folded), where their instructions went, the
    history and the headline; the full tables are in results.csv and the HTML."""
    counted = f"{df['run_id'].nunique()} run(s), {len(df):,} samples; generated {generated}."
    if verdict:
        parts = [f"## watchbench: {verdict}", "", counted, ""]
    else:
        parts = ["# watchbench report", "", counted, ""]
    if comparisons is not None:
        parts.append(compare_markdown(comparisons, title="Gated metrics", heading="###")
                     if verdict else compare_markdown(comparisons))
    if explanation is not None:
        parts.append(diff_markdown(explanation.diff, explanation.moved))
    elif profile_problem:
        parts += ["### Where the instructions went", "", profile_problem, ""]
    if history is not None:
        parts += _changes_md(history)
    parts += headline_markdown(answers, focus_line)
    bad = df[df["status"] != "ok"]
    if not bad.empty:
        listing = bad.groupby(["benchmark", "status"], observed=True).size()
        parts += ["", "Skipped or failed: " + ", ".join(
            f"{b} {s} ×{n}" for (b, s), n in listing.items() if n) + " (the HTML report "
            "lists the reasons)."]
    parts += ["", "Every case and metric, with its interval across boots: `results.csv` and "
              "`index.html` beside this file.", ""]
    return "\n".join(parts)


def write_report(
    df: pd.DataFrame,
    out_dir: Path,
    *,
    baseline: list[str] | None,
    candidate: list[str] | None,
    judgement: Judgement = JUDGEMENT,
    history: pd.DataFrame | None = None,
    comparisons: pd.DataFrame | None = None,
    explanation: Explanation | None = None,
    verdict: str = "",
    profile_problem: str = "",
) -> Path:
    """Write index.html, summary.md and results.csv into ``out_dir``; return the HTML path.

    With both ``baseline`` and ``candidate`` run ids, the report leads with their A/B
    comparison (ComparisonError if they are not comparable, e.g. different accelerators).
    ``history`` (from ``results.history.load_history``) adds the trend of each
    benchmark's headline metric over the recorded entries, change points marked.
    ``comparisons`` are decisions already made (``./wb ci``'s looks); without them the
    runs are compared here in one look. ``explanation`` (``./wb ci``'s profiles) adds
    where the moved metrics' instructions went, or ``profile_problem`` why it could not.
    ``verdict`` (``./wb ci``'s answer in one sentence) leads summary.md, so that it is a
    CI job summary as written: this is its one writer.
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
    short = sections.short_kernel_names(df)
    summary = summarize(df)
    identity = list(KERNEL_IDENTITY)
    names = df.groupby(identity, observed=True)["kernel"].first().reset_index()
    summary = summary.merge(names, on=identity, how="left")
    ab = None
    if baseline is not None and candidate is not None:
        if comparisons is None:
            comparisons = compare_frames(df, baseline, candidate, judgement=judgement)
        ab = ab_section(comparisons, df, baseline=baseline, candidate=candidate,
                        threshold=judgement.threshold, alpha=judgement.alpha)
    trend = None
    if history is not None and not history.empty:
        trend = sections.history_section(history)
    bad_files = [why for _, why in df.attrs.get("bad_files", [])]
    provenance, common = sections.provenance(df, short)
    focused = focus(df, candidate)  # an A/B report answers for its candidate
    answers = headlines(focused)
    focus_line = focus_text(focused, short)
    context = {
        "generated": generated,
        "n_runs": df["run_id"].nunique(),
        "n_rows": f"{len(df):,}",
        "accels": ", ".join(sorted(df["accel"].unique())),
        "measures": sections.measures(df),
        "headline": headline_cards(answers, str(focused["accel"].iloc[0])
                                   if len(focused) else ""),
        "focus": focus_line,
        "sweeps": sections.sweep_figures(focused),
        "kernel_list": sections.kernel_list(df, short),
        "provenance": provenance,
        "common": common,
        "ab": ab,
        "history": trend,
        "benchmarks": _benchmarks(df, summary, short, judgement=judgement),
        "threshold": ab["threshold"] if ab else judgement.threshold,
        "alpha": ab["alpha"] if ab else judgement.alpha,
        "problems": sections.problems(df),
        "where": profile_section(explanation) if explanation is not None else None,
        "bad_files": bad_files,
        "colours": plots.VERDICT_COLOURS,
        "isfinite": math.isfinite,
    }
    html = _ENV.get_template("report.html.j2").render(**context)
    # The page last: a report killed while written keeps its old page, or has none.
    write_atomically(out_dir / "summary.md",
                     _summary_md(df, answers, focus_line, comparisons, generated, trend,
                                 verdict, explanation, profile_problem))
    _summary_csv(summary, out_dir / "results.csv")
    return write_atomically(out_dir / "index.html", html)
