"""KernelMake builds its argv and environment as data: check them without running make."""

from pathlib import Path

from watchbench.kernel.kmake import KernelMake, first_errors


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
