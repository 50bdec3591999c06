"""The benchmarks for real: boot the patched kernel, run conformance and the quick suite."""

from __future__ import annotations

import json
import math

import pytest

from watchbench.host.progress import Silent
from watchbench.results import load_runs
from watchbench.suite.definition import load_suite
from watchbench.suite.run import run_bench

pytestmark = pytest.mark.kernel

UNITS = {"ns_per_op": "ns", "ns_per_record": "ns", "ops_per_s": "op/s",
         "records_per_s": "record/s", "bytes_per_s": "B/s", "delivered_per_s": "record/s"}


@pytest.fixture(scope="module")
def quick_run(bench_kernel, test_settings):
    return run_bench(test_settings, "quick", "tcg", label="test", kernel=bench_kernel,
                     progress=Silent())


def test_conformance_all_pass(quick_run):
    ktap = (quick_run / "raw" / "conformance.ktap").read_text()
    assert "1..43" in ktap and "not ok" not in ktap
    assert ktap.count("\nok ") >= 40


def test_quick_suite_has_every_benchmark_with_sane_values(quick_run, test_settings):
    suite = load_suite(test_settings.project_root, "quick")
    expected = {b for run in suite.benchmarks for b in run.benchmarks}
    df = load_runs(test_settings.runs_dir, run_ids=[quick_run.name])
    ok = df[df["status"] == "ok"]
    assert expected <= set(ok["benchmark"].astype(str)), expected - set(ok["benchmark"].astype(str))
    assert set(df["status"].astype(str)) == {"ok"}, df[df["status"] != "ok"][["benchmark", "reason"]]
    assert all(math.isfinite(v) for v in ok["value"])
    for metric, unit in UNITS.items():
        rows = ok[ok["metric"].astype(str) == metric]
        if len(rows):
            assert set(rows["unit"].astype(str)) == {unit}, metric
            assert (rows["value"] > 0).all(), metric
    manifest = json.loads((quick_run / "manifest.json").read_text())
    assert manifest["accel"] == "tcg" and manifest["series_name"] == "watch_queue-bench"
    assert manifest["wall_seconds"] < 120


def test_kernel_without_bench_option_yields_skipped_rows(default_kernel, test_settings):
    run = run_bench(test_settings, "quick", "tcg", label="no-bench", kernel=default_kernel,
                    progress=Silent())
    df = load_runs(test_settings.runs_dir, run_ids=[run.name])
    kernel_rows = df[df["benchmark"].astype(str) == "kernel-post"]
    assert len(kernel_rows) and set(kernel_rows["status"].astype(str)) == {"skipped"}
    assert kernel_rows["reason"].astype(str).str.contains("WATCH_QUEUE_BENCH|watch_queue_bench").all()
    others = df[df["benchmark"].astype(str) == "keyctl-post"]
    assert set(others["status"].astype(str)) == {"ok"}
