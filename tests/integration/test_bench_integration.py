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


def test_ctrl_c_in_a_boot_kills_the_guest_and_the_next_bench_succeeds(default_kernel, debian_tree,
                                                                      test_settings):
    """A real `inv bench` gets SIGINT while its guest runs: it exits 130 saying so, no QEMU
    outlives it, the half run is not taken as a result, and the same command then works."""
    import os
    import signal
    import sys
    import time
    from pathlib import Path

    from watchbench.host.runner import default_runner
    from watchbench.kernel import patching
    from watchbench.kernel.configure import configure

    patching.reset(debian_tree, force=True)
    configure(debian_tree, test_settings, list(test_settings.fragments))  # default_kernel's
    root = Path(__file__).resolve().parents[2]
    env = {"INVOKE_WATCHBENCH_CACHE_DIR": str(test_settings.cache_dir),
           "INVOKE_WATCHBENCH_RUNS_DIR": str(test_settings.runs_dir)}
    argv = [sys.executable, "-m", "invoke", "-r", str(root), "bench", "--suite", "ci",
            "--accel", "icount", "--label", "interrupted"]
    seen, run_dir = [], None
    with default_runner.spawn(argv, cwd=root, env=env) as proc:
        for line in proc.lines():
            if line is None:
                assert time.monotonic() - proc.started_at < 300, seen[-20:]
                continue
            seen.append(line)
            if line.startswith("[bench] suite ci ") and " -> " in line:
                run_dir = Path(line.rsplit(" -> ", 1)[1])
                time.sleep(3)  # the guest is booting or running the suite
                os.kill(proc.pid, signal.SIGINT)
                break
        rc = proc.wait(timeout=120)
        seen += [line for line in proc.lines(poll=0.1) if line is not None][:50]
    assert rc == 130 and "interrupted" in seen, seen[-20:]
    assert run_dir is not None and not (run_dir / "results.parquet").exists()
    qemus = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmdline and str(test_settings.cache_dir).encode() in cmdline:
            qemus.append(pid)
    assert qemus == [], "QEMU outlived the interrupted bench"
    again = default_runner.run(argv[:-1] + ["again"], cwd=root, env=env, check=False,
                               timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    fresh = Path(again.stdout.strip().splitlines()[-1])
    assert (fresh / "results.parquet").exists() and fresh != run_dir
