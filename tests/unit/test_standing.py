"""Where a command stands (cli/standing.py, kernel/checkout.py), on real git repositories
shaped like a kernel checkout (a top-level Kconfig and kernel/): the branch's commits
become a series under the cache, uncommitted changes are refused or become one last
patch, bad refs are refused by name, and the checkout is only ever read. The kernel tier
proves the whole flow with an installed wb (tests/integration/test_your_branch.py)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from watchbench.cli.standing import Place, bisect_place, gate_place, head_place
from watchbench.errors import InputError
from watchbench.kernel.checkout import standing_in
from watchbench.kernel.series import load_many
from watchbench.settings import Settings


def git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.org",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.org",
           "PATH": "/usr/bin:/bin", "HOME": str(root)}
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def commit(root: Path, name: str, text: str, subject: str) -> str:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
    git(root, "add", name)
    git(root, "commit", "-q", "-m", subject)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def linux(tmp_path) -> Path:
    """A kernel-shaped checkout: base (tagged v1), then a branch ``my-fix`` of two commits."""
    root = tmp_path / "linux"
    root.mkdir()
    git(root, "init", "-q", "-b", "master")
    (root / "Kconfig").write_text("mainmenu \"Linux\"\n")
    commit(root, "kernel/watch_queue.c", "int a;\n", "base")
    git(root, "tag", "v1")
    git(root, "checkout", "-q", "-b", "my-fix")
    commit(root, "kernel/watch_queue.c", "int a;\nint b;\n", "watch_queue: add b")
    commit(root, "kernel/watch_queue.c", "int a;\nint b;\nint c;\n", "watch_queue: add c")
    return root


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", runs_dir=tmp_path / "data" / "runs")


def state(root: Path) -> tuple[str, ...]:
    """What the developer would see changed: HEAD, branch, status, stash, index."""
    return (git(root, "rev-parse", "HEAD"), git(root, "branch", "--show-current"),
            git(root, "status", "--porcelain", "--untracked-files=all"),
            git(root, "stash", "list"), (root / ".git" / "index").read_bytes().hex())


def test_a_kernel_checkout_is_found_from_any_directory_inside_it(linux, tmp_path):
    found = standing_in(linux / "kernel")
    assert found is not None and found.root == linux and found.branch == "my-fix"
    assert found.head == git(linux, "rev-parse", "HEAD") and found.changed == ()
    assert standing_in(tmp_path) is None  # not a git checkout
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    commit(other, "README", "x\n", "a repository that is no kernel")
    assert standing_in(other) is None


def test_base_gates_the_branch_commits_as_a_series_and_reads_only(linux, settings):
    before = state(linux)
    place = gate_place(settings, tree=None, base="v1", series="", uncommitted=False, cwd=linux)
    assert place.tree == str(linux) and place.base == "v1" and place.here
    series = load_many(settings.series_dirs, place.series)
    assert [p.subject for p in series.patches] == ["[PATCH 1/2] watch_queue: add b",
                                                   "[PATCH 2/2] watch_queue: add c"]
    assert Path(place.series).is_relative_to(settings.cache_dir / "branches")
    assert Path(place.series).name == "my-fix"
    commits = git(linux, "log", "--reverse", "--format=%h", "v1..HEAD").split()
    text = "\n".join(place.lines)
    assert "gating 2 commit(s) v1..HEAD" in text and str(linux) in text
    full = git(linux, "rev-parse", commits[0])
    assert f"patch 1  {full[:12]} watch_queue: add b" in text
    assert all(len(line) <= 79 or len(line.split()) == 1 for line in place.lines)
    again = gate_place(settings, tree=None, base="v1", series="", uncommitted=False, cwd=linux)
    assert again.series == place.series  # keyed by what it holds: written once
    assert state(linux) == before


def test_uncommitted_changes_are_refused_or_become_the_last_patch(linux, settings):
    (linux / "kernel" / "watch_queue.c").write_text("int a;\nint b;\nint c;\nint d;\n")
    before = state(linux)
    with pytest.raises(InputError) as refused:
        gate_place(settings, tree=None, base="v1", series="", uncommitted=False, cwd=linux)
    assert "uncommitted changes (kernel/watch_queue.c)" in refused.value.message
    assert "--uncommitted" in refused.value.hint and "git commit -a" in refused.value.hint
    place = gate_place(settings, tree=None, base="v1", series="", uncommitted=True, cwd=linux)
    patches = load_many(settings.series_dirs, place.series).patches
    assert len(patches) == 3 and patches[-1].subject.startswith("[PATCH] uncommitted changes in ")
    assert "+int d;" in patches[-1].path.read_text()
    assert place.lines[-1].strip() == "patch 3  your uncommitted changes"
    head = head_place(settings, "bench", uncommitted=True, cwd=linux)
    assert head.base == git(linux, "rev-parse", "HEAD")
    assert [p.subject for p in load_many(settings.series_dirs, head.series).patches] == [
        f"[PATCH] uncommitted changes in {linux}"]
    with pytest.raises(InputError, match="`./wb check` measures commits"):
        head_place(settings, "check", uncommitted=False, cwd=linux)
    assert state(linux) == before


@pytest.mark.parametrize(("base", "needle"), [
    ("v9", "--base 'v9' does not name a commit in"),
    ("HEAD", "HEAD..HEAD holds no commit: nothing to gate"),
    ("side", "is not an ancestor of HEAD"),
    ("--all", "--base '--all' does not name a commit"),
])
def test_a_base_that_cannot_be_gated_is_refused_by_name(linux, settings, base, needle):
    git(linux, "branch", "side", "v1")
    commit(linux, "kernel/other.c", "x\n", "on my-fix")
    git(linux, "checkout", "-q", "side")
    commit(linux, "kernel/other.c", "y\n", "on side")
    git(linux, "checkout", "-q", "my-fix")
    with pytest.raises(InputError) as refused:
        gate_place(settings, tree=None, base=base, series="", uncommitted=False, cwd=linux)
    assert needle.replace("HEAD..", f"{base}..") in refused.value.message or \
        needle in refused.value.message, refused.value.message
    assert "./wb " in refused.value.hint or "wb ci" in refused.value.hint


def test_merges_in_the_range_are_refused(linux, settings):
    git(linux, "checkout", "-q", "-b", "topic", "v1")
    commit(linux, "kernel/topic.c", "t\n", "topic")
    git(linux, "checkout", "-q", "my-fix")
    git(linux, "merge", "-q", "--no-edit", "topic")
    with pytest.raises(InputError, match="merge commit"):
        gate_place(settings, tree=None, base="v1", series="", uncommitted=False, cwd=linux)


def test_outside_a_checkout_the_default_stays_and_base_is_refused(tmp_path, settings):
    assert gate_place(settings, tree=None, base=None, series="x", uncommitted=False,
                      cwd=tmp_path).tree is None
    with pytest.raises(InputError) as refused:
        gate_place(settings, tree=None, base="v6.12", series="", uncommitted=False,
                   cwd=tmp_path)
    assert "is not inside one" in refused.value.message and "cd ~/linux" in refused.value.hint
    with pytest.raises(InputError, match="--uncommitted"):
        head_place(settings, "bench", uncommitted=True, cwd=tmp_path)
    assert head_place(settings, "check", tree="/t", base="v1", uncommitted=False,
                      cwd=tmp_path).base == "v1"
    assert bisect_place(good="v1", bad="v2", cwd=tmp_path) == (Place(), "v1", "v2")


def test_without_base_ci_measures_head_and_reports_stay_out_of_the_checkout(linux, settings):
    place = gate_place(settings, tree=None, base=None, series="", uncommitted=False, cwd=linux)
    assert (place.tree, place.base, place.series) == (
        str(linux), git(linux, "rev-parse", "HEAD"), "")
    # every command's settings (cli.settings_of): a relative reports dir leaves the tree
    moved = settings.outside_checkout(linux / "kernel")
    assert not moved.reports_dir.is_relative_to(linux)
    assert moved.reports_dir.parent == settings.runs_dir.parent / "reports"
    assert moved.reports_dir.name.startswith("linux-")
    other = replace(settings, reports_dir=Path("out")).outside_checkout(linux)
    assert other.reports_dir == moved.reports_dir / "out"
    assert settings.outside_checkout(linux.parent) == settings  # not in a checkout
    # HEAD and branches are the checkout's, not the worktree's: resolved here
    place, good, bad = bisect_place(good="v1", bad="HEAD", cwd=linux)
    assert place.tree == str(linux) and place.base == good
    assert (good, bad) == (git(linux, "rev-parse", "v1"), git(linux, "rev-parse", "HEAD"))
    with pytest.raises(InputError, match="GOOD 'nope'"):
        bisect_place(good="nope", bad="HEAD", cwd=linux)
    with pytest.raises(InputError, match="BAD 'nope'"):
        bisect_place(good="v1", bad="nope", cwd=linux)


def test_a_worktree_of_a_sparse_checkout_is_whole_and_the_checkout_untouched(linux, settings):
    """git copies sparse patterns into a new worktree; the kernel builds from all of it."""
    from watchbench.kernel.trees import fetch_user

    commit(linux, "drivers/x.c", "x\n", "a file outside the sparse cone")
    git(linux, "sparse-checkout", "set", "kernel")
    assert not (linux / "drivers").exists()
    config = (linux / ".git" / "config").read_text()
    before = state(linux)
    tree = fetch_user(settings, linux, "HEAD")
    assert (tree.src / "drivers" / "x.c").read_text() == "x\n"
    assert (tree.src / "kernel" / "watch_queue.c").exists()
    git(tree.src, "checkout", "-q", "--detach", "v1")  # and stays whole when it moves
    git(tree.src, "checkout", "-q", "--detach", "my-fix")
    assert (tree.src / "drivers" / "x.c").exists()
    assert state(linux) == before and (linux / ".git" / "config").read_text() == config
    assert not (linux / "drivers").exists()


def test_the_checkout_index_is_not_rewritten_by_a_look_at_it(linux, settings):
    """git status refreshes a stale index and writes it back: not in the user's tree."""
    os.utime(linux / "kernel" / "watch_queue.c", (1, 1))  # the index's stat data is stale
    index = linux / ".git" / "index"
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    gate_place(settings, tree=None, base="v1", series="", uncommitted=False, cwd=linux)
    head_place(settings, "bench", uncommitted=False, cwd=linux)
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before


def test_uncommitted_changes_survive_the_users_diff_configuration(linux, settings):
    """An external diff, textconv or other prefixes would drop or mangle the patch."""
    git(linux, "config", "diff.external", "/bin/true")
    git(linux, "config", "diff.noprefix", "true")
    (linux / "kernel" / "watch_queue.c").write_text("int a;\nint b;\nint c;\nint e;\n")
    place = gate_place(settings, tree=None, base="v1", series="", uncommitted=True, cwd=linux)
    patches = load_many(settings.series_dirs, place.series).patches
    assert len(patches) == 3 and "+int e;" in patches[-1].path.read_text()
    assert all("a/kernel/watch_queue.c" in p.path.read_text() for p in patches)


def test_uncommitted_on_a_clean_checkout_is_refused(linux, settings):
    with pytest.raises(InputError, match="no uncommitted change") as refused:
        gate_place(settings, tree=None, base="v1", series="", uncommitted=True, cwd=linux)
    assert "./wb ci --base v1" in refused.value.hint
    with pytest.raises(InputError, match="no uncommitted change"):
        head_place(settings, "check", uncommitted=True, cwd=linux)


def test_sparse_checkout_in_the_shared_config_is_refused_before_a_worktree_is_added(
        linux, settings):
    from watchbench.errors import TreeError
    from watchbench.kernel.trees import fetch_user

    git(linux, "config", "core.sparseCheckout", "true")  # the old, shared way
    listed = git(linux, "worktree", "list", "--porcelain")
    with pytest.raises(TreeError, match="sparse checkout on in its shared config"):
        fetch_user(settings, linux, "HEAD")
    assert git(linux, "worktree", "list", "--porcelain") == listed


def test_the_commands_hand_the_flows_your_checkout_and_keep_reports_out_of_it(
        linux, settings, monkeypatch):
    """`wb ci --base`, `check`, `all`, `bench`, `build` and `vm.run` run in the checkout,
    through invoke's Program in this process, with the flows replaced by recorders: what
    each is given. `kernel.status` there shows the checkout, and no worktree yet."""
    from tests.unit.test_runs_gc import wb
    from watchbench.cli import correctness, kernel, measure, regressions, vm

    seen: dict[str, tuple] = {}

    def gate(settings, options, check=None, **_):
        seen["ci"] = (options.tree, options.base, options.series, options.out,
                      settings.reports_dir)
        return 0

    def run_check(settings, options, progress=None, **_):
        seen["check"] = (options.tree, options.base, options.series, settings.reports_dir)

    def run_all(settings, series, fragments, suite, accel, tree, base, tarball, progress):
        seen["all"] = (tree, base, series, settings.reports_dir)
        raise SystemExit(0)

    def built(task):
        def built_here(settings, place, progress, force=False):
            seen[task] = (place.tree, place.base, place.series, force)
            raise SystemExit(0)
        return built_here

    monkeypatch.setattr(regressions, "gate", gate)
    monkeypatch.setattr(correctness, "report_check", lambda flow, progress=None: flow(None) or 0)
    monkeypatch.setattr(correctness, "run_check", run_check)
    monkeypatch.setattr(measure, "run_all", run_all)
    for module, task in ((measure, "bench"), (kernel, "build"), (vm, "vm.run")):
        monkeypatch.setattr(module, "built_here", built(task))
    monkeypatch.chdir(linux / "kernel")
    head = git(linux, "rev-parse", "HEAD")
    for argv in (["ci", "--base", "v1"], ["check"], ["all"], ["bench"], ["build", "--force"],
                 ["vm.run", "--", "true"]):
        code, out = wb(settings, *argv)
        assert code == 0, out
    tree, base, series, out_dir, reports = seen["ci"]
    assert (tree, base) == (str(linux), "v1") and Path(series).name == "my-fix"
    assert not Path(out_dir).is_relative_to(linux) and not reports.is_relative_to(linux)
    assert seen["check"][:3] == (str(linux), head, "")
    assert seen["all"][:3] == (str(linux), head, None)
    assert seen["bench"] == (str(linux), head, "", False)
    assert seen["build"] == (str(linux), head, "", True)
    assert seen["vm.run"] == (str(linux), head, "", False)
    code, out = wb(settings, "kernel.status")  # a long path wraps at 80 columns
    assert code == 0 and " ".join(out.split()).startswith(
        f"checkout: {linux} branch: my-fix at {head[:12]} state: clean "
        "worktree: none yet (./wb build here makes it)"), out
    assert not seen["check"][3].is_relative_to(linux)
    assert not seen["all"][3].is_relative_to(linux)


def test_a_worktree_takes_a_series_while_your_edits_stash_and_index_stay(linux, settings):
    """What the kernel tier's old user-worktree test proved, on a small real repository:
    your unstaged edit, your stash and your staged change survive a worktree of your
    checkout taking a series (the real kernel's worktree: test_your_branch.py)."""
    from watchbench.kernel import patching
    from watchbench.kernel.trees import fetch_user

    series = load_many(settings.series_dirs, gate_place(
        settings, tree=None, base="v1", series="", uncommitted=False, cwd=linux).series)
    (linux / "Kconfig").write_text("mainmenu \"local edit\"\n")  # unstaged
    (linux / "kernel" / "watch_queue.c").write_text("stashed\n")
    git(linux, "stash", "push", "-q", "--", "kernel/watch_queue.c")
    (linux / "kernel" / "new.c").write_text("staged\n")
    git(linux, "add", "kernel/new.c")
    before = state(linux) + (git(linux, "diff", "--cached"),)
    tree = fetch_user(settings, linux, "v1")
    assert tree.src != linux and tree.git().head() == git(linux, "rev-parse", "v1")
    tree = patching.apply(tree, series)
    assert tree.git().out("rev-list", "--count", f"{tree.base}..HEAD") == "2"
    assert (tree.src / "kernel" / "watch_queue.c").read_text() == "int a;\nint b;\nint c;\n"
    assert state(linux) + (git(linux, "diff", "--cached"),) == before
    assert (linux / "Kconfig").read_text() == "mainmenu \"local edit\"\n"
    # kernel.status there: the checkout with its changes, then the worktree's own lines
    from watchbench.cli.kernel import checkout_lines

    lines = checkout_lines(settings, standing_in(linux))
    assert lines[2] == "state:    1 uncommitted file(s): kernel/new.c"  # Kconfig: untracked
    assert lines[3] == f"worktree: {tree.root}"
    assert lines[4].startswith(f"  tree:    {tree.id} (") and "series:  my-fix" in lines[7]
