"""allnoconfig's cache key: it moves with what Kconfig reads and nothing else, and a tree
whose Kconfig inputs have uncommitted changes is never cached."""

from __future__ import annotations

import pytest

from watchbench.host.git import Git
from watchbench.host.runner import default_runner
from watchbench.kernel import kconfig_cache
from watchbench.kernel.trees import Tree, TreeKind


@pytest.fixture
def tree(tmp_path) -> Tree:
    src = tmp_path / "tree" / "src"
    (src / "kernel").mkdir(parents=True)
    (src / "scripts").mkdir()
    git = Git(src)
    git("init", "-q")
    (src / "Kconfig").write_text('source "kernel/Kconfig.hz"\n')
    (src / "kernel" / "Kconfig.hz").write_text("config HZ\n\tint\n")
    (src / "kernel" / "watch_queue.c").write_text("int x;\n")
    (src / "scripts" / "cc-version.sh").write_text("echo gcc\n")
    (src / "Makefile").write_text("VERSION = 6\n")
    git("add", ".")
    git("commit", "-q", "-m", "base")
    return Tree("t", src.parent, TreeKind.USER, str(src), git.head(), "base")


def _commit(tree: Tree, path: str, text: str) -> None:
    (tree.src / path).write_text(text)
    tree.git()("commit", "-q", "-am", f"change {path}")


def key(tree: Tree, requested: str = "CONFIG_WATCH_QUEUE=y\n") -> str | None:
    return kconfig_cache.cache_key(tree, requested, default_runner)


def test_a_change_to_a_c_file_keeps_the_key(tree):
    before = key(tree)
    _commit(tree, "kernel/watch_queue.c", "int y;\n")
    assert before is not None and key(tree) == before


@pytest.mark.parametrize("path", ["kernel/Kconfig.hz", "scripts/cc-version.sh", "Makefile"])
def test_a_change_to_what_kconfig_reads_moves_the_key(tree, path):
    before = key(tree)
    _commit(tree, path, "changed\n")
    assert key(tree) != before


def test_the_requested_fragment_is_in_the_key(tree):
    assert key(tree) != key(tree, "CONFIG_WATCH_QUEUE=y\nCONFIG_DEBUG_FS=y\n")


def test_uncommitted_kconfig_changes_are_never_cached(tree, tmp_path):
    (tree.src / "kernel" / "Kconfig.hz").write_text("config HZ\n\tint\n\tdefault 100\n")
    assert key(tree) is None
    kconfig_cache.remember(tmp_path, None, "CONFIG_X=y\n")
    assert kconfig_cache.cached(tmp_path, None) is None and not (tmp_path / "kconfig").exists()


def test_what_is_remembered_is_found_by_its_key(tmp_path):
    assert kconfig_cache.cached(tmp_path, "k1") is None
    kconfig_cache.remember(tmp_path, "k1", "CONFIG_X=y\n")
    assert kconfig_cache.cached(tmp_path, "k1") == "CONFIG_X=y\n"


def test_a_config_is_remembered_through_a_shared_directory_removed_meanwhile(tmp_path):
    """A cache whose kconfig/ is a symlink to another cache's (as the test suite's side
    cache links to the test cache's), a directory removed meanwhile: the config is
    remembered there."""
    shared, mine = tmp_path / "shared", tmp_path / "mine"
    mine.mkdir()
    (mine / "kconfig").symlink_to(shared / "kconfig")  # dangling
    kconfig_cache.remember(mine, "k1", "CONFIG_X=y\n")
    assert (shared / "kconfig" / "k1.config").read_text() == "CONFIG_X=y\n"
