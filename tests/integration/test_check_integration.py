"""`inv check` for real: the debug kernel (KASAN, lockdep, KFENCE, kmemleak, fault
injection) built from the Debian tree and booted under TCG. A clean tree with our bench
series passes every step with every client present; each fixture series that brings back
a known bug class is caught, named after its test and quoted.

To keep CI short, the fixtures run the steps that catch them (``--only``) and the clean
check one of keyutils' tests; the whole `inv check` on each of them is measured by
bench/scripts/check_figures.py (README). The debug kernel is built on a worktree of its
own while the gates boot (tests/conftest.py: ``debug_build``, with an option added as
--kconfig-add adds one: the option's real proof), with the reduced debug info
that lets each finding's stack trace be decoded to file:line by the tree's own
scripts/decode_stacktrace.sh (the decoder's seams: tests/unit/test_decode.py)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import FakeBench
from watchbench.cli.regressions import gate
from watchbench.flows.check import EXIT_CORRECTNESS, EXIT_OK, CheckOptions, run_check
from watchbench.flows.ci import CiOptions
from watchbench.host.progress import Silent
from watchbench.results.ktap import Outcome

pytestmark = pytest.mark.kernel
PATCHES = Path(__file__).resolve().parents[1] / "data" / "patches"
# keyutils' test of the default subset that takes least under TCG: 13-27 s here, against
# 39-59 s for keyctl/link/valid (docs/figures.md, and the KTAP note of each check)
QUICKEST = "keyctl/update/userupdate"
FRAME = re.compile(r"\b\w+ \([\w/.-]+\.[ch]:\d+\)")  # "func (kernel/watch_queue.c:123)"


def options(tmp_path: Path, series: str = "", **kw) -> CheckOptions:
    return CheckOptions(series=series, accel="tcg", out=tmp_path / "reports", **kw)


def test_a_clean_tree_passes_every_check_with_every_client(debug_settings, debug_kernels,
                                                           tmp_path):
    """Every step and every client, each of keyutils' tests proven by one of them (the
    default subset, in full: bench/scripts/check_figures.py), the quickest (``QUICKEST``),
    and the stress for 10 s."""
    assert QUICKEST in debug_settings.check.keyutils_tests
    debug_settings = replace(debug_settings, check=replace(
        debug_settings.check, keyutils_tests=(QUICKEST,)))
    result = run_check(debug_settings, options(tmp_path, stress_seconds=10), progress=Silent(),
                       kernels=debug_kernels)
    assert result.exit_code == EXIT_OK, "\n".join(f.line() for f in result.findings)
    assert [p.outcome for p in result.parts] == [Outcome.PASS] * 8  # nothing skipped
    counts = {p.name: len(p.report.cases) for p in result.parts}
    assert counts["conformance"] >= 40 and counts["faults"] == 7 and counts["stress"] == 10
    assert counts["keyutils-tests"] == len(debug_settings.check.keyutils_tests)
    record = json.loads(result.record.read_text())
    assert record["accel"] == "tcg" and record["series_name"] == debug_settings.bench_series
    # the debug fragment's options are in the booted kernel
    config = (result.kernel.dir / "config").read_text()
    for option in ("CONFIG_KASAN=y", "CONFIG_PROVE_LOCKING=y", "CONFIG_DEBUG_KMEMLEAK=y",
                   "CONFIG_KFENCE=y", "CONFIG_FAILSLAB=y", "CONFIG_FAIL_PAGE_ALLOC=y",
                   "CONFIG_DEBUG_INFO=y", "CONFIG_DEBUG_INFO_REDUCED=y"):
        assert option in config
    assert result.kernel.vmlinux.is_file() and result.kernel.decode_script.is_file()
    # --kconfig-add's option (settings kconfig_add) is in the kernel built and booted, and
    # in the check's record
    assert 'CONFIG_LOCALVERSION="-wbcheck"' in config
    assert "-wbcheck" in result.kernel.release, result.kernel.release
    assert record["kconfig_add"] == list(debug_settings.kconfig_add) == [
        'CONFIG_LOCALVERSION="-wbcheck"']


def test_the_filter_bound_bug_fails_ci_check_with_kasan_and_nothing_is_measured(
        debug_settings, debug_kernels, tmp_path, capsys):
    """CVE-2022-0995's class: KASAN on the out-of-bounds write, in the test that sets a
    filter of an unknown type; `ci --check` exits 4 before measuring anything."""
    series = str(PATCHES / "filter-oob")
    bench = FakeBench()  # would measure; must not be reached
    code = gate(debug_settings, CiOptions(series=series, out=tmp_path / "reports"),
                check=options(tmp_path, series, only=frozenset({"conformance"})),
                check_seams={"kernels": debug_kernels}, bench=bench, progress=Silent())
    out = capsys.readouterr().out
    assert code == EXIT_CORRECTNESS and bench.boots == []
    # the terminal wraps at 79 columns: the finding's first line, then the rest of it
    assert "  conformance: set_filter_unknown_types_ignored: kernel bug: BUG: KASAN" in out
    assert "out-of-bounds in watch_queue_set_filter" in out
    assert "not decoded" not in out
    [finding] = json.loads((tmp_path / "reports" / "check" / "check.json").read_text())[
        "findings"]
    assert finding["not_decoded"] == ""
    assert re.search(r"watch_queue_set_filter \([\w/.-]*kernel/watch_queue\.c:\d+",
                     finding["decoded"]), finding["decoded"][:2000]


def test_posting_without_the_rcu_read_lock_is_caught_by_lockdep(debug_settings, debug_kernels,
                                                                tmp_path):
    result = run_check(debug_settings, options(tmp_path, str(PATCHES / "post-without-rcu"),
                                              only=frozenset({"conformance"})),
                       progress=Silent(), kernels=debug_kernels)
    assert result.exit_code == EXIT_CORRECTNESS
    first = result.findings[0]
    assert first.step == "conformance" and first.test != "-"
    assert first.what == "kernel warning: WARNING: suspicious RCU usage"
    assert "kernel/watch_queue.c" in first.evidence
    assert first.not_decoded == "" and "(kernel/watch_queue.c:" in first.decoded, \
        first.decoded[:2000]


def test_a_leak_on_watch_removal_is_caught_by_kmemleak(debug_settings, debug_kernels, tmp_path):
    result = run_check(debug_settings, options(tmp_path, str(PATCHES / "leak-on-removal"),
                                              only=frozenset({"conformance", "kmemleak"})),
                       progress=Silent(), kernels=debug_kernels)
    assert result.exit_code == EXIT_CORRECTNESS
    assert [(f.step, f.test, f.what) for f in result.findings] == [
        ("kmemleak", "kmemleak_scan", "not ok")]
    assert "unreferenced object" in result.findings[0].evidence
    leak = result.findings[0]
    assert leak.not_decoded == "" and FRAME.search(leak.decoded), leak.decoded[:2000]
