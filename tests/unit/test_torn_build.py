"""A build killed outright leaves files half-written and newer than their inputs: the next
build removes what the killed one wrote, and only that (the real kill: the kernel tier's
test_build_interrupted_mid_link_then_builds_and_boots)."""

from __future__ import annotations

import os

from watchbench.kernel.build import BUILDING, clear_torn


def test_what_the_killed_build_wrote_goes_and_the_rest_stays(tmp_path):
    (tmp_path / "kernel").mkdir()
    old = tmp_path / "kernel" / "fork.o"
    old.write_text("whole")
    os.utime(old, (1_000, 1_000))
    (tmp_path / BUILDING).touch()
    os.utime(tmp_path / BUILDING, (2_000, 2_000))
    torn = tmp_path / "vmlinux.o"
    torn.write_text("")  # written after the build started (mtime now)
    (tmp_path / "link").symlink_to(old)
    assert clear_torn(tmp_path) == 1
    assert old.exists() and not torn.exists() and (tmp_path / "link").is_symlink()
    assert not (tmp_path / BUILDING).exists()


def test_a_build_that_finished_leaves_nothing_to_clear(tmp_path):
    (tmp_path / "vmlinux").write_text("whole")
    assert clear_torn(tmp_path) == 0 and (tmp_path / "vmlinux").exists()
