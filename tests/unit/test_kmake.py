"""KernelMake builds its argv and environment as data: check them without running make."""

from pathlib import Path

import pytest

from watchbench.errors import CommandError, ConfigError
from watchbench.kernel.kmake import KernelMake, first_errors, missing_tools


def test_argv_without_ccache_is_plain_make():
    make = KernelMake(Path("/src/linux"), Path("/out"), jobs=2)
    assert make.argv("bzImage") == ["make", "-C", "/src/linux", "O=/out", "ARCH=x86_64", "-j2", "bzImage"]
    assert "CCACHE_DIR" not in make.env()


def test_ccache_uses_depend_mode_and_a_shared_base_dir(tmp_path):
    make = KernelMake(tmp_path / "trees/t/src", tmp_path / "out", jobs=2,
                      ccache_dir=tmp_path / "ccache", ccache_basedir=tmp_path)
    assert "CC=ccache gcc" in make.argv("bzImage")
    env = make.env()
    # Depend mode: no separate preprocessor pass on a miss (a cold build was ~40 % slower without it).
    assert env["CCACHE_DEPEND"] == "1"
    assert env["CCACHE_BASEDIR"] == str(tmp_path)
    assert env["KBUILD_BUILD_TIMESTAMP"].startswith("Sat Jan  1")


def test_first_errors_names_file_line_and_message():
    log = ("  CC      kernel/watch_queue.o\n"
           "/src/kernel/watch_queue.c:42:7: error: 'x' undeclared\n"
           "/src/kernel/watch_queue.c:43:1: warning: unused\n"
           "ld: vmlinux.o: undefined reference to `foo'\n")
    assert first_errors(log) == ["/src/kernel/watch_queue.c:42: 'x' undeclared",
                                 "ld: vmlinux.o: undefined reference to `foo'"]


def test_only_a_cold_build_after_a_counted_cold_build_gets_a_total(tmp_path):
    """ETA honesty: an incremental build (vmlinux present) never gets the cold count."""
    from watchbench.kernel.build import expected_steps

    out, stamp = tmp_path / "build", tmp_path / "steps"
    out.mkdir()
    assert expected_steps(out, stamp) == 0  # the first cold build: no total at all
    stamp.write_text("2950")
    assert expected_steps(out, stamp) == 2950
    (out / "vmlinux").write_bytes(b"")
    assert expected_steps(out, stamp) == 0  # incremental: unknown, so nothing promised


def test_the_build_progress_promises_nothing_without_a_total():
    from watchbench.host.progress import Progress
    from watchbench.kernel.build import _BuildProgress

    seen: list[str] = []

    class Lines(Progress):
        def __init__(self):
            super().__init__("build")

        def update(self, message):
            seen.append(message)

    counter = _BuildProgress(Lines(), expected=0)
    for i in range(40):
        counter(f"  CC      kernel/f{i}.o")
    assert seen and not any("left" in line or "/" in line.split()[0] for line in seen)


# The end of a real config.log on a machine without flex (before `./wb deps`).
NO_FLEX = """  HOSTCC  scripts/kconfig/expr.o
  LEX     scripts/kconfig/lexer.lex.c
make[1]: Leaving directory '/cache/trees/debian/kconfig-stage'
/bin/sh: 1: flex: not found
make[3]: *** [/cache/trees/debian/src/scripts/Makefile.host:9: scripts/kconfig/lexer.lex.c] Error 127
make[2]: *** [/cache/trees/debian/src/Makefile:707: allnoconfig] Error 2
"""


def test_a_missing_host_tool_is_named_with_the_command_that_installs_it(tmp_path):
    assert missing_tools(NO_FLEX) == ["flex"]
    assert missing_tools(NO_FLEX + "/bin/sh: 1: bison: not found\n/bin/sh: 1: flex: not found\n"
                         "bash: bc: command not found\n") == ["flex", "bison", "bc"]
    assert missing_tools("CC kernel/fork.o\nerror: 'x' not found in scope\n") == []

    class NoFlex:
        def run(self, argv, *, log=None, **kw):
            Path(log).write_text(NO_FLEX)
            raise CommandError(argv, 2, NO_FLEX)

    make = KernelMake(tmp_path / "src", tmp_path / "out", jobs=2, runner=NoFlex())
    with pytest.raises(ConfigError) as caught:
        make.allnoconfig(tmp_path / "all.config")
    assert "(flex not found)" in caught.value.message
    assert "./wb deps" in caught.value.hint and caught.value.log == tmp_path / "out/config.log"
