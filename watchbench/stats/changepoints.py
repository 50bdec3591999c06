"""Level shifts in a history of recorded runs (``results.history``).

Change points (``change_points``) are found by binary segmentation (Vostrikova 1981) on
the log of the per-entry medians and decided like the CI gate decides (``decision``): a
step is kept when its interval excludes 0 and is not inside ``+/-log(1 + threshold)``.

Why not a plain test: successive entries are not independent (the host drifts, a cache
warms, the same kernel is measured for days), and a test that assumes they are reads
the runs of high and low entries of autocorrelated noise as steps (31 % of flat 50-entry
AR(1) series, phi 0.6, had one). So the noise is the *long-run* variance of the
residuals around the segment medians: AR(1) prewhitening (Andrews & Monahan 1992) with
the lag-1 correlation bias-corrected (Marriott & Pope 1954), then a Bartlett kernel
(Newey & West 1987) with Andrews' (1991) plug-in bandwidth. The interval's critical
value is Student t with the effective number of points as degrees of freedom, at
``alpha`` over the number of candidate split positions (Bonferroni: the split is the
best of many). A lenient first pass proposes splits and a backward elimination judges
them with the noise re-estimated around the splits still standing, so one step does
not hide another by inflating the noise. Medians and a winsorised noise keep a single
outlier run from making or masking a step. ``bench/scripts/history_simulation.py``
measures false alarms and power.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from watchbench.results.schema import SERIES_KEYS
from watchbench.settings import JUDGEMENT
from watchbench.stats import student

log = logging.getLogger(__name__)

# The metric a benchmark's trend shows, first one present; else its first metric by name.
HEADLINE_METRICS = ("ns_per_op", "ns_per_record")
# Median of n normal samples has about 1.2533 times the standard error of their mean
# (less under positive autocorrelation, so using it there errs on the safe side).
_MEDIAN_SE = math.sqrt(math.pi / 2)
# The lenient first pass of change_points proposes splits at this many naive SEs.
_CANDIDATE_Z = 3.0


@dataclass(frozen=True)
class ChangePoint:
    """A level shift: ``values[index:]`` sits at ``after``, the segment before at ``before``.

    ``before``/``after`` are the segments' medians; ``change`` is ``after / before - 1``
    (0.1 = +10 %) and ``[ci_low, ci_high]`` its interval, both relative and taken from the
    log-scale difference. ``z`` is that difference over its autocorrelation-aware
    standard error.
    """

    index: int
    before: float
    after: float
    change: float
    z: float
    ci_low: float
    ci_high: float


def noise_scale(values: np.ndarray) -> float:
    """Robust standard deviation of the point-to-point noise, blind to a few level shifts.

    From first differences (a step moves only one of them), scaled by MAD; 0 for a
    perfectly flat series. It assumes independent points; ``change_points`` no longer
    uses it (see ``long_run_variance``).
    """
    if len(values) < 3:
        return 0.0
    diffs = np.diff(values)
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    return 1.4826 * mad / math.sqrt(2)


def _best_split(x: np.ndarray, min_size: int) -> int | None:
    """The split of ``x`` with the lowest summed absolute deviation from segment medians."""
    n = len(x)
    if n < 2 * min_size:
        return None
    if n <= 400:
        # All prefixes and suffixes at once (n x n); the loop below is the same, slower.
        first = np.tril(np.ones((n, n), dtype=bool))  # row k - 1: x[:k]
        prefix = np.where(first, x, np.nan)
        suffix = np.where(first[::-1, ::-1], x, np.nan)  # row k: x[k:]
        p_cost = np.nansum(np.abs(prefix - np.nanmedian(prefix, axis=1)[:, None]), axis=1)
        s_cost = np.nansum(np.abs(suffix - np.nanmedian(suffix, axis=1)[:, None]), axis=1)
        ks = np.arange(min_size, n - min_size + 1)
        return int(ks[np.argmin(p_cost[ks - 1] + s_cost[ks])])
    best, where = math.inf, None
    for k in range(min_size, n - min_size + 1):
        left, right = x[:k], x[k:]
        cost = (np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())
        if where is None or cost < best:
            best, where = cost, k
    return where


def _autocov(r: np.ndarray, bounds: Sequence[int], lag: int) -> float:
    """Lag-``lag`` autocovariance of residuals ``r``, pairs taken within segments only."""
    total = sum(float(r[a + lag:b] @ r[a:b - lag]) for a, b in itertools.pairwise(bounds)
                if b - a > lag)
    return total / len(r)


def long_run_variance(residuals: np.ndarray, bounds: Sequence[int]) -> tuple[float, float]:
    """Long-run variance of the noise around segment levels, and its lag-1 correlation.

    ``bounds`` are the segment edges (``[0, ..., len(residuals)]``). The variance of a
    mean of ``n`` autocorrelated points is about this over ``n`` (not the marginal
    variance over ``n``). AR(1) prewhitening (Andrews & Monahan 1992) with the lag-1
    correlation corrected for its small-sample bias (Marriott & Pope 1954: about
    ``-(1 + 3 rho) / n`` with one mean removed, here one more ``(1 + rho) / n`` per
    segment), then a Bartlett kernel on the whitened residuals (Newey & West 1987) with
    Andrews' (1991) AR(1) plug-in bandwidth, recoloured by ``1 / (1 - rho)^2``.
    """
    n = len(residuals)
    g0 = _autocov(residuals, bounds, 0)
    if n < 3 or g0 <= 0:
        return max(g0, 0.0), 0.0
    rho = _autocov(residuals, bounds, 1) / g0
    rho += (2 * rho + (len(bounds) - 1) * (1 + rho)) / n
    rho = min(max(rho, -0.9), 0.97)  # the clip Andrews & Monahan use, keeps 1/(1-rho) finite
    white = np.concatenate([residuals[a + 1:b] - rho * residuals[a:b - 1]
                            for a, b in itertools.pairwise(bounds) if b - a > 1])
    w_bounds = list(itertools.accumulate((b - a - 1 for a, b in itertools.pairwise(bounds)
                                          if b - a > 1), initial=0))
    u0 = _autocov(white, w_bounds, 0)
    if u0 <= 0:
        return 0.0, rho
    r1 = max(min(_autocov(white, w_bounds, 1) / u0, 0.97), -0.97)
    alpha1 = 4 * r1**2 / ((1 - r1) ** 2 * (1 + r1) ** 2)
    bandwidth = 1.1447 * (alpha1 * len(white)) ** (1 / 3)
    lrv = u0
    for lag in range(1, len(white)):
        weight = 1 - lag / bandwidth
        if weight <= 0:
            break
        lrv += 2 * weight * _autocov(white, w_bounds, lag)
    return max(lrv, 0.0) / (1 - rho) ** 2, rho


@dataclass(frozen=True)
class _Step:
    before: float  # log medians
    after: float
    diff: float
    se: float
    crit: float

    @property
    def interval(self) -> tuple[float, float]:
        return self.diff - self.crit * self.se, self.diff + self.crit * self.se

    @property
    def z(self) -> float:
        if self.se > 0:
            return abs(self.diff) / self.se
        return math.inf if self.diff else 0.0


def _judge(y: np.ndarray, splits: Sequence[int], lo: int, k: int, hi: int, min_size: int,
           alpha: float, noise_floor: float) -> _Step:
    """The step at ``k`` between ``y[lo:k]`` and ``y[k:hi]``, with the noise of the whole
    series around the segmentation ``splits`` (which holds ``k``)."""
    bounds = [0, *sorted(splits), len(y)]
    residuals = np.concatenate([y[a:b] - np.median(y[a:b])
                                for a, b in itertools.pairwise(bounds)])
    scale = 1.4826 * float(np.median(np.abs(residuals)))
    if scale > 0:  # an outlier run may not inflate the noise quadratically
        residuals = np.clip(residuals, -3 * scale, 3 * scale)
    lrv, rho = long_run_variance(residuals, bounds)
    lrv = max(lrv, noise_floor**2)
    left, right = y[lo:k], y[k:hi]
    before, after = float(np.median(left)), float(np.median(right))
    se = _MEDIAN_SE * math.sqrt(lrv * (1 / len(left) + 1 / len(right)))
    # The split is the best of many positions: Bonferroni over those of the whole series
    # (also for a sub-segment, whose test is one more look at the same series). The noise
    # is estimated from about n (1 - rho) / (1 + rho) independent points: Student t with
    # that many df, but at least 3: on a short series rho is too
    # uncertain to trust and with 1 df the quantile (636 at 1e-3) would forbid any step.
    positions = max(len(y) - 2 * min_size + 1, 1)
    n_eff = len(y) * (1 - abs(rho)) / (1 + abs(rho))
    df = max(n_eff, 3.0)
    crit = float(student.isf(alpha / (2 * positions), df))
    return _Step(before, after, after - before, se, crit)


def _decided(low: float, high: float, delta: float) -> bool:
    """``decision._verdict``'s rule: the interval excludes 0 and reaches the margin."""
    return (low > 0 and high >= delta) or (high < 0 and low <= -delta)


def change_points(
    values: Sequence[float],
    *,
    min_size: int = 3,
    threshold: float = JUDGEMENT.threshold,
    alpha: float = JUDGEMENT.alpha,
    min_z: float | None = None,
    noise_floor: float = JUDGEMENT.noise_floor,
) -> list[ChangePoint]:
    """Where the level of ``values`` (per-entry medians, in order, positive) shifts.

    Binary segmentation (Vostrikova 1981) on log values: split a segment where the summed
    absolute deviation from the two halves' medians is smallest and keep the split when

    * the interval of the log difference of the medians, ``1 - alpha`` after Bonferroni
      over the candidate positions, with the noise's long-run variance
      (``long_run_variance``; never below ``noise_floor``), excludes 0 and is not inside
      ``(-delta, +delta)``, ``delta = log(1 + threshold)`` (the rule of
      ``decision.decide``);
    * both halves hold at least ``min_size`` points on their side of the midpoint between
      the two medians (a couple of outlier runs are not a level);
    * ``z >= min_z`` if given (an older knob; the interval decides).

    Then recurse into both halves; a final pass re-judges every kept point between its
    neighbours and drops the ones that no longer qualify. Positions are indices of
    ``values``; NaN and non-positive values raise.
    """
    x = np.asarray(values, dtype=float)
    if np.isnan(x).any():
        raise ValueError("change_points: values contain NaN")
    if min_size < 1:
        raise ValueError("change_points: min_size must be at least 1")
    if not 0 < alpha < 1 or threshold <= 0:
        raise ValueError(f"change_points: need 0 < alpha < 1 and threshold > 0 "
                         f"(got {alpha}, {threshold})")
    if len(x) and not (np.all(np.isfinite(x)) and np.all(x > 0)):
        raise ValueError("change_points: values must be positive and finite (levels are "
                         "compared in log space)")
    y = np.log(x)
    delta = math.log1p(threshold)

    def judge(splits: Sequence[int], lo: int, k: int, hi: int) -> _Step | None:
        step = _judge(y, splits, lo, k, hi, min_size, alpha, noise_floor)
        if not _decided(*step.interval, delta) or (min_z is not None and step.z < min_z):
            return None
        mid, up = (step.before + step.after) / 2, step.after > step.before
        held_after = np.count_nonzero((y[k:hi] > mid) if up else (y[k:hi] < mid))
        held_before = np.count_nonzero((y[lo:k] < mid) if up else (y[lo:k] > mid))
        return step if held_after >= min_size and held_before >= min_size else None

    # Candidates: binary segmentation with a lenient test whose noise (first differences)
    # a step elsewhere in the segment cannot inflate. Then backward elimination with the
    # real test, its noise re-estimated around the splits still standing each round: a
    # step judged with another, unmodelled step in its residuals would look like noise.
    sigma = noise_scale(y)
    splits: list[int] = []
    pending = [(0, len(y))]
    while pending:
        lo, hi = pending.pop()
        k = _best_split(y[lo:hi], min_size)
        if k is None:
            continue
        left, right = y[lo:lo + k], y[lo + k:hi]
        se = _MEDIAN_SE * max(sigma, noise_floor) * math.sqrt(1 / len(left) + 1 / len(right))
        if abs(float(np.median(right) - np.median(left))) < _CANDIDATE_Z * se:
            continue
        splits.append(lo + k)
        pending += [(lo, lo + k), (lo + k, hi)]
    splits.sort()
    while True:
        bounds = [0, *splits, len(y)]
        steps = [judge(splits, *bounds[i - 1:i + 2]) for i in range(1, len(bounds) - 1)]
        if all(steps):
            break
        failed = [i for i, step in enumerate(steps) if step is None]
        weakest = min(failed, key=lambda i: _judge(y, splits, *bounds[i:i + 3], min_size,
                                                   alpha, noise_floor).z)
        splits.pop(weakest)
    out = []
    for k, step in zip(splits, steps, strict=True):
        assert step is not None
        low, high = step.interval
        out.append(ChangePoint(k, math.exp(step.before), math.exp(step.after),
                               math.expm1(step.diff), step.z, math.expm1(low),
                               math.expm1(high)))
    return out


# --- the trend of a history ------------------------------------------------------------


def headline_metrics(df: pd.DataFrame) -> dict[str, str]:
    """Per benchmark, the metric its trend shows (HEADLINE_METRICS first, else by name)."""
    ok = df[(df["status"] == "ok") & df["metric"].notna()]
    out = {}
    for bench, metrics in ok.groupby("benchmark", observed=True)["metric"]:
        names = sorted(set(map(str, metrics)))
        out[str(bench)] = next((m for m in HEADLINE_METRICS if m in names), names[0])
    return out


def trend(history: pd.DataFrame, headline_only: bool = True) -> pd.DataFrame:
    """Median of each series (benchmark/params/metric/unit/direction/accel) per entry.

    Columns: SERIES_KEYS, history_index, median, n, runs.
    """
    ok = history[(history["status"] == "ok") & history["value"].notna()]
    if headline_only:
        heads = headline_metrics(history)
        ok = ok[ok["metric"].astype("string") == ok["benchmark"].astype("string").map(heads)]
    cols = [*SERIES_KEYS, "history_index", "median", "n", "runs"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    grouped = ok.groupby([*SERIES_KEYS, "history_index"], observed=True, sort=True)
    out = grouped.agg(median=("value", "median"), n=("value", "size"),
                      runs=("run_id", "nunique")).reset_index()
    text = [c for c in SERIES_KEYS if isinstance(out[c].dtype, pd.CategoricalDtype)]
    return out.astype(dict.fromkeys(text, "string"))[cols]


def history_changes(history: pd.DataFrame, *, headline_only: bool = True, min_size: int = 3,
                    threshold: float = JUDGEMENT.threshold, alpha: float = JUDGEMENT.alpha,
                    min_z: float | None = None) -> pd.DataFrame:
    """The change points of every series of ``trend(history)``, one row each.

    Columns: SERIES_KEYS, history_index (first entry at the new level), before, after,
    change, z, verdict ("regressed" or "improved" by the metric's direction), ci_low,
    ci_high. A series with a non-positive median (a counter at 0) has no log level and
    is skipped.
    """
    rows = []
    for key, part in trend(history, headline_only).groupby(SERIES_KEYS, sort=True):
        part = part.sort_values("history_index")
        medians = part["median"].to_numpy(float)
        if not np.all(medians > 0):
            log.debug("no change points for %s: non-positive medians", key)
            continue
        for cp in change_points(medians, min_size=min_size, threshold=threshold,
                                alpha=alpha, min_z=min_z):
            better = cp.change < 0 if key[4] == "lower" else cp.change > 0
            rows.append({**dict(zip(SERIES_KEYS, key, strict=True)),
                         "history_index": int(part["history_index"].iloc[cp.index]),
                         "before": cp.before, "after": cp.after, "change": cp.change,
                         "z": cp.z, "verdict": "improved" if better else "regressed",
                         "ci_low": cp.ci_low, "ci_high": cp.ci_high})
    return pd.DataFrame(rows, columns=[*SERIES_KEYS, "history_index", "before", "after",
                                       "change", "z", "verdict", "ci_low", "ci_high"])
