"""Fetch, patch and configure the real Debian 6.12 kernel tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchbench.errors import ConfigError, PatchError
from watchbench.kernel import patching
from watchbench.kernel.configure import configure
from watchbench.kernel.series import load_series
from watchbench.kernel.trees import BASE_TAG, Tree

DATA = Path(__file__).resolve().parents[1] / "data"

pytestmark = pytest.mark.kernel
SERIES = DATA / "patches"


def test_fetch_gives_a_tagged_clean_baseline(debian_tree):
    git = debian_tree.git()
    assert git.rev(BASE_TAG) == debian_tree.base == git.head()
    assert git.dirty() == []
    assert (debian_tree.src / "kernel" / "watch_queue.c").exists()
    assert git.out("config", "gc.auto") == "0"
    # Debian's .gitignore ignores everything; the files must be tracked anyway.
    assert int(git.out("ls-files", "--", "kernel/watch_queue.c", "Makefile").count("\n")) == 1
    assert Tree.load(debian_tree.root).base == debian_tree.base


def test_apply_real_two_patch_series(clean_tree):
    series = load_series(SERIES, "two-patch")
    checks = patching.check(clean_tree, series)
    assert [c.ok for c in checks] == [True, True]
    tree = patching.apply(clean_tree, series)
    git = tree.git()
    assert git.out("rev-list", "--count", f"{tree.base}..HEAD") == "2"
    assert "watch_queue_slots" in (tree.src / "kernel/watch_queue.c").read_text()
    assert tree.series == "two-patch" and tree.series_hash == series.hash
    assert git.dirty() == []
    # Same series on the same base gives the same commit ids (build keys stay stable).
    first = tree.applied_head
    again = patching.apply(patching.reset(tree), series)
    assert again.applied_head == first


@pytest.mark.parametrize("precheck", [True, False], ids=["precheck", "git-am-rollback"])
def test_conflicting_series_leaves_tree_clean_at_prior_commit(clean_tree, precheck):
    prior_series = load_series(SERIES, "two-patch")
    tree = patching.apply(clean_tree, prior_series)
    prior = tree.git().head()
    series = load_series(SERIES, "conflicting")
    with pytest.raises(PatchError) as err:
        patching.apply(tree, series, precheck=precheck)
    message = str(err.value)
    assert "0002-watch_queue-add-a-module-licence-line" in message
    assert "kernel/watch_queue.c" in message
    if precheck:
        assert "hunk #1" in message and "the tree was not touched" in message
    git = tree.git()
    assert git.head() == prior
    assert git.dirty() == []
    assert not (tree.src / ".git" / "rebase-apply").exists()
    assert "watch_queue_slots" in (tree.src / "kernel/watch_queue.c").read_text()


def test_check_names_failing_patch_file_and_hunk(clean_tree):
    results = patching.check(clean_tree, load_series(SERIES, "conflicting"))
    assert [r.ok for r in results] == [True, False]
    assert (results[1].file, results[1].hunk) == ("kernel/watch_queue.c", 1)
    assert clean_tree.git().head() == clean_tree.base


def test_default_fragments_survive(debian_tree, test_settings):
    result = configure(debian_tree, test_settings, list(test_settings.fragments))
    text = result.dotconfig.read_text()
    for line in ("CONFIG_WATCH_QUEUE=y", "CONFIG_KEY_NOTIFICATIONS=y", "CONFIG_ACPI=y",
                 "CONFIG_SLUB=y", "CONFIG_CC_OPTIMIZE_FOR_PERFORMANCE=y", "CONFIG_9P_FS=y"):
        assert line in text
    # EXPERT trims what a serial-console guest never uses, and nothing the benchmarks shape.
    for line in ("# CONFIG_BLOCK is not set", "# CONFIG_IO_URING is not set", "# CONFIG_VT is not set"):
        assert line in text
    for line in ("CONFIG_KALLSYMS=y", "CONFIG_BUG=y", "CONFIG_SLUB_DEBUG=y", "CONFIG_RSEQ=y",
                 "CONFIG_RANDOMIZE_KSTACK_OFFSET=y", "CONFIG_X86_PM_TIMER=y"):
        assert line in text
    assert debian_tree.config_hash == result.hash


def test_debug_fragment_survives(debian_tree, test_settings):
    result = configure(debian_tree, test_settings, ["base", "watch_queue", "debug"])
    assert "CONFIG_KASAN=y" in result.dotconfig.read_text()


def test_dropped_option_fails_naming_dependency(debian_tree, test_settings, tmp_path):
    fragment = tmp_path / "notify-only.config"
    fragment.write_text("CONFIG_KEYS=y\nCONFIG_KEY_NOTIFICATIONS=y\n")
    with pytest.raises(ConfigError) as err:
        configure(debian_tree, test_settings, ["base", str(fragment)])
    message = str(err.value)
    assert "CONFIG_KEY_NOTIFICATIONS=y" in message and f"{fragment}:2" in message
    assert "WATCH_QUEUE=n" in message and "security/keys/Kconfig" in message


