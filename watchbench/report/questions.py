"""The questions the benchmarks exist for, declared as data and answered from the results.

A headline is one figure with its interval across boots, and optionally its relation to a
second figure of the same boots (a ratio or a difference, taken boot by boot, so the two
figures' shared boot effect cancels). A sweep is one metric drawn against one parameter,
one line per value of another. Both are declared here (``HEADLINES``, ``SWEEPS``) and
answered by pure functions; the HTML report, summary.md and the terminal show the
answers. A question whose benchmark or params the runs lack is left out, never guessed.

All figures come from one kernel under one accelerator (``focus``: the newest run's), so
no answer mixes kernels or accelerators.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from watchbench.results.schema import KERNEL_IDENTITY, PARAM_PREFIX
from watchbench.stats.summary import across_boots, boot_medians, t_interval


class Relation(StrEnum):
    """How a headline's figure is set against its reference figure."""

    RATIO = "ratio"  # value / reference, per boot, geometric mean across boots
    DIFFERENCE = "difference"  # value - reference, per boot, mean across boots


@dataclass(frozen=True)
class Pick:
    """One series: a benchmark's metric where the params ``where`` hold; among the rows
    left, the smallest value of each ``smallest`` param and the largest of each
    ``largest`` param; any other param that still varies takes its smallest value."""

    benchmark: str
    metric: str
    where: tuple[tuple[str, str], ...] = ()
    smallest: tuple[str, ...] = ()
    largest: tuple[str, ...] = ()


@dataclass(frozen=True)
class Headline:
    """A question and the figure that answers it; ``reference`` (with the params in
    ``match`` taken from the figure's own row) gives the relation shown beside it."""

    key: str
    short: str  # the terminal's label
    question: str
    what: str
    pick: Pick
    reference: Pick | None = None
    relation: Relation = Relation.RATIO
    match: tuple[str, ...] = ()
    reference_text: str = ""
    versus: str = ""  # the reference in two words, for the terminal


@dataclass(frozen=True)
class Sweep:
    """One metric of a benchmark against the param ``x``, a line per value of ``line``."""

    key: str
    title: str
    benchmark: str
    metric: str
    x: str
    line: str
    where: tuple[tuple[str, str], ...] = ()
    note: str = ""


_FREE = (("case", "free"),)
HEADLINES: tuple[Headline, ...] = (
    Headline("post", "delivered post", "What does one delivered post cost?",
             "keyctl(KEYCTL_SETPERM) on a watched keyring while a reader drains the queue "
             "(keyctl-post stream), per call",
             Pick("keyctl-post", "ns_per_op", (("case", "stream"),), smallest=("queues",)),
             Pick("keyctl-post", "ns_per_op", (("case", "baseline"),)),
             Relation.DIFFERENCE, reference_text="over the same call unwatched",
             versus="unwatched"),
    Headline("kernel-post", "in-kernel post", "What does post_watch_notification cost in the kernel?",
             "the in-kernel benchmark, per record queued (kernel-post free)",
             Pick("kernel-post", "ns_per_record", _FREE, smallest=("queues", "len"))),
    Headline("watchers", "most watchers", "How does a post grow with watchers?",
             "in-kernel post to the most queues measured (kernel-post free)",
             Pick("kernel-post", "ns_per_op", _FREE, smallest=("len",), largest=("queues",)),
             Pick("kernel-post", "ns_per_op", _FREE, smallest=("queues", "len")),
             match=("len",)),
    Headline("length", "longest record", "How does a post grow with record length?",
             "in-kernel post of the longest record measured (kernel-post free)",
             Pick("kernel-post", "ns_per_op", _FREE, smallest=("queues",), largest=("len",)),
             Pick("kernel-post", "ns_per_op", _FREE, smallest=("queues", "len")),
             match=("queues",)),
    Headline("filter", "filtered post", "What does filtering save?",
             "in-kernel post that every queue's filter rejects (kernel-post filtered)",
             Pick("kernel-post", "ns_per_op", (("case", "filtered"),),
                  smallest=("queues", "len")),
             Pick("kernel-post", "ns_per_op", _FREE), match=("queues", "len"),
             reference_text="the same post unfiltered", versus="unfiltered"),
    Headline("drain", "drain rate", "How fast can a reader drain?",
             "read() from a full notification pipe, largest buffer measured (pipe-read)",
             Pick("pipe-read", "records_per_s", (("pipe", "notification"),),
                  largest=("read_size",)),
             Pick("pipe-read", "records_per_s", (("pipe", "plain"),)),
             match=("read_size", "record_size", "queue_size"),
             reference_text="a plain pipe holding the same records", versus="plain pipe"),
    Headline("full", "post, queue full", "What does a post cost when the queue is full?",
             "keyctl() post that finds every queue full and takes the loss path (overflow)",
             Pick("overflow", "ns_per_op", smallest=("queues", "queue_size")),
             Pick("keyctl-post", "ns_per_op", (("case", "baseline"),)),
             Relation.DIFFERENCE, reference_text="over the same call unwatched",
             versus="unwatched"),
)

SWEEPS: tuple[Sweep, ...] = (
    Sweep("watchers", "Post cost vs watchers (in kernel)", "kernel-post", "ns_per_op",
          "queues", "case", note="case none posts to a watch list without watchers"),
    Sweep("length", "Post cost vs record length (in kernel)", "kernel-post", "ns_per_op",
          "len", "queues", _FREE),
    Sweep("keyctl", "Delivered, overflowing and filtered posts vs watchers (keyctl)",
          "keyctl-post", "ns_per_op", "queues", "case"),
    Sweep("drain", "Drain throughput vs read buffer: notification vs plain pipe",
          "pipe-read", "records_per_s", "read_size", "pipe"),
    Sweep("delivered", "Share of offered records delivered vs watchers", "keyctl-post",
          "delivered_ratio", "queues", "case",
          note="stream is credit-based (every record delivered); overflow is open loop: "
               "the poster outruns the reader and the rest are lost"),
    Sweep("full", "Cost of a post into full queues vs queue size", "overflow", "ns_per_op",
          "queue_size", "queues"),
)


@dataclass(frozen=True)
class Figure:
    """A value with its interval across ``boots`` (NaN ends with one boot)."""

    value: float
    low: float
    high: float
    boots: int
    unit: str


@dataclass(frozen=True)
class Answer:
    """A headline answered: its figure, the row's params, and the relation if any."""

    headline: Headline
    figure: Figure
    params: dict[str, str]
    direction: str
    relation: Figure | None = None
    reference_params: dict[str, str] | None = None


# What the answers read (the rest of a results row is provenance, in the report's table).
_FOCUS_COLUMNS = {"benchmark", "params", "metric", "unit", "direction", "value", "status",
                  "run_id", "timestamp", "accel", "kernel", "kernel_version", "base_label",
                  "series_name", *KERNEL_IDENTITY}
# Boots are pooled only when all of these match the chosen run's: the same kernel, taken
# the same way, on the same host, by the same suite (its iteration counts).
FOCUS_KEYS = ["accel", *KERNEL_IDENTITY, "host", "cpu_model", "qemu_argv_hash", "suite"]


def focus(df: pd.DataFrame, runs: list[str] | None = None) -> pd.DataFrame:
    """The boots comparable with the newest run (of ``runs``, when given: an A/B report
    answers for its candidate), one row per series and boot, ``value`` the boot's median
    over its ok samples: the frame ``headlines``, ``sweeps`` and ``focus_text`` answer
    from (make it once)."""
    keys = [k for k in FOCUS_KEYS if k in df.columns]
    columns = [c for c in df.columns if c in _FOCUS_COLUMNS or c in keys
               or c.startswith(PARAM_PREFIX)]
    ok = df.loc[(df["status"] == "ok") & df["value"].notna(), columns]
    if ok.empty:
        return ok
    codes = ok.groupby(keys, observed=True, sort=False, dropna=False).ngroup().to_numpy()
    times = ok["timestamp"].reset_index(drop=True)
    if runs:
        wanted = ok["run_id"].astype(str).isin(runs).to_numpy()
        if not wanted.any():
            return ok.iloc[:0]
        times = times.where(wanted)
    newest = codes[int(times.argmax())]
    mine = ok[codes == newest]
    series = ["benchmark", "params", "metric", "run_id"]
    grouped = mine.groupby(series, observed=True, sort=True, dropna=False)
    boots = grouped[[c for c in columns if c not in (*series, "value")]].first()
    boots["value"] = grouped["value"].median()
    return boots.reset_index()


def param_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (benchmark, params): its parameters as text columns (no prefix)."""
    columns = [c for c in df.columns if c.startswith(PARAM_PREFIX)]
    table = df.groupby(["benchmark", "params"], observed=True)[columns].first().reset_index()
    table = table.rename(columns={c: c[len(PARAM_PREFIX):] for c in columns})
    return table.astype({c: "string" for c in table.columns})


def _order(values: pd.Series) -> pd.Series:
    """Sort keys of param values: numbers by value, anything else after them (tied)."""
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers.fillna(math.inf)


def _choose(rows: pd.DataFrame, params: list[str], pick: Pick,
            fixed: dict[str, str]) -> pd.Series | None:
    """The one params row ``pick`` names, or None."""
    given = {**dict(pick.where), **fixed}
    for key, value in given.items():
        if key not in rows:
            return None
        rows = rows[rows[key] == value]
    for key in params:
        if rows.empty:
            return None
        if key in given:
            continue
        if key not in pick.smallest + pick.largest and rows[key].nunique(dropna=False) < 2:
            continue
        if key in pick.smallest + pick.largest:
            rows = rows[rows[key].notna()]  # a row without the param is neither extreme
            if rows.empty:
                return None
        order = _order(rows[key].fillna(""))
        best = order.max() if key in pick.largest else order.min()
        rows = rows[order == best]
    return None if rows.empty else rows.sort_values("params").iloc[0]


def _series(ok: pd.DataFrame, benchmark: str, params: str, metric: str) -> pd.DataFrame:
    """One series' boots (``boot_medians`` rows) from the ``focus`` rows."""
    part = ok[(ok["benchmark"] == benchmark) & (ok["params"] == params)
              & (ok["metric"] == metric)]
    return boot_medians(part, ["benchmark"])


def _figure(boots: pd.DataFrame, unit: str) -> Figure:
    """The centre and interval across ``boots`` (``stats.summary.across_boots``)."""
    row = across_boots(boots, ["benchmark"]).iloc[0]
    return Figure(float(row["centre"]), float(row["ci_low"]), float(row["ci_high"]),
                  int(row["boots"]), unit)


def _relation(main: pd.DataFrame, other: pd.DataFrame, relation: Relation,
              unit: str) -> Figure | None:
    """The per-boot ratio or difference of two series measured in the same boots."""
    both = main.merge(other, on="run_id", suffixes=("", "_ref"))
    if both.empty:
        return None
    if relation is Relation.RATIO:
        if not ((both["value"] > 0) & (both["value_ref"] > 0)).all():
            return None
        per_boot = both["value"] / both["value_ref"]
        unit = "×"
    else:
        per_boot = both["value"] - both["value_ref"]
    if relation is Relation.DIFFERENCE:
        # A difference can be <= 0: always linear units (across_boots would take logs of
        # differences that all happen to be positive).
        return Figure(*t_interval(per_boot.to_numpy(float)), len(both), unit)
    boots = pd.DataFrame({"benchmark": "relation", "run_id": both["run_id"],
                          "value": per_boot, "n": 1})
    return _figure(boots, unit)


def _cases(ok: pd.DataFrame, table: pd.DataFrame, benchmark: str, metric: str
           ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """A benchmark metric's rows, the ``param_table`` rows of the cases that measured it
    and the names of the params those cases have."""
    rows = ok[(ok["benchmark"] == benchmark) & (ok["metric"] == metric)]
    cases = table[(table["benchmark"] == benchmark)
                  & table["params"].isin(rows["params"].unique())]
    names = [c for c in cases.columns if c not in ("benchmark", "params")
             and cases[c].notna().any()]
    return rows, cases, names


def answer(ok: pd.DataFrame, headline: Headline, table: pd.DataFrame) -> Answer | None:
    """``headline`` answered from the ok rows of one kernel and accelerator, or None."""
    pick = headline.pick
    rows, mine, params = _cases(ok, table, pick.benchmark, pick.metric)
    chosen = _choose(mine, params, pick, {})
    if chosen is None:
        return None
    boots = _series(ok, pick.benchmark, chosen["params"], pick.metric)
    first = rows[rows["params"] == chosen["params"]].iloc[0]
    unit, direction = str(first["unit"]), str(first["direction"])
    found = Answer(headline, _figure(boots, unit), _params(chosen, params), direction)
    ref = headline.reference
    if ref is None:
        return found
    _, theirs, ref_params = _cases(ok, table, ref.benchmark, ref.metric)
    fixed = {k: str(chosen[k]) for k in headline.match if k in chosen and pd.notna(chosen[k])}
    other = _choose(theirs, ref_params, ref, fixed)
    if other is None or (other["benchmark"], other["params"]) == (pick.benchmark,
                                                                 chosen["params"]):
        # Without its reference a "how does it grow" headline says nothing.
        return found if headline.reference_text else None
    related = _relation(boots, _series(ok, ref.benchmark, other["params"], ref.metric),
                        headline.relation, unit)
    if related is None:
        return found
    return Answer(headline, found.figure, found.params, direction, related,
                  _params(other, ref_params))


def _params(row: pd.Series, params: list[str]) -> dict[str, str]:
    return {k: str(row[k]) for k in params if pd.notna(row[k])}


def headlines(ok: pd.DataFrame) -> list[Answer]:
    """Every headline the rows of one kernel and accelerator (``focus``) can answer."""
    if ok.empty:
        return []
    table = param_table(ok)
    found = (answer(ok, h, table) for h in HEADLINES)
    return [a for a in found if a is not None]


@dataclass(frozen=True)
class SweepLine:
    """One line of a sweep: its points and their interval across boots (NaN: one boot)."""

    label: str
    x: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class SweepAnswer:
    """A sweep answered: its lines, the params held fixed, the fewest and most boots of
    a point."""

    sweep: Sweep
    lines: list[SweepLine]
    unit: str
    direction: str
    fixed: dict[str, str]
    boots: int
    most_boots: int


def sweep_points(ok: pd.DataFrame, sweep: Sweep, table: pd.DataFrame) -> SweepAnswer | None:
    """``sweep`` answered: one line per ``line`` value (the other params that vary within
    a line fixed at their smallest common value), or None when no line has two or more
    ``x`` values. A line of one point (case none: no watchers) is drawn as a point."""
    rows, mine, names = _cases(ok, table, sweep.benchmark, sweep.metric)
    if mine.empty or sweep.x not in mine or sweep.line not in mine:
        return None
    for key, value in sweep.where:
        mine = mine[mine[key] == value] if key in mine else mine.iloc[:0]
    others = [c for c in names if c not in (sweep.x, sweep.line)]
    fixed: dict[str, str] = dict(sweep.where)
    for key in others:
        if key in fixed or mine.empty:
            continue
        if (mine.groupby(sweep.line, dropna=False)[key].nunique(dropna=False) <= 1).all():
            continue  # a property of the line (a case's filter, flow), not a second sweep
        # The smallest value that every line has, so the lines stay comparable.
        common = set.intersection(*(set(part[key].dropna()) for _, part in
                                    mine.groupby(sweep.line, dropna=False)))
        candidates = mine[key][mine[key].isin(common)] if common else mine[key]
        best = candidates.iloc[int(np.argmin(_order(candidates).to_numpy()))]
        if mine[key].nunique() > 1:
            fixed[key] = str(best)
        mine = mine[(mine[key] == best) | mine[key].isna()]
    if mine.empty:
        return None
    boots = boot_medians(rows[rows["params"].isin(mine["params"])], ["params"])
    stats = across_boots(boots, ["params"]).merge(mine, on="params")
    lines = []
    for label, part in stats.groupby(sweep.line, sort=False, dropna=False):
        part = part.assign(_x=pd.to_numeric(part[sweep.x], errors="coerce")).dropna(
            subset=["_x"]).sort_values("_x")
        if part.empty:
            continue
        lines.append(SweepLine(f"{sweep.line}={label}", part["_x"].to_numpy(float),
                               part["centre"].to_numpy(float), part["ci_low"].to_numpy(float),
                               part["ci_high"].to_numpy(float)))
    if not any(len(line.x) >= 2 for line in lines):
        return None
    lines.sort(key=lambda line: (_order(pd.Series([line.label.split("=", 1)[1]])).iloc[0],
                                 line.label))
    first = rows.iloc[0]
    return SweepAnswer(sweep, lines, str(first["unit"]), str(first["direction"]),
                       {k: v for k, v in fixed.items() if (k, v) not in sweep.where},
                       int(stats["boots"].min()), int(stats["boots"].max()))


def sweeps(ok: pd.DataFrame) -> list[SweepAnswer]:
    """Every sweep the rows of one kernel and accelerator (``focus``) drew."""
    if ok.empty:
        return []
    table = param_table(ok)
    found = (sweep_points(ok, s, table) for s in SWEEPS)
    return [s for s in found if s is not None]
