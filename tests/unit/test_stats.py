"""Statistics on synthetic data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from watchbench.stats import compare
from watchbench.stats.compare import ComparisonError


def _frame(values_by_group: dict[tuple[str, str], np.ndarray], **fixed: str) -> pd.DataFrame:
    """A minimal results table: groups keyed by (params, accel), one kernel identity."""
    parts = []
    for (params, accel), values in values_by_group.items():
        parts.append(pd.DataFrame({"value": values, "params": params, "accel": accel}))
    df = pd.concat(parts, ignore_index=True)
    base = {"benchmark": "keyctl-post", "metric": "ns_per_op", "unit": "ns",
            "direction": "lower", "tree_base": "t", "series_hash": "", "config_hash": "c",
            "status": "ok", "reason": "", "run_id": "r1"}
    return df.assign(**{**base, **fixed})


# --- bootstrap CI of the median ------------------------------------------------------


@pytest.mark.parametrize("n", [4, 5, 8, 9, 20, 31])
def test_exact_median_ci_matches_a_resampling_bootstrap(n):
    rng = np.random.default_rng(n)
    x = rng.lognormal(0.0, 0.3, n)
    lo, hi = compare.median_ci(x)
    resamples = np.median(x[rng.integers(0, n, (40000, n))], axis=1)
    mc_lo, mc_hi = np.quantile(resamples, [0.025, 0.975])
    assert lo == pytest.approx(mc_lo, rel=0.005)
    assert hi == pytest.approx(mc_hi, rel=0.005)


def test_median_ci_of_one_to_nine_is_the_second_to_eighth_value():
    # The resampled median is <= x(i) when at least 5 of 9 draws are: Bin(9, i/9) >= 5.
    # P(i=1) = 0.0014 < 0.025 <= P(i=2) = 0.030: the lower end is x(2);
    # P(i=7) = 0.9696 < 0.975 <= P(i=8) = 0.9986: the upper end is x(8).
    assert compare.median_ci(np.arange(1.0, 10.0)) == (2.0, 8.0)
    assert all(math.isnan(v) for v in compare.median_ci(np.array([5.0])))


def test_summarize_groups_by_params_and_accel_and_ignores_non_ok_rows():
    df = _frame({("case=watched", "tcg"): np.arange(1.0, 10.0),
                 ("case=watched", "kvm"): np.array([10.0, 20.0, 30.0]),
                 ("case=unwatched", "tcg"): np.array([4.0, 4.0, 8.0, 8.0])})
    df.loc[len(df)] = {**df.iloc[0].to_dict(), "value": np.nan, "status": "skipped",
                       "reason": "ENOPKG"}
    summary = compare.summarize(df).set_index(["params", "accel"])
    nine = summary.loc[("case=watched", "tcg")]
    assert nine["n"] == 9 and nine["median"] == 5.0 and nine["mean"] == 5.0
    assert nine["stddev"] == pytest.approx(np.std(np.arange(1, 10), ddof=1))
    assert nine["cv"] == pytest.approx(nine["stddev"] / 5.0)
    assert (nine["ci_low"], nine["ci_high"]) == (2.0, 8.0)
    assert summary.loc[("case=watched", "kvm"), "median"] == 20.0
    assert summary.loc[("case=unwatched", "tcg"), "median"] == 6.0
    assert len(summary) == 3


def test_grouped_and_single_median_ci_agree():
    rng = np.random.default_rng(3)
    groups = {(f"p={n}", "tcg"): rng.lognormal(0, 0.2, n) for n in (2, 3, 6, 7, 50, 1001)}
    summary = compare.summarize(_frame(groups)).set_index("params")
    for (params, _), values in groups.items():
        lo, hi = compare.median_ci(values)
        assert summary.loc[params, "ci_low"] == pytest.approx(lo)
        assert summary.loc[params, "ci_high"] == pytest.approx(hi)


# --- the minimum detectable effect ----------------------------------------------------


def test_a_change_of_the_printed_mde_is_found_about_eighty_percent_of_the_time():
    """MDE's promise, checked: boots with 2 % noise, 8 paired rounds, a true change of the
    MDE computed from the spread is significant in ~80 % of trials."""
    from watchbench.stats.decision import decide

    rng = np.random.default_rng(11)
    n, sd, level = 8, 0.02, 0.01
    mdes = [decide(rng.normal(0, sd, n), rng.normal(0, sd, n), direction="lower",
                   threshold=0.05, level=level).mde for _ in range(200)]
    mde = float(np.median(mdes))
    hits = 0
    for _ in range(400):
        a = rng.normal(0, sd, n)
        d = decide(a, rng.normal(math.log1p(mde), sd, n), direction="lower", threshold=0.05,
                   level=level)
        hits += d.ci_low > 0
    assert 0.7 < hits / 400 < 0.9


# --- compare_frames: refusing what is not comparable -----------------------------------


def _two_sides(shift: float, candidate_accel: str = "tcg") -> pd.DataFrame:
    from tests.boots import boots_frame

    key = ("keyctl-post", "case=watched", "ns_per_op")
    df = boots_frame({"base": {key: 100.0}, "cand": {key: 100.0 * shift}}, accel="tcg",
                     boot_cv=0.005)
    df.loc[df["run_id"].str.startswith("cand"), "accel"] = candidate_accel
    return df


def _ids(df: pd.DataFrame, side: str) -> list[str]:
    from tests.boots import runs

    return runs(df, side)


def test_compare_frames_gives_one_row_per_metric_with_boots_as_the_unit():
    df = _two_sides(1.10)
    out = compare.compare_frames(df, _ids(df, "base"), _ids(df, "cand"))
    assert len(out) == 1
    row = out.iloc[0]
    assert row["verdict"] == "regressed" and row["n_a"] == row["n_b"] == 5
    assert row["rounds"] == 5 and row["paired"] and row["repeats"] == 5
    assert out.attrs["threshold"] == 0.05 and out.attrs["baseline"] == _ids(df, "base")


def test_compare_frames_refuses_runs_under_different_accelerators():
    df = _two_sides(1.0, candidate_accel="kvm")
    with pytest.raises(ComparisonError, match="different accelerators"):
        compare.compare_frames(df, _ids(df, "base"), _ids(df, "cand"))


def test_compare_frames_refuses_unknown_or_overlapping_runs():
    df = _two_sides(1.0)
    with pytest.raises(ComparisonError, match="not loaded: nope"):
        compare.compare_frames(df, _ids(df, "base"), ["nope"])
    with pytest.raises(ComparisonError, match="both sides"):
        compare.compare_frames(df, _ids(df, "base"), ["base-0", "cand-0"])


def test_compare_frames_fails_a_metric_skipped_on_the_candidate_only():
    df = _two_sides(1.0)
    cand = df["run_id"].str.startswith("cand")
    df.loc[cand, ["value", "status", "reason"]] = [np.nan, "skipped", "ENOPKG"]
    row = compare.compare_frames(df, _ids(df, "base"), _ids(df, "cand")).iloc[0]
    assert row["verdict"] == "failed"
    assert row["reason"].startswith("candidate: skipped: ENOPKG")
    assert row["n_a"] == 5 and row["n_b"] == 0


def test_boot_table_summarises_each_boot_by_the_median_of_its_log_values():
    df = _two_sides(1.0)
    boots = compare.boot_table(df, {"baseline": ["base-0"]})
    assert len(boots) == 1
    values = df.loc[df["run_id"] == "base-0", "value"]
    assert boots["log_median"].iloc[0] == pytest.approx(np.median(np.log(values)))
    assert boots["repeats"].iloc[0] == 5 and boots["pair"].iloc[0] == "ci-test#0"
