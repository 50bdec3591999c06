"""Statistics over benchmark samples: summaries, A/B comparisons and verdicts.

Pure functions over arrays and DataFrames, nothing else. Benchmark timings are skewed and
have outliers, so everything centres on the median: a distribution-free Mann-Whitney U
test for "did it move", and bootstrap intervals for "by how much".

The bootstrap of a median needs no resampling loop: the k-th order statistic of a
resample is <= x_(i) exactly when at least k of the n draws are <= x_(i), a
Binomial(n, i/n) event. That gives the bootstrap distribution exactly (as if B were
infinite) in O(n), which keeps a million-row report fast and the intervals deterministic.
For even n the resampled median is the mean of two adjacent order statistics; we pair
their quantiles (exact for n = 2, and indistinguishable from resampling in the tests).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from watchbench.errors import ResultsError

VERDICTS = ("improved", "regressed", "unchanged", "inconclusive")
SUMMARY_KEYS = [
    "benchmark", "params", "metric", "unit", "direction", "accel",
    "tree_base", "series_hash", "config_hash",
]
MATCH_KEYS = ["benchmark", "params", "metric"]
# Mann-Whitney's efficiency relative to the t-test on normal data (3/pi).
_MWU_EFFICIENCY = 3 / math.pi


class ComparisonError(ResultsError):
    """Two sets of samples are not comparable (different accelerator, params, metric...)."""


@dataclass(frozen=True)
class Comparison:
    """Candidate B against baseline A; ``change`` and its CI are fractions (0.1 = +10 %)."""

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    change: float
    ci_low: float
    ci_high: float
    p_value: float
    mde: float
    verdict: str
    reason: str


def _order_stat_cdfs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap CDFs of the lower and upper middle order statistics over x_(1..n)."""
    ecdf = np.arange(1, n + 1) / n
    lower = sps.binom.sf((n + 1) // 2 - 1, n, ecdf)
    upper = lower if n % 2 else sps.binom.sf(n // 2, n, ecdf)
    return lower, upper


def median_ppf(sorted_values: np.ndarray, q: np.ndarray | float) -> np.ndarray:
    """Quantiles ``q`` of the exact bootstrap distribution of the median of sorted values."""
    q = np.asarray(q, dtype=float)
    n = len(sorted_values)
    lower, upper = _order_stat_cdfs(n)
    lo = sorted_values[np.minimum(np.searchsorted(lower, q, side="left"), n - 1)]
    hi = sorted_values[np.minimum(np.searchsorted(upper, q, side="left"), n - 1)]
    return (lo + hi) / 2


def median_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap percentile interval of the median; NaN for fewer than two samples."""
    x = np.sort(np.asarray(values, dtype=float))
    if len(x) < 2:
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    lo, hi = median_ppf(x, np.array([tail, 1 - tail]))
    return float(lo), float(hi)


def _grouped_median_ci(
    values: np.ndarray, group: np.ndarray, sizes: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    """``median_ci`` for many groups at once; rows sorted by (group, value)."""
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    n = sizes[group]
    ecdf = (np.arange(len(values)) - starts[group] + 1) / n
    tail = (1 - confidence) / 2
    # Beyond 4 standard deviations of the middle order statistic the CDF is 0 or 1 for
    # any interval we ask for; evaluating the binomial only near the middle saves time.
    rank = ecdf * n - n / 2
    near = np.abs(rank) <= 2 * np.sqrt(n) + 2
    ends = []
    for k in ((n + 1) // 2, n // 2 + 1):
        cdf = (rank > 0).astype(float)
        cdf[near] = sps.binom.sf(k[near] - 1, n[near], ecdf[near])
        key = group * 2.0 + cdf  # increasing: groups are 2 apart, cdf is in [0, 1]
        gids = np.arange(len(sizes)) * 2.0
        lo = np.minimum(np.searchsorted(key, gids + tail), starts + sizes - 1)
        hi = np.minimum(np.searchsorted(key, gids + 1 - tail), starts + sizes - 1)
        ends.append((values[lo], values[hi]))
    low = (ends[0][0] + ends[1][0]) / 2
    high = (ends[0][1] + ends[1][1]) / 2
    few = sizes < 2
    low[few] = high[few] = np.nan
    return low, high


def summarize(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """n, median, mean, stddev, CV and median CI per benchmark/params/metric/accel/kernel.

    Only ``ok`` samples count; skipped and failed records are reported elsewhere.
    """
    ok = df.loc[(df["status"] == "ok") & df["value"].notna(), [*SUMMARY_KEYS, "value"]]
    if ok.empty:
        cols = [*SUMMARY_KEYS, "n", "median", "mean", "stddev", "cv", "ci_low", "ci_high"]
        return pd.DataFrame(columns=cols)
    grouped = ok.groupby(SUMMARY_KEYS, sort=True, observed=True, dropna=False)["value"]
    out = grouped.agg(n="size", median="median", mean="mean", stddev="std").reset_index()
    out[SUMMARY_KEYS] = out[SUMMARY_KEYS].astype("string")
    out["cv"] = out["stddev"] / out["mean"].abs()
    group = grouped.ngroup().to_numpy()
    values = ok["value"].to_numpy(dtype=float)
    order = np.lexsort((values, group))
    low, high = _grouped_median_ci(values[order], group[order], out["n"].to_numpy(), confidence)
    out["ci_low"], out["ci_high"] = low, high
    return out


def min_attainable_p(n_a: int, n_b: int) -> float:
    """Smallest two-sided exact Mann-Whitney p-value possible with these sample sizes."""
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def _pooled_robust_sd(a: np.ndarray, b: np.ndarray) -> float:
    """Scale of both samples around their own medians (MAD, pooled: steadier for small n)."""
    residuals = np.concatenate([a - np.median(a), b - np.median(b)])
    mad = float(sps.median_abs_deviation(residuals, center=lambda r, axis: 0.0,
                                         scale="normal"))
    return mad if mad > 0 else float(np.std(residuals, ddof=2))


def min_detectable_effect(
    a: np.ndarray, b: np.ndarray, *, alpha: float = 0.01, power: float = 0.8
) -> float:
    """Smallest relative change of the median the test finds with probability ``power``.

    A normal-approximation power calculation on a robust pooled spread, corrected for
    Mann-Whitney's efficiency, so a report can say what a "no change" could have missed.
    """
    n_a, n_b = len(a), len(b)
    base = float(np.median(a)) if n_a else 0.0
    if n_a < 2 or n_b < 2 or base == 0 or min_attainable_p(n_a, n_b) > alpha:
        return math.inf
    pooled = _pooled_robust_sd(a, b)
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    shift = z * pooled * math.sqrt(1 / n_a + 1 / n_b) / math.sqrt(_MWU_EFFICIENCY)
    return float(shift / abs(base))


def _verdict(change: float, lo: float, hi: float, p: float, *, direction: str,
             threshold: float, alpha: float, enough: bool) -> tuple[str, str]:
    if not enough:
        return "inconclusive", "too few samples to reach the significance level"
    if p < alpha and abs(change) >= threshold and (lo > 0 or hi < 0):
        better = change < 0 if direction == "lower" else change > 0
        word = "improved" if better else "regressed"
        return word, f"p={p:.2g} < {alpha:g} and |change| >= {threshold:.0%}"
    if -threshold < lo and hi < threshold:
        return "unchanged", f"CI within +/-{threshold:.0%}"
    return "inconclusive", f"CI reaches beyond +/-{threshold:.0%} without a significant shift"


def compare(
    a_values: np.ndarray,
    b_values: np.ndarray,
    *,
    direction: str,
    threshold: float = 0.02,
    alpha: float = 0.01,
    confidence: float = 0.95,
    n_boot: int = 4000,
    seed: int = 0,
) -> Comparison:
    """Compare candidate samples B with baseline samples A of one metric.

    ``direction`` is the metric's ("lower" or "higher" is better). A verdict of improved or
    regressed needs p < ``alpha``, a change of at least ``threshold`` and a CI excluding 0;
    unchanged needs the whole CI inside +/-``threshold``; anything else is inconclusive.
    """
    if direction not in ("lower", "higher"):
        raise ComparisonError(f"direction {direction!r} is neither 'lower' nor 'higher'")
    a = np.sort(np.asarray(a_values, dtype=float))
    b = np.sort(np.asarray(b_values, dtype=float))
    if len(a) == 0 or len(b) == 0:
        raise ComparisonError(f"nothing to compare: {len(a)} baseline, {len(b)} candidate samples")
    med_a, med_b = float(np.median(a)), float(np.median(b))
    p = float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    p = 1.0 if math.isnan(p) else p
    mde = min_detectable_effect(a, b, alpha=alpha)
    if med_a == 0:
        return Comparison(len(a), len(b), med_a, med_b, math.nan, math.nan, math.nan, p, mde,
                          "inconclusive", "baseline median is 0: no relative change")
    rng = np.random.default_rng(seed)
    draws_a = median_ppf(a, rng.random(n_boot))
    draws_b = median_ppf(b, rng.random(n_boot))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = draws_b / draws_a - 1
    tail = (1 - confidence) / 2
    lo, hi = (float(v) for v in np.nanquantile(ratios, [tail, 1 - tail]))
    change = med_b / med_a - 1
    enough = min_attainable_p(len(a), len(b)) <= alpha
    verdict, reason = _verdict(change, lo, hi, p, direction=direction, threshold=threshold,
                               alpha=alpha, enough=enough)
    return Comparison(len(a), len(b), med_a, med_b, change, lo, hi, p, mde, verdict, reason)


def _single(frame: pd.DataFrame, column: str, side: str) -> str:
    values = frame[column].dropna().unique()
    if len(values) != 1:
        raise ComparisonError(
            f"{side} samples span {len(values)} values of {column}: {sorted(map(str, values))}",
            hint="compare one benchmark/params/metric at a time, measured one way",
        )
    return str(values[0])


def compare_samples(a: pd.DataFrame, b: pd.DataFrame, **options: object) -> Comparison:
    """``compare`` two slices of the results table, refusing ones that differ in kind."""
    for column in ("accel", "benchmark", "params", "metric", "unit", "direction"):
        va, vb = _single(a, column, "baseline"), _single(b, column, "candidate")
        if va != vb:
            raise ComparisonError(
                f"cannot compare samples with different {column}: baseline {va!r}, "
                f"candidate {vb!r}",
                hint="timings taken under different accelerators or params are not comparable",
            )
    direction = _single(a, "direction", "baseline")
    return compare(a["value"].to_numpy(), b["value"].to_numpy(), direction=direction,
                   **options)  # type: ignore[arg-type]


def _check_runs(df: pd.DataFrame, baseline: list[str], candidate: list[str]) -> None:
    known = set(df["run_id"].unique())
    for side, ids in (("baseline", baseline), ("candidate", candidate)):
        if not ids:
            raise ComparisonError(f"no {side} runs given", hint="name at least one run per side")
        missing = [r for r in ids if r not in known]
        if missing:
            raise ComparisonError(f"{side} runs not loaded: {', '.join(missing)}",
                                  hint="check the run ids (the directory names under runs/)")
    both = set(baseline) & set(candidate)
    if both:
        raise ComparisonError(f"runs on both sides: {', '.join(sorted(both))}")
    accels = {side: sorted(map(str, df.loc[df["run_id"].isin(ids), "accel"].unique()))
              for side, ids in (("baseline", baseline), ("candidate", candidate))}
    if len(set(accels["baseline"]) | set(accels["candidate"])) != 1:
        raise ComparisonError(
            f"runs use different accelerators (baseline: {', '.join(accels['baseline'])}; "
            f"candidate: {', '.join(accels['candidate'])}): their timings are not comparable",
            hint="compare runs taken with the same accel (kvm, tcg or icount)",
        )


def _absence_note(side: str, rows: pd.DataFrame) -> str:
    bad = rows.loc[rows["status"] != "ok", ["status", "reason"]].drop_duplicates()
    if bad.empty:
        return f"no samples in {side}"
    return f"{side}: " + "; ".join(f"{s}: {r}" for s, r in bad.itertuples(index=False))


def compare_frames(
    df: pd.DataFrame,
    baseline_run_ids: list[str],
    candidate_run_ids: list[str],
    *,
    threshold: float = 0.02,
    alpha: float = 0.01,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One comparison row per benchmark/params/metric between two sets of runs.

    Raises ComparisonError when the runs are unknown, overlap, or were taken under
    different accelerators. A metric measured on one side only gets an inconclusive
    row saying why (e.g. "candidate: skipped: ENOPKG").
    """
    _check_runs(df, baseline_run_ids, candidate_run_ids)
    df = df[["run_id", *MATCH_KEYS, "unit", "direction", "accel", "value", "status", "reason"]]
    sides = {"baseline": df[df["run_id"].isin(baseline_run_ids)],
             "candidate": df[df["run_id"].isin(candidate_run_ids)]}
    ok = {s: f[(f["status"] == "ok") & f["value"].notna()] for s, f in sides.items()}
    groups = {s: dict(list(f.groupby(MATCH_KEYS, observed=True))) for s, f in ok.items()}
    rows = []
    for key in sorted(set(groups["baseline"]) | set(groups["candidate"])):
        a, b = groups["baseline"].get(key), groups["candidate"].get(key)
        present = a if a is not None else b
        row = dict(zip(MATCH_KEYS, key, strict=True))
        row.update(unit=present["unit"].iloc[0], direction=present["direction"].iloc[0],
                   accel=present["accel"].iloc[0])
        if a is not None and b is not None:
            result = compare_samples(a, b, threshold=threshold, alpha=alpha,
                                     confidence=confidence, seed=seed)
            row.update(asdict(result))
        else:
            side = "candidate" if b is None else "baseline"
            frame = sides[side]
            same = frame[(frame["benchmark"] == key[0]) & (frame["params"] == key[1])]
            row.update(n_a=len(a) if a is not None else 0, n_b=len(b) if b is not None else 0,
                       median_a=float(a["value"].median()) if a is not None else math.nan,
                       median_b=float(b["value"].median()) if b is not None else math.nan,
                       verdict="inconclusive", reason=_absence_note(side, same))
        rows.append(row)
    out = pd.DataFrame(rows, columns=[*MATCH_KEYS, "unit", "direction", "accel",
                                      *Comparison.__dataclass_fields__])
    out.attrs.update(threshold=threshold, alpha=alpha, confidence=confidence,
                     baseline=list(baseline_run_ids), candidate=list(candidate_run_ids))
    return out


def per_patch_steps(df: pd.DataFrame, metric_filter: object = None, **options: float) -> pd.DataFrame:
    """``watchbench.perpatch.per_patch_steps`` (it lives there; imported lazily, it uses us)."""
    from watchbench.perpatch import per_patch_steps as steps

    return steps(df, metric_filter, **options)  # type: ignore[arg-type]
