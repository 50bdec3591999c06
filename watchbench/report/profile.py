"""Profiles and profile diffs for people: terminal lines, Markdown, HTML figures.

The figures are instructions per operation counted by the plugin under icount: the same
in every boot and on every host, and blind to everything icount is blind to (caches,
memory bandwidth, contention). ``[async]`` (interrupts, softirqs, the other vCPU's
unrelated work) is shown apart and never as a change. A profile taken with the cache
model adds its misses and ``est_cycles_per_op`` beside them, every line of them saying
"model": an estimate, not a measurement (docs/cache-model.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from watchbench.report.plots import diff_svg, shorten
from watchbench.results.profile import ASYNC
from watchbench.stats.profilediff import (
    CASE,
    Explanation,
    case_totals,
    top_changes,
    top_model_changes,
)

UNIT = "instr/op"
INTERLEAVED_NOTE = ("reader on the other CPU: under icount the vCPUs take turns, so the counts "
                    "depend on the interleaving")


def case_label(benchmark: str, params: str, width: int = 76) -> str:
    return shorten(f"{benchmark} {params}", width)


def fmt_count(value: float) -> str:
    """Instructions per op: whole numbers as such, fractions with what they need."""
    if abs(value - round(value)) < 5e-4:
        return f"{round(value):,}"
    return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"


def fmt_change(symbol: str, delta: float, rel: float) -> str:
    """``post_one_notification +512 instr/op (+38 %)``."""
    sign = "+" if delta > 0 else "-"
    if rel is None or (isinstance(rel, float) and math.isnan(rel)):
        share = "new"
    else:
        share = f"{rel * 100:+.0f} %"
    return f"{symbol} {sign}{fmt_count(abs(delta))} {UNIT} ({share})"


MODEL_UNIT = "est. cycles/op (model)"
# The column heads of a profile with the cache model: L1 is I1 and D1 misses together.
MODEL_HEAD = (f"  {'instr/op':>9} {'shr':>4} {'L1 miss':>7} {'LLmiss':>6} {'est.cyc':>9}  "
              "function (misses, est.cyc: model)")


def _modelled(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and bool(frame[column].notna().any())


def model_line(est: float, l1: float, ll: float) -> str:
    """``model: 1,234 est. cycles/op; misses/op L1 3.2, LL 0.1``."""
    return (f"model: {fmt_count(est)} {MODEL_UNIT.removesuffix(' (model)')}; misses/op "
            f"L1 {fmt_count(l1)}, LL {fmt_count(ll)}")


def profile_lines(table: pd.DataFrame, n: int = 5, width: int = 80) -> list[str]:
    """Per case: its instructions per op, then its top ``n`` functions with their share;
    with the cache model, the case's estimate and each function's misses and estimate."""
    lines: list[str] = []
    for (benchmark, params), case in table.groupby(CASE, sort=True):
        own = case[case["symbol"] != ASYNC].sort_values("instr_per_op", ascending=False)
        first = case.iloc[0]
        model = _modelled(case, "case_est_cycles_per_op")
        mark = " †" if first["interleaved"] else ""
        lines.append(case_label(benchmark, params, width - 2) + mark)
        lines.append(f"  {fmt_count(first['case_instr_per_op'])} {UNIT} "
                     f"(ns_per_op {first['case_ns_per_op']:,.1f} in the same boot)")
        if not model:
            for row in own.head(n).itertuples():
                lines.append(shorten(f"  {fmt_count(row.instr_per_op):>9} {row.share:>4.0%}  "
                                     f"{row.symbol}", width))
            continue
        l1 = own["i1_miss_per_op"] + own["d1_miss_per_op"]
        lines.append(shorten("  " + model_line(first["case_est_cycles_per_op"], l1.sum(),
                                               own["ll_miss_per_op"].sum()), width))
        lines.append(shorten(MODEL_HEAD, width))
        for row, misses in zip(own.head(n).itertuples(), l1.head(n), strict=True):
            lines.append(shorten(f"  {fmt_count(row.instr_per_op):>9} {row.share:>4.0%} "
                                 f"{fmt_count(misses):>7} {fmt_count(row.ll_miss_per_op):>6} "
                                 f"{fmt_count(row.est_cycles_per_op):>9}  {row.symbol}", width))
    if table["interleaved"].any():
        lines.append(shorten("† " + INTERLEAVED_NOTE, width))
    return lines


def model_change(total: Mapping[str, Any]) -> str:
    """A case's cache model figures (a row of ``case_totals``), baseline -> candidate (""
    unless both sides have them): ``model: 1,234 -> 1,300 est. cycles/op; misses/op L1
    3 -> 4, LL 0 -> 1``."""
    figures = [total.get(f"{side}_{what}") for what in ("est", "l1_miss", "ll_miss")
               for side in ("base", "cand")]
    if any(f is None or f != f for f in figures):
        return ""
    est, l1, ll = (f"{fmt_count(a)} -> {fmt_count(b)}" for a, b in zip(figures[::2],
                                                                        figures[1::2],
                                                                        strict=True))
    return f"model: {est} est. cycles/op; misses/op L1 {l1}, LL {ll}"


def fmt_signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + fmt_count(abs(value))


def fmt_model_change(symbol: str, l1: float, ll: float, est: float) -> str:
    """``__post_watch_notification +115 est. cycles/op; misses/op L1 +1, LL +1`` (as a
    case's ``model_line``; the heading above it says "model")."""
    return (f"{symbol} {fmt_signed(est)} {MODEL_UNIT.removesuffix(' (model)')}; "
            f"misses/op L1 {fmt_signed(l1)}, LL {fmt_signed(ll)}")


def _of_case(frame: pd.DataFrame, benchmark: str, params: str) -> pd.DataFrame:
    return frame[(frame["benchmark"] == benchmark) & (frame["params"] == params)]


def diff_lines(diff: pd.DataFrame, n: int = 3, width: int = 80) -> list[str]:
    """The cases whose instructions changed, each with its top ``n`` functions; with the
    cache model, also the cases whose misses moved, with the functions that take them."""
    tops, misses = top_changes(diff, n), top_model_changes(diff, n)
    totals = case_totals(diff)
    lines = []
    for total in totals[totals["changed"] | totals["model_changed"]].itertuples():
        lines.append(case_label(total.benchmark, total.params, width))
        model = model_change(total._asdict())
        if model and len(model) + 2 > width:  # the misses on a line of their own, not cut
            estimate, misses_said = model.split("; ", 1)
            lines += [shorten(f"  {estimate};", width), shorten(f"    {misses_said}", width)]
        elif model:
            lines.append(f"  {model}")
        said = "in all, of which:" if total.changed else "in all: no function changed"
        lines.append(f"  {fmt_count(total.base_per_op)} -> {fmt_count(total.cand_per_op)} "
                     f"{UNIT} {said}")
        lines += [shorten("    " + fmt_change(r.symbol, r.delta, r.rel), width)
                  for r in _of_case(tops, total.benchmark, total.params).itertuples()]
        moved = _of_case(misses, total.benchmark, total.params)
        if len(moved):
            lines.append("  where the misses went (model):")
            lines += [shorten("    " + fmt_model_change(r.symbol, r.l1_delta, r.ll_delta,
                                                        r.est_delta), width)
                      for r in moved.itertuples()]
    unchanged = int((~(totals["changed"] | totals["model_changed"])).sum())
    if unchanged:
        lines.append(f"{unchanged} profiled case(s): no function changed")
    return lines


def diff_markdown(diff: pd.DataFrame, moved: pd.DataFrame, n: int = 5,
                  title: str = "Where the instructions went") -> str:
    """For each metric the gate moved (rows of ``moved``: benchmark, params, metric,
    verdict), the top ``n`` functions by change in instructions per op."""
    tops, misses = top_changes(diff, n), top_model_changes(diff, n)
    totals = case_totals(diff)
    out = [f"### {title}", "",
           f"Instructions per operation counted under icount by the TCG plugin "
           f"(baseline → candidate); `{ASYNC}` work is left out.", ""]
    for row in moved.itertuples():
        case = tops[(tops["benchmark"] == row.benchmark) & (tops["params"] == row.params)]
        out.append(f"- **{row.benchmark}** {row.params} · {row.metric} {row.verdict}:")
        model = _case_model(totals, row.benchmark, row.params)
        if model:
            out.append(f"  - {model} (a model, not a measurement: docs/cache-model.md)")
        if case.empty:
            profiled = ((diff["benchmark"] == row.benchmark)
                        & (diff["params"] == row.params)).any()
            out.append("  - no function changed its instructions per op (the change is in "
                       "what icount cannot see, or in timing)" if profiled
                       else "  - this case was not profiled")
        out += [f"  - `{fmt_change(r.symbol, r.delta, r.rel)}`" for r in case.itertuples()]
        out += [f"  - `{fmt_model_change(r.symbol, r.l1_delta, r.ll_delta, r.est_delta)}` "
                "(model)" for r in _of_case(misses, row.benchmark, row.params).itertuples()]
        if bool(diff.loc[(diff["benchmark"] == row.benchmark)
                         & (diff["params"] == row.params), "interleaved"].any()):
            out.append(f"  - ({INTERLEAVED_NOTE})")
    return "\n".join(out) + "\n"


def _case_model(totals: pd.DataFrame, benchmark: str, params: str) -> str:
    """``model_change`` of one case of ``case_totals`` ("" if absent or without the model)."""
    rows = totals[(totals["benchmark"] == benchmark) & (totals["params"] == params)]
    return model_change(rows.iloc[0].to_dict()) if len(rows) else ""


def diff_figures(diff: pd.DataFrame, n: int = 10) -> list[dict]:
    """One bar chart per case that changed: its ``n`` largest changes."""
    tops = top_changes(diff, n)
    figures = []
    for (benchmark, params), case in tops.groupby(CASE, sort=True):
        figures.append({"benchmark": benchmark, "params": params,
                        "interleaved": bool(case["interleaved"].any()),
                        "svg": diff_svg(list(case["symbol"]), case["delta"].to_numpy())})
    return figures


def profile_section(explanation: Explanation) -> dict:
    """The HTML report's "Where the instructions went": per moved metric its top changes,
    a bar chart per case that changed, and with --per-patch each step's changes."""
    diff = explanation.diff
    tops, misses = top_changes(diff, 5), top_model_changes(diff, 5)
    totals = case_totals(diff)
    metrics = []
    for row in explanation.moved.itertuples():
        case = tops[(tops["benchmark"] == row.benchmark) & (tops["params"] == row.params)]
        metrics.append({"benchmark": row.benchmark, "params": row.params, "metric": row.metric,
                        "verdict": str(row.verdict),
                        "model": _case_model(totals, row.benchmark, row.params),
                        "changes": [fmt_change(r.symbol, r.delta, r.rel)
                                    for r in case.itertuples()],
                        "misses": [fmt_model_change(r.symbol, r.l1_delta, r.ll_delta,
                                                    r.est_delta) for r in _of_case(
                                       misses, row.benchmark, row.params).itertuples()]})
    steps = [{"index": s.index, "subject": s.subject,
              "lines": diff_lines(s.diff, n=3, width=110)} for s in explanation.steps]
    return {"metrics": metrics, "figures": diff_figures(diff), "steps": steps,
            "totals": case_totals(diff).to_dict("records"), "note": INTERLEAVED_NOTE,
            "async": ASYNC}
