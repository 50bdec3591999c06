"""Which patch of a series moved a benchmark: medians after each prefix, step by step.

Per-patch runs carry ``patch_index`` (0 = the baseline, 1..N = the series applied up to
that patch) in their manifest. Each prefix is compared with the one before it (the step:
what this patch did) and with the baseline (where the series stands), with the same
``stats.compare`` verdicts as an A/B run, so ``inv ci --per-patch`` can name the patch that
moved each benchmark and the report can draw the steps as a waterfall.

Pass the runs of one series (one CI invocation): patch indices of different series are
not told apart here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection

import numpy as np
import pandas as pd

from watchbench.stats import compare

STEP_KEYS = ["benchmark", "params", "metric", "unit", "direction", "accel"]
STEP_COLUMNS = [
    *STEP_KEYS, "patch_index", "patch_subject", "n", "median", "prev_index",
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


def _versus(a: np.ndarray | None, b: np.ndarray, direction: str, **options: float) -> dict:
    """change, CI, p and verdict of B against A; NaN and "inconclusive" without an A."""
    if a is None or len(a) == 0:
        return {"change": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "p": math.nan, "verdict": "inconclusive", "reason": "no samples to compare with"}
    r = compare(a, b, direction=direction, **options)  # type: ignore[arg-type]
    return {"change": r.change, "ci_low": r.ci_low, "ci_high": r.ci_high, "p": r.p_value,
            "verdict": r.verdict, "reason": r.reason}


def per_patch_steps(
    df: pd.DataFrame,
    metric_filter: MetricFilter = None,
    *,
    threshold: float = 0.02,
    alpha: float = 0.01,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per benchmark/params/metric/accel and patch index: median, step and total change.

    ``step_*`` compare a prefix with the previous one present (``prev_index``), ``base_*``
    with patch index 0; changes are fractions with bootstrap CIs and ``compare`` verdicts.
    The baseline row itself has NaN changes. ``metric_filter`` keeps one metric (a name),
    several (a collection) or those a predicate accepts. Only ok samples of runs with a
    patch index count.
    """
    keep = (df["status"] == "ok") & df["value"].notna() & df["patch_index"].notna()
    ok = df.loc[keep, [*STEP_KEYS, "patch_index", "patch_subject", "value"]]
    ok = ok[_keep(ok["metric"].astype("string"), metric_filter).to_numpy()]
    if ok.empty:
        return pd.DataFrame(columns=STEP_COLUMNS)
    subjects = (ok.groupby("patch_index", observed=True)["patch_subject"].first()
                .astype("string").fillna("").to_dict())
    options = {"threshold": threshold, "alpha": alpha, "confidence": confidence, "seed": seed}
    rows = []
    for key, part in ok.groupby(STEP_KEYS, observed=True, sort=True):
        samples = {int(i): g.to_numpy(float) for i, g in part.groupby("patch_index")["value"]}
        direction = str(key[4])
        base = samples.get(0)
        prev: int | None = None
        for index in sorted(samples):
            values = samples[index]
            row = {**dict(zip(STEP_KEYS, map(str, key), strict=True)), "patch_index": index,
                   "patch_subject": subjects.get(index, ""), "n": len(values),
                   "median": float(np.median(values)), "prev_index": prev}
            if index == 0:
                step = base_cmp = dict.fromkeys(("change", "ci_low", "ci_high", "p"), math.nan)
                step = {**step, "verdict": "", "reason": "baseline"}
                base_cmp = {**base_cmp, "verdict": ""}
            else:
                step = _versus(samples.get(prev) if prev is not None else None, values,
                               direction, **options)
                base_cmp = _versus(base, values, direction, **options)
            row.update({f"step_{k}": v for k, v in step.items()})
            row.update({f"base_{k}": v for k, v in base_cmp.items() if k != "reason"})
            rows.append(row)
            prev = index
    out = pd.DataFrame(rows, columns=STEP_COLUMNS)
    out["prev_index"] = out["prev_index"].astype("Int64")
    out.attrs.update(threshold=threshold, alpha=alpha, confidence=confidence)
    return out


def moved_by(steps: pd.DataFrame) -> pd.DataFrame:
    """The steps that moved a metric (regressed or improved): which patch did what."""
    moved = steps[steps["step_verdict"].isin(["regressed", "improved"])]
    return moved.reset_index(drop=True)
