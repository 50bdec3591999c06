"""The profile in the gate (over tests.fakes.FakeBench, whose profiles stand in for the
real ones of tests/integration/test_profile_integration.py), the plugin's QEMU argv, its
header, and the private deb-src list it is fetched with."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chromium import console_problems, needs_chromium, too_wide
from tests.fakes import FakeBench, FakeKernels
from tests.unit.test_flows import SLOW, _options, _slower
from watchbench.cli.regressions import gate
from watchbench.errors import BuildError, InputError
from watchbench.flows.ci import run_ci
from watchbench.flows.explain import Explain, parse_explain
from watchbench.host.debsrc import apt_options, deb_src_lines
from watchbench.settings import Settings
from watchbench.vm import plugin
from watchbench.vm.qemu import VmSpec, qemu_argv


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings().scratch(tmp_path / "cache")


@pytest.fixture(scope="module")
def slow_per_patch(tmp_path_factory):
    """The gate of the slow-post series per patch, run once for the module's tests that
    read what it explained (``_explained``): its result and its bench."""
    tmp_path = tmp_path_factory.mktemp("explained")
    bench = FakeBench(_slower("slow-post"), seed=2)
    result = run_ci(Settings().scratch(tmp_path / "cache"),
                    _options(tmp_path, SLOW, per_patch=True),
                    kernels=FakeKernels(tmp_path), bench=bench)
    return result, bench


def _explained(slow_per_patch):
    result, bench = slow_per_patch
    assert [p["only"] for p in bench.profiles] == [frozenset({"kernel-post"})] * 3
    diff = result.explanation.diff
    top = diff[diff["changed"]].iloc[0]
    assert (top["benchmark"], top["symbol"]) == ("kernel-post", "post_one_notification")
    assert top["delta"] == pytest.approx(180 * 0.2)
    assert [s.index for s in result.explanation.steps] == [1, 2]
    assert not result.explanation.steps[0].diff["changed"].any()  # patch 1 changed nothing
    summary = result.summary.read_text()
    assert "### Where the instructions went" in summary
    assert "`post_one_notification +36 instr/op (+50 %)`" in summary
    html = result.report.read_text()
    assert 'id="where"' in html and "change per function" in html
    return result.report


def test_a_regression_is_explained_per_function_and_per_patch(slow_per_patch):
    assert _explained(slow_per_patch).exists()


@needs_chromium
def test_the_report_with_its_profile_opens_and_fits(slow_per_patch, tmp_path):
    page = _explained(slow_per_patch)
    assert console_problems(page, tmp_path) == []
    assert too_wide(page, tmp_path, 1400) == []


def test_nothing_moved_nothing_profiled_and_none_turns_it_off(settings, tmp_path):
    bench = FakeBench(seed=1)
    quiet = run_ci(settings, _options(tmp_path), kernels=FakeKernels(tmp_path), bench=bench)
    assert quiet.explanation is None and bench.profiles == []
    bench = FakeBench(_slower("slow-post"), seed=2)
    off = run_ci(settings, _options(tmp_path, SLOW, profile=Explain.NONE),
                 kernels=FakeKernels(tmp_path), bench=bench)
    assert off.explanation is None and bench.profiles == [] and off.exit_code == 1
    everything = FakeBench(seed=1)
    run_ci(settings, _options(tmp_path, profile=Explain.ALL), kernels=FakeKernels(tmp_path),
           bench=everything)
    assert len(everything.profiles) == 2  # A/A: both ends, every gated benchmark
    with pytest.raises(InputError, match="changed, all, none"):
        parse_explain("some")


def test_a_profile_that_fails_is_said_and_the_verdict_stands(settings, tmp_path, capsys):
    bench = FakeBench(_slower("slow-post"), seed=2)
    real = bench.profile

    def broken(*args):
        raise BuildError("the instruction-count plugin does not compile")
    bench.profile = broken
    code = gate(settings, _options(tmp_path, SLOW), kernels=FakeKernels(tmp_path), bench=bench)
    out = capsys.readouterr().out
    assert code == 1 and "The profile could not be taken" in out
    bench.profile = real
    assert "does not compile" in (tmp_path / "reports" / "summary.md").read_text()


def test_the_gate_prints_where_the_instructions_went(settings, tmp_path, capsys):
    code = gate(settings, _options(tmp_path, SLOW), kernels=FakeKernels(tmp_path),
                bench=FakeBench(_slower("slow-post"), seed=2))
    out = capsys.readouterr().out
    assert code == 1
    assert "where the instructions went" in out
    assert "    post_one_notification +36 instr/op (+50 %)" in out
    where = out[out.index("where the instructions went"):out.index("\nreport:")]
    assert max(len(line) for line in where.splitlines()) <= 80


def test_the_plugin_argv_and_kvm_refused():
    spec = VmSpec(Path("/k"), Path("/i"), Path("/c"), accel="icount", plugin=Path("/p.so"),
                  plugin_out=Path("/r/insns.txt"),
                  plugin_symbols=(Path("/s"), Path("/q"), Path("/f")))
    argv = qemu_argv(spec)
    assert argv[argv.index("-plugin") + 1] == \
        "file=/p.so,out=/r/insns.txt,symbols=/s,irq=/q,softirq=/f"
    with pytest.raises(ValueError, match="cannot run under kvm"):
        qemu_argv(VmSpec(Path("/k"), Path("/i"), Path("/c"), accel="kvm", plugin=Path("/p")))


def test_the_header_a_user_names_wins_and_a_wrong_one_is_refused(tmp_path):
    header = tmp_path / "qemu-plugin.h"
    header.write_text("/* */\n")
    mine = Settings().scratch(tmp_path / "c")
    mine.qemu.plugin_header = str(header)
    assert plugin.header(mine) == header
    mine.qemu.plugin_header = str(tmp_path / "nope.h")
    with pytest.raises(BuildError, match="not a file"):
        plugin.header(mine)


def test_deb_src_entries_come_from_the_machines_deb_entries(tmp_path):
    (tmp_path / "sources.list").write_text("deb http://m/debian bookworm main\n# deb x y\n")
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/k.gpg\n\n"
        "Types: deb-src\nURIs: http://x\nSuites: y\nComponents: main\n")
    lines = deb_src_lines((tmp_path / "sources.list", parts))
    assert lines == [
        "deb-src http://m/debian bookworm main",
        "deb-src [signed-by=/usr/share/keyrings/k.gpg] http://deb.debian.org/debian bookworm main",
        "deb-src [signed-by=/usr/share/keyrings/k.gpg] http://deb.debian.org/debian "
        "bookworm-updates main"]
    options = apt_options(tmp_path / "apt")
    assert f"Dir::State={tmp_path / 'apt' / 'state'}" in options
    assert "Dir::Etc::SourceParts=/dev/null" in options
