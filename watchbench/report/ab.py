"""The A/B section of the report: the verdicts, the boots behind them, the noise.

It shows the comparison table (``stats.compare.compare_frames``) as the gate decided it:
one row per gated metric with its interval against the margin, a forest plot of the
changes, a dot plot of every boot of the first metrics (paired by round) and the noise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from watchbench.report import plots
from watchbench.report.tables import styled
from watchbench.report.text import (
    VERDICT_ORDER,
    comparison_cells,
    fmt_mde,
    missed_sentence,
    ordered,
    short_params,
)
from watchbench.results.schema import MATCH_KEYS
from watchbench.stats.compare import boot_table, gate_exit

MAX_FOREST_ROWS = 40
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
    return styled(table, "abnoise", classes=classes, table_class="data ab")


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
    return styled(cells, uuid, classes=classes, table_class="data ab")


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
