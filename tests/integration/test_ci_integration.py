"""`inv ci` for real under icount: a deliberately slower post path is caught and pinned on
its patch, a benchmark that breaks on the candidate fails the gate, A/A is quiet."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.fakes import Steps
from watchbench.flows.ci import EXIT_OK, EXIT_REGRESSED, CiOptions, run_ci
from watchbench.host.progress import Silent
from watchbench.kernel import patching
from watchbench.kernel.series import load_series
from watchbench.report.text import attribute

pytestmark = pytest.mark.kernel
DATA = Path(__file__).resolve().parents[1] / "data" / "patches"


def test_slow_post_series_regresses_and_patch_2_is_named(test_settings, tmp_path):
    options = CiOptions(series=str(DATA / "slow-post"), accel="icount", per_patch=True,
                        out=tmp_path / "reports")
    result = run_ci(test_settings, options, progress=Silent())
    assert result.exit_code == EXIT_REGRESSED, result.stop_reason
    assert any(r.startswith("kernel-post") and "case=free" in r for r in result.regressed), \
        result.regressed
    assert any(r.startswith("keyctl-post") for r in result.regressed), result.regressed
    assert not any("case=none" in r or "pipe-read" in r for r in result.regressed)
    # only primary metrics are gated: no derived rate is listed
    assert not any("_per_s" in r for r in result.regressed), result.regressed
    assert result.rounds == 4  # the first look already decides (--rounds auto)
    lines = attribute(result.per_patch, result.regressed)
    assert lines and all(line.lstrip().startswith("patch 2 ") for line in lines), lines
    suite = ET.parse(result.junit).getroot()
    assert int(suite.get("failures") or suite[0].get("failures")) >= 2
    assert "REGRESSED" in result.summary.read_text().splitlines()[0]
    assert result.report.exists()


def test_a_benchmark_broken_on_the_candidate_fails_the_gate(test_settings, tmp_path):
    options = CiOptions(series=str(DATA / "breaks-kernel-post"), accel="icount",
                        out=tmp_path / "reports")
    result = run_ci(test_settings, options, progress=Silent())
    assert result.exit_code == EXIT_REGRESSED, result.comparisons[["params", "verdict"]]
    broken = [r for r in result.regressed if r.endswith(": failed")]
    assert broken and all(r.startswith("kernel-post") and "case=none" in r for r in broken)
    row = result.comparisons[result.comparisons["verdict"] == "failed"].iloc[0]
    assert "EOPNOTSUPP" in row["reason"] or "Operation not supported" in row["reason"]
    failures = ET.parse(result.junit).getroot().iter("failure")
    assert any(f.get("type") == "benchmark-broken" for f in failures)


def test_aa_same_kernel_is_not_a_regression(test_settings, debian_tree, tmp_path):
    options = CiOptions(series="", accel="icount", out=tmp_path / "reports")
    # the user's tree carries a series of their own: ci must leave it exactly so
    mine = patching.apply(patching.reset(debian_tree, force=True),
                          load_series(DATA, "two-patch"))
    before = (mine.git().head(), json.loads((mine.root / "tree.json").read_text()))
    try:
        result = run_ci(test_settings, options, progress=Silent())
        after = (mine.git().head(), json.loads((mine.root / "tree.json").read_text()))
    finally:
        patching.reset(debian_tree, force=True)
    assert after == before and before[1]["series"] == "two-patch"
    assert result.exit_code == EXIT_OK, (result.regressed, result.stop_reason)
    gated = result.comparisons[result.comparisons["gated"]]
    assert set(gated["verdict"]) == {"unchanged"}
    # icount boots are near-deterministic: decided within the first looks
    assert result.rounds <= 6 and "every gated metric decided" in result.stop_reason


def test_two_gates_at_once_on_one_cache_both_answer_right(test_settings, debian_tree, tmp_path):
    """Two `inv ci` processes on one cache (two CI jobs on one runner): the second waits
    for the tree while the first composes, then both measure; each gets its own verdict
    and the active tree is left as it was."""
    import sys
    import threading

    from watchbench.host.runner import default_runner

    root = Path(__file__).resolve().parents[2]
    env = {"INVOKE_WATCHBENCH_CACHE_DIR": str(test_settings.cache_dir),
           "INVOKE_WATCHBENCH_RUNS_DIR": str(test_settings.runs_dir)}
    patching.reset(debian_tree, force=True)
    before = (debian_tree.git().head(), (debian_tree.root / "tree.json").read_text())
    jobs = {"aa": [], "slow": ["--series", str(DATA / "slow-post")]}
    done: dict[str, object] = {}

    def gate(name: str) -> None:
        argv = [sys.executable, "-m", "invoke", "-r", str(root), "ci", *jobs[name],
                "--out", str(tmp_path / name)]
        done[name] = default_runner.run(argv, cwd=root, env=env, check=False, timeout=1800)

    threads = [threading.Thread(target=gate, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    aa, slow = done["aa"], done["slow"]
    assert aa.returncode == 0, aa.stdout[-2000:] + aa.stderr[-2000:]
    assert slow.returncode == 1, slow.stdout[-2000:] + slow.stderr[-2000:]
    assert "watchbench ci: OK (exit 0)" in aa.stdout
    assert "watchbench ci: REGRESSED (exit 1)" in slow.stdout
    assert "kernel-post" in slow.stdout and "case=free" in slow.stdout
    after = (debian_tree.git().head(), (debian_tree.root / "tree.json").read_text())
    assert after == before



@pytest.mark.parametrize("series", ["", "slow-post"], ids=["a-a", "slow-post"])
def test_two_boots_at_once_give_the_verdicts_of_one_at_a_time(test_settings, tmp_path, series):
    """--jobs 2 under icount (two guests side by side) against --jobs 1: the same exit code
    and the same regressed benchmarks (--rounds auto: a fixed 4 can leave a noisier A/A
    metric undecided either way); both wall times are printed."""
    import time

    outcome = {}
    for jobs in (1, 2):
        options = CiOptions(series=str(DATA / series) if series else "", accel="icount",
                            jobs=jobs, out=tmp_path / f"reports-{jobs}")
        steps, start = Steps(), time.monotonic()
        result = run_ci(test_settings, options, progress=steps)
        side_by_side = any(line.startswith("2 boots at once") for line in steps.lines)
        assert side_by_side == (jobs == 2), steps.lines[:5]
        outcome[jobs] = (result.exit_code, sorted({r.split()[0] for r in result.regressed}),
                         time.monotonic() - start)
    print(f"\n{series or 'A/A'}: --jobs 1 {outcome[1][2]:.0f} s, --jobs 2 {outcome[2][2]:.0f} s")
    assert outcome[1][:2] == outcome[2][:2]
    assert outcome[1][0] == (EXIT_REGRESSED if series else EXIT_OK)
    assert ("kernel-post" in outcome[1][1]) == bool(series)
