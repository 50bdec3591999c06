"""The recorded-runs history (append-only JSON Lines) and change-point detection."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import signal

from watchbench.results import ingest_run
from watchbench.results.history import HistoryError, load_history, record
from watchbench.stats.changepoints import change_points, history_changes, trend

DATA = Path(__file__).resolve().parents[1] / "data" / "results"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Four ingested runs: the two samples and two more copies of the candidate."""
    root = tmp_path / "runs"
    shutil.copytree(DATA / "runs", root)
    for name in ("cand-2", "cand-3"):
        shutil.copytree(root / "sample-candidate", root / name)
        manifest = json.loads((root / name / "manifest.json").read_text())
        (root / name / "manifest.json").write_text(json.dumps({**manifest, "run_id": name}))
    for run in sorted(root.iterdir()):
        ingest_run(run)
    return root


# --- the index -------------------------------------------------------------------------


def test_record_appends_one_versioned_line_per_call_and_never_rewrites(tmp_path: Path):
    path = tmp_path / "hist" / "history.jsonl"
    record(path, ["a", "b"], note="ci 1")
    first = path.read_bytes()
    record(path, ["c"])
    assert path.read_bytes().startswith(first)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["run_ids"] for line in lines] == [["a", "b"], ["c"]]
    assert all(line["schema_version"] == 1 for line in lines)
    assert lines[0]["note"] == "ci 1" and "recorded" in lines[0]


@pytest.mark.parametrize("bad", [[], "run-a", [""], [3]])
def test_record_refuses_no_run_ids(tmp_path: Path, bad: object):
    with pytest.raises(HistoryError, match="nothing to record"):
        record(tmp_path / "h.jsonl", bad)  # type: ignore[arg-type]
    assert not (tmp_path / "h.jsonl").exists()


def test_load_history_keeps_recorded_order_with_an_index(runs: Path, tmp_path: Path):
    path = tmp_path / "history.jsonl"
    record(path, ["cand-3"], note="newest first on purpose")
    record(path, ["sample-baseline", "sample-candidate"])
    record(path, ["cand-2"])
    df = load_history(path, runs)
    order = df.drop_duplicates("run_id")[["run_id", "history_index"]]
    assert order.values.tolist() == [["cand-3", 0], ["sample-baseline", 1],
                                     ["sample-candidate", 1], ["cand-2", 2]]
    assert df["history_index"].is_monotonic_increasing
    assert set(df.loc[df["run_id"] == "cand-3", "history_note"]) == {"newest first on purpose"}
    assert df.attrs["bad_lines"] == [] and df.attrs["missing_runs"] == []


def test_a_corrupt_line_is_named_and_skipped_only_when_asked(runs: Path, tmp_path: Path):
    path = tmp_path / "history.jsonl"
    record(path, ["sample-baseline"])
    with open(path, "a") as out:
        out.write('{"schema_version": 1, "run_ids": ["cand-')  # a writer died mid-line
    before = path.read_bytes()
    record(path, ["cand-2"])  # starts on a fresh line, the damaged one stays as it was
    assert path.read_bytes().startswith(before)
    with pytest.raises(HistoryError, match=r"history\.jsonl:2: not valid JSON") as err:
        load_history(path, runs)
    assert "skip_bad" in str(err.value)
    df = load_history(path, runs, skip_bad=True)
    assert sorted(df["run_id"].unique()) == ["cand-2", "sample-baseline"]
    assert set(df.loc[df["run_id"] == "cand-2", "history_index"]) == {1}
    assert [line for line, _ in df.attrs["bad_lines"]] == [2]


def test_a_line_from_a_newer_schema_is_refused(runs: Path, tmp_path: Path):
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps({"schema_version": 2, "run_ids": ["sample-baseline"]}) + "\n")
    with pytest.raises(HistoryError, match=r"history\.jsonl:1: history schema 2"):
        load_history(path, runs)


def test_missing_runs_raise_or_are_listed(runs: Path, tmp_path: Path):
    path = tmp_path / "history.jsonl"
    record(path, ["sample-baseline"])
    record(path, ["gone"])
    with pytest.raises(HistoryError, match="missing or not ingested.*gone"):
        load_history(path, runs)
    df = load_history(path, runs, skip_bad=True)
    assert df.attrs["missing_runs"] == ["gone"] and set(df["run_id"]) == {"sample-baseline"}
    with pytest.raises(HistoryError, match="no history yet"):
        load_history(tmp_path / "nope.jsonl", runs)


# --- change points ---------------------------------------------------------------------


def _ar1(rng: np.random.Generator, n: int, phi: float, cv: float) -> np.ndarray:
    """Stationary AR(1) noise with marginal SD ``cv`` (independent when ``phi`` is 0)."""
    scale = math.sqrt(1 - phi**2)
    z = rng.normal(0, 1, n)
    z[0] /= scale
    return cv * scale * signal.lfilter([1.0], [1.0, -phi], z)


def test_autocorrelated_noise_is_not_a_level_shift():
    # Measured before: the independent-noise test flagged 31 % of these series.
    rng = np.random.default_rng(2024)
    flagged = sum(bool(change_points(100 * (1 + _ar1(rng, 50, 0.6, 0.05))))
                  for _ in range(200))
    assert flagged <= 4  # <= 2 %


def test_a_ten_percent_step_in_autocorrelated_noise_is_found_where_it_is():
    rng = np.random.default_rng(7)
    level = np.r_[np.ones(25), np.full(25, 1.10)]
    found = 0
    for _ in range(100):
        cps = change_points(100 * level * (1 + _ar1(rng, 50, 0.6, 0.01)))
        found += any(abs(cp.index - 25) <= 2 and cp.change > 0.05 for cp in cps)
    assert found >= 95


def test_a_five_percent_step_on_the_threshold_is_found_at_low_noise():
    # The old rule (point estimate >= threshold) missed half of these: the estimate of a
    # step sitting on the threshold is below it half the time. The interval reaches it.
    rng = np.random.default_rng(11)
    level = np.r_[np.ones(15), np.full(15, 1.05)]
    found = sum([cp.index for cp in change_points(100 * level * rng.normal(1, 0.002, 30))]
                == [15] for _ in range(100))
    assert found >= 99


def test_a_change_point_carries_its_interval_and_old_keywords_still_work():
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(100, 1, 20), rng.normal(110, 1, 20)]
    (cp,) = change_points(values, min_z=4.0)  # min_z: an extra floor, the interval decides
    assert cp.ci_low < cp.change < cp.ci_high and cp.ci_low > 0 and cp.ci_high >= 0.05
    assert cp.z > 4
    assert change_points(values, min_z=1e6) == []
    # deterministic: the noise floor keeps the interval finite, a 6 % step is a step
    (flat,) = change_points([100.0] * 10 + [106.0] * 10)
    assert flat.index == 10 and flat.ci_low < 0.06 < flat.ci_high
    assert change_points([100.0] * 10 + [100.2] * 10) == []
    with pytest.raises(ValueError, match="positive"):
        change_points([1.0, 0.0, 2.0])


def test_a_clean_ten_percent_step_is_found_where_it_is():
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(100, 1, 20), rng.normal(110, 1, 20)]
    (cp,) = change_points(values)
    assert cp.index == 20
    assert cp.change == pytest.approx(0.10, abs=0.01)
    assert cp.before == pytest.approx(100, abs=1) and cp.after == pytest.approx(110, abs=1)


@pytest.mark.parametrize("seed", range(20))
def test_flat_noisy_data_has_no_step(seed: int):
    rng = np.random.default_rng(seed)
    values = rng.normal(100, 3, 50)
    values[rng.choice(50, 2, replace=False)] *= 1.4  # lone outlier runs are not steps
    assert change_points(values) == []


@pytest.mark.parametrize("seed", range(10))
def test_two_steps_are_both_found(seed: int):
    rng = np.random.default_rng(seed)
    values = np.r_[rng.normal(100, 1.5, 15), rng.normal(110, 1.5, 20), rng.normal(101, 1.5, 15)]
    found = change_points(values)
    assert [cp.index for cp in found] == [15, 35]
    assert found[0].change == pytest.approx(0.10, abs=0.02)
    assert found[1].change == pytest.approx(-0.08, abs=0.02)


def test_a_small_step_or_a_short_segment_is_not_a_change_point():
    rng = np.random.default_rng(3)
    small = np.r_[rng.normal(100, 0.2, 20), rng.normal(103, 0.2, 20)]  # clear but 3 %
    assert change_points(small) == []
    assert [cp.index for cp in change_points(small, threshold=0.02)] == [20]
    edge = np.r_[rng.normal(100, 1, 20), [130.0, 130.0]]  # shorter than min_size
    assert change_points(edge) == []
    with pytest.raises(ValueError, match="NaN"):
        change_points([1.0, float("nan"), 2.0])
    assert change_points([]) == [] and change_points([5.0] * 10) == []


def test_history_changes_reports_the_entry_and_judges_the_direction():
    rng = np.random.default_rng(1)
    rows = []
    for i in range(12):
        level = 100.0 if i < 6 else 112.0
        for metric, direction, value in (("ns_per_op", "lower", level),
                                         ("ops_per_s", "higher", 1e9 / level),
                                         ("delivered_per_s", "higher", level)):
            for v in rng.normal(value, value * 0.01, 5):
                rows.append({"benchmark": "keyctl-post", "params": "case=watched",
                             "metric": metric, "unit": "ns", "direction": direction,
                             "accel": "tcg", "status": "ok", "value": v,
                             "run_id": f"r{i}", "history_index": i})
    history = pd.DataFrame(rows)
    medians = trend(history)
    assert set(medians["metric"]) == {"ns_per_op"} and len(medians) == 12
    changes = history_changes(history)
    assert changes[["metric", "history_index", "verdict"]].values.tolist() == [
        ["ns_per_op", 6, "regressed"]]
    every = history_changes(history, headline_only=False).set_index("metric")
    assert every.loc["ops_per_s", "verdict"] == "regressed"  # higher is better, and it fell
    assert every.loc["ops_per_s", "change"] == pytest.approx(100 / 112 - 1, abs=0.01)
    assert every.loc["delivered_per_s", "verdict"] == "improved"
    assert (every["history_index"] == 6).all()
    assert list(changes.columns[-3:]) == ["verdict", "ci_low", "ci_high"]
    assert (every["ci_low"] < every["change"]).all() and (every["change"] < every["ci_high"]).all()
