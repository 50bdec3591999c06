from pathlib import Path

import pytest

from watchbench.errors import InputError
from watchbench.guest.initramfs import discover_programs
from watchbench.suite.definition import load_suite, suites_dir
from watchbench.suite.run import normalized_argv
from watchbench.vm.qemu import Share, VmSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(suites_dir(ROOT).glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_suites_load_and_name_real_programs(path):
    suite = load_suite(ROOT, path.stem)
    programs = {p.name for p in discover_programs(ROOT / "userspace")}
    for run in suite.runs:
        if run.kind == "python":
            assert (ROOT / run.path).is_dir()
            assert "--benchmark-save-data" in run.command().argv and run.command().side == "host"
        else:
            assert run.program in programs, run.program
    assert suite.runs[0].kind == "conformance", "conformance must run first"


def test_bad_suite_files(tmp_path):
    with pytest.raises(InputError, match="known suites: .*quick"):
        load_suite(ROOT, "nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[run]]\nname = "x"\nkind = "rust"\nprogram = "p"\n')
    with pytest.raises(InputError, match=r"bad.toml \[\[run\]\] #1: kind 'rust'"):
        load_suite(ROOT, str(bad))
    bad.write_text("[suite\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_suite(ROOT, str(bad))


def test_qemu_argv_hash_ignores_per_boot_paths():
    def spec(workdir):
        return VmSpec(Path("/k1/bzImage"), Path(f"{workdir}/initrd"), Path(f"{workdir}/chan"),
                      "icount", shares=(Share("results", Path(f"{workdir}/raw")),))
    assert normalized_argv(spec("/a")) == normalized_argv(spec("/b"))
    assert "KERNEL" in normalized_argv(spec("/a")) and "-icount" in normalized_argv(spec("/a"))
