"""Statistics over the results table: summaries, and A/B comparisons boot by boot.

Pure functions over arrays and DataFrames, nothing else. ``summarize`` describes one
side (medians with exact bootstrap intervals); ``compare_frames`` turns two sets of runs
into one boot per row (``boot_table``) and hands each metric to the one decision
function, ``stats.decision.decide`` (its docstring says why the boot is the unit).

The bootstrap of a median needs no resampling loop: the k-th order statistic of a
resample is <= x_(i) exactly when at least k of the n draws are <= x_(i), a
Binomial(n, i/n) event. That gives the bootstrap distribution exactly (as if B were
infinite) in O(n), which keeps a million-row report fast and the intervals deterministic.
For even n the resampled median is the mean of two adjacent order statistics; we pair
their quantiles (exact for n = 2, and indistinguishable from resampling in the tests).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd
from scipy import stats as sps

from watchbench.errors import ResultsError
from watchbench.results.schema import KERNEL_IDENTITY, LEGACY_PRIMARY, MATCH_KEYS, SERIES_KEYS
from watchbench.settings import JUDGEMENT
from watchbench.stats.decision import Verdict, decide, noise_figures

# One summary row per measured series of one kernel.
SUMMARY_KEYS = [*SERIES_KEYS, *KERNEL_IDENTITY]


class ComparisonError(ResultsError):
    """Two sets of samples are not comparable (different accelerator, params, metric...)."""


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



COMPARISON_COLUMNS = [
    *MATCH_KEYS, "unit", "direction", "accel", "primary", "gated", "n_a", "n_b", "rounds",
    "paired", "median_a", "median_b", "change", "ci_low", "ci_high", "p_value", "p_adjusted",
    "level", "mde", "between_cv", "within_cv", "n_eff", "repeats", "verdict", "reason",
    "decided_at",
]
_BOOT_KEYS = ["side", "run_id", *MATCH_KEYS]


def primary_flags(df: pd.DataFrame) -> pd.Series:
    """Which rows hold a benchmark's primary (gated) metric: the record's own flag, or
    for old results without one, ``LEGACY_PRIMARY``."""
    if "primary" in df.columns:
        return df["primary"].astype("boolean").fillna(False).astype(bool)
    return df["metric"].astype("string").isin(LEGACY_PRIMARY).fillna(False).astype(bool)


def boot_table(df: pd.DataFrame, sides: dict[str, list[str]]) -> pd.DataFrame:
    """One row per boot (run) and metric: median and SD of log values over its repeats.

    Columns: side, run_id, benchmark, params, metric, log_median, log_sd, repeats, unit,
    direction, accel, primary, pair (the run's ``ci_id``/``ci_round``, or NA). Metrics
    with a non-positive value in a boot have no log: their ``log_median`` is NaN.
    """
    side_of = {r: s for s, ids in sides.items() for r in ids}
    ok = df[(df["status"] == "ok") & df["value"].notna() & df["run_id"].isin(list(side_of))]
    cols = [*_BOOT_KEYS, "log_median", "log_sd", "repeats", "unit", "direction", "accel",
            "primary", "pair"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    values = ok["value"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)
    rounds = ok["ci_round"] if "ci_round" in ok.columns else pd.Series(pd.NA, index=ok.index)
    ci_ids = ok["ci_id"] if "ci_id" in ok.columns else pd.Series(pd.NA, index=ok.index)
    pair = [f"{c}#{int(r)}" if pd.notna(r) else pd.NA
            for c, r in zip(ci_ids.astype("string").fillna(""), rounds, strict=True)]
    frame = pd.DataFrame({
        "side": ok["run_id"].astype(str).map(side_of).to_numpy(),
        "run_id": ok["run_id"].astype(str).to_numpy(),
        **{k: ok[k].astype(str).to_numpy() for k in MATCH_KEYS},
        "log": logs, "unit": ok["unit"].astype(str).to_numpy(),
        "direction": ok["direction"].astype(str).to_numpy(),
        "accel": ok["accel"].astype(str).to_numpy(),
        "primary": primary_flags(ok).to_numpy(), "pair": pair,
    })
    grouped = frame.groupby(_BOOT_KEYS, sort=True, dropna=False)
    out = grouped.agg(log_median=("log", lambda x: x.median(skipna=False)),
                      log_sd=("log", "std"), repeats=("log", "size"), unit=("unit", "first"),
                      direction=("direction", "first"), accel=("accel", "first"),
                      primary=("primary", "max"), pair=("pair", "first")).reset_index()
    return out[cols]


def _problems(df: pd.DataFrame, run_ids: list[str]) -> dict[tuple[str, str], list[str]]:
    """Per (benchmark, params): the distinct ``status: reason`` of its non-ok records."""
    bad = df[(df["status"] != "ok") & df["run_id"].isin(run_ids)]
    out: dict[tuple[str, str], list[str]] = {}
    for b, p, s, r in bad[["benchmark", "params", "status", "reason"]].astype(str).itertuples(
            index=False):
        text = f"{s}: {r}"
        out.setdefault((b, p), [])
        if text not in out[(b, p)]:
            out[(b, p)].append(text)
    return out


def _pairs(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, bool]:
    """The two sides' boot log medians, paired by round when every boot has a unique one."""
    keyed = all(p.notna().all() and p.is_unique for p in (a["pair"], b["pair"]))
    if keyed:
        common = sorted(set(a["pair"]) & set(b["pair"]))
        if len(common) >= 2:
            xa = a.set_index("pair").loc[common, "log_median"].to_numpy(float)
            xb = b.set_index("pair").loc[common, "log_median"].to_numpy(float)
            return xa, xb, True
    return a["log_median"].to_numpy(float), b["log_median"].to_numpy(float), False


def _failure(key: tuple[str, str, str], boots: dict[str, pd.DataFrame], runs: dict[str, list[str]],
             problems: dict[str, dict[tuple[str, str], list[str]]]) -> tuple[str, str] | None:
    """(verdict, reason) when a benchmark broke on a side, else None (fail closed)."""
    trouble = {}
    for side in ("baseline", "candidate"):
        have = set(boots[side]["run_id"]) if side in boots else set()
        missing = [r for r in runs[side] if r not in have]
        notes = list(problems[side].get(key[:2], []))
        if missing:
            notes.append(f"no {key[2]} sample in {len(missing)} of {len(runs[side])} boot(s)")
        if notes:
            trouble[side] = "; ".join(notes)
    if "candidate" in trouble and "baseline" not in trouble:
        return Verdict.FAILED, f"candidate: {trouble['candidate']} (the baseline measured it)"
    if "candidate" in trouble:
        return (Verdict.UNDECIDED, f"broken on both sides: baseline: {trouble['baseline']}; "
                f"candidate: {trouble['candidate']}")
    if "baseline" in trouble and "baseline" not in boots:
        return Verdict.UNDECIDED, f"only the candidate measured it (baseline: {trouble['baseline']})"
    return None


def compare_frames(
    df: pd.DataFrame,
    baseline_run_ids: list[str],
    candidate_run_ids: list[str],
    *,
    threshold: float = JUDGEMENT.threshold,
    alpha: float = JUDGEMENT.alpha,
    spend: float | None = None,
    noise_floor: float = JUDGEMENT.noise_floor,
) -> pd.DataFrame:
    """One decision row per benchmark/params/metric between two sets of boots.

    Each boot is one independent observation (``boot_table``); rounds are paired when the
    runs carry ``ci_round``. ``spend`` is the part of the family's ``alpha`` this look may
    use (default: all of it, a single look); every metric is decided at ``spend / m``
    with ``m`` the number of gated metrics (primary metrics the baseline measured), so the
    family-wise false-alarm rate over the gated metrics stays at most ``alpha``. A
    benchmark that broke or went missing on the candidate only is FAILED. Raises
    ComparisonError when the runs are unknown, overlap, or used different accelerators.
    """
    _check_runs(df, baseline_run_ids, candidate_run_ids)
    runs = {"baseline": list(baseline_run_ids), "candidate": list(candidate_run_ids)}
    boots = boot_table(df, runs)
    problems = {s: _problems(df, ids) for s, ids in runs.items()}
    by_key: dict[tuple, dict[str, pd.DataFrame]] = {}
    for (side, *key), part in boots.groupby(["side", *MATCH_KEYS], sort=True):
        by_key.setdefault(tuple(key), {})[side] = part
    gated = {k for k, s in by_key.items() if "baseline" in s and bool(s["baseline"]["primary"].any())}
    family = max(len(gated), 1)
    spent = alpha if spend is None else spend
    level = spent / family
    rows = []
    for key in sorted(by_key):
        sides = by_key[key]
        present = sides.get("baseline", sides.get("candidate"))
        first = present.iloc[0]
        row: dict = {**dict(zip(MATCH_KEYS, key, strict=True)), "unit": first["unit"],
                     "direction": first["direction"], "accel": first["accel"],
                     "primary": bool(present["primary"].any()), "gated": key in gated,
                     "n_a": len(sides.get("baseline", ())), "n_b": len(sides.get("candidate", ())),
                     "level": level}
        a = sides.get("baseline", boots.iloc[:0])
        b = sides.get("candidate", boots.iloc[:0])
        row.update(median_a=_geo(a), median_b=_geo(b), repeats=float(present["repeats"].mean()))
        row.update(noise_figures({s: p["log_median"].to_numpy(float) for s, p in sides.items()},
                                 np.concatenate([p["log_sd"].to_numpy(float)
                                                 for p in sides.values()]),
                                 row["repeats"]))
        failure = _failure(key, sides, runs, problems)
        if failure is not None:
            row.update(verdict=str(failure[0]), reason=failure[1], rounds=0, paired=False)
        elif a["log_median"].isna().any() or b["log_median"].isna().any():
            row.update(verdict=str(Verdict.UNDECIDED), rounds=0, paired=False,
                       reason="a value <= 0: no relative change")
        else:
            xa, xb, paired = _pairs(a, b)
            result = decide(xa, xb, direction=row["direction"], threshold=threshold,
                            level=level, alpha=alpha, paired=paired, noise_floor=noise_floor)
            row.update({k: v for k, v in asdict(result).items() if k in COMPARISON_COLUMNS})
            row["verdict"] = str(result.verdict)
        row["decided_at"] = row.get("rounds", 0)
        rows.append(row)
    out = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    out.attrs.update(threshold=threshold, alpha=alpha, spend=spent, family=len(gated),
                     level=level, noise_floor=noise_floor,
                     baseline=runs["baseline"], candidate=runs["candidate"])
    return out


def _geo(boots: pd.DataFrame) -> float:
    """The side's typical value: exp of the mean per-boot log median (geometric mean)."""
    logs = boots["log_median"].to_numpy(float) if len(boots) else np.array([])
    return float(np.exp(np.mean(logs))) if len(logs) and np.isfinite(logs).all() else math.nan


def gate_exit(comparisons: pd.DataFrame) -> Verdict:
    """The family's answer: FAILED/REGRESSED if any gated row is, UNDECIDED if any gated row
    is still undecided (FAILED rows count whatever the metric), else UNCHANGED."""
    verdicts = comparisons["verdict"]
    gated = comparisons["gated"].astype(bool) | (verdicts == Verdict.FAILED)
    chosen = set(verdicts[gated])
    for v in (Verdict.FAILED, Verdict.REGRESSED, Verdict.UNDECIDED):
        if v in chosen:
            return v
    return Verdict.UNCHANGED
