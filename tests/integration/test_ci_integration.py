"""`inv ci` for real under icount: two shards booted as two processes at once on one
cache and merged give the verdict, in which a benchmark that breaks on the candidate fails
the gate. They compose on ``side_tree``, a worktree of a clone of the test tree, through
--tree/--base, as a developer's checkout elsewhere is used. (A slower post path caught,
pinned on its patch and explained per function, from inside the clone with an installed
wb: test_your_branch.py. A/A, the user's tree put back and a full profile: the
interrupted gate's rerun in test_interrupt.py. That --jobs 1, 2 and shards decide alike
on the same boots: tests/unit/test_flows.py and test_shard.py.)"""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from watchbench.flows.ci import EXIT_REGRESSED
from watchbench.flows.shard import run_merge
from watchbench.kernel.trees import BASE_TAG

pytestmark = pytest.mark.kernel
DATA = Path(__file__).resolve().parents[1] / "data" / "patches"


def _on_side_tree(side_tree) -> tuple[str, str]:
    """--tree/--base that compose on ``side_tree``: a worktree's id is its repository's
    (kernel.trees.fetch_user), so these name that very worktree."""
    repo = side_tree.git().out("rev-parse", "--path-format=absolute", "--git-common-dir")
    return str(Path(repo).parent), BASE_TAG


def _inv(args: list[str], settings, env: dict | None = None, timeout: float = 1800):
    """`inv ARGS` as its own process on the test cache (a CI job, a shard of a matrix)."""
    import sys

    from watchbench.host.runner import default_runner

    root = Path(__file__).resolve().parents[2]
    env = {"INVOKE_WATCHBENCH_CACHE_DIR": str(settings.cache_dir),
           "INVOKE_WATCHBENCH_RUNS_DIR": str(settings.runs_dir), **(env or {})}
    return default_runner.run([sys.executable, "-m", "invoke", "-r", str(root), *args],
                              cwd=root, env=env, check=False, timeout=timeout)


def test_two_shards_at_once_on_one_cache_merge_into_the_verdict(side_settings, side_tree,
                                                                 tmp_path):
    """Two `inv ci --shard I/2` processes started together on one cache, as two matrix
    jobs on one runner: the second waits for the tree while the first composes, both boot
    their rounds, and `inv ci --merge` gives the verdict. The candidate is the slow series
    plus one that breaks a benchmark: the slow case regresses and the broken one fails the
    gate closed, named with its errno. A shard whose record was altered to another
    accelerator is refused by name."""
    before = (side_tree.git().head(), (side_tree.root / "tree.json").read_text())
    series = f"{DATA / 'slow-post'},{DATA / 'breaks-kernel-post'}"
    tree, base = _on_side_tree(side_tree)
    # the cache model off: its gate is proven in test_your_branch.py and test_interrupt.py,
    # and the shards' record of it by tests/unit/test_cache_gate.py
    given = ["--series", series, "--rounds", "4", "--jobs", "1", "--tree", tree, "--base", base,
             "--cache-model", "off"]
    shards: dict[int, object] = {}

    def shard(index: int) -> None:
        shards[index] = _inv(["ci", *given, "--shard", f"{index}/2",
                              "--out", str(tmp_path / "artifacts")], side_settings)

    threads = [threading.Thread(target=shard, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, done in shards.items():
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert f"shard {index}/2 booted rounds" in done.stdout and "no verdict" in done.stdout
        assert f"tree {side_tree.id}: " in done.stdout + done.stderr, done.stdout[-3000:]
    assert (side_tree.git().head(), (side_tree.root / "tree.json").read_text()) == before
    merged = _inv(["ci", "--merge", str(tmp_path / "artifacts"), "--out",
                   str(tmp_path / "merged")], side_settings)
    assert merged.returncode == EXIT_REGRESSED, merged.stdout[-3000:] + merged.stderr[-2000:]
    # a broken benchmark is the verdict's first word; the slow cases are listed regressed
    assert "watchbench ci: BENCHMARK BROKEN ON THE CANDIDATE (exit 1)" in merged.stdout
    assert "kernel-post" in merged.stdout and "case=free" in merged.stdout
    again = run_merge(side_settings, [tmp_path / "artifacts"], tmp_path / "merged-again")
    assert again.exit_code == EXIT_REGRESSED and again.rounds == 4
    assert any(r.startswith("kernel-post") and "case=free" in r and r.endswith("regressed")
               for r in again.regressed), again.regressed
    broken = [r for r in again.regressed if r.endswith(": failed")]
    assert broken and all(r.startswith("kernel-post") and "case=none" in r for r in broken)
    row = again.comparisons[again.comparisons["verdict"] == "failed"].iloc[0]
    assert "EOPNOTSUPP" in row["reason"] or "Operation not supported" in row["reason"]
    failures = ET.parse(again.junit).getroot().iter("failure")
    assert any(f.get("type") == "benchmark-broken" for f in failures)
    assert (tmp_path / "merged" / "index.html").exists()
    assert (tmp_path / "merged" / "summary.md").read_text().startswith(
        "## watchbench: BENCHMARK BROKEN ON THE CANDIDATE")
    record = tmp_path / "artifacts" / "shard-2-of-2" / "shard.json"
    data = json.loads(record.read_text())
    data["design"]["accel"] = data["fingerprint"]["accel"] = "tcg"
    record.write_text(json.dumps(data))
    refused = _inv(["ci", "--merge", str(tmp_path / "artifacts"), "--out",
                    str(tmp_path / "refused")], side_settings)
    assert refused.returncode == 2, refused.stdout[-2000:]
    assert "design.accel 'tcg', not 'icount'" in refused.stdout.replace("\n  ", " ")
