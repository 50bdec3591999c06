"""Describe one side of the results: per series and kernel, a typical value and its
interval, with the boot as the unit.

Repeats inside one boot share that boot's state (page layout, timer phase, what the other
vCPU did), so they are not independent samples; an interval over all samples would be
far too narrow (the decision's docstring, ``stats.decision``, says more). So each boot is
first reduced to the median of its repeats, and the figures are taken across boots:

- ``median``: the geometric mean of the boot medians (exp of the mean of their logs), the
  same figure the A/B comparison shows as baseline and candidate; for one boot, its median;
- ``ci_low``/``ci_high``: a Student t interval (Student 1908) on the logs of the boot
  medians with ``boots - 1`` degrees of freedom, back-transformed; NaN with one boot, since
  one boot says nothing about the next. A series with a value <= 0 is summarised in linear
  units (arithmetic mean and t interval).
- ``between_cv``: the spread of the boot medians; ``mean``, ``stddev`` and ``cv`` describe
  all samples (within-boot noise included) and carry no inferential claim.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from watchbench.results.schema import KERNEL_IDENTITY, SERIES_KEYS

# One summary row per measured series of one kernel.
SUMMARY_KEYS = [*SERIES_KEYS, *KERNEL_IDENTITY]
SUMMARY_COLUMNS = [*SUMMARY_KEYS, "n", "boots", "median", "ci_low", "ci_high", "between_cv",
                   "mean", "stddev", "cv"]


def boot_medians(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per ``keys`` and boot (``run_id``): the median of its ok samples (every row
    counts when there is no ``status`` column), and how many samples it had (``n``)."""
    usable = df["value"].notna()
    if "status" in df:
        usable &= df["status"] == "ok"
    ok = df.loc[usable, [*keys, "run_id", "value"]]
    grouped = ok.groupby([*keys, "run_id"], sort=True, observed=True, dropna=False)["value"]
    return grouped.agg(value="median", n="size").reset_index()


def across_boots(boots: pd.DataFrame, keys: list[str], confidence: float = 0.95
                 ) -> pd.DataFrame:
    """Per ``keys``: the boots, the geometric mean of their medians (``value``) and the
    t interval across them (module docstring), from ``boot_medians`` rows."""
    values = boots["value"].to_numpy(float)
    positive = boots.assign(_pos=values > 0).groupby(keys, observed=True, dropna=False,
                                                     sort=True)["_pos"].transform("all")
    x = np.where(positive, np.log(np.where(values > 0, values, 1.0)), values)
    grouped = boots.assign(_x=x, _pos=positive).groupby(keys, observed=True, dropna=False,
                                                        sort=True)
    out = grouped.agg(boots=("_x", "size"), centre=("_x", "mean"), sd=("_x", "std"),
                      positive=("_pos", "first"), n=("n", "sum"),
                      raw_mean=("value", "mean"), raw_sd=("value", "std")).reset_index()
    k = out["boots"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = sps.t.ppf(0.5 + confidence / 2, np.where(k > 1, k - 1, np.nan))
        half = t * out["sd"].to_numpy(float) / np.sqrt(k)
    centre = out["centre"].to_numpy(float)
    logs = out["positive"].to_numpy(bool)
    back = np.where(logs, np.exp(centre), centre)
    out["value"] = back
    out["ci_low"] = np.where(logs, np.exp(centre - half), centre - half)
    out["ci_high"] = np.where(logs, np.exp(centre + half), centre + half)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["between_cv"] = out["raw_sd"] / out["raw_mean"].abs()
    return out[[*keys, "n", "boots", "value", "ci_low", "ci_high", "between_cv"]]


def summarize(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per benchmark/params/metric/accel/kernel: boots, ``median`` and interval across
    boots, and descriptive statistics of all samples (module docstring).

    Only ``ok`` samples count; skipped and failed records are reported elsewhere.
    """
    ok = df.loc[(df["status"] == "ok") & df["value"].notna(), [*SUMMARY_KEYS, "run_id", "value"]]
    if ok.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    per_boot = across_boots(boot_medians(ok, SUMMARY_KEYS), SUMMARY_KEYS, confidence)
    grouped = ok.groupby(SUMMARY_KEYS, sort=True, observed=True, dropna=False)["value"]
    samples = grouped.agg(mean="mean", stddev="std").reset_index()
    out = per_boot.rename(columns={"value": "median"}).merge(samples, on=SUMMARY_KEYS)
    out[SUMMARY_KEYS] = out[SUMMARY_KEYS].astype("string")
    out["cv"] = out["stddev"] / out["mean"].abs()
    return out[SUMMARY_COLUMNS]
