"""A finding's stack trace decoded to file:line (kernel.decode): for real, by the kernel's
own scripts/decode_stacktrace.sh in the build sandbox, on a tiny program built with
``gcc -g`` that stands in for vmlinux (its functions named and filed as the kernel's); the
reasons a trace stays raw; and the recorded decode (tests/data/check/decoded/) as the
terminal, summary.md and JUnit show it.

The script comes from the test cache's Debian tree, as a check takes it from the tree it
builds (kernel.build.keep_for_decoding). On a fresh machine the fast tier runs before the
kernel tier has fetched that tree: the same test then runs a stand-in script of ours (nm
and addr2line, the kernel's script's interface), which still proves the seam for real (the
kept files, bubblewrap, addr2line on real DWARF inside it, the parsing); the kernel's own
script on a real debug vmlinux is proven by the check's kernel tier
(tests/integration/test_check_integration.py)."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.fakes import FakeRunner
from watchbench.cli.host import suite_cache
from watchbench.errors import CommandError, CommandTimeout, SandboxError
from watchbench.host import sandbox
from watchbench.host.runner import Completed, Runner, default_runner
from watchbench.kernel import decode
from watchbench.kernel.build import DECODE_DIR, DECODE_SCRIPTS, Kernel, keep_for_decoding
from watchbench.kernel.decode import Decoded, NotDecoded
from watchbench.report import correctness
from watchbench.results import ktap
from watchbench.results.ktap import Outcome, Part
from watchbench.settings import Settings
from watchbench.suite.check import Finding, FindingKind

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "tests" / "data" / "check" / "decoded"
TEST_CACHE = suite_cache(Settings())

def _sources(program: Path) -> dict[str, str]:
    """The stand-in's files, from the one copy kept beside the recording: each begins with
    its path on a ``/* path */`` line."""
    parts = re.split(r"^/\* (\S+) \*/\n", program.read_text(), flags=re.M)
    return {name: text.rstrip("\n") + "\n"
            for name, text in zip(parts[1::2], parts[2::2], strict=True)}


# The stand-in "kernel": each function in the file the kernel has it in, so the decoded
# paths read as a real report's. kernel_init in init/main.c is how the script finds the
# tree's root ("auto").
SOURCES = _sources(RECORDED / "program.c")
FILE_OF = {"kernel_init": "init/main.c", "dump_stack_lvl": "lib/dump_stack.c",
           "print_report": "mm/kasan/report.c", "kasan_report": "mm/kasan/report.c",
           "watch_queue_set_filter": "kernel/watch_queue.c", "__x64_sys_ioctl": "fs/ioctl.c",
           "do_syscall_64": "arch/x86/entry/syscall.c",
           "entry_SYSCALL_64_after_hwframe": "arch/x86/entry/common.c"}
# A KASAN report as the debug kernel prints it (tests/data/check/filter-oob), on the
# stand-in's functions: {name} is name+0xOFFSET/0xSIZE, the offset in mid-function.
SPLAT = """\
[    8.850511] ==================================================================
[    8.851314] BUG: KASAN: slab-out-of-bounds in {watch_queue_set_filter}
[    8.852572] Write of size 4 at addr ffff888006f584dc by task wq-conformance/75
[    8.852891]
[    8.853494] CPU: 0 UID: 0 PID: 75 Comm: wq-conformance Not tainted 6.12.117+ #2
[    8.854071] Call Trace:
[    8.854157]  <TASK>
[    8.854273]  {dump_stack_lvl}
[    8.854353]  {print_report}
[    8.854407]  ? {watch_queue_set_filter}
[    8.854450]  {kasan_report}
[    8.854493]  {watch_queue_set_filter}
[    8.854536]  {__x64_sys_ioctl}
[    8.854682]  {do_syscall_64}
[    8.854706]  {entry_SYSCALL_64_after_hwframe}
[    8.854798] RIP: 0033:0x440d9b
[    8.854985] Code: {code}
[    8.855298] RSP: 002b:00007ffd06b60d50 EFLAGS: 00000246 ORIG_RAX: 0000000000000010
[    8.855597]  </TASK>
"""
# A user-space "Code:" line (the filter-oob boot's): decodecode disassembles it.
CODE = ("00 48 89 44 24 18 31 c0 48 8d 44 24 60 c7 04 24 10 00 00 00 48 89 44 24 08 48 8d "
        "44 24 20 48 89 44 24 10 b8 10 00 00 00 0f 05 <89> c2 3d 00 f0 ff ff 77 1c 48 8b 44 "
        "24 18 64 48 2b 04 25 28 00 00")
WHAT = "kernel bug: BUG: KASAN: slab-out-of-bounds in {watch_queue_set_filter}"
# What the test cache's Debian tree is not there yet to give: our stand-in for the
# kernel's script, with its interface (vmlinux and base path as arguments, the trace on
# stdin, "name (file:line)" for each frame it resolves).
STAND_IN = r"""#!/bin/bash
vmlinux=$1
while IFS= read -r line; do
	if [[ $line =~ ([A-Za-z0-9_.]+)\+(0x[0-9a-f]+)/0x[0-9a-f]+ ]]; then
		name=${BASH_REMATCH[1]}
		base=$(nm "$vmlinux" | awk -v n="$name" '$3 == n {print $1; exit}')
		code=$(addr2line -e "$vmlinux" "$(printf '%x' $((0x$base + ${BASH_REMATCH[2]})))")
		line=${line/${BASH_REMATCH[0]}/$name ($code)}
	fi
	echo "$line"
done
"""


def debian_src() -> Path | None:
    """The test cache's Debian tree, when the kernel tier has fetched it (read only)."""
    found = sorted((TEST_CACHE / "trees").glob("debian-*/src/scripts/decode_stacktrace.sh"))
    return found[-1].parents[1] if found else None


@dataclass
class Stand:
    """A kernel as kernel.build leaves one, around the stand-in program."""

    kernel: Kernel
    raw: str
    what: str
    lines: dict[str, range]  # file -> the lines of the functions in it
    real_script: bool


def _functions(runner: Runner, binary: Path) -> dict[str, tuple[int, int]]:
    """name -> (address, size) of the program's text symbols (nm -S)."""
    found = {}
    for line in runner.run(["nm", "-S", str(binary)]).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            found[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    return found


def stand_in_kernel(tmp: Path, runner: Runner = default_runner,
                    tree: Path | None = None) -> Stand:
    """Build the stand-in with ``gcc -g`` in ``tmp`` and keep it as a kernel is kept, with
    the decode scripts of ``tree`` (the Debian tree's, or our stand-in's)."""
    src, out = tmp / "src", tmp / "out"
    for name, text in SOURCES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    out.mkdir(parents=True, exist_ok=True)
    runner.run(["gcc", "-g", "-O0", "-fno-inline", "-o", str(out / "vmlinux"),
                *(str(src / name) for name in SOURCES)], timeout=120)
    (out / ".config").write_text("CONFIG_DEBUG_KERNEL=y\nCONFIG_DEBUG_INFO=y\n")
    real = tree is not None
    if tree is None:
        tree = tmp / "stand-in-tree"
        for name in DECODE_SCRIPTS:
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_text(STAND_IN)
    kernel_dir = tmp / "kernel"
    kernel_dir.mkdir()
    (kernel_dir / "config").write_text((out / ".config").read_text())
    assert keep_for_decoding(tree, out, kernel_dir) == []
    functions = _functions(runner, out / "vmlinux")
    frames = {name: f"{name}+{size // 2:#x}/{size:#x}"
              for name, (_, size) in functions.items() if name in FILE_OF}
    lines: dict[str, range] = {}
    for name, text in SOURCES.items():
        lines[name] = range(1, len(text.splitlines()) + 1)
    kernel = Kernel("stand-in", kernel_dir, "6.12.0-stand-in", "t", "b" * 40, "base", "h",
                    "", "", "", "c" * 16, "gcc", 0.0, 0)
    return Stand(kernel, SPLAT.format(code=CODE, **frames), WHAT.format(**frames), lines, real)


@pytest.fixture
def stand(tmp_path: Path) -> Stand:
    return stand_in_kernel(tmp_path, tree=debian_src())


DECODED_FRAME = re.compile(r"\b(?P<name>\w+) \((?P<file>[\w/.-]+\.c):(?P<line>\d+)")


def assert_decoded(stand: Stand, decoded: Decoded) -> None:
    assert decoded.why is None, decoded.reason()
    frames = {m["name"]: m for m in DECODED_FRAME.finditer(decoded.text)}
    # every function of the trace, in its own file, on one of that file's lines
    assert set(frames) >= set(FILE_OF) - {"kernel_init"}, decoded.text
    for name, match in frames.items():
        path = match["file"]
        assert path.endswith(FILE_OF[name]), (name, path)
        assert int(match["line"]) in stand.lines[FILE_OF[name]], (name, match[0])
        if stand.real_script:  # "auto" found the tree's root by init/main.c
            assert path == FILE_OF[name], (name, path)
    assert "+0x" not in decoded.text.split("Code:")[0]  # every frame resolved
    if stand.real_script:  # decodecode disassembled the Code: line in the sandbox's /tmp
        assert "All code" in decoded.text and "<-- trapping instruction" in decoded.text


def test_a_trace_is_decoded_to_file_and_line_for_real_in_the_sandbox(stand):
    [decoded] = decode.decode(stand.kernel, [stand.raw], sandboxed=True)
    assert_decoded(stand, decoded)
    lines = decoded.text.splitlines()
    assert lines[1].startswith("[    8.851314] BUG: KASAN: slab-out-of-bounds in "
                               "watch_queue_set_filter (")
    assert lines[2] == ("[    8.852572] Write of size 4 at addr ffff888006f584dc by task "
                        "wq-conformance/75")
    assert lines == [ln.rstrip() for ln in lines]


def test_with_the_sandbox_off_it_runs_as_make_does_with_the_same_answer(stand):
    assert decode.argv(stand.kernel, sandboxed=False) == decode.command(stand.kernel)
    [boxed] = decode.decode(stand.kernel, [stand.raw], sandboxed=True)
    [plain] = decode.decode(stand.kernel, [stand.raw], sandboxed=False)
    assert plain == boxed
    assert_decoded(stand, plain)


def test_the_script_sees_only_the_kept_files_read_only_and_no_network(tmp_path):
    kernel = Kernel("k", tmp_path / "k", "r", "t", "b", "l", "h", "", "", "", "c", "gcc", 0, 0)
    argv = decode.argv(kernel, sandboxed=True)
    assert argv[0] == sandbox.BWRAP and "--unshare-all" in argv and "--share-net" not in argv
    assert argv[argv.index("--") + 1:] == ["bash", str(tmp_path / "k/decode/decode_stacktrace.sh"),
                                           str(tmp_path / "k/vmlinux"), "auto"]
    binds = [argv[i:i + 3] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert ["--ro-bind", str(tmp_path / "k/vmlinux"), str(tmp_path / "k/vmlinux")] in binds
    assert ["--ro-bind", str(tmp_path / "k/decode"), str(tmp_path / "k/decode")] in binds
    assert not [b for b in binds if b[0] == "--bind"]  # nothing writable but its own /tmp
    assert not [b for b in binds if b[1].startswith(str(Path.home()))]
    env = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert env["HOME"] == "/tmp" and env["DEBUGINFOD_URLS"] == "" and "--clearenv" in argv
    assert argv[argv.index("--chdir") + 1] == str(tmp_path / "k/decode")


class Answers(Runner):
    """A runner that answers the script with one thing (the real one is above)."""

    def __init__(self, answer: str | Exception):
        self.answer, self.calls = answer, 0

    def run(self, argv, **kw):  # type: ignore[override]
        if argv[0] == sandbox.BWRAP and "true" in argv:  # the sandbox probe
            return Completed(list(argv), 0, "", "", 0.0)
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return Completed(list(argv), 0, self.answer, "WARNING! no luck\n", 0.0)


def _kept(tmp_path: Path, *, config: str = "CONFIG_DEBUG_INFO=y\n", vmlinux: bool = True,
          script: bool = True) -> Kernel:
    kernel = Kernel("k", tmp_path, "r", "t", "b", "l", "h", "", "", "", "c", "gcc", 0, 0)
    (tmp_path / "config").write_text(config)
    if vmlinux:
        kernel.vmlinux.write_bytes(b"\x7fELF")
    if script:
        kernel.decode_script.parent.mkdir(parents=True, exist_ok=True)
        kernel.decode_script.write_text("exit 0\n")
    return kernel


RAW = "[    8.854493]  watch_queue_set_filter+0x5e8/0x710\n"


@pytest.mark.parametrize("kept,answer,why,detail", [
    ({"config": "CONFIG_KASAN=y\n"}, "", NotDecoded.NO_DEBUG_INFO, ""),
    ({"vmlinux": False}, "", NotDecoded.NO_VMLINUX, ""),
    ({"script": False}, "", NotDecoded.NO_SCRIPT, ""),
    ({}, CommandError(["bash"], 2, "line 3: nm: command not found\n"), NotDecoded.FAILED,
     "exit 2: line 3: nm: command not found"),
    ({}, CommandTimeout("command killed after 300 s"), NotDecoded.TIMED_OUT, "after 300 s"),
    ({}, RAW, NotDecoded.UNRESOLVED, "WARNING! no luck"),
])
def test_a_trace_that_cannot_be_decoded_stays_raw_with_one_reason(tmp_path, kept, answer, why,
                                                                  detail):
    runner = Answers(answer)
    [raw, none] = decode.decode(_kept(tmp_path, **kept), [RAW, "not ok 3 no frames here"],
                                sandboxed=False, runner=runner)
    assert (raw.text, raw.why, raw.detail) == ("", why, detail)
    assert len(raw.reason()) < 80 and raw.reason().startswith(str(why))
    assert none == Decoded()  # no frame: nothing to decode, nothing to say
    assert runner.calls == (1 if why in (NotDecoded.FAILED, NotDecoded.TIMED_OUT,
                                         NotDecoded.UNRESOLVED) else 0)


def test_no_sandbox_and_no_time_left_are_reasons_too(tmp_path, monkeypatch):
    kernel = _kept(tmp_path)

    def refused(runner, bwrap=sandbox.BWRAP):
        raise SandboxError("the build sandbox is unavailable: bwrap is not installed")
    monkeypatch.setattr(sandbox, "require", refused)
    [raw] = decode.decode(kernel, [RAW], sandboxed=True, runner=FakeRunner())
    assert raw.reason() == "no sandbox to run the tree's script in (bwrap is not installed)"
    [late] = decode.decode(kernel, [RAW], sandboxed=False, runner=Answers(RAW), budget=0)
    assert late.why is NotDecoded.OUT_OF_TIME


def test_only_a_kernel_with_debug_info_keeps_them_and_never_through_a_link(tmp_path):
    src, out, kept = tmp_path / "src", tmp_path / "out", tmp_path / "kept"
    for path in (src / "scripts", out, kept):
        path.mkdir(parents=True)
    (out / "vmlinux").write_bytes(b"\x7fELF")
    (src / DECODE_SCRIPTS[0]).write_text("echo decode\n")
    (tmp_path / "secret").write_text("host file")
    os.symlink(tmp_path / "secret", src / DECODE_SCRIPTS[1])  # the series' link to the host
    (out / ".config").write_text("CONFIG_KASAN=y\n")
    assert keep_for_decoding(src, out, kept) == [] and not list(kept.iterdir())
    (out / ".config").write_text("CONFIG_DEBUG_INFO=y\n")
    assert keep_for_decoding(src, out, kept) == [f"{src / DECODE_SCRIPTS[1]}: not a plain file"]
    assert (kept / "vmlinux").read_bytes() == b"\x7fELF"
    assert (kept / DECODE_DIR / "decode_stacktrace.sh").stat().st_mode & 0o111
    assert not (kept / DECODE_DIR / "decodecode").exists()
    (out / "vmlinux").unlink()
    os.symlink(tmp_path / "secret", out / "vmlinux")
    assert f"{out / 'vmlinux'}: not a plain file" in keep_for_decoding(src, out, tmp_path / "x")


def test_the_debug_kernel_asks_for_the_debug_info_addr2line_needs():
    fragment = (ROOT / "kconfig" / "debug.config").read_text().splitlines()
    assert {"CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y", "CONFIG_DEBUG_INFO=y",
            "CONFIG_DEBUG_INFO_REDUCED=y"} <= set(fragment)


# The recorded decode: the real script's output on the stand-in (``record`` below).
def recorded_finding() -> Finding:
    raw = (RECORDED / "raw.txt").read_text()
    what = (RECORDED / "what.txt").read_text().strip()
    return Finding("conformance", "set_filter_unknown_types_ignored", what, raw,
                   FindingKind.SPLAT, decoded=(RECORDED / "decoded.txt").read_text().rstrip())


def _report(finding: Finding) -> tuple[list[str], str, ET.Element]:
    part = Part("conformance", ktap.parse(["KTAP version 1", "1..1",
                                           "ok 1 set_filter_unknown_types_ignored"]),
                Outcome.FAIL, (finding.described(),))
    terminal = correctness.terminal_lines("CORRECTNESS FAILURE (exit 4)", [part], [finding],
                                          {}, {})
    summary = correctness.markdown("CORRECTNESS FAILURE (exit 4)", [part], [finding], {})
    return terminal, summary, ET.fromstring(correctness.junit_xml([part], [finding], "r"))


def test_the_recorded_decode_reads_as_file_and_line_in_the_terminal_summary_and_junit():
    finding = recorded_finding()
    terminal, summary, junit = _report(finding)
    quoted = [ln for ln in terminal if ln.startswith("    | ")]
    # a decoded line too long for 80 columns is wrapped, not cut: its file:line is the point
    assert quoted[:2] == ["    | BUG: KASAN: slab-out-of-bounds in watch_queue_set_filter",
                          "    |     (kernel/watch_queue.c:12)"]
    # the frames that matter, decoded; the reporting ones and '? ' ones left out
    assert [q for q in quoted if re.match(r"    \| \w+ \(", q)] == [
        "    | watch_queue_set_filter (kernel/watch_queue.c:12)",
        "    | __x64_sys_ioctl (fs/ioctl.c:7)",
        "    | do_syscall_64 (arch/x86/entry/syscall.c:8)",
        "    | entry_SYSCALL_64_after_hwframe (arch/x86/entry/common.c:5)"]
    assert not any("not decoded" in ln for ln in terminal)
    assert max(map(len, terminal)) <= 80
    assert finding.decoded in summary and finding.evidence in summary
    assert "Stack trace decoded by the tree's scripts/decode_stacktrace.sh:" in summary
    assert summary.index(finding.decoded) < summary.index("<details><summary>raw trace")
    [text] = [f.text for f in junit.iter("failure")]
    assert text.startswith(finding.decoded) and text.endswith(finding.evidence)


def test_a_raw_trace_says_in_one_line_why_it_is_not_decoded():
    finding = replace(recorded_finding(), decoded="",
                      not_decoded=str(NotDecoded.NO_DEBUG_INFO))
    terminal, summary, junit = _report(finding)
    assert "    (raw trace: not decoded: the kernel was built without debug info)" in terminal
    assert any("watch_queue_set_filter+0x" in ln for ln in terminal if ln.startswith("    | "))
    assert max(map(len, terminal)) <= 80
    assert "Raw trace, not decoded: the kernel was built without debug info." in summary
    assert finding.evidence in summary
    [text] = [f.text for f in junit.iter("failure")]
    assert text.startswith("trace not decoded: the kernel was built without debug info")
    long = replace(finding, not_decoded="decode_stacktrace.sh failed (exit 1: " + "x" * 150)
    assert max(map(len, _report(long)[0])) <= 80


def record(tmp: Path) -> None:
    """Re-record tests/data/check/decoded/ with the Debian tree's script (the test cache's):
    ``.venv/bin/python -m tests.unit.test_decode``. The stand-in's sources are program.c
    there: edit them in that file."""
    tree = debian_src()
    assert tree is not None, "no Debian tree in the test cache: run the kernel tier once"
    stand = stand_in_kernel(tmp, tree=tree)
    [decoded] = decode.decode(stand.kernel, [stand.raw], sandboxed=True)
    assert_decoded(stand, decoded)
    RECORDED.mkdir(parents=True, exist_ok=True)
    (RECORDED / "raw.txt").write_text(stand.raw)
    (RECORDED / "what.txt").write_text(stand.what + "\n")
    (RECORDED / "decoded.txt").write_text(decoded.text + "\n")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        record(Path(scratch))
