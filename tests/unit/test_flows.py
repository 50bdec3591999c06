"""The ci and bisect flows above argv: real decisions, real run directories and reports,
with the kernel side and the boots faked (tests/fakes.py). The same flows with real
kernels run in tests/integration/test_ci_integration.py and test_your_branch.py."""

from __future__ import annotations

import io
import json
import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import FakeBench, FakeKernels
from watchbench.cli.regressions import gate
from watchbench.errors import BuildError, InputError, PatchError
from watchbench.flows.bisect import classify, run_bisect
from watchbench.flows.ci import (
    EXIT_INFRA,
    EXIT_OK,
    EXIT_REGRESSED,
    EXIT_UNDECIDED,
    CiOptions,
    parse_rounds,
    run_ci,
    variants,
)
from watchbench.host.git import Git
from watchbench.host.progress import Progress, Silent
from watchbench.kernel.trees import Tree, TreeKind, set_active
from watchbench.report.text import attribute
from watchbench.results.schema import Role
from watchbench.settings import Judgement, Settings
from watchbench.stats.decision import Verdict

PATCHES = Path(__file__).resolve().parents[1] / "data" / "patches"
SLOW = str(PATCHES / "slow-post")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(Settings(), cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")


def _options(tmp_path: Path, series: str = "", **kw) -> CiOptions:
    """One boot at a time unless a test says otherwise, so the fakes are drawn in order."""
    return CiOptions(series=series, out=tmp_path / "reports", **{"jobs": 1, **kw})


def _slower(where: str, factor: float = 1.2):
    """A level function: kernel-post is ``factor`` slower on kernels whose series ends
    with ``where`` (the whole slow-post series: its second patch)."""
    return lambda kernel, bench: factor if bench == "kernel-post" and kernel.series.endswith(
        where) else 1.0


# --- the variants ------------------------------------------------------------------------


def test_an_a_a_run_measures_the_bench_kernel_twice(settings):
    out = variants(settings, "", per_patch=False)
    assert [v.role for v in out] == [Role.BASELINE, Role.CANDIDATE]
    assert out[0].series.name == out[1].series.name == settings.bench_series


def test_per_patch_variants_stack_each_prefix_on_the_bench_series(settings):
    out = variants(settings, SLOW, per_patch=True)
    assert [(v.role, v.patch_index) for v in out] == [
        (Role.BASELINE, 0), (Role.PATCH, 1), (Role.CANDIDATE, 2)]
    bench = len(out[0].series.patches)
    assert [len(v.series.patches) - bench for v in out] == [0, 1, 2]
    assert out[1].series.name == f"{settings.bench_series}+slow-post@1"
    assert out[2].series.name == f"{settings.bench_series}+slow-post"
    assert out[2].patch_subject == out[2].series.patches[-1].subject


def test_naming_the_bench_series_too_changes_nothing(settings):
    both = variants(settings, f"{settings.bench_series},{SLOW}", per_patch=True)
    assert [(v.role, v.patch_subject, v.series.name) for v in both] == [
        (v.role, v.patch_subject, v.series.name) for v in variants(settings, SLOW, per_patch=True)]


# --- run_ci: exit codes and what it leaves behind -----------------------------------------


def test_a_quiet_a_a_run_passes_and_records_abba_rounds(settings, tmp_path):
    kernels, bench = FakeKernels(tmp_path), FakeBench(seed=1)
    result = run_ci(settings, _options(tmp_path), kernels=kernels, bench=bench)
    assert result.exit_code == EXIT_OK and result.answer is Verdict.UNCHANGED
    assert result.rounds == 4 and kernels.restored == 1
    order = [(b["ci_round"], b["ci_role"]) for b in bench.boots]
    assert order[:4] == [(0, "baseline"), (0, "candidate"), (1, "candidate"), (1, "baseline")]
    manifest = json.loads((settings.runs_dir / bench.boots[0]["run_id"] / "manifest.json")
                          .read_text())
    assert manifest["schema_version"] == 1 and manifest["ci_id"] == result.ci_id
    assert result.summary.read_text().startswith("## watchbench: OK (exit 0)")


def test_a_slower_candidate_regresses_and_per_patch_names_its_patch(settings, tmp_path):
    bench = FakeBench(_slower("slow-post"), seed=2)
    result = run_ci(settings, _options(tmp_path, SLOW, per_patch=True),
                    kernels=FakeKernels(tmp_path), bench=bench)
    assert result.exit_code == EXIT_REGRESSED
    assert result.regressed == ["kernel-post case=free, queues=1 ns_per_record: regressed"]
    lines = attribute(result.per_patch, result.regressed)
    assert lines and lines[0].startswith("  patch 2 (")
    assert "kernel-post case=free, queues=1 ns_per_record regressed +20" in lines[0]
    assert not any(line.startswith("  patch 1 ") for line in lines)
    junit = ET.parse(result.junit).getroot()
    assert junit.find(".//failure").get("type") == "performance-regression"


def test_the_summary_is_a_job_summary_the_verdict_then_the_gated_metrics(settings, tmp_path):
    """summary.md as a CI job summary shows it: the verdict, the gated metrics, the
    display-only ones folded in <details>, where the instructions went, then the rest."""
    result = run_ci(settings, _options(tmp_path, SLOW), kernels=FakeKernels(tmp_path),
                    bench=FakeBench(_slower("slow-post"), seed=2))
    md = result.summary.read_text()
    assert md.splitlines()[0] == f"## watchbench: {result.line}"
    order = ["### Gated metrics", "<details>", "</details>", "### Where the instructions went",
             "## Headline", "`index.html` beside this file"]
    assert [md.index(mark) for mark in order] == sorted(md.index(mark) for mark in order)
    gated, folded = md.split("<details>", 1)
    folded = folded.split("</details>", 1)[0]

    def rows(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("| ")][2:]  # no head

    assert [row.split(" | ")[3] for row in rows(gated)] == [
        "ns_per_record (ns, lower is better)", "ns_per_op (ns, lower is better)"]
    assert "🔴 regressed" in rows(gated)[0] and "1 regressed, 1 unchanged" in gated
    assert len(rows(folded)) == 2 and all(", display only |" in r for r in rows(folded))
    assert md.count("## watchbench") == 1 and "# watchbench report" not in md


def test_a_benchmark_broken_on_the_candidate_fails_closed(settings, tmp_path):
    broken = lambda kernel, bench: None if bench == "kernel-post" and kernel.series.endswith(  # noqa: E731
        "slow-post") else 1.0
    result = run_ci(settings, _options(tmp_path, SLOW), kernels=FakeKernels(tmp_path),
                    bench=FakeBench(broken))
    assert result.exit_code == EXIT_REGRESSED and result.answer is Verdict.FAILED
    assert any("kernel-post" in r and r.endswith("failed") for r in result.regressed)
    assert result.rounds == 4  # a failure is final at the first look


def test_noise_the_gate_cannot_see_through_is_undecided_unless_accepted(settings, tmp_path):
    noisy = {"boot_cv": 0.3, "seed": 3}
    result = run_ci(settings, _options(tmp_path, rounds=4), kernels=FakeKernels(tmp_path),
                    bench=FakeBench(**noisy))
    assert result.exit_code == EXIT_UNDECIDED and result.answer is Verdict.UNDECIDED
    accepted = run_ci(settings, _options(tmp_path, rounds=4, accept_undecided=True),
                      kernels=FakeKernels(tmp_path), bench=FakeBench(**noisy))
    assert accepted.exit_code == EXIT_OK and accepted.answer is Verdict.UNDECIDED


@pytest.mark.parametrize("error", [
    BuildError("make failed: kernel/watch_queue.c:42: error", log="/tmp/build.log"),
    PatchError("0002 does not apply to kernel/watch_queue.c"),
])
def test_the_pipeline_failing_is_exit_2_with_its_reason_and_the_tree_restored(
        settings, tmp_path, capsys, error):
    kernels = FakeKernels(tmp_path, fail={f"{settings.bench_series}+slow-post": error})
    bench = FakeBench()
    code = gate(settings, _options(tmp_path, SLOW), kernels=kernels, bench=bench,
                progress=Silent())
    out = capsys.readouterr().out
    assert code == EXIT_INFRA
    assert out.startswith("watchbench ci: INFRASTRUCTURE FAILURE (exit 2):\n  ")
    assert error.message in out
    assert kernels.restored == 1 and bench.boots == []  # nothing was measured


def test_too_few_rounds_is_refused_before_anything_is_built(settings, tmp_path):
    kernels = FakeKernels(tmp_path)
    with pytest.raises(InputError, match="at least 2 boots"):
        run_ci(settings, _options(tmp_path, rounds=1), kernels=kernels, bench=FakeBench())
    assert kernels.composed == []


def test_the_gate_prints_tables_files_and_the_verdict_in_80_columns(tmp_path, capsys):
    """Every line of a gate's log, its progress lines too, in 80 columns under a long
    path (a CI log had 45 lines over 80, up to 158): the run is named and its places
    said once, in full; later lines name paths short."""
    deep = tmp_path / ("a-long-directory-name-" * 4) / "workspace" / "job-12345"
    settings = replace(Settings(), cache_dir=deep / "cache", runs_dir=deep / "runs")
    log = io.StringIO()
    progress = Progress("ci", stream=log, width=80)
    code = gate(settings, _options(deep, SLOW, per_patch=True),
                kernels=FakeKernels(deep, progress=progress),
                bench=FakeBench(_slower("slow-post")), progress=progress)
    out = capsys.readouterr().out
    assert code == EXIT_REGRESSED
    assert "watchbench ci: REGRESSED (exit 1)" in out and "junit:" in out
    assert "  patch 2 ([PATCH 2/2] watch_queue: do extra work" in out
    paths = ("report: ", "junit: ", "summary: ")  # a path is as long as it is
    assert max(len(line) for line in out.splitlines() if not line.startswith(paths)) <= 80
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("[ci] run ci-")
    places = [f"[ci] boots, a run directory each: {settings.runs_dir}",
              f"[ci] kernels, trees, build logs: {settings.cache_dir}"]
    assert lines[1:3] == places  # once, in full
    assert str(deep) not in "\n".join(lines[3:])
    assert any(line.startswith("[ci] results table: …/") and line.endswith(
        "/results.parquet") for line in lines)
    assert any(line.startswith("[ci] round 4/") for line in lines)
    over = [line for line in lines if len(line) > 80 and line not in places]
    assert over == [], over


@pytest.mark.parametrize(("text", "rounds"), [("auto", None), ("6", 6), (6, 6)])
def test_rounds_are_auto_or_a_number(text, rounds):
    assert parse_rounds(text, "--rounds") == rounds


def test_rounds_that_are_neither_are_refused():
    with pytest.raises(InputError, match="--rounds 'many'"):
        parse_rounds("many", "--rounds")


def test_options_take_the_configured_defaults_then_what_was_given(settings):
    settings.ci.max_rounds = 8
    settings = replace(settings, decision=Judgement(threshold=0.1))
    options = CiOptions.from_settings(settings, "x", accel="tcg", threshold=None)
    assert (options.max_rounds, options.judgement.threshold, options.accel) == (8, 0.1, "tcg")
    assert options.rounds is None and options.out == settings.reports_dir


# --- bisect ------------------------------------------------------------------------------


def test_classify_takes_the_side_the_decisions_agree_on():
    good, bad = [6.0, 6.001, 5.999], [6.2, 6.201, 6.199]
    verdict, vs_good, vs_bad, sure = classify(good, good, bad)
    assert (verdict, sure) == ("good", True) and vs_good.verdict is Verdict.UNCHANGED
    verdict, _, vs_bad, sure = classify(bad, good, bad)
    assert (verdict, sure) == ("bad", True) and vs_bad.verdict is Verdict.UNCHANGED


def test_classify_says_when_it_took_the_nearer_side():
    good, bad = [6.0, 6.001, 5.999], [6.2, 6.201, 6.199]
    verdict, _, _, sure = classify([6.15, 6.151, 6.149], good, bad)
    assert (verdict, sure) == ("bad", False)


@pytest.fixture(scope="module")
def eight_commits(tmp_path_factory) -> tuple[Path, list[str]]:
    """A git repository of eight commits, made once for the module (``history_tree``
    copies it): its directory and its commits."""
    src = tmp_path_factory.mktemp("history") / "src"
    src.mkdir()
    git = Git(src)
    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    commits = []
    for i in range(8):
        (src / "file").write_text(f"{i}\n")
        git("add", "file")
        git("commit", "-q", "-m", f"commit {i}")
        commits.append(git.head())
    return src, commits


@pytest.fixture
def history_tree(settings, tmp_path, eight_commits) -> tuple[Tree, list[str]]:
    """A git repository of eight commits (a copy of ``eight_commits``), made the active
    tree."""
    src, commits = tmp_path / "tree" / "src", eight_commits[1]
    shutil.copytree(eight_commits[0], src, symlinks=True)
    tree = Tree("user-test", src.parent, TreeKind.USER, str(src), commits[0], "commit 0")
    tree.save()
    set_active(settings, tree)
    (settings.cache_dir / "trees").mkdir(parents=True, exist_ok=True)
    (settings.cache_dir / "trees" / tree.id).symlink_to(tree.root)
    return tree, commits


def test_bisect_finds_the_first_slow_commit_and_puts_the_tree_back(settings, tmp_path,
                                                                 history_tree):
    tree, commits = history_tree
    slow_from = set(commits[5:])
    bench = FakeBench(lambda kernel, b: 1.2 if kernel.head in slow_from else 1.0, seed=4)
    before = tree.git().head()
    first, steps = run_bisect(settings, commits[0], commits[-1], "kernel-post",
                              metric="ns_per_record", kernels=FakeKernels(tmp_path),
                              bench=bench, jobs=1)
    assert first == commits[5]
    # every boot runs the bisected benchmark's runs only (the rest would be thrown away)
    assert bench.boots and {boot["only"] for boot in bench.boots} == {frozenset({"kernel-post"})}
    assert all(step.sure for step in steps)
    assert {step.verdict for step in steps} <= {"good", "bad"}
    assert tree.git().head() == before


def test_a_commits_boots_at_once_find_the_same_commit(settings, tmp_path, history_tree):
    """``jobs`` boots of each commit side by side (icount) take the same steps as one at a
    time; under tcg more than one is refused before any boot."""
    tree, commits = history_tree
    before = tree.git().head()
    slow_from = set(commits[5:])
    level = lambda kernel, b: 1.2 if kernel.head in slow_from else 1.0  # noqa: E731
    one = run_bisect(settings, commits[0], commits[-1], "kernel-post", metric="ns_per_record",
                     kernels=FakeKernels(tmp_path), bench=FakeBench(level, seed=4), jobs=1)
    bench = _Concurrent(level, seed=4)
    two = run_bisect(settings, commits[0], commits[-1], "kernel-post", metric="ns_per_record",
                     kernels=FakeKernels(tmp_path), bench=bench, jobs=2, rounds=3)
    assert bench.most == 2 and len(bench.boots) == 3 * (2 + len(two[1]))
    assert two[0] == one[0] == commits[5]
    assert [(s.commit, s.verdict) for s in two[1]] == [(s.commit, s.verdict) for s in one[1]]
    refused = FakeBench()
    with pytest.raises(InputError, match="--jobs 2 with --accel tcg"):
        run_bisect(settings, commits[0], commits[-1], "kernel-post", accel="tcg", jobs=2,
                   kernels=FakeKernels(tmp_path), bench=refused)
    assert refused.boots == []
    assert tree.git().head() == before


def test_bisect_refuses_ends_that_do_not_differ(settings, tmp_path, history_tree):
    _, commits = history_tree
    with pytest.raises(InputError, match="not distinguishable"):
        run_bisect(settings, commits[0], commits[-1], "kernel-post", metric="ns_per_record",
                   kernels=FakeKernels(tmp_path), bench=FakeBench(seed=5), jobs=1)


def test_the_composer_puts_the_tree_back_as_it_found_it(settings, history_tree):
    """ci and bisect restore the commit, the applied series and the configuration (the
    real Composer, on a real git repository; nothing is built)."""
    from watchbench.kernel.variant import Composer

    tree, commits = history_tree
    tree.git()("checkout", "-q", "--detach", commits[3])
    tree.series, tree.applied_head, tree.config_hash = "mine", commits[3], "c0ffee"
    tree.config_fragments = ["kconfig/base.config"]
    tree.save()
    composer = Composer(settings, tree)
    with composer.hold():  # as ci holds it: the state is taken here, under the lock
        tree.git()("checkout", "-q", "--detach", commits[6])  # what composing a variant does
        tree.series, tree.applied_head, tree.config_hash, tree.config_fragments = "", "", "x", []
        tree.save()
        composer.restore()
    again = Tree.load(tree.root)
    assert tree.git().head() == commits[3]
    assert (again.series, again.applied_head, again.config_hash, again.config_fragments) == (
        "mine", commits[3], "c0ffee", ["kconfig/base.config"])



# --- boots at once ------------------------------------------------------------------------


class _Concurrent(FakeBench):
    """FakeBench that notes how many boots ran at once."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        import threading

        self.lock, self.now, self.most = threading.Lock(), 0, 0

    def __call__(self, *args, **kw):
        import time

        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        try:
            with self.lock:  # FakeBench draws from one generator: one draw at a time
                return super().__call__(*args, **kw)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize("series,level,code", [("", None, EXIT_OK),
                                                (SLOW, _slower("slow-post"), EXIT_REGRESSED)])
def test_two_boots_at_once_give_the_verdicts_of_one_at_a_time(settings, tmp_path, series, level,
                                                              code):
    one = run_ci(settings, _options(tmp_path / "one", series), kernels=FakeKernels(tmp_path),
                 bench=FakeBench(level, seed=7))
    bench = _Concurrent(level, seed=7)
    two = run_ci(settings, _options(tmp_path / "two", series, jobs=2),
                 kernels=FakeKernels(tmp_path), bench=bench)
    assert one.exit_code == two.exit_code == code and one.answer == two.answer
    assert bench.most == 2
    positions = [(b["ci_round"], b["ci_position"], b["ci_role"]) for b in bench.boots]
    assert sorted(positions)[:4] == [(0, 0, "baseline"), (0, 1, "candidate"),
                                     (1, 0, "candidate"), (1, 1, "baseline")]


def test_a_failed_boot_stops_the_boots_beside_it_at_once():
    """The first boot that fails ends ``at_once`` without waiting for a boot listed before
    it: the runner kills the running guests (here: a boot that runs until killed, 5 s
    otherwise), then may start children again."""
    import threading
    import time

    from watchbench.flows.at_once import at_once

    class Runner:
        def __init__(self) -> None:
            self.stopping, self.calls = threading.Event(), []

        def kill_all(self) -> None:
            self.calls.append("kill_all")
            self.stopping.set()

        def resume(self) -> None:
            self.calls.append("resume")
            self.stopping.clear()

    runner = Runner()

    def runs_until_killed() -> int:
        if not runner.stopping.wait(5):
            return 1
        raise InputError("killed")

    def fails() -> int:
        time.sleep(0.05)
        raise InputError("the boot failed")

    start = time.monotonic()
    with pytest.raises(InputError, match="the boot failed"):
        at_once([runs_until_killed, fails, lambda: 3], 2, runner)
    assert time.monotonic() - start < 2.5
    assert runner.calls == ["kill_all", "resume"]
    assert at_once([lambda: 1, lambda: 2, lambda: 3], 2, runner) == [1, 2, 3]


def test_boots_at_once_only_under_icount():
    from watchbench.flows.at_once import boot_jobs

    assert boot_jobs(0, "icount", 2) == min(len(os.sched_getaffinity(0)), 2)
    assert boot_jobs(4, "icount", 3) == 3 and boot_jobs(0, "tcg", 2) == 1
    with pytest.raises(InputError, match="--jobs 2 with --accel kvm"):
        boot_jobs(2, "kvm", 2)


def test_boots_at_once_are_said_once_and_fit_80_columns():
    """Both ci and bisect say it through ``say_jobs``; one boot at a time says nothing."""
    from watchbench.flows.at_once import say_jobs
    from watchbench.host.progress import Progress

    for jobs in (1, 2):
        out = io.StringIO()
        say_jobs(Progress("bisect", out, width=80), jobs)
        lines = out.getvalue().splitlines()
        assert (lines == []) if jobs == 1 else (
            len(lines) == 1 and "2 boots at once" in lines[0] and "icount" in lines[0]
            and len(lines[0]) <= 80), lines
