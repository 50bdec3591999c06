"""Describe one side of the results: per series and kernel, a typical value and its
interval, with the boot as the unit.

Repeats inside one boot share that boot's state (page layout, timer phase, what the other
vCPU did), so they are not independent samples; an interval over all samples would be
far too narrow (the decision's docstring, ``stats.decision``, says more). So each boot is
first reduced to the median of its repeats, and the figures are taken across boots:

- ``centre``: the geometric mean of the boot medians (exp of the mean of their logs), the
  same figure the A/B comparison shows as baseline and candidate; for one boot, its median.
  A series with a value <= 0 has no logs: its centre is the arithmetic mean of the boot
  medians (``scale`` says which: ``log`` or ``linear``).
- ``ci_low``/``ci_high``: a Student t interval (Student 1908) on the logs of the boot
  medians (or the medians, on the linear scale) with ``boots - 1`` degrees of freedom,
  back-transformed. NaN with one boot, since one boot says nothing about the next. The
  spread used is never below the decision's noise floor (0.1 % per boot, below the 0.17 %
  between-boot CV measured under icount), so identical icount boots do not claim a
  zero-width interval: they have not shown the machine's spread, only that it is small.
- ``between_cv``: the spread of the boot medians; ``mean``, ``stddev`` and ``cv`` describe
  all samples (within-boot noise included) and carry no inferential claim.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from watchbench.results.schema import KERNEL_IDENTITY, SERIES_KEYS
from watchbench.settings import JUDGEMENT
from watchbench.stats import student

# The level of every descriptive interval (the report, the headline, the exports).
CONFIDENCE = 0.95
# One summary row per measured series of one kernel.
SUMMARY_KEYS = [*SERIES_KEYS, *KERNEL_IDENTITY]
SUMMARY_COLUMNS = [*SUMMARY_KEYS, "n", "boots", "centre", "scale", "ci_low", "ci_high",
                   "between_cv", "mean", "stddev", "cv"]


def t_interval(x: np.ndarray, confidence: float = CONFIDENCE,
               floor: float = JUDGEMENT.noise_floor) -> tuple[float, float, float]:
    """Mean and Student t interval of ``x`` (linear units; the spread never below
    ``floor`` times the mean's size); NaN ends for fewer than two values."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(np.mean(x))
    if len(x) < 2:
        return mean, math.nan, math.nan
    sd = max(float(np.std(x, ddof=1)), floor * abs(mean))
    half = float(student.ppf(0.5 + confidence / 2, len(x) - 1)) * sd / math.sqrt(len(x))
    return mean, mean - half, mean + half


def boot_medians(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys`` and boot (``run_id``): the median of its ok samples (every row
    counts when there is no ``status`` column), and how many samples it had (``n``)."""
    usable = df["value"].notna()
    if "status" in df:
        usable &= df["status"] == "ok"
    ok = df.loc[usable, [*keys, "run_id", "value"]]
    grouped = ok.groupby([*keys, "run_id"], sort=True, observed=True, dropna=False)["value"]
    return grouped.agg(value="median", n="size").reset_index()


def across_boots(boots: pd.DataFrame, keys: list[str], confidence: float = CONFIDENCE,
                 floor: float = JUDGEMENT.noise_floor) -> pd.DataFrame:
    """Per ``keys``: the boots, their ``centre``, its ``scale`` and the t interval across
    them (module docstring), from ``boot_medians`` rows; boots without a value are left
    out."""
    boots = boots[np.isfinite(boots["value"].to_numpy(float))]
    values = boots["value"].to_numpy(float)
    positive = boots.assign(_pos=values > 0).groupby(keys, observed=True, dropna=False,
                                                     sort=True)["_pos"].transform("all")
    x = np.where(positive, np.log(np.where(values > 0, values, 1.0)), values)
    grouped = boots.assign(_x=x, _pos=positive).groupby(keys, observed=True, dropna=False,
                                                        sort=True)
    out = grouped.agg(boots=("_x", "size"), mean=("_x", "mean"), sd=("_x", "std"),
                      positive=("_pos", "first"), n=("n", "sum"),
                      raw_mean=("value", "mean"), raw_sd=("value", "std")).reset_index()
    k = out["boots"].to_numpy(float)
    mean = out["mean"].to_numpy(float)
    logs = out["positive"].to_numpy(bool)
    # The floor: a log spread of ``floor`` is a relative spread of about ``floor``.
    sd = np.maximum(out["sd"].to_numpy(float), np.where(logs, floor, floor * np.abs(mean)))
    with np.errstate(invalid="ignore", divide="ignore"):
        t = student.ppf(0.5 + confidence / 2, np.where(k > 1, k - 1, np.nan))
        half = t * sd / np.sqrt(k)
    out["centre"] = np.where(logs, np.exp(mean), mean)
    out["scale"] = np.where(logs, "log", "linear")
    out["ci_low"] = np.where(logs, np.exp(mean - half), mean - half)
    out["ci_high"] = np.where(logs, np.exp(mean + half), mean + half)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["between_cv"] = out["raw_sd"] / out["raw_mean"].abs()
    return out[[*keys, "n", "boots", "centre", "scale", "ci_low", "ci_high", "between_cv"]]


def summarize(df: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per benchmark/params/metric/accel/kernel: boots, ``centre`` and interval across
    boots, and descriptive statistics of all samples (module docstring).

    Only ``ok`` samples count; skipped and failed records are reported elsewhere.
    """
    ok = df.loc[(df["status"] == "ok") & df["value"].notna(), [*SUMMARY_KEYS, "run_id", "value"]]
    if ok.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    per_boot = across_boots(boot_medians(ok, SUMMARY_KEYS), SUMMARY_KEYS, confidence)
    grouped = ok.groupby(SUMMARY_KEYS, sort=True, observed=True, dropna=False)["value"]
    samples = grouped.agg(mean="mean", stddev="std").reset_index()
    out = per_boot.merge(samples, on=SUMMARY_KEYS)
    out[SUMMARY_KEYS] = out[SUMMARY_KEYS].astype("string")
    out["cv"] = out["stddev"] / out["mean"].abs()
    return out[SUMMARY_COLUMNS]
