"""Per-patch steps: only patch 2 of 3 moves the metric, and only patch 2 is named."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from watchbench.perpatch import moved_by, per_patch_steps


def _series(shift_at: int = 2, shift: float = 0.10, n: int = 30, seed: int = 0) -> pd.DataFrame:
    """Baseline (0) and patches 1..3; from patch ``shift_at`` on ns_per_op is 10 % slower."""
    rng = np.random.default_rng(seed)
    parts = []
    for index in range(4):
        level = 1000 * (1 + shift if index >= shift_at else 1.0)
        for params in ("case=watched", "case=unwatched"):
            parts.append(pd.DataFrame({
                "benchmark": "keyctl-post", "params": params, "metric": "ns_per_op",
                "unit": "ns", "direction": "lower", "accel": "tcg", "status": "ok",
                "value": rng.normal(level, 10, n), "patch_index": index,
                "patch_subject": f"watch_queue: patch {index}" if index else "",
                "run_id": f"run-{index}"}))
            parts.append(pd.DataFrame({
                "benchmark": "keyctl-post", "params": params, "metric": "ops_per_s",
                "unit": "op/s", "direction": "higher", "accel": "tcg", "status": "ok",
                "value": rng.normal(1e9 / level, 1e4, n), "patch_index": index,
                "patch_subject": f"watch_queue: patch {index}" if index else "",
                "run_id": f"run-{index}"}))
    df = pd.concat(parts, ignore_index=True)
    df["patch_index"] = df["patch_index"].astype("Int64")
    return df


def test_only_the_patch_that_shifts_the_metric_is_a_step():
    steps = per_patch_steps(_series(), "ns_per_op")
    assert set(steps["metric"]) == {"ns_per_op"}
    watched = steps[steps["params"] == "case=watched"].set_index("patch_index")
    assert list(watched.index) == [0, 1, 2, 3]
    assert watched.loc[2, "step_verdict"] == "regressed"
    assert watched.loc[2, "step_change"] == pytest.approx(0.10, abs=0.01)
    assert watched.loc[2, "step_ci_low"] > 0.05 and watched.loc[2, "prev_index"] == 1
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


def test_without_a_baseline_the_total_is_inconclusive_but_steps_still_judge():
    df = _series()
    steps = per_patch_steps(df[df["patch_index"] > 0], "ns_per_op")
    first = steps[(steps["params"] == "case=watched")].set_index("patch_index")
    assert first.loc[1, "step_verdict"] == "inconclusive"  # nothing before patch 1
    assert first.loc[2, "step_verdict"] == "regressed"
    assert (first["base_verdict"] == "inconclusive").all()


def test_stats_reexports_per_patch_steps():
    from watchbench import stats

    pd.testing.assert_frame_equal(stats.per_patch_steps(_series(), "ns_per_op"),
                                  per_patch_steps(_series(), "ns_per_op"))
