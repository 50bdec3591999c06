"""`inv bisect` for real: a tree whose middle commit slows the post path (icount). Our
bench series goes on every step, so the in-kernel benchmark is what is bisected, and every
step builds incrementally in the bench kernel's configuration. The commits are made on the
side worktree of the test tree (tests/conftest.py; its bench build directory makes each
step a few compiles);
a user's own checkout is reached through a worktree the same way (test_tree_integration.py
proves that checkout is left untouched)."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchbench.flows.bisect import run_bisect
from watchbench.host.progress import Silent
from watchbench.kernel import patching
from watchbench.kernel.trees import set_active

pytestmark = pytest.mark.kernel
PATCHES = Path(__file__).resolve().parents[1] / "data" / "patches"
FREE = "case=free, filter=none, len=16, queue_size=256, queues=1, subtype=7"


def test_bisect_names_the_commit_that_slowed_kernel_post(side_tree, side_settings):
    tree = patching.reset(side_tree, force=True)
    git = tree.git()
    good = git.head()
    for patch in (PATCHES / "two-patch" / "0001-watch_queue-note-the-documentation-in-the-header-com.patch",
                  sorted((PATCHES / "slow-post").glob("0002-*.patch"))[0],
                  PATCHES / "two-patch" / "0002-watch_queue-add-a-helper-that-counts-note-slots.patch"):
        git("am", "-q", "--committer-date-is-author-date", str(patch))
    culprit, bad = git.rev("HEAD~1"), git.head()
    set_active(side_settings, tree)
    try:
        first, steps = run_bisect(side_settings, good, bad, "kernel-post", "ns_per_record",
                                  FREE, rounds=2, accel="icount", progress=Silent())
        assert first == culprit
        assert {s.verdict for s in steps} <= {"good", "bad"} and steps
        for step in steps:
            assert step.verdict == ("bad" if step.commit == culprit else step.verdict)
        assert git.head() == bad, "bisect must leave the tree where it was"
        assert "bisect" not in git.out("status")
    finally:
        patching.reset(side_tree, force=True)
