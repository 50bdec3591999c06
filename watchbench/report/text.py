"""Numbers as people read them, and the comparison as terminal text and Markdown."""

from __future__ import annotations

import math

import pandas as pd

VERDICT_ORDER = {"regressed": 0, "improved": 1, "inconclusive": 2, "unchanged": 3}
_ANSI = {"regressed": "\033[31m", "improved": "\033[32m", "inconclusive": "\033[33m",
         "unchanged": "\033[2m"}


def fmt_value(value: float) -> str:
    """About four significant digits, thousands separated; a dash for no value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if abs(value) >= 1e5:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.4g}"


def fmt_change(change: float) -> str:
    return "–" if not math.isfinite(change) else f"{change * 100:+.1f} %"


def fmt_ci(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    return f"[{low * 100:+.1f}, {high * 100:+.1f}] %"


def fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return "<0.0001" if p < 1e-4 else f"{p:.2g}"


def fmt_mde(mde: float) -> str:
    return "–" if not math.isfinite(mde) else f"{mde * 100:.1f} %"


def ordered(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Regressions first, then improvements, inconclusive, unchanged; stable within."""
    rank = comparisons["verdict"].map(VERDICT_ORDER).fillna(9)
    return comparisons.assign(_rank=rank).sort_values(
        ["_rank", "benchmark", "params", "metric"], kind="stable"
    ).drop(columns="_rank")


def comparison_cells(comparisons: pd.DataFrame) -> pd.DataFrame:
    """The comparison as display strings, the same for terminal, Markdown and HTML."""
    rows = []
    for r in ordered(comparisons).itertuples(index=False):
        rows.append({
            "verdict": r.verdict,
            "benchmark": r.benchmark,
            "params": r.params or "–",
            "metric": f"{r.metric} ({r.unit}, {r.direction} is better)",
            "baseline": fmt_value(r.median_a),
            "candidate": fmt_value(r.median_b),
            "change": fmt_change(r.change),
            "95% CI": fmt_ci(r.ci_low, r.ci_high),
            "p": fmt_p(r.p_value),
            "n": f"{r.n_a}/{r.n_b}",
            "MDE": fmt_mde(r.mde),
            "why": r.reason,
        })
    return pd.DataFrame(rows, columns=["verdict", "benchmark", "params", "metric", "baseline",
                                       "candidate", "change", "95% CI", "p", "n", "MDE", "why"])


def missed_sentence(comparisons: pd.DataFrame) -> str:
    """The power statement for the unchanged rows: what a "no change" could have missed."""
    unchanged = comparisons[comparisons["verdict"] == "unchanged"]
    mde = unchanged["mde"][unchanged["mde"].map(math.isfinite)]
    if mde.empty:
        return ""
    return (f"For the {len(unchanged)} unchanged metric(s), no change larger than "
            f"{mde.max() * 100:.1f} % would have been missed (power 80 %).")


def compare_table(comparisons: pd.DataFrame, *, color: bool = False) -> str:
    """An aligned plain-text table (verdict, change, CI, p) for the terminal."""
    cells = comparison_cells(comparisons).drop(columns=["why"])
    if cells.empty:
        return "no metric was measured on both sides"
    header = list(cells.columns)
    body = [[str(v) for v in row] for row in cells.itertuples(index=False)]
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    right = {"baseline", "candidate", "change", "p", "n", "MDE"}

    def line(values: list[str]) -> str:
        out = []
        for value, width, name in zip(values, widths, header, strict=True):
            text = value.rjust(width) if name in right else value.ljust(width)
            if color and name == "verdict" and value in _ANSI:
                text = f"{_ANSI[value]}{text}\033[0m"
            out.append(text)
        return "  ".join(out).rstrip()

    lines = [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in body]
    attrs = comparisons.attrs
    if attrs:
        lines.append("")
        lines.append(_legend(attrs))
    sentence = missed_sentence(comparisons)
    if sentence:
        lines.append(sentence)
    return "\n".join(lines)


def _legend(attrs: dict) -> str:
    return (f"change = candidate median / baseline median - 1; CI {attrs['confidence']:.0%} "
            f"bootstrap; p = Mann-Whitney U; threshold {attrs['threshold']:.0%}, "
            f"alpha {attrs['alpha']:g}; MDE = smallest change detectable with 80 % power")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of display strings (pipes escaped)."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, frame.columns)) + " |",
             "|" + "|".join(" --- " for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def compare_markdown(comparisons: pd.DataFrame, *, title: str = "A/B comparison") -> str:
    """The comparison as Markdown (for ``summary.md`` and CI job summaries)."""
    icons = {"regressed": "🔴 regressed", "improved": "🟢 improved",
             "inconclusive": "🟡 inconclusive", "unchanged": "⚪ unchanged"}
    parts = [f"## {title}", ""]
    attrs = comparisons.attrs
    if attrs.get("baseline"):
        parts += [f"Baseline runs: {', '.join(attrs['baseline'])}  ",
                  f"Candidate runs: {', '.join(attrs['candidate'])}", ""]
    cells = comparison_cells(comparisons)
    if cells.empty:
        return "\n".join(parts + ["No metric was measured on both sides.", ""])
    counts = cells["verdict"].value_counts()
    parts.append(", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if v in counts))
    parts.append("")
    cells["verdict"] = cells["verdict"].map(icons)
    parts.append(markdown_table(cells))
    parts.append("")
    if attrs:
        parts += [_legend(attrs), ""]
    sentence = missed_sentence(comparisons)
    if sentence:
        parts += [sentence, ""]
    return "\n".join(parts)
