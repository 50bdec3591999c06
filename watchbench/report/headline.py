"""The headline answers as HTML cards, Markdown and terminal lines.

One source (``questions.headlines``) and three renderings, so the report, summary.md and
the end of ``./wb bench``/``./wb all`` never disagree. Each figure names its interval
across boots and the accelerator it was taken under, with what that accelerator measures.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from watchbench.report.questions import Answer, Figure, Relation
from watchbench.report.text import fmt_short, fmt_value
from watchbench.results.schema import KERNEL_IDENTITY
from watchbench.stats.summary import CONFIDENCE
from watchbench.vm.qemu import MEASURES, Accel

MAX_TERMINAL_LINES = 15
LEVEL = f"{CONFIDENCE:.0%}".replace("%", " %")  # "95 %"


def fmt_interval(figure: Figure) -> str:
    """``95 % CI a–b, k boots`` across boots, or why there is none."""
    if figure.boots < 2 or not (math.isfinite(figure.low) and math.isfinite(figure.high)):
        return "one boot: no interval"
    return f"{LEVEL} CI {fmt_value(figure.low)}–{fmt_value(figure.high)}, {figure.boots} boots"


def fmt_figure(figure: Figure) -> str:
    """``1,052 ns`` or ``2.41×``."""
    if figure.unit == "×":
        return f"{figure.value:#.3g}".rstrip(".") + "×"
    return f"{fmt_value(figure.value)} {figure.unit}".strip()


def relation_text(a: Answer, *, brief: bool = False) -> str:
    """``+612 ns over the same call unwatched`` or ``3.9× the same at queues=1``
    (``brief``: ``+612 ns vs unwatched``, ``3.9× vs queues=1``)."""
    if a.relation is None:
        return ""
    rel = a.relation
    differs = ", ".join(f"{k}={v}" for k, v in (a.reference_params or {}).items()
                        if a.params.get(k) != v)
    if brief:
        what = f"vs {a.headline.versus or differs}"
    else:
        what = a.headline.reference_text or f"the same at {differs}"
    if a.headline.relation is Relation.DIFFERENCE:
        value = f"{'+' if rel.value >= 0 else ''}{fmt_value(rel.value)} {rel.unit}"
    else:
        value = fmt_figure(rel)
    return f"{value} {what}"


def params_text(params: dict[str, str]) -> str:
    """``k=v, k=v`` in the params' own order."""
    return ", ".join(f"{k}={v}" for k, v in params.items())


def focus_text(ok: pd.DataFrame, short: dict[tuple, str] | None = None, *,
               brief: bool = False) -> str:
    """Which kernel and accelerator the headline figures (``focus`` rows) come from, and
    what it measures (``brief``: in a few words, for the terminal)."""
    if ok.empty:
        return ""
    row = ok.iloc[0]
    series = "" if pd.isna(row["series_name"]) else str(row["series_name"])
    accel = str(row["accel"])
    try:
        measures = MEASURES[Accel(accel)]
    except ValueError:
        measures = "unknown"
    boots = ok["run_id"].nunique()
    counted = f"{boots} boot{'s' if boots != 1 else ''}"
    if brief:
        measures = measures.split(":")[0].split(" (")[0]
        return (f"{series or 'no series'} on {row['kernel_version']}, {accel} "
                f"({measures}), {counted}")
    identity = tuple("" if pd.isna(row[k]) else str(row[k]) for k in KERNEL_IDENTITY)
    long = str(row["kernel"]) if "kernel" in ok and pd.notna(row["kernel"]) else \
        f"{row['base_label']}{' + ' + series if series else ''}"
    name = f"{short[identity]} ({long})" if short and identity in short else long
    return f"{name} under {accel}, {counted}; {accel} measures {measures}"


def _params(a: Answer, accel: str) -> str:
    """The answer's params; a reader on another CPU under icount said to be simulated."""
    text = params_text(a.params)
    if accel == Accel.ICOUNT and a.params.get("reader") == "other-cpu":
        text += " (under icount the other CPU is simulated round-robin)"
    return text


def headline_cards(answers: list[Answer], accel: str = "") -> list[dict[str, Any]]:
    """Template context: one card per answered question (``accel``: what the answers'
    rows were taken under)."""
    return [{"key": a.headline.key, "question": a.headline.question,
             "figure": fmt_figure(a.figure), "interval": fmt_interval(a.figure),
             "relation": relation_text(a),
             "relation_interval": fmt_interval(a.relation) if a.relation else "",
             "what": a.headline.what, "params": _params(a, accel),
             "better": f"{a.direction} is better"} for a in answers]


def headline_markdown(answers: list[Answer], focus_line: str) -> list[str]:
    """The headline as Markdown lines (summary.md)."""
    if not answers:
        return ["## Headline", "", "No headline question could be answered from these runs "
                "(their benchmarks or params do not cover any).", ""]
    lines = ["## Headline", "", f"From {focus_line}.", "",
             "| question | figure | 95 % CI across boots | relation |", "| --- | --- | --- | --- |"]
    for a in answers:
        interval = fmt_interval(a.figure).removeprefix("95 % CI ")
        relation = relation_text(a)
        if a.relation is not None:
            relation += f" ({fmt_interval(a.relation).removeprefix('95 % CI ')})"
        lines.append(f"| {a.headline.question} | {fmt_figure(a.figure)} | {interval} | "
                     f"{relation or '–'} |")
    return [*lines, ""]


def _plus_minus(figure: Figure) -> str:
    """The interval as ± its half-width in % of the value, or why there is none."""
    if figure.boots < 2 or not math.isfinite(figure.low) or not figure.value:
        return "1 boot"
    half = (figure.high - figure.low) / 2 / abs(figure.value)
    return f"±{half * 100:.1f}%"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def headline_lines(answers: list[Answer], focus_line: str, where: str,
                   width: int = 80, *, label: str = "report") -> list[str]:
    """At most ``MAX_TERMINAL_LINES`` lines, each within ``width`` (but the last, a path,
    which is never cut): the figures, what they come from and where the details are
    (``label: where``: the report, or for ``./wb bench`` the run directory)."""
    out = [_cut(f"headline: {focus_line}", width)]
    for a in answers[:MAX_TERMINAL_LINES - 3]:
        figure = f"{fmt_short(a.figure.value)} {a.figure.unit}"
        text = f"  {a.headline.short:<17}{figure:>16} {_plus_minus(a.figure):>7}"
        relation = relation_text(a, brief=True)
        if relation:
            text += "   " + relation
        out.append(_cut(text, width))
    if not answers:
        out.append(_cut("  (no headline question is answered by this suite's benchmarks)",
                        width))
    elif any(a.figure.boots > 1 for a in answers):
        out.append(_cut(f"  ± is the {LEVEL} interval across boots; details: the {label}",
                        width))
    out.append(f"{label}: {where}")
    return out
