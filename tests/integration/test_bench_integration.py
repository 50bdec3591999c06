"""The benchmarks for real: boot the patched kernel, run conformance and the quick suite."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from watchbench.host.progress import Silent
from watchbench.report import write_report
from watchbench.report.headline import fmt_figure, focus_text, headline_lines
from watchbench.report.questions import HEADLINES, SWEEPS, focus, headlines, sweeps
from watchbench.results import ingest_run, load_runs
from watchbench.suite.definition import load_suite
from watchbench.suite.run import run_bench

pytestmark = pytest.mark.kernel

RECORDED = Path(__file__).resolve().parents[1] / "data" / "results" / "quick-icount"
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
    assert manifest["measures"].startswith("emulation time")  # what a tcg figure is
    assert manifest["wall_seconds"] < 120


def test_a_kernel_without_the_bench_interface_yields_skipped_rows(bench_kernel, test_settings):
    """The in-kernel benchmark's interface missing (a kernel without
    CONFIG_WATCH_QUEUE_BENCH, or no debugfs) is a skip with its reason, never a failure;
    the suite builds no kernel without the option, so the bench kernel boots with
    debugfs=off, which takes the same interface away."""
    run = run_bench(test_settings, "ci", "icount", label="no-bench", kernel=bench_kernel,
                    progress=Silent(), only=frozenset({"kernel-post", "keyctl-post"}),
                    kernel_args=("debugfs=off",))
    df = load_runs(test_settings.runs_dir, run_ids=[run.name])
    kernel_rows = df[df["benchmark"].astype(str) == "kernel-post"]
    assert len(kernel_rows) and set(kernel_rows["status"].astype(str)) == {"skipped"}
    assert kernel_rows["reason"].astype(str).str.contains("WATCH_QUEUE_BENCH|watch_queue_bench").all()
    others = df[df["benchmark"].astype(str) == "keyctl-post"]
    assert set(others["status"].astype(str)) == {"ok"}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["kernel_args"] == ["debugfs=off"] and "debugfs=off" in " ".join(
        manifest["qemu_argv"])


def test_the_report_of_a_live_quick_run_answers_the_headline(quick_run, test_settings,
                                                             tmp_path):
    """The question-first report on a real boot, and the recorded run the unit tests replay
    (tests/data/results/quick-icount) still has the shape a live quick run has."""
    df = load_runs(test_settings.runs_dir, run_ids=[quick_run.name])
    ok = focus(df)
    assert {a.headline.key for a in headlines(ok)} == {h.key for h in HEADLINES}
    assert {s.sweep.key for s in sweeps(ok)} == {s.key for s in SWEEPS}
    lines = headline_lines(headlines(ok), focus_text(ok, brief=True), "REPORT")
    assert len(lines) <= 15 and all(len(line) <= 80 for line in lines)
    html = write_report(df, tmp_path, baseline=None, candidate=None).read_text()
    post = next(a for a in headlines(ok) if a.headline.key == "post")
    assert f'<div class="fig">{fmt_figure(post.figure)}</div>' in html
    assert "one boot: no interval" in html  # one tcg boot: no interval is claimed
    recorded = tmp_path / "recorded"
    shutil.copytree(RECORDED, recorded)
    for run in recorded.iterdir():
        ingest_run(run)
    shape = ["benchmark", "params", "metric", "unit", "direction"]
    live = df.loc[df["status"] == "ok", shape].astype(str).drop_duplicates()
    old = load_runs(recorded)
    old = old.loc[old["status"] == "ok", shape].astype(str).drop_duplicates()
    key = lambda f: set(f.itertuples(index=False, name=None))  # noqa: E731
    assert key(live) == key(old), key(live) ^ key(old)
