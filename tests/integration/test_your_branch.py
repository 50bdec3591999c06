"""The developer's flow for real (issue 30): watchbench installed from its wheel into a
fresh venv, a branch in a clone of the kernel tree, and `wb` run from inside that clone
with no other step. `wb ci --base` gates the branch's two commits under icount, two boots
at once, per commit: the slow commit is exit 1, named as patch 2, and explained per
function. A series that adds a cache miss per post and few instructions, gated on the
same base with the default settings, is exit 1 on the cache model's estimate alone, its
misses named in __post_watch_notification (issue 32). One more commit on the branch,
and `wb bisect` names the slow one in the middle, each commit's two boots at once: our
bench series goes on every step, so the in-kernel benchmark is what is bisected. The
clone's HEAD, branch, index, status and stash are the same after each command.

The clone is ``side_clone`` and the worktree wb composes in is ``side_tree`` (its id is
the clone's path): they share the bench kernel's build directory, so each variant builds
a few objects. (A/A, the user's tree put back after Ctrl-C and a full profile: the
interrupted gate's rerun in test_interrupt.py. That --jobs 1, 2 and shards decide alike
on the same boots: tests/unit/test_flows.py and test_shard.py. The flows under fakes:
tests/unit/test_flows.py; the refusals: tests/unit/test_standing.py.)"""

from __future__ import annotations

import json
import os
import re
import time
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

from watchbench.host.git import Git
from watchbench.host.runner import Completed, default_runner
from watchbench.kernel.trees import BASE_TAG

pytestmark = pytest.mark.kernel
PATCHES = Path(__file__).resolve().parents[1] / "data" / "patches"
FREE = "case=free, filter=none, len=16, queue_size=256, queues=1, subtype=7"
HELPER = PATCHES / "two-patch" / "0002-watch_queue-add-a-helper-that-counts-note-slots.patch"


def wb(venv: Path, clone: Path, settings, *argv: str) -> Completed:
    """The installed ``wb ARGV`` run inside the clone, on the side cache."""
    env = {"INVOKE_WATCHBENCH_CACHE_DIR": str(settings.cache_dir),
           "INVOKE_WATCHBENCH_RUNS_DIR": str(settings.runs_dir), "PYTHONPATH": "",
           "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"}
    env.update({k: "" for k in os.environ if k.startswith("INVOKE_") and k not in env})
    return default_runner.run([str(venv / "bin" / "wb"), *argv], cwd=clone, env=env,
                              check=False, timeout=3600)


def state(git: Git) -> tuple[str, ...]:
    """What the developer would see changed in their clone."""
    return (git.head(), git.out("branch", "--show-current"),
            git.out("status", "--porcelain", "--untracked-files=all"), git.out("stash", "list"),
            (git.path / ".git" / "index").read_bytes().hex(),
            git.out("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads",
                    "refs/tags"))


def test_wb_gates_and_bisects_your_branch_from_inside_your_clone(installed, side_clone,
                                                                side_tree, side_settings,
                                                                tmp_path):
    git = Git(side_clone)
    git("checkout", "-q", "-B", "my-fix", BASE_TAG)
    for patch in sorted((PATCHES / "slow-post").glob("0*.patch")):
        git("am", "-q", "--committer-date-is-author-date", str(patch))
    slow = git.head()
    before = state(git)

    done = wb(installed, side_clone, side_settings, "ci", "--base", BASE_TAG, "--per-patch",
              "--jobs", "2", "--out", str(tmp_path / "reports"))
    out = done.stdout
    assert done.returncode == 1, out[-3000:] + done.stderr[-3000:]
    assert state(git) == before
    flat = " ".join(out.split())  # the first lines wrap where the clone's path ends
    assert flat.startswith(f"watchbench: your checkout {side_clone}, my-fix at"), out[:400]
    assert f"patch 2  {slow[:12]} watch_queue: do extra work" in out
    assert "2 boots at once" in done.stderr
    assert f"tree {side_tree.id}: " in done.stderr  # the worktree of the clone
    # pinned on the slow commit: every attribution line names patch 2
    attributed = [int(m[1]) for m in re.finditer(r"^\s*patch (\d+) \(", out, re.M)]
    assert attributed and set(attributed) == {2}, out[-3000:]
    verdict = out[out.index("watchbench ci: "):]
    assert "kernel-post" in verdict and "case=free" in verdict
    assert "keyctl-post" in verdict
    assert "case=none" not in verdict and "pipe-read" not in verdict
    assert "_per_s" not in verdict  # only primary metrics are gated
    # where it went: the slow commit's loop, per function
    assert "watch_queue_extra_work" in out[out.index("where the instructions"):]
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert "REGRESSED" in summary.splitlines()[0] and "`watch_queue_extra_work +" in summary
    suite = ET.parse(tmp_path / "reports" / "junit.xml").getroot()
    assert int(suite.get("failures") or suite[0].get("failures")) >= 2
    assert (tmp_path / "reports" / "index.html").exists()

    # A cold line read on every post: a few instructions and one cache miss more. The
    # default gate (icount, the cache model's estimate gated too) fails it on the estimate
    # alone, and names the function that takes the misses.
    missed = wb(installed, side_clone, side_settings, "ci", "--base", BASE_TAG, "--series",
                str(PATCHES / "cache-miss-post"), "--out", str(tmp_path / "miss"))
    out = missed.stdout
    assert missed.returncode == 1, out[-3000:] + missed.stderr[-3000:]
    assert state(git) == before
    verdict = " ".join(out[out.index("watchbench ci: "):].split())
    assert "with the cache model's est_cycles_per_op (a model)" in verdict, verdict
    rows = re.findall(r"([\w-]+) (case=[^:]*?) (\w+): regressed", verdict)
    # the estimate regressed; no measured metric (instruction counts under icount) did
    assert {metric for _, _, metric in rows} == {"est_cycles_per_op"}, verdict
    assert ("kernel-post", FREE, "est_cycles_per_op") in rows, verdict
    went = " ".join(out[out.index("where the instructions and misses went"):
                        out.index("report: ")].split())
    assert re.search(r"__post_watch_notification \+\d+ est\. cycles/op; misses/op "
                     r"L1 \+[\d.]+, LL \+[\d.]+", went), went
    assert "`__post_watch_notification +" in (tmp_path / "miss" / "summary.md").read_text()

    git("am", "-q", "--committer-date-is-author-date", str(HELPER))
    before = state(git)
    since = time.time() - 1  # the runs' start times have whole seconds
    found = wb(installed, side_clone, side_settings, "bisect", BASE_TAG, "HEAD", "kernel-post",
               "--metric", "ns_per_record", "--params", FREE, "--rounds", "2",
               "--accel", "icount", "--jobs", "2")
    assert found.returncode == 0, found.stdout[-3000:] + found.stderr[-3000:]
    assert "2 boots at once" in found.stderr
    # each commit's two boots started together (one after the other: about 7 s apart)
    started: dict[str, list[float]] = {}
    for path in side_settings.runs_dir.glob("*/manifest.json"):
        manifest = json.loads(path.read_text())
        when = datetime.fromisoformat(manifest["timestamp"]).timestamp()
        if manifest["label"].startswith("bisect ") and when >= since:
            started.setdefault(manifest["label"], []).append(when)
    assert len(started) >= 3 and all(len(t) == 2 and abs(t[0] - t[1]) <= 2
                                     for t in started.values()), started
    assert f"first bad commit: {slow}" in found.stdout, found.stdout[-2000:]
    steps = {line[:12]: line.split()[1] for line in found.stdout.splitlines()
             if re.match(r"[0-9a-f]{12} (good|bad) ", line)}
    assert steps and steps.get(slow[:12]) in (None, "bad"), found.stdout[-2000:]
    assert all(verdict == ("bad" if commit == slow[:12] else "good")
               for commit, verdict in steps.items() if commit != git.head()[:12]), steps
    assert state(git) == before
    assert "bisect" not in side_tree.git().out("status")
