"""Results tables made of boots: several runs per side, paired by round, for the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd

Key = tuple[str, str, str]  # benchmark, params, metric


def boots_frame(levels: dict[str, dict[Key, float]], *, rounds: int = 5, repeats: int = 5,
                boot_cv: float = 0.01, within_cv: float = 0.002, seed: int = 0,
                direction: str = "lower", primary: tuple[str, ...] = ("ns_per_op",
                                                                      "ns_per_record"),
                accel: str = "icount") -> pd.DataFrame:
    """``levels[side][key]`` is the true level; runs ``<side>-<round>`` of one ci_id.

    value = level * exp(boot effect + repeat noise); every metric of ``primary`` is gated;
    ``*_per_s`` metrics are higher-is-better, the rest follow ``direction``.
    """
    assert rounds >= 1 and repeats >= 1, "a frame of boots needs rounds and repeats"
    rng = np.random.default_rng(seed)
    rows = []
    for side, keys in levels.items():
        for r in range(rounds):
            boot = rng.normal(0, boot_cv, len(keys))
            for (bench, params, metric), effect in zip(keys, boot, strict=True):
                level = keys[(bench, params, metric)]
                for i in range(repeats):
                    value = level * np.exp(effect + rng.normal(0, within_cv))
                    rows.append({"run_id": f"{side}-{r}", "ci_round": r, "iteration": i,
                                 "benchmark": bench, "params": params, "metric": metric,
                                 "value": value})
    df = pd.DataFrame(rows)
    rates = df["metric"].str.endswith("_per_s")
    return df.assign(ci_id="ci-test", unit="ns", accel=accel, status="ok", reason="",
                     direction=np.where(rates, "higher", direction),
                     primary=df["metric"].isin(primary))


def runs(df: pd.DataFrame, side: str) -> list[str]:
    return sorted(r for r in df["run_id"].unique() if r.startswith(f"{side}-"))


def fail_case(df: pd.DataFrame, run_ids: list[str], bench: str, params: str,
              reason: str) -> pd.DataFrame:
    """Replace a case's samples in ``run_ids`` by one failed record each."""
    hit = df["run_id"].isin(run_ids) & (df["benchmark"] == bench) & (df["params"] == params)
    failed = df[hit].drop_duplicates("run_id").assign(metric=None, value=np.nan,
                                                       status="failed", reason=reason,
                                                       primary=False)
    return pd.concat([df[~hit], failed], ignore_index=True)
