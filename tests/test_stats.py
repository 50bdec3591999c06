"""Statistics on synthetic data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from watchbench import stats
from watchbench.stats import ComparisonError


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
    lo, hi = stats.median_ci(x)
    resamples = np.median(x[rng.integers(0, n, (40000, n))], axis=1)
    mc_lo, mc_hi = np.quantile(resamples, [0.025, 0.975])
    assert lo == pytest.approx(mc_lo, rel=0.005)
    assert hi == pytest.approx(mc_hi, rel=0.005)


def test_median_ci_of_one_to_nine_is_the_second_to_eighth_value():
    # The resampled median is <= x(i) when at least 5 of 9 draws are: Bin(9, i/9) >= 5.
    # P(i=1) = 0.0014 < 0.025 <= P(i=2) = 0.030: the lower end is x(2);
    # P(i=7) = 0.9696 < 0.975 <= P(i=8) = 0.9986: the upper end is x(8).
    assert stats.median_ci(np.arange(1.0, 10.0)) == (2.0, 8.0)
    assert all(math.isnan(v) for v in stats.median_ci(np.array([5.0])))


def test_summarize_groups_by_params_and_accel_and_ignores_non_ok_rows():
    df = _frame({("case=watched", "tcg"): np.arange(1.0, 10.0),
                 ("case=watched", "kvm"): np.array([10.0, 20.0, 30.0]),
                 ("case=unwatched", "tcg"): np.array([4.0, 4.0, 8.0, 8.0])})
    df.loc[len(df)] = {**df.iloc[0].to_dict(), "value": np.nan, "status": "skipped",
                       "reason": "ENOPKG"}
    summary = stats.summarize(df).set_index(["params", "accel"])
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
    summary = stats.summarize(_frame(groups)).set_index("params")
    for (params, _), values in groups.items():
        lo, hi = stats.median_ci(values)
        assert summary.loc[params, "ci_low"] == pytest.approx(lo)
        assert summary.loc[params, "ci_high"] == pytest.approx(hi)


# --- compare ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_identical_distributions_are_unchanged(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(1000, 20, 400), rng.normal(1000, 20, 400)
    result = stats.compare(a, b, direction="lower")
    assert result.verdict == "unchanged", result
    assert result.ci_low < 0 < result.ci_high or abs(result.change) < 0.005


@pytest.mark.parametrize(("direction", "verdict"), [("lower", "regressed"),
                                                    ("higher", "improved")])
def test_a_ten_percent_increase_is_judged_by_direction(direction, verdict):
    rng = np.random.default_rng(42)
    a, b = rng.normal(100, 3, 40), rng.normal(110, 3, 40)
    result = stats.compare(a, b, direction=direction)
    assert result.verdict == verdict
    assert result.change == pytest.approx(0.10, abs=0.02)
    assert result.ci_low < result.change < result.ci_high
    assert result.ci_low > 0.05 and result.p_value < 1e-6


def test_a_ten_percent_decrease_of_a_lower_is_better_metric_is_an_improvement():
    rng = np.random.default_rng(7)
    result = stats.compare(rng.normal(100, 3, 40), rng.normal(90, 3, 40), direction="lower")
    assert result.verdict == "improved" and result.change < 0


def test_too_few_samples_are_inconclusive_even_with_a_large_shift():
    a, b = np.array([100.0, 101, 99, 100.5]), np.array([110.0, 111, 109, 110.5])
    result = stats.compare(a, b, direction="lower")
    assert result.verdict == "inconclusive"
    assert "too few samples" in result.reason
    assert math.isinf(result.mde)
    assert stats.min_attainable_p(4, 4) == pytest.approx(2 / 70)


def test_a_change_below_the_threshold_is_not_a_regression():
    rng = np.random.default_rng(11)
    a, b = rng.normal(1000, 5, 300), rng.normal(1010, 5, 300)  # +1 %, very significant
    result = stats.compare(a, b, direction="lower", threshold=0.02)
    assert result.p_value < 1e-6
    assert result.verdict == "unchanged"
    assert stats.compare(a, b, direction="lower", threshold=0.005).verdict == "regressed"


def test_minimum_detectable_effect_is_detected_about_eighty_percent_of_the_time():
    rng = np.random.default_rng(5)
    n, sd = 30, 0.03
    mde = stats.min_detectable_effect(rng.normal(1, sd, n), rng.normal(1, sd, n))
    hits = 0
    for _ in range(200):
        a, b = rng.normal(1, sd, n), rng.normal(1 + mde, sd, n)
        hits += stats.compare(a, b, direction="lower", n_boot=200).p_value < 0.01
    assert 0.65 <= hits / 200 <= 0.93, (mde, hits)


def test_mde_matches_the_power_formula_and_shrinks_with_more_samples():
    rng = np.random.default_rng(1)
    # (z_0.995 + z_0.8) * sd * sqrt(2 / n) / sqrt(3 / pi), relative to the median of 100
    expected = (2.5758 + 0.8416) * 3 * math.sqrt(2 / 1000) / math.sqrt(3 / math.pi) / 100
    large = stats.min_detectable_effect(rng.normal(100, 3, 1000), rng.normal(100, 3, 1000))
    assert large == pytest.approx(expected, rel=0.1)
    small = np.mean([stats.min_detectable_effect(rng.normal(100, 3, 10),
                                                 rng.normal(100, 3, 10)) for _ in range(20)])
    assert small == pytest.approx(expected * 10, rel=0.3)


def test_compare_rejects_an_unknown_direction_and_empty_samples():
    with pytest.raises(ComparisonError, match="direction"):
        stats.compare([1.0], [1.0], direction="sideways")
    with pytest.raises(ComparisonError, match="nothing to compare"):
        stats.compare([], [1.0, 2.0], direction="lower")


# --- refusing what is not comparable ---------------------------------------------------


def test_compare_samples_refuses_different_accelerators():
    a = _frame({("case=watched", "kvm"): np.ones(10)})
    b = _frame({("case=watched", "tcg"): np.ones(10)})
    with pytest.raises(ComparisonError, match="different accel: baseline 'kvm', candidate 'tcg'"):
        stats.compare_samples(a, b)


def test_compare_samples_refuses_different_or_mixed_params():
    a = _frame({("case=watched", "tcg"): np.ones(10)})
    b = _frame({("case=unwatched", "tcg"): np.ones(10)})
    with pytest.raises(ComparisonError, match="different params"):
        stats.compare_samples(a, b)
    mixed = _frame({("case=watched", "tcg"): np.ones(5), ("case=unwatched", "tcg"): np.ones(5)})
    with pytest.raises(ComparisonError, match="span 2 values of params"):
        stats.compare_samples(mixed, a)


def _two_runs(shift: float, candidate_accel: str = "tcg") -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = _frame({("case=watched", "tcg"): rng.normal(100, 1, 30)}, run_id="base")
    b = _frame({("case=watched", candidate_accel): rng.normal(100 * shift, 1, 30)},
               run_id="cand")
    return pd.concat([a, b], ignore_index=True)


def test_compare_frames_gives_one_row_per_metric():
    out = stats.compare_frames(_two_runs(1.10), ["base"], ["cand"])
    assert len(out) == 1
    row = out.iloc[0]
    assert row["verdict"] == "regressed" and row["n_a"] == row["n_b"] == 30
    assert out.attrs["threshold"] == 0.02 and out.attrs["baseline"] == ["base"]


def test_compare_frames_refuses_runs_under_different_accelerators():
    with pytest.raises(ComparisonError, match="different accelerators"):
        stats.compare_frames(_two_runs(1.0, candidate_accel="kvm"), ["base"], ["cand"])


def test_compare_frames_refuses_unknown_or_overlapping_runs():
    df = _two_runs(1.0)
    with pytest.raises(ComparisonError, match="not loaded: nope"):
        stats.compare_frames(df, ["base"], ["nope"])
    with pytest.raises(ComparisonError, match="both sides"):
        stats.compare_frames(df, ["base"], ["base", "cand"])


def test_compare_frames_explains_a_metric_missing_on_one_side():
    df = _two_runs(1.0)
    df.loc[df["run_id"] == "cand", ["value", "status", "reason"]] = [np.nan, "skipped",
                                                                      "ENOPKG"]
    row = stats.compare_frames(df, ["base"], ["cand"]).iloc[0]
    assert row["verdict"] == "inconclusive"
    assert row["reason"] == "candidate: skipped: ENOPKG"
    assert row["n_a"] == 30 and row["n_b"] == 0
