"""Small matplotlib figures rendered to inline SVG strings.

The object API (``Figure``) is used instead of pyplot, so no GUI backend or global state
is touched. Text stays text (``svg.fonttype: none``) and the markup is cleaned of XML
headers and given per-figure ids, so many figures can live in one HTML page offline.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure

VERDICT_COLOURS = {"regressed": "#c62828", "improved": "#2e7d32",
                   "undecided": "#e0a100", "unchanged": "#8a8a8a", "failed": "#7a0000"}
MAX_POINTS_PER_BOX = 40
_RC = {"svg.fonttype": "none", "svg.hashsalt": "watchbench", "font.size": 8,
       "font.family": "sans-serif", "axes.spines.top": False, "axes.spines.right": False}
_figure_ids = itertools.count()
_ID = re.compile(r'id="([^"]+)"')


_CHAR_INCH = 0.062  # average width of an 8 pt character (DejaVu Sans, as browsers draw it)


def _figure(width: float, height: float, *, left: float, bottom: float = 0.45,
            right: float = 0.2, top: float = 0.12) -> Figure:
    """A figure with margins in inches: one draw on save, unlike a tight bounding box."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width,
                        bottom=bottom / height, top=1 - top / height)
    return fig


def _label_inches(labels: Sequence[str]) -> float:
    return 0.25 + _CHAR_INCH * max((len(label) for label in labels), default=0)


def _to_svg(fig: Figure) -> str:
    """Serialize, drop the XML prologue and prefix every id so figures cannot clash."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    prefix = f"f{next(_figure_ids)}-"
    ids = set(_ID.findall(text))
    text = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', text)
    if ids:
        refs = re.compile(r"#(" + "|".join(map(re.escape, sorted(ids, key=len, reverse=True)))
                          + r")\b")
        text = refs.sub(lambda m: f"#{prefix}{m.group(1)}", text)
    return text


def shorten(label: str, width: int = 48) -> str:
    """``label`` cut to ``width`` characters, an ellipsis marking the cut."""
    return label if len(label) <= width else label[: width - 1] + "…"


_shorten = shorten


def distribution_svg(groups: Sequence[tuple[str, np.ndarray]], *, xlabel: str) -> str:
    """Box plots (quartiles, 1.5 IQR whiskers) with a sample of the raw points over them.

    Drawn as a few collections rather than one artist per box, which keeps a figure of
    30 groups fast to render.
    """
    labels = [_shorten(label) for label, _ in groups]
    height = 0.75 + 0.3 * len(groups)
    rng = np.random.default_rng(0)
    y = np.arange(len(groups))
    stats = []
    for _, values in groups:
        q1, med, q3 = np.percentile(values, [25, 50, 75])
        lo_fence, hi_fence = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        inside = values[(values >= lo_fence) & (values <= hi_fence)]
        stats.append((q1, med, q3, inside.min(initial=q1), inside.max(initial=q3)))
    q1, med, q3, w_lo, w_hi = (np.array(c) for c in zip(*stats, strict=True))
    px, py = [], []
    for i, (_, values) in enumerate(groups):
        if len(values) > MAX_POINTS_PER_BOX:
            values = rng.choice(values, MAX_POINTS_PER_BOX, replace=False)
        px.append(values)
        py.append(i + rng.uniform(-0.2, 0.2, len(values)))
    with rc_context(_RC):
        fig = _figure(7.5, height, left=_label_inches(labels))
        ax = fig.add_subplot()
        ax.hlines(y, w_lo, q1, color="#444444", lw=0.8)
        ax.hlines(y, q3, w_hi, color="#444444", lw=0.8)
        ax.vlines(np.concatenate([w_lo, w_hi]), np.tile(y, 2) - 0.15, np.tile(y, 2) + 0.15,
                  color="#444444", lw=0.8)
        ax.barh(y, q3 - q1, left=q1, height=0.6, color="#dbe6f6", edgecolor="#444444", lw=0.8)
        ax.vlines(med, y - 0.3, y + 0.3, color="#1f4e99", lw=1.8)
        ax.scatter(np.concatenate(px), np.concatenate(py), s=3, color="#555555", alpha=0.45,
                   lw=0)
        ax.set_yticks(y, labels)
        ax.set_ylim(len(groups) - 0.5, -0.5)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
        return _to_svg(fig)


def history_svg(lines: dict[str, tuple[np.ndarray, np.ndarray]], *, ylabel: str) -> str:
    """Per-run medians over time, one line per params."""
    legend = len(lines) > 1
    right = 0.3 + _label_inches([_shorten(k, 40) for k in lines]) if legend else 0.2
    with rc_context(_RC):
        fig = _figure(7.5 + (right if legend else 0), 2.8, left=0.9, bottom=0.75, right=right)
        ax = fig.add_subplot()
        for label, (when, medians) in lines.items():
            ax.plot(when, medians, "o-", ms=3, lw=1, label=_shorten(label, 40))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30)
        if legend:
            ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
        return _to_svg(fig)


def patch_svg(lines: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
              ticks: dict[int, str], *, ylabel: str) -> str:
    """Median and 95 % CI after each patch of a series, one line per params."""
    legend = len(lines) > 1
    right = 0.3 + _label_inches([_shorten(k, 40) for k in lines]) if legend else 0.2
    tick_labels = [_shorten(t, 28) for t in ticks.values()]
    bottom = 0.55 + 0.5 * _label_inches(tick_labels)
    with rc_context(_RC):
        fig = _figure(7.5 + (right if legend else 0), 2.4 + bottom, left=0.9, bottom=bottom,
                      right=right)
        ax = fig.add_subplot()
        for label, (x, med, lo, hi) in lines.items():
            (line,) = ax.plot(x, med, "o-", ms=3, lw=1, label=_shorten(label, 40))
            ax.vlines(x, lo, hi, color=line.get_color(), lw=1)
        ax.set_xticks(list(ticks), tick_labels, rotation=30, ha="right")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if legend:
            ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
        return _to_svg(fig)


def margin_band(threshold: float) -> tuple[float, float]:
    """The 'unchanged' margin as relative changes: ``log(1 + t)`` either side of 0 in log
    space is ``-t / (1 + t)`` below and ``+t`` above on the relative scale."""
    return -threshold / (1 + threshold), threshold


def forest_svg(labels: Sequence[str], change: np.ndarray, low: np.ndarray, high: np.ndarray,
               verdicts: Sequence[str], *, threshold: float,
               confidence: float | None = None) -> str:
    """Change of each metric with its interval; the grey band is the margin of the
    verdict (``margin_band``); ``confidence`` names the intervals' level on the axis."""
    labels = [_shorten(label, 60) for label in labels]
    colours = [VERDICT_COLOURS.get(v, "#000000") for v in verdicts]
    y = np.arange(len(labels))
    lo_band, hi_band = margin_band(threshold)
    with rc_context(_RC):
        fig = _figure(7.5, 0.75 + 0.28 * len(labels), left=_label_inches(labels))
        ax = fig.add_subplot()
        ax.axvspan(lo_band * 100, hi_band * 100, color="#dddddd", alpha=0.6, lw=0)
        ax.axvline(0, color="#444444", lw=0.8)
        ax.hlines(y, low * 100, high * 100, colors=colours, lw=1.4)
        ax.scatter(change * 100, y, c=colours, s=18, zorder=3)
        ax.set_yticks(y, labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        level = f" ({confidence * 100:.4g} % interval)" if confidence is not None else ""
        ax.set_xlabel(f"change, %{level}")
        ax.grid(axis="x", alpha=0.3)
        return _to_svg(fig)


@dataclass(frozen=True)
class BootPanel:
    """One metric's boots for ``boots_svg``: x (round or boot order) and y (the boot's
    median) per side; ``pairs`` are (x, baseline y, candidate y) of the rounds that have
    both boots."""

    title: str
    verdict: str
    baseline: tuple[np.ndarray, np.ndarray]
    candidate: tuple[np.ndarray, np.ndarray]
    pairs: Sequence[tuple[float, float, float]]
    xlabel: str = "round"
    ylabel: str = ""


# Panel titles in the verdict's colour, darker where the badge colour is too light for text.
_TITLE_COLOURS = {**VERDICT_COLOURS, "undecided": "#8a6500", "unchanged": "#5d6575"}
SIDE_STYLE = {"baseline": ("#1f4e99", "o"), "candidate": ("#d9730d", "^")}
_NUDGE = 0.14  # the two boots of a round sit either side of its x


def boots_svg(panels: Sequence[BootPanel], *, columns: int = 4) -> str:
    """Small multiples, one per metric: each boot's median by round, the baseline and the
    candidate side by side, a grey line joining the two boots of one round and a dashed
    line at each side's geometric mean."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    width, top = 2.4 * columns + 0.3, 0.75
    height = top + 0.1 + 2.0 * rows
    with rc_context(_RC):
        fig = _figure(width, height, left=0.7, bottom=0.4, right=0.15, top=top)
        fig.subplots_adjust(wspace=0.6, hspace=0.75)
        # Only the panels drawn get axes: an empty grid cell would be made, then hidden.
        grid = fig.add_gridspec(rows, columns)
        axes = [fig.add_subplot(grid[i // columns, i % columns]) for i in range(len(panels))]
        for ax, panel in zip(axes, panels, strict=False):
            if panel.pairs:  # one artist for every round's pair line: drawn the same, faster
                ax.add_collection(LineCollection(
                    [[(x - _NUDGE, ya), (x + _NUDGE, yb)] for x, ya, yb in panel.pairs],
                    colors="#9a9a9a", linewidths=0.7, zorder=1))
            for side, nudge in (("baseline", -_NUDGE), ("candidate", _NUDGE)):
                x, y = getattr(panel, side)
                colour, marker = SIDE_STYLE[side]
                if len(y):
                    ax.scatter(np.asarray(x, float) + (nudge if panel.pairs else 0), y,
                               s=12, color=colour, marker=marker, lw=0, zorder=3)
                    ax.axhline(float(np.exp(np.mean(np.log(y)))), color=colour, lw=0.7,
                               ls="--", zorder=2)
            ax.set_title(panel.title, fontsize=7.5, loc="left",
                         color=_TITLE_COLOURS.get(panel.verdict, "#1d2330"))
            if panel.ylabel:
                ax.set_ylabel(panel.ylabel, fontsize=7, labelpad=2)
            xs = np.concatenate([np.asarray(panel.baseline[0], float),
                                 np.asarray(panel.candidate[0], float)])
            if len(xs):  # whole rounds, half a round of room either side
                ax.set_xlim(float(xs.min()) - 0.5, float(xs.max()) + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5, min_n_ticks=1))
            formatter = ScalarFormatter(useOffset=False)
            formatter.set_scientific(False)
            ax.yaxis.set_major_formatter(formatter)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.tick_params(labelsize=7)
            ax.set_xlabel(panel.xlabel, fontsize=7, labelpad=1)
            ax.grid(alpha=0.3)
        handles = [Line2D([], [], color=c, marker=m, ls="none", ms=4, label=side)
                   for side, (c, m) in SIDE_STYLE.items()]
        handles.append(Line2D([], [], color="#9a9a9a", lw=0.7, label="one round's pair"))
        handles.append(Line2D([], [], color="#444444", lw=0.7, ls="--",
                              label="geometric mean of the boots"))
        fig.legend(handles=handles, loc="upper left", ncol=4, frameon=False, fontsize=8,
                   bbox_to_anchor=(0.7 / width, 1), borderaxespad=0.3)
        return _to_svg(fig)


def trend_svg(lines: dict[str, tuple[np.ndarray, np.ndarray]],
              steps: dict[str, list[tuple[float, float]]], *, ylabel: str) -> str:
    """Per-entry medians of a history, one line per params; change points as dashed
    vertical lines (between the last entry before and the first after) labelled with the
    shift in %."""
    legend = len(lines) > 1
    right = 0.3 + _label_inches([_shorten(k, 40) for k in lines]) if legend else 0.2
    with rc_context(_RC):
        fig = _figure(7.5 + (right if legend else 0), 2.8, left=0.9, bottom=0.55, right=right)
        ax = fig.add_subplot()
        for row, (label, (x, medians)) in enumerate(lines.items()):
            (line,) = ax.plot(x, medians, "o-", ms=3, lw=1, label=_shorten(label, 40))
            for at, change in steps.get(label, []):
                ax.axvline(at - 0.5, color=line.get_color(), ls="--", lw=1)
                # one text row per line, so shifts of several params at one entry stay legible
                ax.annotate(f"{change * 100:+.1f} %", (at - 0.5, 1),
                            xycoords=("data", "axes fraction"), xytext=(3, -10 - 9 * row),
                            textcoords="offset points", fontsize=7, color=line.get_color())
        ax.set_xlabel("history entry")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if legend:
            ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
        return _to_svg(fig)


def waterfall_svg(panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]],
                  ticks: dict[int, str]) -> str:
    """Change vs the baseline after each patch, one bar per patch spanning the step from
    the previous prefix (coloured by the step's verdict); one panel per params."""
    tick_labels = [_shorten(t, 28) for t in ticks.values()]
    bottom = 0.55 + 0.5 * _label_inches(tick_labels)
    height = 1.5 * len(panels) + bottom + 0.2
    with rc_context(_RC):
        fig = _figure(7.5, height, left=0.9, bottom=bottom, top=0.2)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (label, (x, before, after, verdicts)) in zip(axes, panels.items(), strict=True):
            colours = [VERDICT_COLOURS.get(v, "#8a8a8a") for v in verdicts]
            ax.bar(x, after - before, bottom=before, color=colours, width=0.6)
            ax.plot(np.repeat(x, 2)[1:], np.repeat(after, 2)[:-1], color="#444444", lw=0.6,
                    ls=":")  # connectors: each bar starts where the previous one ended
            for xi, b, a in zip(x, before, after, strict=True):
                ax.annotate(f"{a - b:+.1f}", (xi, max(a, b)), xytext=(0, 2),
                            textcoords="offset points", ha="center", fontsize=6.5)
            ax.axhline(0, color="#444444", lw=0.8)
            ax.set_axisbelow(True)
            ax.set_ylabel("% vs base", fontsize=7)
            ax.set_title(_shorten(label, 80), fontsize=7.5, loc="left")
            ax.grid(axis="y", alpha=0.3)
        axes[-1].set_xticks(list(ticks), tick_labels, rotation=30, ha="right")
        return _to_svg(fig)


def sweep_svg(lines: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], *,
              xlabel: str, ylabel: str) -> str:
    """One metric against one parameter: a line per (label, x, value, low, high), its 95 %
    interval across boots as a band (no band where a point has one boot). The x axis is
    logarithmic (base 2) when the values span more than 8x, as buffer and record sizes do."""
    xs = np.concatenate([x for _, x, *_ in lines])
    positive = xs[xs > 0]
    log_x = len(positive) == len(xs) and positive.max() / positive.min() > 8
    right = 0.3 + _label_inches([_shorten(k, 30) for k, *_ in lines])
    with rc_context(_RC):
        fig = _figure(5.6 + right, 2.6, left=0.85, bottom=0.5, right=right)
        ax = fig.add_subplot()
        for label, x, value, low, high in lines:
            (line,) = ax.plot(x, value, "o-", ms=3.5, lw=1.3, label=_shorten(label, 30))
            band = np.isfinite(low) & np.isfinite(high)
            if band.any():
                ax.fill_between(x, np.where(band, low, value), np.where(band, high, value),
                                color=line.get_color(), alpha=0.18, lw=0)
        if log_x:
            ax.set_xscale("log", base=2)
        ticks = np.unique(xs)
        if len(ticks) <= 12:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
        return _to_svg(fig)


def diff_svg(labels: Sequence[str], delta: np.ndarray) -> str:
    """Change of each function's instructions per operation, candidate minus baseline:
    more instructions in red, fewer in green."""
    labels = [_shorten(label, 48) for label in labels]
    y = np.arange(len(labels))
    colours = np.where(delta > 0, VERDICT_COLOURS["regressed"], VERDICT_COLOURS["improved"])
    with rc_context(_RC):
        fig = _figure(6.5, 0.7 + 0.24 * len(labels), left=_label_inches(labels))
        ax = fig.add_subplot()
        bars = ax.barh(y, delta, color=colours, height=0.6)
        ax.bar_label(bars, labels=[f"{d:+,.4g}" for d in delta], padding=3, fontsize=7)
        ax.margins(x=0.12)  # room for the labels
        ax.axvline(0, color="#444444", lw=0.8)
        ax.set_yticks(y, labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_xlabel("change, instructions per operation")
        ax.grid(axis="x", alpha=0.3)
        return _to_svg(fig)
