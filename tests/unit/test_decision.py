"""The one decision function, with known answers: ties, degenerate data, reciprocals,
fail-closed rows, alpha spending and the sequential design of ``inv ci``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.boots import boots_frame, fail_case, runs
from watchbench.flows.ci import CiOptions, Measurement, lock_decisions, measure_until_decided
from watchbench.host.progress import Progress
from watchbench.settings import Judgement
from watchbench.stats.compare import compare_frames, gate_exit
from watchbench.stats.decision import Looks, Verdict, decide

LOWER = {"direction": "lower", "threshold": 0.05, "level": 0.01}


def _same(value: float, n: int = 4) -> np.ndarray:
    return np.full(n, math.log(value))


@pytest.mark.parametrize(("change", "verdict"), [(0.06, Verdict.REGRESSED),
                                                 (0.002, Verdict.UNCHANGED),
                                                 (-0.06, Verdict.IMPROVED)])
def test_deterministic_boots_are_decided_by_their_change(change: float, verdict: Verdict):
    d = decide(_same(1000), _same(1000 * (1 + change)), **LOWER)
    assert d.verdict is verdict
    assert d.change == pytest.approx(change)
    # the noise floor keeps the interval open: no claim of infinite certainty
    assert d.ci_low < d.change < d.ci_high and d.mde > 0


def test_identical_boots_are_unchanged_with_an_honest_interval():
    d = decide(_same(500), _same(500), **LOWER)
    assert d.verdict is Verdict.UNCHANGED and d.change == 0
    assert d.ci_high - d.ci_low > 0.001 and d.mde > 0.001
    assert d.p_value == 1.0


def test_a_metric_and_its_reciprocal_get_the_same_verdict_and_mirrored_intervals():
    rng = np.random.default_rng(3)
    for _ in range(200):
        a = rng.normal(0, 0.03, 6)
        b = a + rng.normal(rng.uniform(-0.1, 0.1), 0.03, 6)
        ns = decide(a, b, direction="lower", threshold=0.05, level=0.001)
        rate = decide(-a, -b, direction="higher", threshold=0.05, level=0.001)
        assert ns.verdict is rate.verdict
        assert math.log1p(ns.ci_low) == pytest.approx(-math.log1p(rate.ci_high))
        assert ns.p_value == pytest.approx(rate.p_value)


def test_a_drop_of_a_higher_is_better_metric_is_a_regression():
    d = decide(_same(100), _same(90), direction="higher", threshold=0.05, level=0.01)
    assert d.verdict is Verdict.REGRESSED


def test_the_interval_and_the_adjusted_p_agree_at_every_level():
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(3, 10))
        a = rng.normal(0, 0.02, n)
        b = a + rng.normal(rng.normal(0, 0.02), 0.02, n)
        level = float(rng.choice([0.01, 0.001, 0.0002]))
        d = decide(a, b, direction="lower", threshold=0.05, level=level, alpha=0.01)
        excludes_zero = d.ci_low > 0 or d.ci_high < 0
        assert excludes_zero == (d.p_adjusted < 0.01)


def test_one_boot_per_side_is_undecided_and_noise_is_not_a_false_alarm():
    assert decide([0.0], [0.5], **LOWER).verdict is Verdict.UNDECIDED
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.2, 12), rng.normal(0, 0.2, 12)  # TCG-like boots
    assert decide(a, b, **LOWER).verdict is Verdict.UNDECIDED


def test_a_significant_shift_below_the_threshold_is_unchanged_and_says_so():
    d = decide(_same(1000, 6), _same(1010, 6), **LOWER)
    assert d.verdict is Verdict.UNCHANGED and "significant shift" in d.reason


def test_unpaired_boots_use_welch():
    rng = np.random.default_rng(1)
    d = decide(rng.normal(0, 0.01, 5), rng.normal(0.1, 0.01, 8), paired=False, **LOWER)
    assert not d.paired and d.verdict is Verdict.REGRESSED
    with pytest.raises(ValueError, match="equal counts"):
        decide(np.zeros(3), np.zeros(4), **LOWER)


def test_looks_spend_alpha_linearly_and_add_up_to_it():
    looks = Looks.schedule(4, 2, 12, 0.01)
    assert looks.rounds == (4, 6, 8, 10, 12)
    assert sum(looks.spend(k) for k in range(5)) == pytest.approx(0.01)
    assert looks.spend(0) == pytest.approx(0.01 * 4 / 12)
    assert Looks.schedule(4, 3, 12, 0.01).rounds == (4, 7, 10, 12)
    assert Looks.fixed(5, 0.01).spend(0) == 0.01
    with pytest.raises(ValueError):
        Looks.schedule(1, 2, 12, 0.01)


# --- the frame path: families, pairing, failing closed ------------------------------------

KEYS = {("keyctl-post", "case=stream", "ns_per_op"): 1000.0,
        ("keyctl-post", "case=stream", "ops_per_s"): 1e6,
        ("pipe-read", "pipe=notification", "ns_per_record"): 400.0}


def _ab(candidate: dict | None = None, **kw: object) -> pd.DataFrame:
    return boots_frame({"a": KEYS, "b": candidate or KEYS}, **kw)  # type: ignore[arg-type]


def test_only_primary_metrics_are_gated_and_the_family_sets_the_level():
    df = _ab(boot_cv=0.001)
    out = compare_frames(df, runs(df, "a"), runs(df, "b"), judgement=Judgement(alpha=0.01))
    gated = dict(zip(out["metric"], out["gated"], strict=True))
    assert gated == {"ns_per_op": True, "ops_per_s": False, "ns_per_record": True}
    assert out.attrs["family"] == 2 and out["level"].iloc[0] == pytest.approx(0.005)
    assert out["paired"].all() and (out["rounds"] == 5).all()
    assert set(out["verdict"]) == {"unchanged"} and gate_exit(out) is Verdict.UNCHANGED
    assert (out["n_eff"] > 0).all() and (out["between_cv"] > 0).all()


def test_a_regression_of_a_gated_metric_fails_the_gate_and_its_rate_mirrors_it():
    slow = {**KEYS, ("keyctl-post", "case=stream", "ns_per_op"): 1100.0,
            ("keyctl-post", "case=stream", "ops_per_s"): 1e6 / 1.1}
    df = _ab(slow, boot_cv=0.002)
    out = compare_frames(df, runs(df, "a"), runs(df, "b")).set_index("metric")
    assert out.loc["ns_per_op", "verdict"] == out.loc["ops_per_s", "verdict"] == "regressed"
    assert gate_exit(out.reset_index()) is Verdict.REGRESSED


def test_a_case_that_breaks_on_the_candidate_fails_closed_with_its_reason():
    df = _ab(boot_cv=0.001)
    df = fail_case(df, ["b-2"], "pipe-read", "pipe=notification", "drain: EFAULT")
    out = compare_frames(df, runs(df, "a"), runs(df, "b")).set_index("metric")
    row = out.loc["ns_per_record"]
    assert row["verdict"] == "failed"
    assert "failed: drain: EFAULT" in row["reason"] and "1 of 5 boot(s)" in row["reason"]
    assert gate_exit(out.reset_index()) is Verdict.FAILED


def test_a_case_missing_from_the_candidate_fails_closed():
    df = _ab(boot_cv=0.001)
    df = df[~(df["run_id"].str.startswith("b") & (df["benchmark"] == "pipe-read"))]
    out = compare_frames(df, runs(df, "a"), runs(df, "b"))
    row = out.set_index("metric").loc["ns_per_record"]
    assert row["verdict"] == "failed" and "no ns_per_record sample in 5 of 5" in row["reason"]
    assert row["gated"]


def test_broken_on_both_sides_is_undecided_and_new_on_the_candidate_is_not_gated():
    df = _ab(boot_cv=0.001)
    both = fail_case(df, ["a-1", "b-1"], "pipe-read", "pipe=notification", "EIO")
    row = compare_frames(both, runs(df, "a"), runs(df, "b")).set_index("metric").loc[
        "ns_per_record"]
    assert row["verdict"] == "undecided" and "broken on both sides" in row["reason"]
    new = df[~(df["run_id"].str.startswith("a") & (df["benchmark"] == "pipe-read"))]
    out = compare_frames(new, runs(df, "a"), runs(df, "b")).set_index("metric")
    assert not out.loc["ns_per_record", "gated"] and out.attrs["family"] == 1
    assert gate_exit(out.reset_index()) is Verdict.UNCHANGED


def test_runs_without_rounds_are_compared_unpaired():
    df = _ab(boot_cv=0.001).drop(columns=["ci_round"])
    out = compare_frames(df, runs(df, "a"), runs(df, "b"))
    assert not out["paired"].any() and set(out["verdict"]) == {"unchanged"}


def test_lock_decisions_keeps_earlier_decisions_and_records_their_round():
    df = _ab(boot_cv=0.001)
    first = compare_frames(df, runs(df, "a"), runs(df, "b"))
    first.loc[first["metric"] == "ns_per_record", "verdict"] = "undecided"
    locked = lock_decisions(None, first, 4)
    second = compare_frames(df, runs(df, "a"), runs(df, "b"))
    second.loc[second["metric"] == "ns_per_op", "verdict"] = "regressed"
    merged = lock_decisions(locked, second, 6).set_index("metric")
    assert merged.loc["ns_per_op", "verdict"] == "unchanged"  # decided at the first look
    assert merged.loc["ns_per_op", "decided_at"] == 4
    assert merged.loc["ns_per_record", "decided_at"] == 6


# --- the sequential loop of `inv ci`, with boots drawn instead of booted ------------------


class DrawnMeasurement(Measurement):
    """Measurement whose rounds are drawn from a noise model, not booted."""

    def __init__(self, candidate: dict, boot_cv: float, fail_at: int | None = None):
        options = CiOptions(series="x")
        super().__init__(None, options, [], None, Progress("test"), "ci-test")  # type: ignore[arg-type]
        self.all = boots_frame({"a": KEYS, "b": candidate}, rounds=options.max_rounds,
                               boot_cv=boot_cv, seed=5)
        if fail_at is not None:
            self.all = fail_case(self.all, [f"b-{fail_at}"], "pipe-read", "pipe=notification",
                                 "read: EINVAL")
        self.variants = [_Side("a"), _Side("b")]

    def run_round(self, total: str) -> None:
        for v in self.variants:
            v.run_ids.append(f"{v.role}-{self.rounds}")
        self.rounds += 1
        self.boot_seconds += 26.0

    def frame(self) -> pd.DataFrame:
        ids = [i for v in self.variants for i in v.run_ids]
        return self.all[self.all["run_id"].isin(ids)]


class _Side:
    def __init__(self, role: str):
        self.role, self.run_ids = role, []


def test_an_a_a_run_stops_at_the_first_look_when_everything_is_decided():
    m = DrawnMeasurement(KEYS, boot_cv=0.001)
    decisions, _, why = measure_until_decided(m)
    assert m.rounds == 4 and "every gated metric decided" in why
    assert gate_exit(decisions) is Verdict.UNCHANGED
    assert set(decisions["decided_at"]) == {4}


def test_a_benchmark_broken_in_round_two_ends_the_run_as_failed():
    m = DrawnMeasurement(KEYS, boot_cv=0.001, fail_at=1)
    decisions, _, why = measure_until_decided(m)
    assert gate_exit(decisions) is Verdict.FAILED and m.rounds == 4
    assert "answer is final" in why or "every gated metric decided" in why


def test_tcg_like_noise_runs_to_the_last_look_and_stays_undecided():
    m = DrawnMeasurement(KEYS, boot_cv=0.2)
    decisions, _, why = measure_until_decided(m)
    assert m.rounds == 12 and "last look" in why
    assert gate_exit(decisions) is Verdict.UNDECIDED


def test_the_time_budget_stops_before_a_look_it_cannot_afford():
    m = DrawnMeasurement(KEYS, boot_cv=0.2)
    m.options.budget_s = 26.0 * 7  # 4 rounds done; the next look (6) needs 2 more: ok; 8 not
    decisions, _, why = measure_until_decided(m)
    assert m.rounds == 6 and "time budget" in why
