"""Which patch of a series moved a benchmark: each prefix against the one before it.

Per-patch runs carry ``patch_index`` (0 = the baseline, 1..N = the series applied up to
that patch) in their manifest, and CI runs their ``ci_round``. Each prefix is compared
with the one before it (the step: what this patch did) and with the baseline (where the
series stands) by the same decision function as the gate (``stats.compare_frames``),
paired by round. The steps of one series are a family of their own: each step spends
``alpha / steps``, so naming a patch is held to the family-wise alpha too.

Pass the runs of one series (one CI invocation): patch indices of different series are
not told apart here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

import numpy as np
import pandas as pd

from watchbench.results.schema import MATCH_KEYS, SERIES_KEYS
from watchbench.settings import JUDGEMENT, Judgement
from watchbench.stats.compare import boot_table, compare_frames

STEP_COLUMNS = [
    *SERIES_KEYS, "patch_index", "patch_subject", "n", "median", "prev_index",
    "step_change", "step_ci_low", "step_ci_high", "step_p", "step_verdict", "step_reason",
    "base_change", "base_ci_low", "base_ci_high", "base_p", "base_verdict",
]
MetricFilter = str | Collection[str] | Callable[[str], bool] | None


def _keep(metrics: pd.Series, metric_filter: MetricFilter) -> pd.Series:
    if metric_filter is None:
        return pd.Series(True, index=metrics.index)
    if isinstance(metric_filter, str):
        return metrics == metric_filter
    if callable(metric_filter):
        return metrics.map(lambda m: bool(metric_filter(m))).astype(bool)
    return metrics.isin(list(metric_filter))


def _versus(df: pd.DataFrame, a: list[str], b: list[str], spend: float,
            boots: pd.DataFrame, judgement: Judgement) -> dict[tuple, dict]:
    """Per benchmark/params/metric: the decision row of runs ``b`` against runs ``a``."""
    out = compare_frames(df, a, b, judgement=judgement, spend=spend, boots=boots)
    return {tuple(r[k] for k in ("benchmark", "params", "metric")): r
            for r in out.to_dict("records")}


def per_patch_steps(
    df: pd.DataFrame,
    metric_filter: MetricFilter = None,
    *,
    judgement: Judgement = JUDGEMENT,
) -> pd.DataFrame:
    """Per benchmark/params/metric/accel and patch index: typical value, step and total.

    ``step_*`` compare a prefix with the previous one present (``prev_index``), ``base_*``
    with patch index 0; changes are fractions, ``*_p`` adjusted p-values, verdicts those
    of ``decision.decide``. The baseline row has NaN changes. ``metric_filter`` keeps one
    metric (a name), several (a collection) or those a predicate accepts. Only runs with
    a patch index count; ``median`` is the geometric mean of the per-boot medians.
    """
    df = df[df["patch_index"].notna()]
    df = df[(df["status"] != "ok") | _keep(df["metric"].astype("string"), metric_filter)]
    if df[df["status"] == "ok"].empty:
        return pd.DataFrame(columns=STEP_COLUMNS)
    runs = {int(i): sorted(map(str, g.unique()))
            for i, g in df.groupby("patch_index", observed=True)["run_id"]}
    subjects = (df.groupby("patch_index", observed=True)["patch_subject"].first()
                .astype("string").fillna("").to_dict())
    indices = sorted(runs)
    steps = max(len(indices) - 1, 1)
    every = boot_table(df, {"all": sorted({r for ids in runs.values() for r in ids})})
    rows = []
    for pos, index in enumerate(indices):
        prev = indices[pos - 1] if pos else None
        spend = judgement.alpha / steps
        step = _versus(df, runs[prev], runs[index], spend, every, judgement) \
            if prev is not None else {}
        if prev == 0:
            base = step  # the first patch's step is its change against the baseline
        else:
            base = _versus(df, runs[0], runs[index], spend, every, judgement) \
                if 0 in runs and index else {}
        boots = boot_table(df, {"own": runs[index]}, boots=every)
        for key, part in boots.groupby(SERIES_KEYS, sort=True):
            row = {**dict(zip(SERIES_KEYS, key, strict=True)), "patch_index": index,
                   "patch_subject": subjects.get(index, ""), "n": len(part),
                   "median": float(np.exp(part["log_median"].mean())), "prev_index": prev}
            match = tuple(key[:3])
            if prev is None:
                row.update(step_change=math.nan, step_ci_low=math.nan, step_ci_high=math.nan,
                           step_p=math.nan, step_verdict="" if index == 0 else "undecided",
                           step_reason="baseline" if index == 0 else "no prefix before it")
            else:
                row.update(_prefixed("step", step.get(match)))
            if index == 0:
                row.update(base_change=math.nan, base_ci_low=math.nan, base_ci_high=math.nan,
                           base_p=math.nan, base_verdict="")
            else:
                row.update(_prefixed("base", base.get(match)))
            rows.append(row)
    out = pd.DataFrame(rows, columns=STEP_COLUMNS).sort_values(
        [*MATCH_KEYS, "patch_index"], kind="stable").reset_index(drop=True)
    out["prev_index"] = out["prev_index"].astype("Int64")
    out.attrs.update(threshold=judgement.threshold, alpha=judgement.alpha, steps=steps)
    return out


def _prefixed(prefix: str, row: dict | None) -> dict:
    """A decision row's change, interval, adjusted p and verdict as ``prefix_*`` columns."""
    if row is None:
        row = {"change": math.nan, "ci_low": math.nan, "ci_high": math.nan,
               "p_adjusted": math.nan, "verdict": "undecided",
               "reason": "not measured on the other side"}
    out = {f"{prefix}_change": row["change"], f"{prefix}_ci_low": row["ci_low"],
           f"{prefix}_ci_high": row["ci_high"], f"{prefix}_p": row["p_adjusted"],
           f"{prefix}_verdict": row["verdict"]}
    if prefix == "step":
        out["step_reason"] = row["reason"]
    return out


def moved_by(steps: pd.DataFrame) -> pd.DataFrame:
    """The steps that moved a metric (regressed or improved): which patch did what."""
    moved = steps[steps["step_verdict"].isin(["regressed", "improved"])]
    return moved.reset_index(drop=True)
