"""`inv bisect` for real: a user tree whose middle commit slows the post path (icount).
Our bench series goes on every step, so the in-kernel benchmark is what is bisected, and
every step builds in the bench kernel's configuration (a few compiles each)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from watchbench.flows.bisect import run_bisect
from watchbench.host.git import Git
from watchbench.host.progress import Silent
from watchbench.kernel.trees import fetch_user, set_active

pytestmark = pytest.mark.kernel
PATCHES = Path(__file__).resolve().parents[1] / "data" / "patches"
FREE = "case=free, filter=none, len=16, queue_size=256, queues=1, subtype=7"


def test_bisect_names_the_commit_that_slowed_kernel_post(debian_tree, test_settings, tmp_path,
                                                         bench_kernel):
    user = tmp_path / "linux"
    git = Git(tmp_path)
    git.runner.run(["git", "clone", "-q", "--shared", str(debian_tree.src), str(user)])
    ug = Git(user)
    ug("config", "core.hooksPath", "/dev/null")
    good = ug.head()
    for patch in (PATCHES / "two-patch" / "0001-watch_queue-note-the-documentation-in-the-header-com.patch",
                  sorted((PATCHES / "slow-post").glob("0002-*.patch"))[0],
                  PATCHES / "two-patch" / "0002-watch_queue-add-a-helper-that-counts-note-slots.patch"):
        ug("am", "-q", str(patch))
    culprit = ug.rev("HEAD~1")
    tree = fetch_user(test_settings, user, "HEAD")
    set_active(test_settings, tree)
    try:
        first, steps = run_bisect(test_settings, good, "HEAD", "kernel-post", "ns_per_record",
                                  FREE, rounds=2, accel="icount", progress=Silent())
        assert first == culprit
        assert {s.verdict for s in steps} <= {"good", "bad"} and steps
        for step in steps:
            assert step.verdict == ("bad" if step.commit == culprit else step.verdict)
        assert tree.git().head() == ug.head(), "bisect must leave the worktree where it was"
        assert "bisect" not in tree.git().out("status")
    finally:
        set_active(test_settings, debian_tree)
        shutil.rmtree(tree.root, ignore_errors=True)
        ug("worktree", "prune")
