"""Statistics on synthetic data with known answers."""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from watchbench.settings import JUDGEMENT
from watchbench.stats import compare
from watchbench.stats.compare import ComparisonError
from watchbench.stats.summary import summarize


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


# --- the summary of one side: the boot is the unit ------------------------------------


def _boots(medians: list[float], repeats: int = 5, spread: float = 0.01,
           seed: int = 0, params: str = "case=stream", accel: str = "icount") -> pd.DataFrame:
    """Boots whose repeats sit around the given medians (the median of each boot's
    repeats is exactly its given value: the repeats are symmetric around it)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, median in enumerate(medians):
        half = np.abs(rng.normal(0, spread, repeats // 2)) * median
        values = np.concatenate([median - half, [median] * (repeats % 2), median + half])
        parts.append(_frame({(params, accel): values}, run_id=f"boot-{i}"))
    return pd.concat(parts, ignore_index=True)


def test_one_boot_gives_its_median_and_no_interval():
    summary = summarize(_boots([100.0], repeats=9))
    row = summary.iloc[0]
    assert row["boots"] == 1 and row["n"] == 9 and row["centre"] == pytest.approx(100.0)
    assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])


def test_the_interval_is_a_t_interval_on_the_logs_of_the_boot_medians():
    medians = [100.0, 104.0, 98.0, 101.0]
    row = summarize(_boots(medians)).iloc[0]
    logs = np.log(medians)
    half = sps.t.ppf(0.975, 3) * np.std(logs, ddof=1) / 2
    assert row["boots"] == 4 and row["n"] == 20
    assert row["centre"] == pytest.approx(math.exp(logs.mean()))
    assert row["ci_low"] == pytest.approx(math.exp(logs.mean() - half))
    assert row["ci_high"] == pytest.approx(math.exp(logs.mean() + half))
    assert row["between_cv"] == pytest.approx(np.std(medians, ddof=1) / np.mean(medians))


def test_more_repeats_per_boot_do_not_narrow_the_interval():
    """The old per-sample interval shrank with repeats as if they were independent; the
    boots are the evidence, so 50 repeats per boot say no more than 3 did."""
    medians = [100.0, 103.0, 99.0]
    few = summarize(_boots(medians, repeats=3)).iloc[0]
    many = summarize(_boots(medians, repeats=51)).iloc[0]
    assert (few["ci_low"], few["ci_high"]) == pytest.approx((many["ci_low"], many["ci_high"]))
    assert many["n"] == 153 and few["n"] == 9


def test_a_series_with_a_zero_is_summarised_in_linear_units():
    row = summarize(_boots([0.0, 2.0, 4.0], repeats=1)).iloc[0]
    half = sps.t.ppf(0.975, 2) * 2.0 / math.sqrt(3)
    assert row["centre"] == pytest.approx(2.0) and row["scale"] == "linear"
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((2.0 - half, 2.0 + half))


def test_summarize_groups_by_params_and_accel_and_ignores_non_ok_rows():
    df = pd.concat([_boots([10.0, 11.0], params="case=stream", accel="icount"),
                    _boots([20.0], params="case=stream", accel="tcg"),
                    _boots([5.0, 5.0, 5.0], params="case=baseline", accel="icount")],
                   ignore_index=True)
    df.loc[len(df)] = {**df.iloc[0].to_dict(), "value": np.nan, "status": "skipped",
                       "reason": "ENOPKG", "run_id": "boot-9"}
    summary = summarize(df).set_index(["params", "accel"])
    assert len(summary) == 3
    assert summary.loc[("case=stream", "icount"), "boots"] == 2
    assert summary.loc[("case=stream", "tcg"), "centre"] == pytest.approx(20.0)
    floor = sps.t.ppf(0.975, 2) * JUDGEMENT.noise_floor / math.sqrt(3)
    assert summary.loc[("case=baseline", "icount"), "ci_low"] == pytest.approx(
        5.0 * math.exp(-floor))


def test_identical_boots_get_the_noise_floor_not_a_zero_width_interval():
    """Three icount boots alike to the last digit have not shown the machine's spread,
    only that it is small: the interval is the one of a 0.1 % spread per boot."""
    row = summarize(_boots([527.0, 527.0, 527.0], spread=0.0)).iloc[0]
    half = sps.t.ppf(0.975, 2) * JUDGEMENT.noise_floor / math.sqrt(3)
    assert row["scale"] == "log" and row["centre"] == pytest.approx(527.0)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (527.0 * math.exp(-half), 527.0 * math.exp(half)))
    assert row["ci_high"] / row["ci_low"] - 1 > 0.004  # about ±0.25 %, never ±0


def test_the_interval_across_boots_covers_the_truth_at_its_level():
    """Boots with a boot effect (3 %) far above the repeat noise (0.3 %): 5 boots of 10
    repeats, 2,000 times. The interval across boots must cover the true value about 95 %
    of the time; one over all 50 samples as if independent would cover far less."""
    rng = np.random.default_rng(11)
    truth, covered = 1000.0, 0
    frames = []
    for trial in range(2000):
        boot = truth * np.exp(rng.normal(0, 0.03, 5))
        values = boot[:, None] * np.exp(rng.normal(0, 0.003, (5, 10)))
        frames.append(pd.DataFrame({"value": values.ravel(), "params": f"t={trial}",
                                    "run_id": np.repeat([f"b{i}" for i in range(5)], 10)}))
    base = _frame({("x", "icount"): np.array([1.0])}).iloc[0]
    fixed = base.drop(["value", "params", "run_id"]).to_dict()
    df = pd.concat(frames, ignore_index=True).assign(**fixed)
    summary = summarize(df)
    covered = ((summary["ci_low"] <= truth) & (truth <= summary["ci_high"])).mean()
    assert 0.93 <= covered <= 0.97, covered


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


# --- Student's t without scipy.stats' import -------------------------------------------
def test_student_t_is_scipy_stats_t_to_the_last_digits():
    """The gate's quantiles and p-values (stats.student, over scipy.special) are
    scipy.stats.t's: integer and fractional (Welch) df, the far tails, NaN df."""
    from watchbench.stats import student

    for df in (1, 2, 3, 4.7, 10, 37.5, 200):
        for q in (0.5, 0.9, 0.975, 0.9995, 1 - 1e-9):
            assert student.ppf(q, df) == pytest.approx(sps.t.ppf(q, df), rel=1e-12)
        for x in (0.0, 0.3, 2.0, 12.0, 80.0):
            assert student.sf(x, df) == pytest.approx(sps.t.sf(x, df), rel=1e-12, abs=1e-300)
        for a in (0.05, 1e-4, 1e-12):
            assert student.isf(a, df) == pytest.approx(sps.t.isf(a, df), rel=1e-12)
    assert student.sf(80.0, 3) > 0  # a tiny p-value keeps its digits, not 1 - 1
    both = student.ppf(0.975, np.array([np.nan, 3.0]))
    assert math.isnan(both[0]) and both[1] == pytest.approx(sps.t.ppf(0.975, 3))


def test_the_statistics_do_not_import_scipy_stats():
    """Every ``wb`` that judges or reports starts about 0.6 s sooner without it."""
    from watchbench.host.runner import default_runner

    code = ("import sys, watchbench.report.html, watchbench.flows.ci, "
            "watchbench.stats.changepoints; print('scipy.stats' in sys.modules)")
    assert default_runner.run([sys.executable, "-c", code]).stdout.strip() == "False"
