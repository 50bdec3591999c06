"""--kernel-args and --kconfig-add (issue 30, part 3: kunit's --kernel_args and
--kconfig_add): checked at the boundary, carried into the QEMU argv and the merged
configuration (so the config hash, the allnoconfig cache key and the kernel's key),
recorded in every run's provenance, and runs that differ in them never compared. The
boots and makes are faked (tests/fakes.py, a Kconfig stand-in below); a real kernel
proof belongs to the integration tier."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from invoke import Config, Context
from invoke.exceptions import Exit

import tasks
from tests.fakes import FakeBench, FakeKernels, ReplayRunner
from watchbench.cli.options import boot_options
from watchbench.errors import ConfigError, InputError
from watchbench.flows.check import CheckOptions, run_check
from watchbench.flows.ci import CiOptions, run_ci
from watchbench.flows.shard import run_merge, run_shard
from watchbench.host.git import Git
from watchbench.host.progress import Silent
from watchbench.host.runner import Completed, default_runner
from watchbench.kernel import kconfig_cache, variant
from watchbench.kernel.build import Kernel, build_key
from watchbench.kernel.configure import configure
from watchbench.kernel.kconfig import parse_fragment
from watchbench.kernel.trees import Tree, TreeKind
from watchbench.results import rundir
from watchbench.results.store import ingest_run, load_runs
from watchbench.settings import (
    KCONFIG_ADD,
    RESERVED_KERNEL_ARGS,
    Settings,
    kconfig_add_refusal,
    kernel_args_refusal,
    kernel_words,
)
from watchbench.stats.compare import ComparisonError, compare_frames
from watchbench.suite import run as suite_run
from watchbench.vm import boot
from watchbench.vm.qemu import VmSpec, qemu_argv
from watchbench.vm.session import Guest


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(Settings(), cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs",
                   reports_dir=tmp_path / "reports")


# --- the rules, declared once in settings -------------------------------------------------


@pytest.mark.parametrize("text", ["", "nokaslr", "nokaslr mitigations=off",
                                  'dyndbg="file wq.c +p" debugfs=off', "printk.time=1",
                                  "panic_on_warn=1", "initcall_debug", "earlyprintk=serial"])
def test_ordinary_boot_parameters_are_allowed(text):
    assert kernel_args_refusal(text) == ""


@pytest.mark.parametrize(("text", "reason"), [
    ("nokaslr\nconsole=ttyS1", "control character"), ("a\tb", "control character"),
    ("console=ttyS1", "sets console"), ("panic=0", "sets panic"), ("oops=continue", "sets oops"),
    ("init=/bin/sh", "sets init"), ("rdinit=/bin/sh", "sets rdinit"),
    ("loglevel=1", "sets loglevel"), ("quiet", "sets quiet"), ("a=1 console=tty0", "sets console"),
    ("nokaslr -- x", "holds --"), ('dyndbg="x', "unbalanced"), ("x" * 1025, "at most 1024"),
])
def test_parameters_that_would_break_the_run_are_refused_with_the_reason(text, reason):
    assert reason in kernel_args_refusal(text)


def test_every_parameter_qemu_argv_sets_itself_is_reserved():
    """The reserved list and vm.qemu's own append stay in step."""
    argv = qemu_argv(VmSpec(Path("/k"), Path("/i"), Path("/c")))
    own = argv[argv.index("-append") + 1].split()
    assert {w.split("=")[0] for w in own} <= set(RESERVED_KERNEL_ARGS)


def test_the_kernel_splits_words_at_spaces_outside_quotes():
    assert kernel_words(' nokaslr  dyndbg="file wq.c +p" a=b ') == (
        "nokaslr", 'dyndbg="file wq.c +p"', "a=b")
    assert kernel_words("") == ()


@pytest.mark.parametrize("item", ["CONFIG_X=y", "CONFIG_X=m", "CONFIG_X=n", "CONFIG_HZ=250",
                                  "CONFIG_A_1=-3", "CONFIG_B=0x1f", 'CONFIG_S="a b \\" c"'])
def test_a_kconfig_addition_is_a_fragment_line_the_fragment_parser_reads(item):
    assert KCONFIG_ADD.fullmatch(item) and kconfig_add_refusal((item,)) == ""
    name, value = item.split("=", 1)
    assert parse_fragment(item, "x")[name[len("CONFIG_"):]].value == value


@pytest.mark.parametrize(("items", "reason"), [
    (("CONFIG_x=y",), "is not CONFIG_NAME"), (("X=y",), "is not"), (("CONFIG_X",), "is not"),
    (("CONFIG_X=yes",), "is not"), (("CONFIG_X=y\nCONFIG_Y=y",), "is not"), (("",), "is not"),
    (('CONFIG_S="a',), "is not"), (("CONFIG_X=y", "CONFIG_X=n"), "contradicts"),
    ("CONFIG_X=y", "a list"),
])
def test_a_bad_kconfig_addition_is_refused_naming_it(items, reason):
    assert reason in kconfig_add_refusal(items)


def test_the_same_addition_twice_is_one_addition():
    assert kconfig_add_refusal(("CONFIG_X=y", "CONFIG_X=y")) == ""


@pytest.mark.parametrize(("data", "named"), [
    ({"kernel_args": "console=ttyS1"}, "watchbench.kernel_args"),
    ({"kconfig_add": ["CONFIG_X=maybe"]}, "watchbench.kconfig_add"),
    ({"kconfig_add": "CONFIG_X=y,CONFIG_X=n"}, "contradicts"),
])
def test_the_settings_refuse_what_the_options_refuse(data, named):
    with pytest.raises(InputError, match=re.escape(named)):
        Settings.from_mapping(data, {f"watchbench.{k}": "invoke.yaml" for k in data})


def test_the_settings_read_both_from_a_config_file():
    got = Settings.from_mapping({"kernel_args": "nokaslr", "kconfig_add": ["CONFIG_X=y"]})
    assert got.kernel_args == "nokaslr" and got.kconfig_add == ("CONFIG_X=y",)
    assert Settings().kernel_args == "" and Settings().kconfig_add == ()


def test_given_options_replace_the_settings_and_bad_ones_name_option_and_value(settings):
    configured = replace(settings, kernel_args="nokaslr", kconfig_add=("CONFIG_A=y",))
    assert boot_options(configured, "bench") == configured
    given = boot_options(configured, "bench", "mitigations=off", ["CONFIG_B=y"])
    assert given.kernel_args == "mitigations=off" and given.kconfig_add == ("CONFIG_B=y",)
    with pytest.raises(InputError, match=r"--kernel-args 'oops=continue': sets oops") as bad:
        boot_options(settings, "ci", "oops=continue")
    assert "./wb ci --kernel-args" in bad.value.hint
    with pytest.raises(InputError, match=r"--kconfig-add: 'CONFIG_x=y'") as bad:
        boot_options(settings, "build", None, ["CONFIG_x=y"])
    assert "./wb build --kconfig-add" in bad.value.hint


# --- into the QEMU argv -----------------------------------------------------------------


def test_the_extra_parameters_come_last_on_the_kernel_command_line(tmp_path):
    base = tmp_path / "base.cpio.gz"
    base.write_bytes(b"")
    guest = Guest(tmp_path / "bzImage", base, "tcg", tmp_path / "cache",
                  kernel_args=("nokaslr", 'dyndbg="file wq.c +p"'))
    argv = qemu_argv(guest.spec(tmp_path, None, False, ("kasan_multi_shot",)))
    assert argv[argv.index("-append") + 1] == (
        'console=ttyS0 panic=-1 oops=panic kasan_multi_shot nokaslr dyndbg="file wq.c +p"')
    with pytest.raises(ValueError, match="control character"):
        qemu_argv(VmSpec(Path("/k"), Path("/i"), Path("/c"), append=("a\nb",)))


def test_every_pipeline_guest_gets_the_settings_parameters_but_not_the_kvm_probe(
        tmp_path, monkeypatch, settings):
    kernel = type("K", (), {"bzimage": tmp_path / "bzImage"})()
    monkeypatch.setattr(boot, "base_initramfs", lambda *a: tmp_path / "base.cpio.gz")
    probed: list[tuple[str, ...]] = []
    monkeypatch.setattr(Guest, "run", lambda self, *a, **kw: probed.append(self.kernel_args))

    def resolve(requested, cache_dir, runner, boot_probe):
        boot_probe(10.0)
        return "tcg", "test"

    monkeypatch.setattr(boot, "resolve", resolve)
    prepared = boot.prepare(replace(settings, kernel_args='nokaslr a="b c"'), "auto", kernel)
    assert prepared.guest.kernel_args == ("nokaslr", 'a="b c"')
    assert probed == [()]


def _kernel(tmp_path: Path) -> Kernel:
    directory = tmp_path / "kernels" / "k"
    directory.mkdir(parents=True)
    return Kernel("k" * 16, directory, "6.12.0-fake", "t", "b" * 40, "base", "h" * 40, "", "",
                  "", "c" * 16, "gcc", 0.0, 0)


def test_a_run_boots_with_them_and_its_manifest_records_both(tmp_path, monkeypatch, settings):
    """run_bench end to end over a replayed boot: the argv QEMU got, the normalized argv
    (and so its hash) and the manifest say the parameters; the manifest says the kconfig
    additions the kernel was configured with."""
    base = tmp_path / "base.cpio.gz"
    base.write_bytes(b"")
    monkeypatch.setattr(boot, "base_initramfs", lambda *a: base)
    monkeypatch.setattr(suite_run, "qemu_version", lambda runner: "QEMU emulator version 7.2")
    chosen = replace(settings, kernel_args="nokaslr mitigations=off",
                     kconfig_add=("CONFIG_DEBUG_FS=y",))
    run_dir = suite_run.run_bench(chosen, "conformance", "tcg", kernel=_kernel(tmp_path),
                                  runner=ReplayRunner("clean", "clean.channel.log"),
                                  kernel_args=("debugfs=off",))
    meta = rundir.read_whole_manifest(run_dir)
    assert meta["kernel_args"] == ["nokaslr", "mitigations=off", "debugfs=off"]
    assert meta["kconfig_add"] == ["CONFIG_DEBUG_FS=y"]
    for argv in (meta["qemu_argv"], meta["qemu_argv_full"]):
        assert argv[argv.index("-append") + 1].endswith(" nokaslr mitigations=off debugfs=off")
    plain = suite_run.run_bench(settings, "conformance", "tcg", kernel=_kernel(tmp_path / "p"),
                                runner=ReplayRunner("clean", "clean.channel.log"))
    other = rundir.read_whole_manifest(plain)
    assert other["kernel_args"] == [] and other["kconfig_add"] == []
    assert other["qemu_argv_hash"] != meta["qemu_argv_hash"]


# --- into the configuration, its hash and the kernel's key ------------------------------


class KconfigRunner:
    """git as it is; ``make allnoconfig`` as Kconfig would leave it: every requested
    option set, except those whose dependency is off (``NEEDS_DEP`` depends on
    ``MISSING_DEP``, which nothing turns on)."""

    def __init__(self) -> None:
        self.makes = 0

    def run(self, argv, **kw):
        argv = [str(a) for a in argv]
        if argv[0] == "git":
            return default_runner.run(argv, **kw)
        if argv[0] == "make":
            self.makes += 1
            out = Path(next(a for a in argv if a.startswith("O="))[2:])
            wanted = Path(kw["env"]["KCONFIG_ALLCONFIG"]).read_text().splitlines()
            lines = ["# CONFIG_NEEDS_DEP is not set" if line.startswith("CONFIG_NEEDS_DEP=")
                     else line for line in wanted]
            (out / ".config").write_text("#\n# generated\n#\n" + "\n".join(lines) + "\n")
        return Completed(argv, 0, "tool 1.0\n", "", 0.0)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    src = tmp_path / "tree" / "src"
    (src / "scripts").mkdir(parents=True)
    (src / "scripts" / "cc-version.sh").write_text("echo gcc\n")
    git = Git(src)
    git("init", "-q")
    (src / "Kconfig").write_text('config WATCH_QUEUE\n\tbool "wq"\n\nconfig DEBUG_FS\n'
                                 '\tbool "debugfs"\n\nconfig NEEDS_DEP\n\tbool "needs"\n'
                                 "\tdepends on MISSING_DEP\n")
    (src / "Makefile").write_text("VERSION = 6\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    return Tree("t", src.parent, TreeKind.USER, str(src), git.head(), "base")


@pytest.fixture
def project(tmp_path: Path, settings: Settings) -> Settings:
    (tmp_path / "project" / "kconfig").mkdir(parents=True)
    (tmp_path / "project" / "kconfig" / "a.config").write_text(
        "CONFIG_WATCH_QUEUE=y\n# CONFIG_DEBUG_FS is not set\n")
    return replace(settings, project_root=tmp_path / "project", sandbox=False)


def test_an_addition_is_merged_after_the_fragments_and_moves_hash_cache_and_key(tree, project):
    runner = KconfigRunner()
    plain = configure(tree, project, ["a"], runner)
    assert tree.config_additions == []
    added = configure(tree, replace(project, kconfig_add=("CONFIG_DEBUG_FS=y",)), ["a"], runner)
    # after the fragments, winning over a.config's "is not set"
    assert added.requested["DEBUG_FS"].value == "y"
    assert added.requested["DEBUG_FS"].where == "--kconfig-add:1"
    assert "CONFIG_DEBUG_FS=y" in added.dotconfig.read_text()
    assert tree.config_additions == ["CONFIG_DEBUG_FS=y"] and tree.config_hash == added.hash
    assert added.hash != plain.hash
    assert runner.makes == 2  # the additions are in the allnoconfig cache key
    assert len(list((project.cache_dir / "kconfig").glob("*.config"))) == 2
    head = tree.git().head()
    assert build_key(tree, head, "", added.hash, "gcc") != build_key(tree, head, "", plain.hash,
                                                                     "gcc")
    configure(tree, replace(project, kconfig_add=("CONFIG_DEBUG_FS=y",)), ["a"], runner)
    assert runner.makes == 2  # the same additions again: the cached allnoconfig
    key = kconfig_cache.cache_key(tree, "CONFIG_DEBUG_FS=y\n", runner)
    assert key != kconfig_cache.cache_key(tree, "", runner)


def test_an_addition_that_does_not_survive_names_its_dependency(tree, project):
    with pytest.raises(ConfigError) as failed:
        configure(tree, replace(project, kconfig_add=("CONFIG_NEEDS_DEP=y",)), ["a"],
                  KconfigRunner())
    text = str(failed.value)
    assert "CONFIG_NEEDS_DEP=y (asked at --kconfig-add:1) ended up n" in text
    assert "depends on MISSING_DEP  [MISSING_DEP=n]" in text
    assert "--kconfig-add" in failed.value.hint


def test_the_current_tree_is_configured_again_when_the_additions_change(tree, project,
                                                                        monkeypatch):
    configure(tree, project, ["a"], KconfigRunner())
    built: list[str] = []
    monkeypatch.setattr(variant, "build", lambda *a, **kw: built.append("build"))
    monkeypatch.setattr(variant.Composer, "_configured_build",
                        lambda self, t, fragments, force: built.append("configure"))
    variant.Composer(project, tree)._current(False)
    assert built == ["build"]  # as configured: built as it stands
    variant.Composer(replace(project, kconfig_add=("CONFIG_DEBUG_FS=y",)), tree)._current(False)
    assert built == ["build", "configure"]
    assert "config_additions" in variant.STATE_FIELDS  # put back by Composer.restore


# --- provenance and the refusals ----------------------------------------------------------


def test_both_sides_of_a_ci_run_share_them_and_record_them(settings, tmp_path):
    chosen = replace(settings, kernel_args="nokaslr", kconfig_add=("CONFIG_DEBUG_FS=y",))
    bench = FakeBench()
    result = run_ci(chosen, CiOptions(series="", out=tmp_path / "r", jobs=1, rounds=2),
                    kernels=FakeKernels(tmp_path), bench=bench)
    ids = [b["run_id"] for b in bench.boots]
    assert result.rounds == 2 and len(ids) == 4
    for run_id in ids:
        meta = rundir.read_whole_manifest(chosen.runs_dir / run_id)
        assert meta["kernel_args"] == ["nokaslr"] and meta["kconfig_add"] == ["CONFIG_DEBUG_FS=y"]


def _run(settings: Settings, kernels: FakeKernels, label: str) -> str:
    kernel = kernels.kernel(None)
    return FakeBench()(settings, "ci", "icount", label=label, kernel=kernel).name


@pytest.mark.parametrize(("change", "named"), [
    ({"kernel_args": "nokaslr"}, "kernel_args"),
    ({"kconfig_add": ("CONFIG_DEBUG_FS=y",)}, "kconfig_add"),
])
def test_compare_refuses_runs_that_differ_in_them(settings, tmp_path, change, named):
    kernels = FakeKernels(tmp_path)
    a = [_run(settings, kernels, "a") for _ in range(2)]
    b = [_run(replace(settings, **change), kernels, "b") for _ in range(2)]
    same = [_run(settings, kernels, "c") for _ in range(2)]
    df = load_runs(settings.runs_dir)
    assert not compare_frames(df, a, same).empty  # no additions on either side: compared
    with pytest.raises(ComparisonError, match=f"runs differ in {named}"):
        compare_frames(df, a, b)
    with pytest.raises(ComparisonError, match=f"runs differ in {named}"):
        compare_frames(df, a, [same[0], b[0]])  # a mixed side too
    context = Context(Config(overrides={"watchbench": {"runs_dir": str(settings.runs_dir)}}))
    with pytest.raises(Exit) as refused:
        tasks.compare(context, ",".join(a), ",".join(b))
    assert refused.value.code == 2


def test_runs_from_before_they_were_recorded_count_as_none(settings, tmp_path):
    kernels = FakeKernels(tmp_path)
    old = [_run(settings, kernels, "old") for _ in range(2)]
    for run_id in old:  # as a manifest written before kernel_args and kconfig_add
        path = settings.runs_dir / run_id / rundir.MANIFEST_FILE
        meta = json.loads(path.read_text())
        del meta["kernel_args"], meta["kconfig_add"]
        path.write_text(json.dumps(meta))
        ingest_run(settings.runs_dir / run_id)
    new = [_run(settings, kernels, "new") for _ in range(2)]
    assert not compare_frames(load_runs(settings.runs_dir), old, new).empty


def _shard(tmp_path: Path, name: str, index: int, **change) -> Path:
    machine = replace(Settings(), cache_dir=tmp_path / name / "cache",
                      runs_dir=tmp_path / name / "runs", **change)
    return run_shard(machine, CiOptions(series="", out=tmp_path / "artifacts", jobs=1, rounds=4),
                     f"{index}/2", kernels=FakeKernels(tmp_path / name), bench=FakeBench()
                     ).directory


@pytest.mark.parametrize(("change", "named"), [
    ({"kernel_args": "nokaslr"}, "in kernel_args: ['nokaslr'], not []"),
    ({"kconfig_add": ("CONFIG_DEBUG_FS=y",)}, "in kconfig_add: ['CONFIG_DEBUG_FS=y'], not []"),
])
def test_a_merge_of_shards_that_differ_in_them_is_refused_naming_the_field(tmp_path, change,
                                                                           named):
    dirs = [_shard(tmp_path, "one", 1), _shard(tmp_path, "two", 2, **change)]
    record = json.loads((dirs[1] / "shard.json").read_text())
    assert record["fingerprint"][next(iter(change))]  # the shard records them
    merge = replace(Settings(), cache_dir=tmp_path / "m" / "cache", runs_dir=tmp_path / "m" / "runs")
    with pytest.raises(InputError, match="shard 2/2") as refused:
        run_merge(merge, dirs, tmp_path / "merged")
    assert named in str(refused.value)
    assert not merge.runs_dir.exists()


def test_shards_that_share_them_merge(tmp_path):
    same = {"kernel_args": "nokaslr", "kconfig_add": ("CONFIG_DEBUG_FS=y",)}
    dirs = [_shard(tmp_path, "one", 1, **same), _shard(tmp_path, "two", 2, **same)]
    merge = replace(Settings(), cache_dir=tmp_path / "m" / "cache", runs_dir=tmp_path / "m" / "runs")
    assert run_merge(merge, dirs, tmp_path / "merged").exit_code == 0


def test_a_check_records_them_in_its_provenance(settings, tmp_path):
    from tests.unit.test_check_flow import clients, replay

    chosen = replace(settings, kernel_args="nokaslr", kconfig_add=("CONFIG_DEBUG_FS=y",))
    result = run_check(chosen, CheckOptions(out=tmp_path / "reports", accel="tcg"),
                       kernels=FakeKernels(tmp_path), boot=replay("clean"),
                       get_clients=clients(), progress=Silent())
    record = json.loads(result.record.read_text())
    assert record["kernel_args"] == ["nokaslr"] and record["kconfig_add"] == ["CONFIG_DEBUG_FS=y"]
