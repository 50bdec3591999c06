"""The correctness check's pure parts: KTAP in and out, the plan, the judgement, and the
files and lines people read. Recorded real check boots are replayed in test_check_flow.py."""

from __future__ import annotations

import inspect
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from watchbench.cli import check_help, tasks
from watchbench.guest.clients import Broken
from watchbench.report import correctness
from watchbench.results import ktap
from watchbench.results.ktap import Outcome
from watchbench.suite.check import FindingKind, Ran, judge, owner, plan, running_test
from watchbench.suite.check_steps import STEPS, TABLE
from watchbench.vm.console import Incident

KEYUTILS = ("keyctl/link/valid",)


def report(*lines: str) -> list[str]:
    return ["KTAP version 1", *lines]


def test_ktap_parse_reads_results_skips_and_diagnostics():
    rep = ktap.parse(report("1..3", "# kernel 6.12", "ok 1 first # 3 done", "# why it broke",
                            "not ok 2 second", "ok 3 third # SKIP no fail-nth",
                            "  ok 1 nested is not read"))
    assert rep.header and rep.planned == 3 and rep.complete
    assert [c.outcome for c in rep.cases] == [Outcome.PASS, Outcome.FAIL, Outcome.SKIP]
    assert rep.cases[0].note == "3 done" and rep.cases[2].note == "no fail-nth"
    assert rep.cases[1].diagnostics == ("why it broke",)
    assert [c.name for c in rep.failed] == ["second"]


def test_ktap_parse_skip_all_and_cut_short():
    assert ktap.parse(report("1..0 # SKIP no keyctl")).skip_all == "no keyctl"
    cut = ktap.parse(report("1..4", "ok 1 a"))
    assert not cut.complete and len(cut.cases) == 1


def test_ktap_render_nests_each_step_and_parses_back():
    parts = [ktap.Part("conformance", ktap.parse(report("1..2", "ok 1 a", "# boom",
                                                        "not ok 2 b")), Outcome.FAIL,
                       ("b: not ok",)),
             ktap.Part("watch-test", ktap.Report(), Outcome.SKIP, ("no sample",))]
    text = ktap.render(parts)
    assert text.startswith("KTAP version 1\n1..2\n  KTAP version 1\n  1..2\n")
    assert "  # boom\n  not ok 2 b\n" in text
    top = ktap.parse(text.splitlines())
    assert [(c.name, c.outcome) for c in top.cases] == [("conformance", Outcome.FAIL),
                                                        ("watch-test", Outcome.SKIP)]
    assert top.cases[1].note == "no sample" and top.cases[0].diagnostics == ("b: not ok",)


def test_plan_runs_every_step_and_skips_missing_clients_with_their_reason():
    steps = plan(15, Path("/k/watch_test"), "keyutils' test suite is not available: x",
                 KEYUTILS)
    assert [s.name for s in steps] == list(STEPS)
    by = {s.name: s for s in steps}
    assert by["stress"].argv == ("wq-stress", "--seconds", "15")
    assert by["watch-test"].side == "host" and "/k/watch_test" in by["watch-test"].argv
    assert by["keyutils-tests"].skip.startswith("keyutils' test suite")
    assert by["conformance"].side == "guest"


def test_plan_only_keeps_kmemleak_clear_with_kmemleak():
    names = [s.name for s in plan(5, "x", "y", KEYUTILS, frozenset({"stress", "kmemleak"}))]
    assert names == ["kmemleak-clear", "stress", "kmemleak"]


def test_the_check_task_help_says_what_every_step_of_the_table_does():
    doc = inspect.getdoc(tasks.ns["check"]) or ""
    for declared in TABLE:
        if declared.comes_with:  # picked with another step, not on its own
            assert declared.comes_with in STEPS and not declared.does
            continue
        assert f"{declared.name:<16}{declared.does}" in doc
        assert declared.name in check_help.ONLY


def ran(lines: list[str], rc: int | None = 0, begin: int = 0, seen: list[int] | None = None,
        end: int | None = None) -> Ran:
    return Ran(lines, rc, begin, tuple(seen if seen is not None else [begin + 1] * len(lines)),
               end)


def splat(line_number: int, kind: str = "bug",
          text: str = "BUG: KASAN: slab-out-of-bounds in watch_queue_set_filter") -> Incident:
    return Incident(kind, line_number, text, f"{text}\nWrite of size 4\nCall Trace:")


def two_steps():
    return plan(5, "no sample", "no suite", KEYUTILS, frozenset({"conformance", "stress"}))


def test_judge_passes_clean_steps_and_reports_skips():
    steps = plan(5, "no sample here", "no suite", KEYUTILS,
                 frozenset({"conformance", "watch-test"}))
    parts, findings = judge(steps, [ran(report("1..1", "ok 1 a")), None], [])
    assert not findings
    assert [p.outcome for p in parts] == [Outcome.PASS, Outcome.SKIP]
    assert parts[1].reasons == ("no sample here",)


def test_judge_names_the_step_and_test_a_splat_came_during():
    conformance = ran(report("1..3", "ok 1 set_size", "ok 2 filter_unknown_types",
                             "ok 3 after"), begin=100, seen=[101, 102, 103, 151, 160], end=170)
    stress = ran(report("1..1", "ok 1 records"), begin=200, end=300)
    parts, findings = judge(two_steps(), [conformance, stress], [splat(140)])
    assert len(findings) == 1
    f = findings[0]
    # the first result read after the splat's line: the test that was running
    assert (f.step, f.test) == ("conformance", "filter_unknown_types")
    assert "KASAN" in f.what and "Call Trace" in f.evidence
    assert [p.outcome for p in parts] == [Outcome.FAIL, Outcome.PASS]


def test_a_splat_after_a_step_ended_belongs_to_it_until_the_next_begins():
    steps = two_steps()
    runs = [ran(report("1..1", "ok 1 a"), begin=10, end=20), ran(report("1..1", "ok 1 b"),
                                                                 begin=30, end=40)]
    assert owner(steps, runs, 25) == 0 and owner(steps, runs, 35) == 1
    assert owner(steps, runs, 5) is None
    assert running_test(runs[0], 25) == "(after it ended)"
    assert running_test(ran(report("1..1", "ok 1 a"), rc=None, begin=10), 25) == \
        "(after its last result)"
    assert running_test(ran(report("1..1"), rc=None, begin=10), 25) == \
        "(before its first result)"


def test_a_splat_during_boot_fails_the_check_as_boot():
    _, findings = judge(two_steps(), [ran(report("1..1", "ok 1 a"), begin=50),
                                      ran(report("1..1", "ok 1 b"), begin=60)],
                        [splat(3, "warning", "WARNING: suspicious RCU usage")])
    assert [(f.step, f.test) for f in findings] == [("boot", "-")]


@pytest.mark.parametrize("result,what", [
    (ran(report("1..1", "# rec 0 bad", "not ok 1 records_well_formed"), rc=1), "not ok"),
    (ran(report("1..3", "ok 1 a"), rc=0), "report cut short: 1 of 3 results"),
    (ran(["segfault"], rc=139), "exit 139 without a KTAP report"),
    (ran(report("1..1", "ok 1 a"), rc=1), "exit 1 with every test ok"),
    (ran(report("1..2", "ok 1 a"), rc=None), "did not finish: guest killed"),
])
def test_judge_fails_a_step_that_breaks_in_any_way(result, what):
    steps = two_steps()
    parts, findings = judge(steps, [ran(report("1..1", "ok 1 c")), result], [],
                            stopped="guest killed after 900 s")
    assert parts[1].outcome is Outcome.FAIL
    assert any(f.step == "stress" and f.what.startswith(what) for f in findings)


def test_a_splat_printed_over_and_over_is_one_finding_with_its_count():
    # filter-oob under the stress prints thousands of these, offsets and tasks varying
    flood = [splat(n, text=f"BUG: KASAN: slab-out-of-bounds in watch_queue_set_filter"
                   f"+0x{offset:x}/0x710")
             for n, offset in zip(range(5, 305), [0x5e8, 0x65f] * 150, strict=True)]
    stackdepot = "at lib/stackdepot.c:451 depot_fetch_stack+0x83/0xa0"
    flood += [splat(310, "warning", f"WARNING: CPU: 1 PID: 100 {stackdepot}"),
              splat(311, "warning", f"WARNING: CPU: 0 PID: 103 {stackdepot}"),
              splat(312, text="BUG: KASAN: slab-use-after-free in __post_watch_notification")]
    parts, findings = judge(two_steps(), [ran(report("1..1", "ok 1 a"), begin=1,
                                              seen=[2, 3, 400]),
                                          ran(report("1..1", "ok 1 b"), begin=500)], flood)
    assert [(f.count, f.what.split(": ", 1)[1][:33]) for f in findings] == [
        (300, "BUG: KASAN: slab-out-of-bounds in"),
        (2, "WARNING: CPU: 1 PID: 100 at lib/s"),
        (1, "BUG: KASAN: slab-use-after-free i")]
    assert findings[0].line().endswith("watch_queue_set_filter+0x5e8/0x710 (300 times)")
    assert findings[0].evidence.startswith("BUG: KASAN: slab-out-of-bounds")
    assert len(parts[0].reasons) == 3
    root = ET.fromstring(correctness.junit_xml(parts, findings, "6.12"))
    assert root.get("failures") == "3"
    out = correctness.terminal_lines("v", parts, findings, {}, {})
    assert any(ln.startswith("  conformance ") and ln.endswith("+ 303 kernel splats")
               for ln in out)


def test_a_step_that_never_ran_fails_and_says_why():
    parts, findings = judge(two_steps(), [ran(report("1..1", "ok 1 c"), rc=None), None], [],
                            stopped="guest stopped before finishing command 0")
    assert [p.outcome for p in parts] == [Outcome.FAIL, Outcome.FAIL]
    assert findings[-1].what == "not run: guest stopped before finishing command 0"


def test_the_terminal_quotes_the_splat_and_fits_80_columns():
    steps = two_steps()
    parts, findings = judge(steps, [ran(report("1..1", "ok 1 a"), begin=1, seen=[2, 3, 9]),
                                    ran(report("1..1", "ok 1 b"), begin=20)],
                            [splat(5, text="BUG: KASAN: slab-out-of-bounds in "
                                   "watch_queue_set_filter+0x2f3/0x5a0 " + "x" * 60)])
    line = correctness.verdict_line(parts, findings, 4, "tcg")
    assert line.startswith("CORRECTNESS FAILURE (exit 4): 2 steps: 1 passed, 1 failed")
    out = correctness.terminal_lines(line, parts, findings, {"conformance": 12.0},
                                     {"ktap": "/r/check/check.ktap"})
    assert all(len(ln) <= 80 for ln in out)
    text = "\n".join(out)
    assert "conformance: a: kernel bug: BUG: KASAN: slab-out-of-bounds" in text
    assert "    | Call Trace:" in text
    row = next(ln for ln in out if ln.startswith("  conformance "))
    assert "FAIL" in row and "1/1 ok" in row and row.endswith("+ 1 kernel splat")
    assert out[-2].startswith("watchbench check: CORRECTNESS FAILURE")  # the verdict last


def test_junit_has_a_case_per_result_and_one_per_splat():
    steps = two_steps()
    parts, findings = judge(steps, [ran(report("1..2", "ok 1 a", "# bad", "not ok 2 b"),
                                        rc=1, begin=1, seen=[2, 3, 4, 5, 6]),
                                    ran(report("1..1", "ok 1 c"), begin=20)],
                            [splat(3)])
    root = ET.fromstring(correctness.junit_xml(parts, findings, "6.12"))
    assert root.get("tests") == "4" and root.get("failures") == "2"
    conformance = root.find("testsuite[@name='conformance']")
    names = [c.get("name") for c in conformance.findall("testcase")]
    assert names == ["a", "b", "a: kernel-splat"]
    kasan = conformance.find("testcase[@name='a: kernel-splat']/failure")
    assert kasan.get("type") == "kernel-splat" and "Call Trace" in kasan.text
    assert conformance.find("testcase[@name='b']/failure").text == "bad"


def test_markdown_has_the_verdict_the_steps_and_the_provenance():
    parts, findings = judge(two_steps(), [ran(report("1..1", "ok 1 a")),
                                          ran(report("1..1", "ok 1 b"))], [])
    text = correctness.markdown(correctness.verdict_line(parts, findings, 0, "tcg"), parts,
                                findings, {"kernel_version": "6.12.0", "accel": "tcg"})
    assert text.startswith("## watchbench check: PASS (exit 0)")
    assert "| stress | pass | 1/1 ok |  |" in text and "- accel: `tcg`" in text


def test_a_step_of_ours_that_skips_everything_is_a_finding_a_client_may_skip():
    steps = plan(5, "/k/watch_test", "/d/tests", KEYUTILS,
                 frozenset({"conformance", "keyutils-tests"}))
    skipped = report("1..0 # SKIP pipe2(O_NOTIFICATION_PIPE): ENOPKG")
    parts, findings = judge(steps, [ran(skipped), ran(report("1..0 # SKIP no keyctl"))], [])
    assert [p.outcome for p in parts] == [Outcome.FAIL, Outcome.SKIP]
    assert [(f.step, f.what) for f in findings] == [
        ("conformance", "skipped everything on the debug kernel: pipe2(O_NOTIFICATION_PIPE): "
                        "ENOPKG")]


def test_a_guest_that_hangs_after_its_last_step_is_a_finding():
    steps = two_steps()
    _, findings = judge(steps, [ran(report("1..1", "ok 1 a")), ran(report("1..1", "ok 1 b"))],
                        [], stopped="guest killed after 900 s (deadline)")
    assert [(f.step, f.what) for f in findings] == [
        ("boot", "after the last step: guest killed after 900 s (deadline)")]


def test_a_splat_in_a_step_that_reports_at_its_end_is_not_pinned_on_a_test():
    steps = two_steps()  # conformance, stress
    stress = ran(report("1..2", "ok 1 records", "ok 2 ids"), begin=20, seen=[21, 22, 90, 91],
                 end=95)
    _, findings = judge(steps, [ran(report("1..1", "ok 1 a"), begin=1, end=10), stress],
                        [splat(50), splat(99)])
    assert [(f.step, f.test, f.kind) for f in findings] == [
        ("stress", "(while it ran)", FindingKind.SPLAT),
        ("stress", "(after it ended)", FindingKind.SPLAT)]


def test_a_client_the_candidate_cannot_build_is_a_finding_not_a_skip():
    steps = [replace(s, broken="samples/watch_queue/watch_test.c does not build against the "
                               "tree's own headers") if s.name == "watch-test" else s
             for s in plan(5, Path("/k/watch_test"), "/d/tests", KEYUTILS,
                           frozenset({"conformance", "watch-test"}))]
    parts, findings = judge(steps, [ran(report("1..1", "ok 1 a")), None], [])
    assert parts[1].outcome is Outcome.FAIL
    assert findings[0].kind is FindingKind.BROKEN and "does not build" in findings[0].what


def test_plan_turns_a_broken_client_into_a_broken_step():
    by = {s.name: s for s in plan(5, Broken("watch_test.c does not build"), "/d", KEYUTILS)}
    assert by["watch-test"].broken == "watch_test.c does not build" and not by["watch-test"].skip
