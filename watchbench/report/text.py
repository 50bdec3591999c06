"""Numbers as people read them, and the comparison as terminal text and Markdown."""

from __future__ import annotations

import math
import shutil
import textwrap

import pandas as pd

from watchbench.stats.perpatch import moved_by

VERDICT_ORDER = {"failed": 0, "regressed": 1, "improved": 2, "undecided": 3, "unchanged": 4}
_ANSI = {"failed": "\033[31;1m", "regressed": "\033[31m", "improved": "\033[32m",
         "undecided": "\033[33m", "unchanged": "\033[2m"}


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
    """Broken benchmarks first, then regressions, improvements, undecided, unchanged;
    gated metrics before display-only ones within a verdict."""
    rank = comparisons["verdict"].map(VERDICT_ORDER).fillna(9)
    shown = ~comparisons["gated"].astype(bool) if "gated" in comparisons else rank * 0
    return comparisons.assign(_rank=rank, _shown=shown).sort_values(
        ["_rank", "_shown", "benchmark", "params", "metric"], kind="stable"
    ).drop(columns=["_rank", "_shown"])


def comparison_cells(comparisons: pd.DataFrame) -> pd.DataFrame:
    """The comparison as display strings, the same for terminal, Markdown and HTML."""
    rows = []
    for r in ordered(comparisons).itertuples(index=False):
        rows.append({
            "verdict": r.verdict,
            "benchmark": r.benchmark,
            "params": r.params or "–",
            "metric": f"{r.metric} ({r.unit}, {r.direction} is better)"
                      + ("" if r.gated else ", display only"),
            "baseline": fmt_value(r.median_a),
            "candidate": fmt_value(r.median_b),
            "change": fmt_change(r.change),
            "CI": fmt_ci(r.ci_low, r.ci_high),
            "p": fmt_p(r.p_adjusted),
            "boots": f"{r.n_a}/{r.n_b}",
            "rounds": _rounds(r.decided_at, r.rounds),
            "CV between/within": f"{fmt_mde(r.between_cv)} / {fmt_mde(r.within_cv)}",
            "n eff": fmt_n(r.n_eff),
            "MDE": fmt_mde(r.mde),
            "why": r.reason,
        })
    return pd.DataFrame(rows, columns=["verdict", "benchmark", "params", "metric", "baseline",
                                       "candidate", "change", "CI", "p", "boots", "rounds",
                                       "CV between/within", "n eff", "MDE", "why"])


def _rounds(decided_at: object, rounds: object) -> str:
    """Rounds the decision took (the look it was made at), else the rounds used."""
    for value in (decided_at, rounds):
        if value is not None and not pd.isna(value) and int(value) > 0:
            return str(int(value))
    return "–"


def fmt_n(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.1f}"


def missed_sentence(comparisons: pd.DataFrame) -> str:
    """The power statement for the unchanged rows: what a "no change" could have missed."""
    unchanged = comparisons[(comparisons["verdict"] == "unchanged") & comparisons["gated"]]
    mde = unchanged["mde"][unchanged["mde"].map(math.isfinite)]
    if mde.empty:
        return ""
    return (f"For the {len(unchanged)} unchanged gated metric(s), a change of "
            f"{mde.max() * 100:.1f} % or more would have been found with 80 % power at the "
            "rounds used.")


def _param_pairs(params: str) -> list[tuple[str, str]]:
    """``k=v, k=v`` (records.params_key) back into pairs; text without ``=`` stays whole."""
    pairs = []
    for part in (params or "").split(", "):
        key, sep, value = part.partition("=")
        if part:
            pairs.append((key, value) if sep else (part, ""))
    return pairs


def short_params(comparisons: pd.DataFrame, *, values_only: bool = False
                 ) -> tuple[list[str], dict[str, str]]:
    """Per row, only the params that vary within its benchmark (``k=v,k=v``).

    Returns the short texts in row order and per benchmark a note of what was left out:
    the params equal in all its rows and, with ``values_only`` (``v/v``, for narrow
    terminals), the order of the keys.
    """
    pairs = [_param_pairs(p) for p in comparisons["params"]]
    benchmarks = list(comparisons["benchmark"])
    constant: dict[str, dict[str, str]] = {}
    keys_in_order: dict[str, list[str]] = {}
    for bench in dict.fromkeys(benchmarks):
        rows = [dict(pp) for pp, b in zip(pairs, benchmarks, strict=True) if b == bench]
        keys = sorted(set().union(*rows))
        constant[bench] = {k: rows[0][k] for k in keys
                           if len(rows) > 1 and all(r.get(k) == rows[0].get(k) for r in rows)}
        keys_in_order[bench] = [k for k in keys if k not in constant[bench]]
    short = []
    for pp, bench in zip(pairs, benchmarks, strict=True):
        kept = [(k, v) for k, v in pp if k not in constant[bench]]
        if values_only:
            text = "/".join(v or k for k, v in kept)
        else:
            text = ",".join(f"{k}={v}" if v else k for k, v in kept)
        short.append(text or "–")
    notes = {}
    for bench in constant:
        parts = []
        if values_only and keys_in_order[bench]:
            parts.append("params " + "/".join(keys_in_order[bench]))
        if constant[bench]:
            parts.append("always " + ", ".join(f"{k}={v}" for k, v in constant[bench].items()))
        if parts:
            notes[bench] = "; ".join(parts)
    return short, notes


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


_ARROW = {"lower": "↓", "higher": "↑"}
_RIGHT = {"baseline", "candidate", "change", "CI", "p", "n", "MDE", "rnd"}


def fmt_short(value: float) -> str:
    """Four significant digits with a k/M/G suffix: at most 7 characters for a terminal."""
    if value is None or not math.isfinite(value):
        return "–"
    # from 10,000 up (shorter than 4 digits with a separator), in units of the suffix
    for floor, scale, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= floor:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.4g}"


def _pct(fraction: float) -> str:
    """A signed percentage, whole numbers from 100 % up (the digits there are noise)."""
    if not math.isfinite(fraction):
        return "–"
    return f"{fraction * 100:+.0f}" if abs(fraction) >= 1 else f"{fraction * 100:+.1f}"


def _terminal_cells(rows: pd.DataFrame, params: list[str]) -> dict[str, list[str]]:
    def ci(lo: float, hi: float) -> str:
        return f"[{_pct(lo)},{_pct(hi)}]" if math.isfinite(lo) and math.isfinite(hi) else "–"

    return {
        "benchmark": list(rows["benchmark"].astype(str)),
        "params": params,
        "metric": [f"{m}{_ARROW.get(d, '')}{'' if g else '°'}"
                   for m, d, g in zip(rows["metric"], rows["direction"], rows["gated"],
                                      strict=True)],
        "unit": list(rows["unit"].astype(str)),
        "baseline": [fmt_short(v) for v in rows["median_a"]],
        "candidate": [fmt_short(v) for v in rows["median_b"]],
        "change": [_pct(v) + "%" if math.isfinite(v) else "–" for v in rows["change"]],
        "CI": [ci(lo, hi) for lo, hi in zip(rows["ci_low"], rows["ci_high"], strict=True)],
        "p": [fmt_p(v) for v in rows["p_adjusted"]],
        "rnd": [_rounds(d, r) for d, r in zip(rows["decided_at"], rows["rounds"], strict=True)],
        "n": [f"{a}/{b}" for a, b in zip(rows["n_a"], rows["n_b"], strict=True)],
        "MDE": [fmt_mde(v).replace(" ", "") for v in rows["mde"]],
    }


# Shrinking steps, in order, until the table fits: drop a column, clip a text column to a
# floor, or let a column's values set its width (the header is then abbreviated).
_SHRINK = [("clip", "params", 36), ("drop", "MDE"), ("drop", "unit"), ("clip", "params", 24),
           ("drop", "n"), ("drop", "p"), ("drop", "rnd"), ("clip", "params", 16), ("clip", "metric", 12),
           ("clip", "benchmark", 10), ("clip", "params", 10), ("header", "candidate"),
           ("header", "baseline"), ("clip", "params", 8), ("clip", "metric", 10),
           ("clip", "benchmark", 8)]
_SHORT_HEADERS = {"baseline": "base", "candidate": "cand"}
MIN_WIDTH = 72  # the narrowest the table gets; narrower terminals wrap its lines


def _fit(cells: dict[str, list[str]], width: int) -> dict[str, int]:
    """Column widths that fit ``width``: clip params, drop the least needed columns."""
    widths = {name: max(len(name), *(len(v) for v in values))
              for name, values in cells.items()}
    if all(v == "–" for v in cells["MDE"]):
        del widths["MDE"]
    for step in _SHRINK:
        total = sum(widths.values()) + 2 * (len(widths) - 1)
        if total <= width:
            break
        kind, name = step[0], step[1]
        if kind == "drop":
            widths.pop(name, None)
        elif kind == "header":
            widths[name] = max(len(_SHORT_HEADERS[name]), *(len(v) for v in cells[name]))
        else:
            floor = step[2]
            widths[name] = max(min(widths[name], floor), widths[name] - (total - width))
    return widths


def _header(name: str, width: int) -> str:
    return name if len(name) <= width else _SHORT_HEADERS.get(name, name)


def compare_table(comparisons: pd.DataFrame, *, color: bool = False, width: int | None = None,
                  show_unchanged: bool = False) -> str:
    """The comparison for a terminal: one line per metric, no wider than ``width``.

    Rows are grouped under their verdict (regressed, improved, inconclusive, unchanged).
    Params equal in every row of a benchmark are left out of the rows and named once
    below; units are short with an arrow for the better direction. Unchanged metrics are
    one summary line unless ``show_unchanged``. ``width`` defaults to the terminal's; the
    table needs ``MIN_WIDTH`` columns at least (the notes below it always fit).
    """
    if comparisons.empty:
        return "no metric was measured on both sides"
    width = width or shutil.get_terminal_size((80, 24)).columns
    rows = ordered(comparisons)
    params, constant = short_params(rows)
    cells = _terminal_cells(rows, params)
    widths = _fit(cells, width)
    if widths["params"] < max(map(len, params)):  # would be clipped: values only, keys below
        params, constant = short_params(rows, values_only=True)
        cells = _terminal_cells(rows, params)
        widths = _fit(cells, width)
    def line(values: dict[str, str]) -> str:
        out = []
        for name, w in widths.items():
            text = _clip(values[name], w)
            out.append(text.rjust(w) if name in _RIGHT else text.ljust(w))
        return "  ".join(out).rstrip()

    lines = [line({name: _header(name, w) for name, w in widths.items()}),
             "  ".join("-" * w for w in widths.values())]
    verdicts = list(rows["verdict"])
    for verdict in [*VERDICT_ORDER, *sorted(set(verdicts) - set(VERDICT_ORDER))]:
        index = [i for i, v in enumerate(verdicts) if v == verdict]
        if not index:
            continue
        heading = f"{verdict}: {len(index)}"
        if verdict == "unchanged" and not show_unchanged:
            heading = f"{len(index)} metric(s) unchanged (not listed; --all lists them)"
        lines.append(f"{_ANSI[verdict]}{heading}\033[0m" if color and verdict in _ANSI
                     else heading)
        if verdict != "unchanged" or show_unchanged:
            lines += [line({name: cells[name][i] for name in cells}) for i in index]
    notes = []
    if constant:
        notes.append(" · ".join(f"{b}: {c}" for b, c in constant.items()))
    notes.append("↓ lower is better, ↑ higher is better, ° display only (derived from a "
                 "gated metric); typical values with k = 1e3, M = 1e6, G = 1e9; change and "
                 "its CI in %; rnd = rounds the decision took")
    if comparisons.attrs:
        notes.append(_legend(comparisons.attrs))
    sentence = missed_sentence(comparisons)
    if sentence:
        notes.append(sentence)
    lines.append("")
    for note in notes:
        lines += textwrap.wrap(note, width, subsequent_indent="  ", break_on_hyphens=False)
    return "\n".join(lines)


def _legend(attrs: dict) -> str:
    level = attrs.get("level", attrs.get("alpha", 0.01))
    return (f"The boot is the unit: each boot's repeats give one median, rounds pair the "
            f"boots. change = mean paired log ratio, back-transformed; CI = paired t interval "
            f"at {1 - level:.4g} (alpha {attrs['alpha']:g} spent over "
            f"{attrs.get('family', '?')} gated metric(s) and the looks, Bonferroni); p is "
            f"adjusted to that family alpha; threshold {attrs['threshold']:.0%}; MDE = smallest "
            "change found with 80 % power at the rounds used.")


def noise_table(comparisons: pd.DataFrame, width: int = 80) -> str:
    """The noise behind each gated metric, for a terminal: between- and within-boot CV,
    effective n, MDE and the rounds used. It answers "could this gate have seen it?"."""
    rows = comparisons[comparisons["gated"]] if len(comparisons) else comparisons
    if rows.empty:
        return "no gated metric"
    rows = rows.sort_values(["benchmark", "params"], kind="stable")
    params, _ = short_params(rows, values_only=True)
    # A case with more than one gated metric (the cache model's estimate beside the
    # measured one, ci --cache-model) needs the metric named to tell its rows apart.
    named = bool(rows.duplicated(["benchmark", "params"], keep=False).any())
    head = ["benchmark", "params", *(["metric"] if named else []), "CV boot", "CV rep",
            "n eff", "MDE", "rnd"]
    body = [[str(r.benchmark), p, *([str(r.metric)] if named else []), fmt_mde(r.between_cv),
             fmt_mde(r.within_cv), fmt_n(r.n_eff), fmt_mde(r.mde),
             _rounds(r.decided_at, r.rounds)]
            for r, p in zip(rows.itertuples(), params, strict=True)]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    spare = width - (sum(widths) + 2 * (len(widths) - 1))
    if spare < 0:
        widths[1] = max(8, widths[1] + spare)
    texts = 3 if named else 2  # the left-aligned columns

    def line(cells: list[str]) -> str:
        return "  ".join(_clip(c, w).ljust(w) if i < texts else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    title = textwrap.wrap("noise of the gated metrics: CV boot between boots, CV rep between "
                          "the repeats of one boot, n eff the effective n per side (Kish), "
                          "MDE at the rounds used (rnd)", width)
    out = [*title, line(head), "  ".join("-" * w for w in widths)]
    return "\n".join(out + [line(b) for b in body])


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of display strings (pipes escaped)."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, frame.columns)) + " |",
             "|" + "|".join(" --- " for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def compare_markdown(comparisons: pd.DataFrame, *, title: str = "A/B comparison",
                     heading: str = "##") -> str:
    """The comparison as Markdown (for ``summary.md`` and CI job summaries): the gated
    metrics (and any benchmark broken on the candidate) in the table, the display-only
    ones folded in ``<details>`` as the HTML report folds them, so that a job summary
    shows what was decided first."""
    icons = {"failed": "⛔ failed", "regressed": "🔴 regressed", "improved": "🟢 improved",
             "undecided": "🟡 undecided", "unchanged": "⚪ unchanged"}
    parts = [f"{heading} {title}", ""]
    attrs = comparisons.attrs
    runs = []
    if attrs.get("baseline"):  # after the table: the decisions come first
        runs = [f"Baseline runs: {', '.join(attrs['baseline'])}  ",
                f"Candidate runs: {', '.join(attrs['candidate'])}", ""]
    cells = comparison_cells(comparisons)
    if cells.empty:
        return "\n".join(parts + ["No metric was measured on both sides.", "", *runs])
    rows = ordered(comparisons)
    decided = (rows["gated"].astype(bool) | (rows["verdict"] == "failed")).to_numpy(bool)
    counts = cells["verdict"][decided].value_counts()
    cells["verdict"] = cells["verdict"].map(icons)
    main, shown = cells[decided], cells[~decided]
    parts.append(", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if v in counts)
                 or "No gated metric.")
    parts.append("")
    if len(main):
        parts += [markdown_table(main), ""]
    parts += runs
    if attrs:
        parts += [_legend(attrs), ""]
    sentence = missed_sentence(comparisons)
    if sentence:
        parts += [sentence, ""]
    if len(shown):
        parts += ["<details>",
                  f"<summary>{len(shown)} display-only metric(s), not gated: each is derived "
                  "from a gated measurement (such as ops_per_s from ns_per_op), so it gets no "
                  "alpha of its own</summary>", "",
                  markdown_table(shown), "", "</details>", ""]
    return "\n".join(parts)


def attribute(steps: pd.DataFrame, regressed: list[str]) -> list[str]:
    """'patch N (subject): <metric> regressed +x % vs the previous patch' for every step that
    moved a metric; the metrics the gate found regressed come first."""
    moved = moved_by(steps) if len(steps) else steps
    named = {r.rsplit(":", 1)[0] for r in regressed}
    lines = []
    for row in moved.itertuples():
        key = f"{row.benchmark} {row.params} {row.metric}"
        lines.append((key not in named,
                      f"  patch {row.patch_index} ({row.patch_subject}): {key} {row.step_verdict} "
                      f"{row.step_change:+.1%} vs the previous patch"))
    return [text for _, text in sorted(lines, key=lambda item: item[0])]
