"""Boot the real bench kernel and run things in it (TCG); builds that fail or are keyed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from watchbench.guest.initramfs import GuestCommand, base_initramfs
from watchbench.host.progress import Silent
from watchbench.kernel import patching
from watchbench.kernel.build import build
from watchbench.kernel.variant import Composer, stack
from watchbench.vm.errors import GuestCrash, GuestHang
from watchbench.vm.session import Guest

DATA = Path(__file__).resolve().parents[1] / "data"

pytestmark = pytest.mark.kernel


def qemu_processes(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_build_artifact_is_content_keyed(bench_kernel, test_settings, bench_tree):
    assert bench_kernel.bzimage.stat().st_size > 500_000
    assert "CONFIG_WATCH_QUEUE=y" in bench_kernel.dotconfig.read_text()
    assert bench_kernel.config_hash == bench_tree.config_hash  # configured again: same hash
    start = time.monotonic()
    again = build(test_settings, bench_tree, progress=Silent())
    assert again.key == bench_kernel.key and time.monotonic() - start < 20


def test_boot_runs_commands_and_propagates_exit_codes(guest):
    streamed = []
    result = guest.run([GuestCommand(("echo", "hello from the guest")),
                        GuestCommand(("sh", "-c", "exit 7")),
                        GuestCommand(("sh", "-c", "grep -c processor /proc/cpuinfo; cat /proc/keys"))],
                       timeout=180, on_output=lambda i, line: streamed.append((i, line)))
    codes = [c.returncode for c in result.commands]
    assert codes == [0, 7, 0]
    assert result.commands[0].output == ["hello from the guest"]
    assert (0, "hello from the guest") in streamed
    cpus, *keys = result.commands[2].output
    assert cpus == "2", "ACPI must give the guest both CPUs"
    assert any("keyring" in k and "_ses" in k for k in keys), "init must join a session keyring"
    assert result.release.startswith("6.12")
    assert "Linux version" in result.console_log.read_text()
    assert result.guest_seconds and result.guest_seconds < 30


def test_panic_is_reported_as_panic(guest):
    with pytest.raises(GuestCrash) as err:
        guest.run([GuestCommand(("true",))], timeout=120, append=("rdinit=/nonexistent", "init=/none"))
    assert err.value.kind == "panic" and "Kernel panic" in str(err.value)
    assert err.value.log and err.value.log.exists()


def test_hanging_guest_is_killed_at_deadline(guest):
    start = time.monotonic()
    with pytest.raises(GuestHang) as err:
        guest.run([GuestCommand(("sleep", "600"))], timeout=25)
    assert time.monotonic() - start < 45
    assert "deadline" in str(err.value) and "sleep 600" in str(err.value)
    log = err.value.log
    assert log.exists() and "Linux version" in log.read_text()
    time.sleep(0.5)
    assert qemu_processes(str(log.parent)) == [], "QEMU outlived the hang"


def test_host_python_runs_in_guest_and_writes_result(guest, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    marker = tmp_path / "from-host.txt"  # under the host's /tmp, like many CI checkouts
    marker.write_text("seen")
    code = ("import os, sys, platform; p = os.path.join(os.environ['WB_RESULTS'], 'hello.txt'); "
            f"seen = open({str(marker)!r}).read(); "
            "open(p, 'w').write(platform.release() + ' ' + sys.prefix + ' ' + seen); print('wrote', p)")
    result = guest.run([GuestCommand(("python", "-c", code), "host")], timeout=240,
                       results=results)
    assert result.commands[0].returncode == 0, result.commands[0].output
    release, prefix, seen = (results / "hello.txt").read_text().split()
    assert release.startswith("6.12") and prefix.endswith(".venv") and seen == "seen"


def test_host_side_has_procfs_and_sysfs_of_its_own(guest, tmp_path):
    """The host root is one 9p share over several host filesystems: /proc and /sys must
    stay apart (multidevs=remap), so real tools run there find procfs at /proc. /tmp is the
    host's, and writable: what is written there stays in the guest."""
    seen = tmp_path / "from-the-host"
    seen.write_text("host file\n")
    script = ("import os, sys, tempfile; print(open('/proc/meminfo').readline().split()[0]); "
              "print(*sorted({l.split()[1] + '=' + l.split()[2] for l in open('/proc/self/mounts')"
              " if l.split()[1] in ('/proc', '/sys')}), sep='\\n'); "
              "print('cpu' if os.path.isdir('/sys/devices/system/cpu') else 'no cpu dir'); "
              "print(open(sys.argv[1]).read().strip()); "
              "open(sys.argv[1] + '.guest', 'w').write('x'); "
              "print('tmp', tempfile.gettempdir(), os.access('/tmp', os.W_OK))")
    result = guest.run([GuestCommand(("python", "-c", script, str(seen)), "host")], timeout=240)
    out = result.commands[0].output
    assert result.commands[0].returncode == 0, out
    assert out[0] == "MemTotal:"
    assert "/proc=proc" in out and "/sys=sysfs" in out
    assert "cpu" in out and "host file" in out
    assert out[-1] == "tmp /tmp True"
    assert not seen.with_name(seen.name + ".guest").exists()  # the host's /tmp is untouched


@pytest.fixture(scope="session")
def misbehaving_kernel(debian_tree, test_settings, bench_kernel):
    """The misbehave fixture on the bench series: the bench configuration, so a few
    compiles (the suite builds no other configuration but the debug one)."""
    composer = Composer(test_settings, patching.reset(debian_tree, force=True), progress=Silent())
    try:
        return composer.kernel(stack(test_settings, str(DATA / "patches" / "misbehave")))
    finally:
        patching.reset(debian_tree, force=True)


@pytest.mark.parametrize("param,kind,needle", [
    ("watch_queue.watchbench_test_oops=1", "oops", "NULL pointer dereference"),
    ("watch_queue.watchbench_test_warn=1", "warning", "WARNING: CPU"),
])
def test_oops_and_warning_are_detected(misbehaving_kernel, test_settings, param, kind, needle):
    guest = Guest(misbehaving_kernel.bzimage, base_initramfs(test_settings), "tcg",
                  test_settings.cache_dir)
    with pytest.raises(GuestCrash) as err:
        guest.run([GuestCommand(("true",))], timeout=120, append=(param,))
    assert err.value.kind == kind and needle in err.value.log.read_text()
    if kind == "warning":
        ok = guest.run([GuestCommand(("true",))], timeout=120, append=(param,),
                       allow_warnings=True)
        assert ok.commands[0].returncode == 0 and ok.warnings[0].kind == "warning"


def test_failed_build_names_file_line_and_keeps_log(debian_tree, test_settings, bench_kernel):
    from watchbench.errors import BuildError
    from watchbench.kernel.build import kernels_dir

    composer = Composer(test_settings, patching.reset(debian_tree, force=True), progress=Silent())
    try:
        with pytest.raises(BuildError) as err:
            composer.kernel(stack(test_settings, str(DATA / "patches" / "broken-build")))
        message = str(err.value)
        assert "kernel/watch_queue.c:" in message and "undeclared_on_purpose" in message
        assert err.value.log.exists() and "undeclared_on_purpose" in err.value.log.read_text()
        built = [p for p in kernels_dir(test_settings).glob("*/kernel.json")
                 if 'broken-build"' in p.read_text()]
        assert built == [], "a failed build left an artifact"
    finally:
        patching.reset(debian_tree, force=True)
