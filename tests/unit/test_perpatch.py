"""Per-patch steps: only patch 2 of 3 moves the metric, and only patch 2 is named."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from watchbench.stats.perpatch import moved_by, per_patch_steps


def _series(shift_at: int = 2, shift: float = 0.10, rounds: int = 5,
            seed: int = 0) -> pd.DataFrame:
    """Baseline (0) and patches 1..3 booted in the same rounds; from patch ``shift_at`` on
    ns_per_op is 10 % slower (ops_per_s 10 % lower)."""
    from tests.boots import boots_frame

    levels = {}
    for index in range(4):
        factor = 1 + shift if index >= shift_at else 1.0
        levels[f"p{index}"] = {(b, p, m): v for b, p, m, v in [
            ("keyctl-post", "case=watched", "ns_per_op", 1000 * factor),
            ("keyctl-post", "case=unwatched", "ns_per_op", 1000 * factor),
            ("keyctl-post", "case=watched", "ops_per_s", 1e6 / factor),
            ("keyctl-post", "case=unwatched", "ops_per_s", 1e6 / factor)]}
    df = boots_frame(levels, rounds=rounds, boot_cv=0.005, seed=seed, accel="tcg")
    index = df["run_id"].str.slice(1, 2).astype(int)
    df["patch_index"] = pd.array(index, dtype="Int64")
    df["patch_subject"] = [f"watch_queue: patch {i}" if i else "" for i in index]
    return df


def test_only_the_patch_that_shifts_the_metric_is_a_step():
    steps = per_patch_steps(_series(), "ns_per_op")
    assert set(steps["metric"]) == {"ns_per_op"}
    watched = steps[steps["params"] == "case=watched"].set_index("patch_index")
    assert list(watched.index) == [0, 1, 2, 3]
    assert watched.loc[2, "step_verdict"] == "regressed"
    assert watched.loc[2, "step_change"] == pytest.approx(0.10, abs=0.01)
    assert watched.loc[2, "step_ci_low"] > 0.05 and watched.loc[2, "prev_index"] == 1
    assert watched.loc[2, "n"] == 5  # boots, not repeats
    assert watched.loc[1, "step_verdict"] == "unchanged"
    assert watched.loc[3, "step_verdict"] == "unchanged"
    # against the baseline the shift persists after patch 2
    assert list(watched["base_verdict"]) == ["", "unchanged", "regressed", "regressed"]
    assert watched.loc[3, "base_change"] == pytest.approx(0.10, abs=0.01)
    assert watched.loc[2, "patch_subject"] == "watch_queue: patch 2"
    assert math.isnan(watched.loc[0, "step_change"]) and watched.loc[0, "step_reason"] == "baseline"
    assert watched.loc[0, "median"] == pytest.approx(1000, abs=5)


def test_moved_by_names_patch_two_for_every_series_and_direction():
    moved = moved_by(per_patch_steps(_series()))
    assert set(moved["patch_index"]) == {2}
    assert len(moved) == 4  # 2 params x 2 metrics
    verdicts = dict(zip(moved["metric"], moved["step_verdict"], strict=False))
    assert verdicts == {"ns_per_op": "regressed", "ops_per_s": "regressed"}


def test_metric_filters_and_runs_without_a_patch_index():
    df = _series()
    assert set(per_patch_steps(df, ["ops_per_s"])["metric"]) == {"ops_per_s"}
    assert set(per_patch_steps(df, lambda m: m.startswith("ns"))["metric"]) == {"ns_per_op"}
    df["patch_index"] = pd.array([pd.NA] * len(df), dtype="Int64")
    assert per_patch_steps(df).empty


def test_without_a_baseline_the_total_is_undecided_but_steps_still_judge():
    df = _series()
    steps = per_patch_steps(df[df["patch_index"] > 0], "ns_per_op")
    first = steps[(steps["params"] == "case=watched")].set_index("patch_index")
    assert first.loc[1, "step_verdict"] == "undecided"  # nothing before patch 1
    assert first.loc[2, "step_verdict"] == "regressed"
    assert (first["base_verdict"] == "undecided").all()


def test_one_boot_per_patch_names_no_patch():
    """The boot is the unit: one boot per prefix cannot pin a step, however many repeats."""
    df = _series(rounds=1)
    assert moved_by(per_patch_steps(df)).empty
