"""A command killed while it changes a tree leaves a journal; the next holder of the tree's
lock puts the tree back (kernel.journal). Real processes, real git, killed at real points:
git am is held inside a hook (through git's own GIT_CONFIG_* environment) while the
process that runs it is sent SIGKILL or SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from tests.fakes import Steps
from tests.interrupting import GitHold, git_hold, mini_series, mini_tarball
from watchbench.host.git import Git
from watchbench.kernel import journal, patching, trees
from watchbench.kernel.series import load_many
from watchbench.kernel.trees import Tree, fetch_tarball
from watchbench.settings import Settings


@pytest.fixture
def mini(tmp_path) -> tuple[Settings, Tree, Path]:
    """A tree made from a tarball by watchbench itself, and a three-patch series for it."""
    settings = replace(Settings(), cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")
    tree = fetch_tarball(settings, mini_tarball(tmp_path / "mini.tar.gz"))
    patches = mini_series(tree.src, tmp_path / "patches" / "three")
    return settings, tree, patches.parent


def _held_in_git_am(tmp_path: Path, script: str, *args: str) -> tuple[subprocess.Popen, GitHold]:
    """Start ``script`` in a Python of its own, with git am held in patch 2."""
    hold = git_hold(tmp_path, "applypatch-msg")
    proc = subprocess.Popen([sys.executable, "-c", script, *args], env={**os.environ, **hold.env},
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not hold.held:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"git am was never held: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    return proc, hold


def _state(tree: Tree) -> tuple[str, str]:
    return tree.git().head(), (tree.root / "tree.json").read_text()


APPLY = """
import sys
from pathlib import Path
from watchbench.kernel import patching, trees
from watchbench.kernel.series import load_many
from watchbench.kernel.trees import Tree
tree = Tree.load(Path(sys.argv[1]))
with trees.lock(tree):
    patching.apply(tree, load_many(Path(sys.argv[2]), "three"))
"""


def _rebase_apply(tree: Tree) -> Path:
    return tree.src / ".git" / "rebase-apply"


def test_sigkill_mid_git_am_is_put_back_by_the_next_holder(mini, tmp_path):
    settings, tree, patches = mini
    before = _state(tree)
    proc, hold = _held_in_git_am(tmp_path, APPLY, str(tree.root), str(patches))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    hold.release()  # the hook's sleep is git's child, not ours
    assert _rebase_apply(tree).is_dir(), "the kill did not land mid git am"
    assert journal.pending(tree.root) is not None
    assert tree.git().head() != before[0]  # patch 1 is committed: the tree is mid-series

    steps = Steps()
    with trees.lock(tree, progress=steps):
        assert _state(tree) == before
        assert not _rebase_apply(tree).exists() and journal.pending(tree.root) is None
    assert any("put back as it was before the interrupted apply of series three" in line
               for line in steps.lines), steps.lines

    with trees.lock(tree):  # and the same command then works
        patching.apply(tree, load_many(patches, "three"))
    assert Tree.load(tree.root).series == "three" and tree.git().dirty() == []


def test_sigint_mid_git_am_puts_the_tree_back_before_exiting(mini, tmp_path):
    settings, tree, patches = mini
    before = _state(tree)
    proc, _ = _held_in_git_am(tmp_path, APPLY, str(tree.root), str(patches))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert _state(tree) == before
    assert not _rebase_apply(tree).exists() and journal.pending(tree.root) is None


COMPOSER = """
import sys, time
from pathlib import Path
from dataclasses import replace
from watchbench.kernel import patching
from watchbench.kernel.series import load_many
from watchbench.kernel.trees import Tree
from watchbench.kernel.variant import Composer
from watchbench.settings import Settings
tree = Tree.load(Path(sys.argv[1]))
composer = Composer(replace(Settings(), cache_dir=Path(sys.argv[3])), tree, purpose="ci")
with composer.hold():
    patching.reset(tree)
    patching.apply(tree, load_many(Path(sys.argv[2]), "three"))
    open(sys.argv[4], "w").close()
    time.sleep(60)  # building and booting: the kill lands here
    composer.restore()
"""


def test_a_killed_flow_leaves_the_tree_as_the_flow_found_it(mini, tmp_path):
    """SIGKILL after a ci-like flow applied a variant and before it restored: the next
    holder puts back the user's own series, not the flow's variant."""
    settings, tree, patches = mini
    first = load_many(patches, "three").prefix(1)
    patching.apply(tree, first)
    before = _state(tree)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", COMPOSER, str(tree.root), str(patches),
                             str(settings.cache_dir), str(ready)])
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    assert Tree.load(tree.root).series == "three"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with trees.lock(tree):
        assert _state(tree) == before
    assert tree.series == first.name  # the caller's Tree object is refreshed too


def test_without_a_journal_the_lock_changes_nothing(mini):
    settings, tree, _ = mini
    (tree.src / "kernel" / "watch_queue.c").write_text("int edited;\n")  # the user's edit
    before = _state(tree)
    with trees.lock(tree):
        pass
    assert _state(tree) == before and Git(tree.src).dirty() == ["kernel/watch_queue.c"]


BISECT = """
import sys, time
from pathlib import Path
from dataclasses import replace
from watchbench.kernel.trees import Tree
from watchbench.kernel.variant import Composer
from watchbench.settings import Settings
tree = Tree.load(Path(sys.argv[1]))
composer = Composer(replace(Settings(), cache_dir=Path(sys.argv[2])), tree, purpose="bisect")
with composer.hold():
    tree.git()("bisect", "start", tree.applied_head, tree.base)
    open(sys.argv[3], "w").close()
    time.sleep(60)  # measuring the midpoint: the kill lands here
"""


def test_a_killed_bisect_is_reset_by_the_next_holder(mini, tmp_path):
    settings, tree, patches = mini
    patching.apply(tree, load_many(patches, "three"))
    before = _state(tree)
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", BISECT, str(tree.root),
                             str(settings.cache_dir), str(ready)])
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    assert (tree.src / ".git" / "BISECT_LOG").exists() and tree.git().head() != before[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with trees.lock(tree):
        assert _state(tree) == before
    assert not (tree.src / ".git" / "BISECT_LOG").exists()


DOWNLOAD = """
import sys
from dataclasses import replace
from pathlib import Path
from watchbench.kernel.trees import download_debian_source
from watchbench.settings import Settings
print(download_debian_source(replace(Settings(), cache_dir=Path(sys.argv[1]))))
"""
APT_GET = """#!/bin/sh
# apt-get download PKG=VER, as slow as a real one: half the file, then the rest
name=$(echo "$2" | sed 's/=/_/; s/:/%3a/')_all.deb
printf 'half a deb' > "$name"
[ -e "$WB_TEST_MARK/slow" ] && { touch "$WB_TEST_MARK/started"; exec sleep 60; }
printf ' and the rest' >> "$name"
"""


def test_a_download_cut_off_by_sigkill_is_never_taken_as_the_deb(tmp_path):
    bin_dir, mark, cache = tmp_path / "bin", tmp_path / "mark", tmp_path / "cache"
    bin_dir.mkdir()
    mark.mkdir()
    (bin_dir / "apt-get").write_text(APT_GET)
    (bin_dir / "apt-get").chmod(0o755)
    (mark / "slow").touch()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "WB_TEST_MARK": str(mark)}
    proc = subprocess.Popen([sys.executable, "-c", DOWNLOAD, str(cache)], env=env,
                            stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (mark / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert not list((cache / "downloads").glob("*.deb"))  # only the .partial-PID directory
    (mark / "slow").unlink()
    again = subprocess.run([sys.executable, "-c", DOWNLOAD, str(cache)], env=env,
                           capture_output=True, text=True, timeout=60, check=True)
    deb = Path(again.stdout.strip())
    assert deb.parent == cache / "downloads" and deb.read_text() == "half a deb and the rest"
    assert [p.name for p in (cache / "downloads").iterdir()] == [deb.name]  # partials cleared


def test_a_failed_build_of_edited_sources_keeps_the_edits(mini):
    """The journal puts back the commit and the state, never a user's uncommitted work."""
    from watchbench.kernel.variant import Composer

    settings, tree, _ = mini
    source = tree.src / "kernel" / "watch_queue.c"
    source.write_text("int edited;\n")
    with pytest.raises(RuntimeError), Composer(settings, tree).hold():
        raise RuntimeError("the build failed")
    assert source.read_text() == "int edited;\n" and journal.pending(tree.root) is None


def test_edits_made_while_a_build_runs_survive_its_ctrl_c(mini):
    """A build never moves the commit: what the user edited meanwhile is theirs and stays."""
    from watchbench.kernel.variant import Composer

    settings, tree, _ = mini
    source = tree.src / "kernel" / "watch_queue.c"
    with pytest.raises(KeyboardInterrupt), Composer(settings, tree).hold():
        source.write_text("int edited_during_the_build;\n")  # clean when the build began
        raise KeyboardInterrupt
    assert source.read_text() == "int edited_during_the_build;\n"


def test_a_stale_journal_of_a_dead_process_is_replayed_not_adopted(mini):
    settings, tree, patches = mini
    before = _state(tree)
    entry = journal.Entry("apply of series x", 2 ** 22 + 12345, "inv x", 0.0, before[0], True,
                          json.loads(before[1]))
    (tree.root / journal.JOURNAL).write_text(json.dumps(asdict(entry)))
    tree.git()("checkout", "-q", "--detach", "HEAD")  # nothing moved: a no-op to put back
    patching.apply(tree, load_many(patches, "three"))  # without the lock: replays, then owns
    assert journal.pending(tree.root) is None and Tree.load(tree.root).series == "three"
