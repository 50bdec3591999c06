"""`inv check` and `inv ci --check` above argv: the real flow, judgement and files, with the
kernel side faked (tests/fakes.py) and the boot replayed from real check boots recorded in
tests/data/check/ (see its README). The same flow boots real debug kernels in
tests/integration/test_check_integration.py."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import FakeBench, FakeKernels
from watchbench.cli.correctness import report_check
from watchbench.cli.regressions import gate
from watchbench.errors import BuildError, InputError
from watchbench.flows.check import (
    EXIT_CORRECTNESS,
    EXIT_INFRA,
    EXIT_OK,
    CheckOptions,
    run_check,
)
from watchbench.flows.ci import CiOptions
from watchbench.host.progress import Silent
from watchbench.results import ktap
from watchbench.results.ktap import Outcome
from watchbench.settings import Settings
from watchbench.suite.check import read_booted

RECORDED = Path(__file__).resolve().parents[1] / "data" / "check"
PATCHES = Path(__file__).resolve().parents[1] / "data" / "patches"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(Settings(), cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs")


def replay(name: str):
    """A boot seam that gives back the recorded boot ``name``, checking that the flow asked
    for the steps that boot ran."""
    steps, booted = read_booted(RECORDED / name / "boot.json", RECORDED / name / "console.log")

    def boot(settings, kernel, asked, accel, timeout, runner, progress):
        assert [s.name for s in asked if not s.skip] == [s.name for s in steps]
        return booted
    return boot


def clients(sample="/k/watch_test", suite="/d/keyutils/tests"):
    return lambda settings, tree, kernel, runner: (
        Path(sample) if sample.startswith("/") else sample,
        Path(suite) if suite.startswith("/") else suite)


def check(settings, tmp_path, name, series="", **kw):
    kernels = FakeKernels(tmp_path)
    options = CheckOptions(series=series, out=tmp_path / "reports", accel="tcg", **kw)
    result = run_check(settings, options, kernels=kernels, boot=replay(name),
                       get_clients=clients())
    return result, kernels


def test_a_clean_recorded_check_passes_and_writes_its_files(settings, tmp_path):
    result, kernels = check(settings, tmp_path, "clean")
    assert result.exit_code == EXIT_OK and not result.findings
    assert [p.outcome for p in result.parts] == [Outcome.PASS] * 8
    # the candidate is the measured kernel (bench series) built with the debug fragments
    assert kernels.fragments == [["base", "watch_queue", "guest-9p", "debug"]]
    assert kernels.composed == ["watch_queue-bench"] and kernels.restored == 1
    nested = ktap.parse(result.ktap.read_text().splitlines())
    assert nested.complete and not nested.failed
    suites = ET.parse(result.junit).getroot()
    assert suites.get("failures") == "0" and int(suites.get("tests")) > 60
    record = json.loads(result.record.read_text())
    assert record["verdict"] == "pass" and record["accel"] == "tcg"
    assert {"series_hash", "config_hash", "qemu_argv", "host", "kernel_key"} <= set(record)
    assert result.summary.read_text().startswith("## watchbench check: PASS (exit 0)")


def test_the_filter_bound_fixture_is_caught_by_kasan_in_its_test(settings, tmp_path):
    result, _ = check(settings, tmp_path, "filter-oob", str(PATCHES / "filter-oob"))
    assert result.exit_code == EXIT_CORRECTNESS
    first = result.findings[0]
    assert (first.step, first.test) == ("conformance", "set_filter_unknown_types_ignored")
    assert first.what.startswith("kernel bug: BUG: KASAN: slab-out-of-bounds in "
                                 "watch_queue_set_filter")
    assert "Call Trace" in first.evidence
    summary = result.summary.read_text()
    assert "### conformance: set_filter_unknown_types_ignored: kernel bug: BUG: KASAN" in summary
    kinds = {f.get("type") for f in ET.parse(result.junit).getroot().iter("failure")}
    assert "kernel-splat" in kinds


def test_the_terminal_names_the_test_quotes_the_splat_and_fits(settings, tmp_path, capsys):
    code = report_check(lambda progress: check(settings, tmp_path, "filter-oob",
                                               str(PATCHES / "filter-oob"))[0], Silent())
    out = capsys.readouterr().out
    assert code == EXIT_CORRECTNESS
    assert "  conformance: set_filter_unknown_types_ignored: kernel bug: BUG: KASAN" in out
    assert "    | BUG: KASAN: slab-out-of-bounds in watch_queue_set_filter" in out
    assert "watchbench check: CORRECTNESS FAILURE (exit 4)" in out
    paths = ("ktap: ", "junit: ", "summary: ", "console: ")  # a path is as long as it is
    assert max(len(ln) for ln in out.splitlines() if not ln.startswith(paths)) <= 80


def test_a_missing_client_is_a_skip_with_its_reason_never_a_pass(settings, tmp_path):
    kernels = FakeKernels(tmp_path)
    steps, booted = read_booted(RECORDED / "clean" / "boot.json",
                                RECORDED / "clean" / "console.log")
    keep = [i for i, s in enumerate(steps) if s.name != "watch-test"]

    def boot(settings, kernel, asked, accel, timeout, runner, progress):
        assert "watch-test" not in [s.name for s in asked if not s.skip]
        return replace(booted, ran=[booted.ran[i] for i in keep])

    result = run_check(settings, CheckOptions(out=tmp_path / "r", accel="tcg"),
                       kernels=kernels, boot=boot,
                       get_clients=clients(sample="the tree has no samples/watch_queue"))
    part = next(p for p in result.parts if p.name == "watch-test")
    assert part.outcome is Outcome.SKIP and part.reasons == ("the tree has no samples/watch_queue",)
    assert result.exit_code == EXIT_OK
    assert "# SKIP the tree has no samples/watch_queue" in result.ktap.read_text()


def test_a_build_failure_is_infrastructure_and_the_tree_is_restored(settings, tmp_path, capsys):
    kernels = FakeKernels(tmp_path, fail={"watch_queue-bench": BuildError("make failed")})
    code = report_check(lambda progress: run_check(
        settings, CheckOptions(out=tmp_path / "r", accel="tcg"), kernels=kernels,
        boot=replay("clean"), get_clients=clients()), Silent())
    assert code == EXIT_INFRA and kernels.restored == 1
    assert capsys.readouterr().out.startswith("watchbench check: INFRASTRUCTURE FAILURE (exit 2)")


@pytest.mark.parametrize("given,message", [
    ({"accel": "icount"}, "does not run under icount"),
    ({"stress_seconds": 0}, "give 1 to 86400"),
    ({"stress_seconds": 86401}, "give 1 to 86400"),
    ({"accel": "kvmm"}, "not an accelerator"),
    ({"only": frozenset({"stres"})}, "no such step"),
])
def test_bad_options_are_refused_before_anything_is_built(settings, tmp_path, given, message):
    kernels = FakeKernels(tmp_path)
    with pytest.raises(InputError, match=message):
        run_check(settings, CheckOptions(out=tmp_path / "r", **{"accel": "tcg", **given}),
                  kernels=kernels, boot=replay("clean"), get_clients=clients())
    assert kernels.composed == []


def test_ci_check_fails_closed_with_exit_4_and_measures_nothing(settings, tmp_path, capsys):
    bench = FakeBench()
    series = str(PATCHES / "filter-oob")
    code = gate(settings, CiOptions(series=series, out=tmp_path / "reports", jobs=1),
                check=CheckOptions(series=series, out=tmp_path / "reports", accel="tcg"),
                check_seams={"kernels": FakeKernels(tmp_path), "boot": replay("filter-oob"),
                             "get_clients": clients()},
                kernels=FakeKernels(tmp_path), bench=bench, progress=Silent())
    out = capsys.readouterr().out
    assert code == EXIT_CORRECTNESS and bench.boots == []
    assert "not measured: the candidate failed `./wb check` (exit 4)" in out


def test_ci_check_that_passes_goes_on_to_measure(settings, tmp_path, capsys):
    bench = FakeBench()
    code = gate(settings, CiOptions(series="", out=tmp_path / "reports", jobs=1),
                check=CheckOptions(out=tmp_path / "reports", accel="tcg"),
                check_seams={"kernels": FakeKernels(tmp_path), "boot": replay("clean"),
                             "get_clients": clients()},
                kernels=FakeKernels(tmp_path), bench=bench, progress=Silent())
    out = capsys.readouterr().out
    assert code == EXIT_OK and bench.boots
    assert "watchbench check: PASS (exit 0)" in out and "watchbench ci: OK (exit 0)" in out


def test_posting_without_the_rcu_lock_is_named_by_lockdep_with_its_line(settings, tmp_path):
    result, _ = check(settings, tmp_path, "post-without-rcu", str(PATCHES / "post-without-rcu"))
    assert result.exit_code == EXIT_CORRECTNESS
    assert {(f.step, f.what) for f in result.findings} == {
        ("conformance", "kernel warning: WARNING: suspicious RCU usage")}
    assert "kernel/watch_queue.c:215 suspicious rcu_dereference_check" in \
        result.findings[0].evidence
    # every other step ran and passed: one bug, one failed step
    assert [p.name for p in result.parts if p.outcome is Outcome.FAIL] == ["conformance"]


def test_a_leak_on_watch_removal_is_found_by_kmemleak_and_the_real_clients(settings, tmp_path,
                                                                          capsys):
    code = report_check(lambda progress: check(settings, tmp_path, "leak-on-removal",
                                               str(PATCHES / "leak-on-removal"))[0], Silent())
    out = capsys.readouterr().out
    assert code == EXIT_CORRECTNESS
    assert "  kmemleak: kmemleak_scan: not ok" in out
    assert "    | kmemleak: 1091 unreferenced objects" in out
    # the leaked watches count against RLIMIT_NOFILE, so the clients' watches are refused
    assert "  keyctl-client: update: not ok" in out
    assert "  keyctl-client: 6 more findings (summary.md, junit.xml)" in out
    paths = ("ktap: ", "junit: ", "summary: ", "console: ")
    assert max(len(ln) for ln in out.splitlines() if not ln.startswith(paths)) <= 80


def test_a_trace_that_cannot_be_decoded_leaves_the_finding_raw_with_its_reason(
        settings, tmp_path, capsys):
    # the fake kernel keeps no vmlinux and has no debug info, as one built before
    # kconfig/debug.config asked for it: decoding is best effort, the verdict the same
    code = report_check(lambda progress: check(settings, tmp_path, "filter-oob",
                                               str(PATCHES / "filter-oob"))[0], Silent())
    out = capsys.readouterr().out
    assert code == EXIT_CORRECTNESS
    assert "    | BUG: KASAN: slab-out-of-bounds in watch_queue_set_filter+0x5e8/0x710" in out
    assert "    (raw trace: not decoded: the kernel was built without debug info)" in out
    reports = tmp_path / "reports" / "check"
    assert "Raw trace, not decoded: the kernel was built without debug info." in \
        (reports / "summary.md").read_text()
    [finding] = json.loads((reports / "check.json").read_text())["findings"]
    assert finding["not_decoded"] == "the kernel was built without debug info"
    assert finding["decoded"] == "" and "Call Trace" in finding["evidence"]
    [failure] = [f for f in ET.parse(reports / "junit.xml").getroot().iter("failure")
                 if f.get("type") == "kernel-splat"]
    assert failure.text.startswith("trace not decoded: the kernel was built without debug")


def test_decoded_traces_reach_the_terminal_summary_junit_and_record(settings, tmp_path,
                                                                    capsys):
    from watchbench.kernel.decode import Decoded, has_frames

    asked = []

    def decoder(kernel, texts, *, sandboxed, runner):
        asked.append((kernel.key, len(texts), sandboxed))
        return [Decoded(t.replace("watch_queue_set_filter+0x5e8/0x710",
                                  "watch_queue_set_filter (kernel/watch_queue.c:332)"))
                if has_frames(t) else Decoded() for t in texts]

    kernels = FakeKernels(tmp_path)
    options = CheckOptions(series=str(PATCHES / "filter-oob"), out=tmp_path / "reports",
                           accel="tcg")
    code = report_check(lambda progress: run_check(
        settings, options, kernels=kernels, boot=replay("filter-oob"),
        get_clients=clients(), decoder=decoder), Silent())
    out = capsys.readouterr().out
    assert code == EXIT_CORRECTNESS and asked == [(asked[0][0], 1, settings.sandbox)]
    assert "    |  watch_queue_set_filter (kernel/watch_queue.c:332)" in out.splitlines()
    assert "not decoded" not in out
    reports = tmp_path / "reports" / "check"
    summary = (reports / "summary.md").read_text()
    assert "Stack trace decoded by the tree's scripts/decode_stacktrace.sh:" in summary
    assert "watch_queue_set_filter+0x5e8/0x710" in summary  # the raw trace is kept too
    [finding] = json.loads((reports / "check.json").read_text())["findings"]
    assert "watch_queue_set_filter (kernel/watch_queue.c:332)" in finding["decoded"]
    assert finding["not_decoded"] == ""
    [failure] = [f for f in ET.parse(reports / "junit.xml").getroot().iter("failure")
                 if f.get("type") == "kernel-splat"]
    assert "(kernel/watch_queue.c:332)" in failure.text and "--- raw ---" in failure.text
