"""`inv ci` for real under icount: a deliberately slower post path is caught and pinned on
its patch, a benchmark that breaks on the candidate fails the gate, A/A is quiet."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.fakes import Steps
from watchbench.flows.ci import EXIT_OK, EXIT_REGRESSED, CiOptions, run_ci
from watchbench.flows.shard import run_merge
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
    # where it went: patch 1 (a comment) moves no function, patch 2 adds its loop
    first, second = result.explanation.steps
    assert not first.diff["changed"].any(), first.diff[first.diff["changed"]].head()
    moved = second.diff[second.diff["changed"] & ~second.diff["interleaved"]]
    for case, top in moved.groupby(["benchmark", "params"]).first().iterrows():
        assert top["symbol"] == "watch_queue_extra_work", (case, top)
        # a 64-step loop on a volatile counter, once per watcher of each post
        watchers = int(case[1].split("queues=")[1].split(",")[0])
        assert 64 * 4 * watchers <= top["delta"] <= 64 * 8 * watchers, (case, top)
    assert "`watch_queue_extra_work +" in result.summary.read_text()


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



_SHARDS: dict[str, Path] = {}  # series -> the shard directories of that case


def _inv(args: list[str], settings, env: dict | None = None, timeout: float = 1800):
    """`inv ARGS` as its own process on the test cache (a CI job, a shard of a matrix)."""
    import sys

    from watchbench.host.runner import default_runner

    root = Path(__file__).resolve().parents[2]
    env = {"INVOKE_WATCHBENCH_CACHE_DIR": str(settings.cache_dir),
           "INVOKE_WATCHBENCH_RUNS_DIR": str(settings.runs_dir), **(env or {})}
    return default_runner.run([sys.executable, "-m", "invoke", "-r", str(root), *args],
                              cwd=root, env=env, check=False, timeout=timeout)


@pytest.mark.parametrize("series", ["", "slow-post"], ids=["a-a", "slow-post"])
def test_side_by_side_and_sharded_give_the_verdicts_of_one_at_a_time(test_settings, tmp_path,
                                                                      series):
    """The same gate three ways: one boot at a time, --jobs 2 under icount (two guests
    side by side), and two `inv ci --shard I/2` processes (run at once, as two matrix jobs
    would) merged by `inv ci --merge`. The same exit code and the same regressed
    benchmarks; the wall times are printed. Then the real shards are mixed with a shard of
    another gate and of another accelerator, and the merge refuses each by name.
    (--rounds auto up to 8 rounds: a fixed 4 can leave a noisier A/A metric undecided.)"""
    import threading
    import time

    given = ["--series", str(DATA / series)] if series else []
    outcome = {}
    for jobs in (1, 2):
        options = CiOptions(series=str(DATA / series) if series else "", accel="icount",
                            jobs=jobs, max_rounds=8, out=tmp_path / f"reports-{jobs}")
        steps, start = Steps(), time.monotonic()
        result = run_ci(test_settings, options, progress=steps)
        side_by_side = any(line.startswith("2 boots at once") for line in steps.lines)
        assert side_by_side == (jobs == 2), steps.lines[:5]
        outcome[jobs] = (result.exit_code, sorted({r.split()[0] for r in result.regressed}),
                         time.monotonic() - start)
    eight = {"INVOKE_WATCHBENCH_CI_MAX_ROUNDS": "8"}
    shards: dict[int, object] = {}

    def shard(index: int) -> None:
        shards[index] = _inv(["ci", *given, "--shard", f"{index}/2", "--jobs", "1",
                              "--out", str(tmp_path / "artifacts")], test_settings, eight)

    start = time.monotonic()
    threads = [threading.Thread(target=shard, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, done in shards.items():
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert f"shard {index}/2 booted rounds" in done.stdout and "no verdict" in done.stdout
    merged = _inv(["ci", "--merge", str(tmp_path / "artifacts"), "--out",
                   str(tmp_path / "merged")], test_settings)
    out = merged.stdout
    seconds = time.monotonic() - start
    again = run_merge(test_settings, [tmp_path / "artifacts"], tmp_path / "merged-again")
    assert again.exit_code == merged.returncode, out[-3000:]
    outcome["shards"] = (merged.returncode, sorted({r.split()[0] for r in again.regressed}),
                         seconds)
    print(f"\n{series or 'A/A'}: --jobs 1 {outcome[1][2]:.0f} s, --jobs 2 "
          f"{outcome[2][2]:.0f} s, 2 shards at once + merge {outcome['shards'][2]:.0f} s")
    assert outcome[1][:2] == outcome[2][:2] == outcome["shards"][:2], (outcome, out[-3000:])
    assert outcome[1][0] == (EXIT_REGRESSED if series else EXIT_OK)
    assert ("kernel-post" in outcome[1][1]) == bool(series)
    assert (tmp_path / "merged" / "index.html").exists()
    assert (tmp_path / "merged" / "summary.md").read_text().startswith(
        "## watchbench: " + ("REGRESSED" if series else "OK"))
    _SHARDS[series] = tmp_path / "artifacts"
    if series and "" in _SHARDS:  # the A/A shards (the other case of this test): another gate
        other = _SHARDS[""]
        if other.exists():
            mixed = _inv(["ci", "--merge", f"{other / 'shard-1-of-2'},"
                          f"{tmp_path / 'artifacts' / 'shard-2-of-2'}"], test_settings)
            assert mixed.returncode == 2 and "measured other kernels" in mixed.stdout, \
                mixed.stdout[-2000:]
    record = tmp_path / "artifacts" / "shard-2-of-2" / "shard.json"
    data = json.loads(record.read_text())
    data["design"]["accel"] = data["fingerprint"]["accel"] = "tcg"
    record.write_text(json.dumps(data))
    refused = _inv(["ci", "--merge", str(tmp_path / "artifacts"), "--out",
                    str(tmp_path / "refused")], test_settings)
    assert refused.returncode == 2, refused.stdout[-2000:]
    assert "design.accel 'tcg', not 'icount'" in refused.stdout.replace("\n  ", " ")
