"""Where a change went: per-symbol instruction counts of two profiles, diffed.

Pure functions over ``results.profile`` tables. A symbol's per-op count is the median of
its repeats' (the plugin counts exactly; repeats differ only by work whose amount depends
on timing, such as an atime update when the coarse clock ticks). A difference no larger
than the repeats' own spread on either side is that timing, not the change: it counts as
zero (``changed`` False), so an A/A diff is zero everywhere.

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
DIFF_COLUMNS = ("benchmark", "params", "symbol", "base_per_op", "cand_per_op", "delta",
                "rel", "noise", "changed", "interleaved")


def profile_diff(base: pd.DataFrame, cand: pd.DataFrame) -> pd.DataFrame:
    """One row per case and symbol of either side (a symbol one side never ran is 0
    there): the per-op counts, their difference and whether it is a change."""
    keep = [*CASE, "symbol", "instr_per_op", "spread", "interleaved", "case_instr_per_op"]
    both = base[keep].merge(cand[keep], on=[*CASE, "symbol"], how="outer",
                            suffixes=("_base", "_cand"))
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
        "interleaved": interleaved})
    out = out.assign(order=-out["delta"].abs()).sort_values([*CASE, "order", "symbol"])
    return out[list(DIFF_COLUMNS)].reset_index(drop=True)


def top_changes(diff: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The ``n`` largest changes of each case, biggest first."""
    moved = diff[diff["changed"]]
    moved = moved.assign(size=moved["delta"].abs()).sort_values([*CASE, "size"],
                                                                  ascending=[True, True, False])
    return moved.groupby(CASE, sort=False).head(n).drop(columns="size").reset_index(drop=True)


def case_totals(diff: pd.DataFrame) -> pd.DataFrame:
    """Per case: the operation's instructions per op on each side (``[async]`` apart)."""
    own = diff[diff["symbol"] != ASYNC]
    totals = own.groupby(CASE, sort=True)[["base_per_op", "cand_per_op"]].sum().reset_index()
    totals["delta"] = totals["cand_per_op"] - totals["base_per_op"]
    totals["changed"] = own.groupby(CASE, sort=True)["changed"].any().to_numpy()
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
