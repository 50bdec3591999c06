"""A build killed outright leaves files half-written and newer than their inputs: the next
build removes what the killed one wrote, and only that (the real kill: the kernel tier's
test_build_interrupted_mid_link_by_ctrl_c_then_killed_then_builds_and_boots); and a kernel
another command is building is waited for, not built twice."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from tests.fakes import FakeRunner, Steps
from watchbench.host.lock import Lock, LockBusy
from watchbench.host.runner import Completed
from watchbench.kernel.build import BUILDING, Kernel, build, build_key, clear_torn, kernels_dir
from watchbench.kernel.trees import Tree, TreeKind
from watchbench.settings import Settings

CTX = multiprocessing.get_context("fork")


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


class _Tree(FakeRunner):
    """git and gcc as build() asks them: a clean tree at HEAD, one compiler."""

    def run(self, argv, **kw):  # type: ignore[override]
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        out = {"rev-parse": "f" * 40, "--version": "gcc (Debian 12.2.0-14) 12.2.0"}
        return Completed(argv, 0, next((v for k, v in out.items() if k in argv), ""), "", 0.0)


def _built_by_the_other(path: str, artifact: str, kernel: Kernel, ready) -> None:
    with Lock(Path(path), "the build of kernel"):
        ready.set()
        time.sleep(1.0)  # building
        Path(artifact).mkdir(parents=True)
        (Path(artifact) / "bzImage").write_bytes(b"image")
        kernel.save()


def _building_elsewhere(tmp_path: Path) -> tuple[Settings, Tree, str, object]:
    """A configured tree, and a second process holding its kernel's key while it builds
    (it writes the artifact a second later)."""
    settings = Settings().scratch(tmp_path / "cache")
    tree = Tree("t", tmp_path / "tree", TreeKind.USER, "o", "b" * 40, "base",
                config_hash="c0ffee", config_head="f" * 40)
    key = build_key(tree, "f" * 40, "", "c0ffee", "gcc (Debian 12.2.0-14) 12.2.0")
    artifact = kernels_dir(settings) / key
    theirs = Kernel(key, artifact, "6.12.0", "other", tree.base, "base", "f" * 40, "", "",
                    "", "c0ffee", "gcc", 1.0, 1)
    ready = CTX.Event()
    child = CTX.Process(target=_built_by_the_other, args=(
        str(kernels_dir(settings) / f"{key}.lock"), str(artifact), theirs, ready))
    child.start()
    assert ready.wait(10)
    return settings, tree, key, child


def test_a_kernel_another_command_is_building_is_waited_for_and_taken(tmp_path):
    """Two trees composing the same kernel at once (a worktree each, two CI jobs on one
    cache): the second waits for the first's build of that key and takes it, no make
    of its own (the real race: the kernel tier's two workers on a cold cache)."""
    settings, tree, key, child = _building_elsewhere(tmp_path)
    runner, steps = _Tree(), Steps()
    kernel = build(settings, tree, runner, steps)
    child.join()
    assert kernel.key == key and kernel.tree_id == "other" and kernel.bzimage.read_bytes() == b"image"
    assert not any("make" in " ".join(call) for call in runner.calls), runner.calls
    assert any("built meanwhile by another command" in line for line in steps.lines), steps.lines
    assert any(line.startswith("waiting for the build of kernel") for line in steps.lines)


def test_no_wait_names_the_command_building_the_same_kernel(tmp_path):
    """`ci --no-wait` fails at once, naming the holder, rather than waiting for a whole
    build of the same kernel by another job."""
    settings, tree, key, child = _building_elsewhere(tmp_path)
    runner = _Tree()
    with pytest.raises(LockBusy, match=f"the build of kernel {key} is in use by pid {child.pid}"):
        build(settings, tree, runner, Steps(), wait=False)
    child.join()
    assert not any("make" in " ".join(call) for call in runner.calls)
