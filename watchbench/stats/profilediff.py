"""Where a change went: per-symbol instruction counts of two profiles, diffed.

Pure functions over ``results.profile`` tables. A symbol's per-op count is the median of
its repeats' (the plugin counts exactly; repeats differ only by work whose amount depends
on timing, such as an atime update when the coarse clock ticks). A difference no larger
than the repeats' own spread on either side is that timing, not the change: it counts as
zero (``changed`` False), so an A/A diff is zero everywhere.

With the cache model on both sides, a symbol's misses changed (``model_changed``) when
its estimate moved by more than its instructions' noise and MODEL_NOISE of the case's
estimate: between two kernels the layout moves and a few misses with it. A model, not a
measurement; the instructions' ``changed`` is judged as before.

A case with its reader on the other CPU is not exact under icount: the vCPUs take turns,
and where the turns fall moves a little work from boot to boot (in two boots of the ci
suite up to 2.4 instructions per op in one function, 0.23 % of the case). Its changes
count only beyond INTERLEAVED_NOISE of the case's instructions per op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from watchbench.results.profile import ASYNC

CASE = ["benchmark", "params"]
INTERLEAVED_NOISE = 0.005  # of a case's instructions per op: twice the largest A/A change
# The cache model's figures carried beside the instructions, per op of each side (NaN on a
# side profiled without the model): a model, not a measurement; said, never judged here.
MODEL_FIGURES = {"l1_miss": ("i1_miss_per_op", "d1_miss_per_op"), "ll_miss": ("ll_miss_per_op",),
                 "est": ("est_cycles_per_op",)}
DIFF_COLUMNS = ("benchmark", "params", "symbol", "base_per_op", "cand_per_op", "delta",
                "rel", "noise", "changed", "interleaved", *(
                    f"{side}_{what}" for what in MODEL_FIGURES for side in ("base", "cand")),
                "model_changed")
# Of a case's estimate per op (the larger side): a symbol's estimate moving less than this
# is the layout's shuffle of a few misses between kernels, not the change.
MODEL_NOISE = 0.01


def profile_diff(base: pd.DataFrame, cand: pd.DataFrame) -> pd.DataFrame:
    """One row per case and symbol of either side (a symbol one side never ran is 0
    there): the per-op counts, their difference and whether it is a change."""
    keep = [*CASE, "symbol", "instr_per_op", "spread", "interleaved", "case_instr_per_op",
            *MODEL_FIGURES]
    both = _model_figures(base)[keep].merge(_model_figures(cand)[keep], on=[*CASE, "symbol"],
                                            how="outer", suffixes=("_base", "_cand"))
    both = both[both[CASE].apply(tuple, axis=1).isin(
        set(base[CASE].apply(tuple, axis=1)) & set(cand[CASE].apply(tuple, axis=1)))]
    for column in ("instr_per_op_base", "instr_per_op_cand", "spread_base", "spread_cand"):
        both[column] = both[column].astype(float).fillna(0.0)
    interleaved = both["interleaved_base"].fillna(both["interleaved_cand"]).astype(bool)
    delta = both["instr_per_op_cand"] - both["instr_per_op_base"]
    totals = pd.concat([base, cand]).groupby(CASE)["case_instr_per_op"].max()
    case_total = both.set_index(CASE).index.map(totals).to_numpy(dtype=float)
    noise = np.maximum.reduce([both["spread_base"].to_numpy(), both["spread_cand"].to_numpy(),
                               np.where(interleaved, INTERLEAVED_NOISE * case_total, 0.0)])
    noise = pd.Series(noise, index=both.index)
    out = pd.DataFrame({
        "benchmark": both["benchmark"], "params": both["params"], "symbol": both["symbol"],
        "base_per_op": both["instr_per_op_base"], "cand_per_op": both["instr_per_op_cand"],
        "delta": delta,
        "rel": np.where(both["instr_per_op_base"] > 0, delta / both["instr_per_op_base"],
                        np.nan),
        "noise": noise, "changed": (delta.abs() > noise) & (delta.abs() > 1e-9)
                                   & (both["symbol"] != ASYNC),
        "interleaved": interleaved,
        **{f"{side}_{what}": _side_figure(both, f"{what}_{side}", f"interleaved_{side}")
           for what in MODEL_FIGURES for side in ("base", "cand")}})
    out["model_changed"] = _model_changed(out)
    out = out.assign(order=-out["delta"].abs()).sort_values([*CASE, "order", "symbol"])
    return out[list(DIFF_COLUMNS)].reset_index(drop=True)


def _model_changed(diff: pd.DataFrame) -> pd.Series:
    """Whether a symbol's estimate (a model) moved beyond its instructions' noise and
    MODEL_NOISE of its case's estimate; False where a side has no model."""
    moved = (diff["cand_est"] - diff["base_est"]).abs()
    own = diff[diff["symbol"] != ASYNC]
    sides = own.groupby(CASE)[["base_est", "cand_est"]].sum(min_count=1).max(axis=1)
    case_est = diff.set_index(CASE).index.map(sides).to_numpy(dtype=float)
    floor = np.maximum(diff["noise"].to_numpy(float), MODEL_NOISE * case_est)
    return pd.Series((moved.to_numpy(float) > floor) & (diff["symbol"] != ASYNC).to_numpy()
                     & np.isfinite(moved.to_numpy(float)), index=diff.index)


def _model_figures(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with MODEL_FIGURES' columns (NaN where the profile has no model)."""
    out = table.copy()
    for what, columns in MODEL_FIGURES.items():
        present = [c for c in columns if c in out.columns]
        out[what] = out[present].sum(axis=1, min_count=len(columns)) \
            if len(present) == len(columns) else np.nan
    return out


def _side_figure(both: pd.DataFrame, column: str, present: str) -> pd.Series:
    """A model figure of one side: 0 for a symbol that side never ran (``present``, a
    column of that side, is empty there), NaN where that side has no model at all."""
    figure = both[column].astype(float)
    ran_none = both[present].isna()
    modelled = both.groupby(CASE)[column].transform(lambda v: v.notna().any())
    return figure.where(~(ran_none & modelled.astype(bool)), 0.0)


def top_changes(diff: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The ``n`` largest changes of each case, biggest first."""
    moved = diff[diff["changed"]]
    moved = moved.assign(size=moved["delta"].abs()).sort_values([*CASE, "size"],
                                                                  ascending=[True, True, False])
    return moved.groupby(CASE, sort=False).head(n).drop(columns="size").reset_index(drop=True)


def top_model_changes(diff: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The ``n`` largest moves of the model's estimate in each case (``model_changed``),
    biggest first, with ``est_delta``, ``l1_delta`` and ``ll_delta`` per op (a model)."""
    moved = diff[diff["model_changed"]]
    moved = moved.assign(est_delta=moved["cand_est"] - moved["base_est"],
                         l1_delta=moved["cand_l1_miss"] - moved["base_l1_miss"],
                         ll_delta=moved["cand_ll_miss"] - moved["base_ll_miss"])
    moved = moved.assign(size=moved["est_delta"].abs()).sort_values(
        [*CASE, "size"], ascending=[True, True, False])
    return moved.groupby(CASE, sort=False).head(n).drop(columns="size").reset_index(drop=True)


def case_totals(diff: pd.DataFrame) -> pd.DataFrame:
    """Per case: the operation's instructions per op on each side (``[async]`` apart),
    the cache model's misses and estimate on each side (NaN on a side without it), and
    whether a function's instructions (``changed``) or its estimate (``model_changed``)
    moved."""
    own = diff[diff["symbol"] != ASYNC]
    totals = own.groupby(CASE, sort=True)[["base_per_op", "cand_per_op"]].sum().reset_index()
    totals["delta"] = totals["cand_per_op"] - totals["base_per_op"]
    totals["changed"] = own.groupby(CASE, sort=True)["changed"].any().to_numpy()
    totals["model_changed"] = own.groupby(CASE, sort=True)["model_changed"].any().to_numpy()
    model = [f"{side}_{what}" for what in MODEL_FIGURES for side in ("base", "cand")]
    present = [c for c in model if c in own.columns]
    sums = own.groupby(CASE, sort=True)[present].sum(min_count=1).reset_index(drop=True)
    for column in model:
        totals[column] = sums[column] if column in sums.columns else np.nan
    return totals


@dataclass
class Step:
    """The diff from one profiled kernel to the next (baseline -> ... -> candidate)."""

    index: int  # patches applied on the later side
    subject: str
    diff: pd.DataFrame


@dataclass
class Explanation:
    moved: pd.DataFrame  # the comparisons rows explained (benchmark, params, metric, verdict)
    diff: pd.DataFrame  # baseline -> candidate (stats.profilediff.DIFF_COLUMNS)
    steps: list[Step] = field(default_factory=list)  # per patch, with --per-patch
    run_dirs: list[Path] = field(default_factory=list)
