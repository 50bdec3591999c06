"""A series under test is untrusted (docs/security.md), checked with real builds and
boots: a hostile Makefile write, a hostile .incbin of a host file, a guest that leaves
links, fifos and device nodes in its results share, and a guest that floods its console,
its report port and its results. Each must be stopped, and the host left as it was.

Cheap on purpose: both hostile series sit on the bench series with the bench
configuration (``stack`` through ``Composer``), so each is an incremental build of the
bench kernel's build directory (kernel/ and a relink), and the guests are the bench
kernel's, booted under TCG with short limits.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from watchbench.errors import SandboxViolation
from watchbench.guest.hostview import View
from watchbench.guest.initramfs import GuestCommand
from watchbench.host.progress import Silent
from watchbench.kernel import patching
from watchbench.kernel.build import build_dir, kernels_dir
from watchbench.kernel.variant import Composer, stack
from watchbench.vm.errors import HostileGuest
from watchbench.vm.share import META_DIR, MIB, Limits

pytestmark = pytest.mark.kernel

DATA = Path(__file__).resolve().parents[1] / "data"
WRITTEN = Path("/var/tmp/watchbench-hostile-write")  # where hostile-build-write writes
SECRET = Path("/var/tmp/watchbench-hostile-secret")  # what hostile-build-incbin reads


def _state(paths: list[Path]) -> dict[str, str]:
    """What the host holds at ``paths`` (content hashes; absent: '-')."""
    out = {}
    for path in paths:
        try:
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            out[str(path)] = "-"
    return out


def _hostile_build(debian_tree, test_settings, name: str) -> SandboxViolation:
    composer = Composer(test_settings, patching.reset(debian_tree, force=True), progress=Silent())
    try:
        with pytest.raises(SandboxViolation) as caught:
            composer.kernel(stack(test_settings, str(DATA / "patches" / name)))
        return caught.value
    finally:
        composer.restore()
        patching.reset(debian_tree, force=True)


def _no_artifact(test_settings, name: str) -> None:
    built = [p for p in kernels_dir(test_settings).glob("*/kernel.json")
             if f'{name}"' in p.read_text()]
    assert built == [], f"a stopped build of {name} left a kernel"


def test_a_makefile_write_outside_the_build_dir_is_stopped(debian_tree, test_settings,
                                                           bench_kernel):
    WRITTEN.unlink(missing_ok=True)
    in_tree = debian_tree.src / "watchbench-hostile-write"
    before = _state([WRITTEN, in_tree, Path.home() / ".bashrc"])
    error = _hostile_build(debian_tree, test_settings, "hostile-build-write")
    assert str(WRITTEN) in error.message and "outside its sandbox" in error.message
    assert error.log and error.log.exists()
    assert _state([WRITTEN, in_tree, Path.home() / ".bashrc"]) == before
    assert not WRITTEN.exists() and not in_tree.exists()
    _no_artifact(test_settings, "hostile-build-write")


def test_an_incbin_of_a_host_file_is_stopped_and_never_read(debian_tree, test_settings,
                                                            bench_kernel):
    token = secrets.token_hex(16)
    SECRET.write_text(f"watchbench canary {token}\n")
    try:
        before = _state([SECRET])
        error = _hostile_build(debian_tree, test_settings, "hostile-build-incbin")
        assert str(SECRET) in error.message, error.message
        assert _state([SECRET]) == before
        out = build_dir(debian_tree, bench_kernel.config_hash)
        for obj in (out / "kernel" / "watch_queue.o", out / "vmlinux"):
            if obj.exists():
                assert token.encode() not in obj.read_bytes(), f"{obj} holds the host file"
        _no_artifact(test_settings, "hostile-build-incbin")
    finally:
        SECRET.unlink(missing_ok=True)


# Guest-side commands a kernel under test could as well run itself (it controls the guest).
SPECIALS = ("sh", "-c", "cd /results && echo ok > fine.txt && "
            "ln -s {canary} conformance.ktap && ln -s / root && mkfifo fifo.log && "
            "mknod mem c 1 1 && mknod disk b 8 0 && ls -l")


@pytest.mark.parametrize("view", [View.WHOLE, View.NARROW])
def test_guest_made_links_fifos_and_device_nodes_are_refused(guest, tmp_path, view):
    canary = tmp_path / "canary"
    canary.write_text("host file\n")
    results = tmp_path / "results"
    results.mkdir()
    argv = tuple(a.format(canary=canary) for a in SPECIALS)
    before = _state([canary])
    with pytest.raises(HostileGuest, match="the guest made a") as caught:
        replace(guest, view=view).run([GuestCommand(argv)], timeout=120, results=results)
    assert caught.value.commands is not None  # what it did travels with the error
    assert _state([canary]) == before
    for entry in results.iterdir():  # the host holds regular files only (mapped-file)
        if entry.name != META_DIR:
            assert stat.S_ISREG(os.lstat(entry).st_mode), entry
    assert (results / "conformance.ktap").read_text() == str(canary)  # a link's target, as text


def test_the_narrow_view_shows_the_host_side_what_it_needs_only(guest, tmp_path):
    """The pipeline's host side: Python and the venv run, the user's files do not exist."""
    script = ("import os, sys, pytest; print(sys.prefix); "
              "print(os.path.exists(os.path.expanduser('~root/.bashrc')), "
              "os.path.exists('/etc/shadow'), os.path.exists(sys.argv[1]))")
    mine = tmp_path / "named"  # a path the command names: shared (read-only) with it
    mine.write_text("x")
    narrow = replace(guest, view=View.NARROW)
    result = narrow.run([GuestCommand(("python", "-c", script, str(mine)), "host")],
                        timeout=240)
    out = result.commands[0].output
    assert result.commands[0].returncode == 0, out
    assert out[0].endswith(".venv") and out[1].split() == ["False", "False", "True"]


def test_a_flooding_guest_is_stopped_and_its_log_kept_truncated(guest, tmp_path):
    small = replace(guest, limits=Limits(console_bytes=MIB // 4, channel_bytes=MIB // 4,
                                         file_bytes=4 * MIB, share_bytes=8 * MIB))
    cases = [
        (("sh", "-c", "yes console-flood > /dev/ttyS0"), "flooded its console"),
        (("sh", "-c", "yes channel-flood"), "flooded its report port"),
        (("sh", "-c", "dd if=/dev/zero of=/results/big.jsonl bs=1M count=16; sleep 30"),
         "a result file may hold"),
    ]
    for argv, said in cases:
        results = tmp_path / said.split()[-1]
        results.mkdir()
        with pytest.raises(HostileGuest, match=said) as caught:
            small.run([GuestCommand(argv)], timeout=180, results=results)
        log = caught.value.log
        assert log.exists() and log.stat().st_size < MIB // 4 + 4096
        if "console" in said:
            assert log.read_text(errors="replace").rstrip().endswith("truncated at 256 KiB]")
