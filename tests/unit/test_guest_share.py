"""What a hostile guest can hand back: its results share (links, fifos, device nodes,
oversized files; refused, the host unchanged), its console and report port (a flood is
stopped, the log kept truncated), and what its host side sees (never the host's /). Real
guests do these in integration/test_sandbox_integration.py."""

import gzip
import os
import stat
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import ReplayRunner
from tests.unit.test_cpio import parse_newc
from watchbench.errors import ResultsError
from watchbench.guest.hostview import WHOLE, View, etc_archive, named_paths, narrow, python_paths
from watchbench.guest.initramfs import GuestCommand, job_initramfs, job_script
from watchbench.results.records import read_jsonl
from watchbench.vm.errors import HostileGuest
from watchbench.vm.session import Guest
from watchbench.vm.share import META_DIR, Limits, check_share, read_file, write_file

SECRET = "host secret\n"


@pytest.fixture
def host(tmp_path):
    """A host file the guest would like to reach, and the results share."""
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    share = tmp_path / "raw"
    share.mkdir()
    (share / "ok.jsonl").write_text('{"schema": 1}\n')
    return secret, share


def _guest_made(share: Path, name: str, mode: int, content: bytes = b"") -> None:
    """What QEMU's mapped-file model leaves for a guest-made entry (seen on a real boot):
    a regular file, its guest mode in .virtfs_metadata/<name>."""
    (share / name).write_bytes(content)
    (share / META_DIR).mkdir(exist_ok=True)
    (share / META_DIR / name).write_text(f"virtfs.uid=0\nvirtfs.gid=0\nvirtfs.mode={mode}\n"
                                         "virtfs.rdev=0\n")


@pytest.mark.parametrize("name, mode, said", [
    ("link", stat.S_IFLNK | 0o777, "a symbolic link"),
    ("fifo", stat.S_IFIFO | 0o644, "a fifo"),
    ("mem", stat.S_IFCHR | 0o644, "a character device node"),
])
def test_guest_made_links_and_specials_are_refused_by_their_guest_type(host, name, mode, said):
    secret, share = host
    _guest_made(share, name, mode, str(secret).encode())
    with pytest.raises(HostileGuest, match=f"the guest made {said} in its share: {name}"):
        check_share(share)
    assert secret.read_text() == SECRET


def test_host_side_links_and_specials_are_refused_and_never_followed(host):
    secret, share = host
    (share / "conformance.ktap").symlink_to(secret)
    with pytest.raises(HostileGuest, match="a symbolic link in the guest's share"):
        check_share(share)
    with pytest.raises(HostileGuest):
        write_file(share / "conformance.ktap", "not ok 1\n")
    with pytest.raises(HostileGuest, match="symbolic link"):
        read_file(share / "conformance.ktap")
    assert secret.read_text() == SECRET
    (share / "conformance.ktap").unlink()
    os.mkfifo(share / "x.log")
    with pytest.raises(HostileGuest, match="a fifo in the guest's share"):
        check_share(share)
    with pytest.raises(HostileGuest):  # never blocks on a fifo without a reader
        write_file(share / "x.log", "text\n")


def test_a_device_node_is_refused(host):
    _, share = host
    try:
        os.mknod(share / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    with pytest.raises(HostileGuest, match="character device node"):
        check_share(share)


def test_oversized_files_and_shares_are_refused_unread(host):
    _, share = host
    (share / "big.jsonl").write_bytes(b"{" + b"x" * 4096 + b"}\n")
    with pytest.raises(HostileGuest, match="over the 1 KiB a result file may hold"):
        check_share(share, Limits(file_bytes=1024))
    with pytest.raises(HostileGuest, match="results"):
        check_share(share, Limits(share_bytes=2048))
    assert check_share(share) > 4096  # within the defaults: fine
    (share / "sub").mkdir()
    (share / "sub" / "deep").write_text("x")
    assert check_share(share) > 4096  # directories are walked, their files counted


def test_host_writes_into_the_share_replace_a_regular_file_only(host):
    _, share = host
    write_file(share / "ok.jsonl", "new\n")
    assert (share / "ok.jsonl").read_text() == "new\n"
    write_file(share / "fresh.ktap", "ok 1\n")
    assert read_file(share / "fresh.ktap") == "ok 1\n"


def test_a_record_over_its_limit_is_refused(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": "' + "x" * (1 << 20) + '"}\n')
    with pytest.raises(ResultsError, match="over the 1,048,576 one may hold"):
        read_jsonl(path, "x.jsonl")


DEFAULT = Limits()


def guest_for(tmp_path, runner, limits=DEFAULT):
    base = tmp_path / "base.cpio.gz"
    base.write_bytes(b"")
    return Guest(tmp_path / "bzImage", base, "tcg", tmp_path / "cache", runner=runner,
                 limits=limits)


THREE = [GuestCommand(("echo", "x")), GuestCommand(("false",)), GuestCommand(("y",))]


def test_a_malformed_report_line_is_no_crash(tmp_path):
    from watchbench.vm.session import JobState
    state = JobState(THREE, None)
    for line in ("WB-BEGIN 99 1.0", "WB-BEGIN x", "WB-END 1", "WB-DONE soon"):
        state.feed(line)
    assert len(state.errors) == 3 and state.current is None  # a stray WB-END: ignored


def test_a_console_flood_is_stopped_and_its_log_kept_truncated(tmp_path):
    runner = ReplayRunner("clean", "clean.channel.log")
    guest = guest_for(tmp_path, runner, Limits(console_bytes=2000))
    with pytest.raises(HostileGuest, match="flooded its console") as caught:
        guest.run(THREE, timeout=30)
    log = caught.value.log
    assert log.stat().st_size < 2100 and "truncated at" in log.read_text()
    assert runner.spawned[0].killed
    assert caught.value.commands is not None  # what it did first travels with the error


def test_a_report_port_flood_and_a_giant_record_are_stopped(tmp_path):
    guest = guest_for(tmp_path, ReplayRunner("clean", "clean.channel.log"),
                      Limits(channel_bytes=100))
    with pytest.raises(HostileGuest, match="flooded its report port"):
        guest.run(THREE, timeout=30)
    guest = guest_for(tmp_path, ReplayRunner("clean", "clean.channel.log"),
                      Limits(record_bytes=10))
    with pytest.raises(HostileGuest, match="a line \\(a record\\)"):
        guest.run(THREE, timeout=30)


def test_a_boot_whose_share_holds_a_guest_link_is_refused(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    _guest_made(results, "conformance.ktap", stat.S_IFLNK | 0o777, b"/etc/passwd")
    guest = guest_for(tmp_path, ReplayRunner("clean", "clean.channel.log"))
    with pytest.raises(HostileGuest, match="symbolic link in its share: conformance.ktap"):
        guest.run([GuestCommand(("echo", "x")), GuestCommand(("false",)),
                   GuestCommand(("y",))], timeout=30, results=results)


def _fake_root(tmp_path):
    root = tmp_path / "root"
    for d in ("usr/bin", "usr/lib", "etc/alternatives", "root/.ssh", "home/u",
              "py/lib", "proj/userspace/python", "proj/.venv/bin", "cache/kernels/k"):
        (root / d).mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    (root / "lib").symlink_to("usr/lib")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc/shadow").write_text("root:SECRET:::\n")
    (root / "etc/alternatives/awk").symlink_to("/usr/bin/mawk")
    (root / "cache/kernels/k/watch_test").write_text("")
    return root


def test_the_host_side_sees_what_it_needs_never_the_hosts_root(tmp_path):
    root = _fake_root(tmp_path)
    view = narrow(root / "proj", root / "cache",
                  [("bash", "userspace/check/watch-test.sh", str(root / "cache/kernels/k/watch_test"))],
                  runtime=(root / "py", root / "proj/.venv"), root=root)
    ats = [m.at for m in view.mounts]
    assert ats == ["/py", "/usr", "/proj/.venv", "/proj/userspace", "/cache/kernels/k"]
    assert view.links == (("/bin", "usr/bin"), ("/lib", "usr/lib"))
    assert not any(a in ("/", "/root", "/home", "/proj", "/cache", "/etc") for a in ats)
    script = job_script([GuestCommand(("python", "-V"), "host")], root / "proj", "/bin",
                        view=view)
    assert "mount_view\nview_copy /wb/etc /etc\nview_mount hv0 /py\n" in script
    assert "host_pseudo" in script and "hostroot" not in script


def test_the_python_of_a_user_install_is_seen_but_never_the_working_directory(tmp_path):
    """pip install --user puts wb's packages in your home, which the view leaves out."""
    user_site = tmp_path / "home/u/.local/lib/python3.11/site-packages"
    user_site.mkdir(parents=True)
    found = python_paths(["", str(tmp_path), str(user_site), "relative/site-packages",
                          str(tmp_path / "missing/site-packages")])
    assert found[-1] == user_site and tmp_path not in found and len(found) <= 3
    assert Path(sys.prefix) in found


def test_the_host_sides_etc_is_a_copy_in_the_initramfs_keyed_by_content(tmp_path):
    """Copied, not shared: one virtio device fewer per boot (each costs a TCG boot tens of
    milliseconds); /etc/shadow never in it, links kept as links."""
    root = _fake_root(tmp_path)
    view = narrow(root / "proj", root / "cache", runtime=(root / "py",), root=root)
    assert view.archives() == (view.etc,) and view.etc.parent == root / "cache/hostview"
    names = {e[0]: e for e in parse_newc(gzip.decompress(view.etc.read_bytes()))}
    assert names["wb/etc/passwd"][5] == b"root:x:0:0::/root:/bin/sh\n"
    assert stat.S_ISLNK(names["wb/etc/alternatives/awk"][1])
    assert names["wb/etc/alternatives/awk"][5] == b"/usr/bin/mawk"
    assert not any("shadow" in name for name in names)
    assert etc_archive(root / "cache", root) == view.etc  # keyed by content: made once
    (root / "etc/group").write_text("root:x:0:\n")
    assert etc_archive(root / "cache", root) != view.etc
    (tmp_path / "base").write_bytes(b"BASE")
    job = job_initramfs(tmp_path / "base", "true\n", tmp_path / "initrd", view.archives())
    assert job.read_bytes().startswith(b"BASE" + view.etc.read_bytes())  # before job.sh
    assert WHOLE.archives() == ()


def test_whole_stays_the_users_explicit_choice(tmp_path):
    assert WHOLE.job_lines() == ["mount_host"]
    guest = guest_for(tmp_path, None)
    assert guest.view is View.WHOLE  # made by hand; vm.boot.prepare makes the pipeline's NARROW
    spec = guest.spec(tmp_path, tmp_path / "r", host_root=True)
    assert spec.shares[0].path == Path("/") and spec.shares[0].readonly
    assert named_paths([("/",), ("relative",), (str(tmp_path / "nope"),)]) == []


def test_the_pipelines_guests_see_the_narrow_view_unless_the_sandbox_is_off(tmp_path,
                                                                          monkeypatch):
    from watchbench.settings import Settings
    from watchbench.vm import boot

    kernel = type("K", (), {"bzimage": tmp_path / "bzImage"})()
    monkeypatch.setattr(boot, "base_initramfs", lambda *a: tmp_path / "base.cpio.gz")
    settings = Settings(cache_dir=tmp_path)
    steps: list[str] = []
    progress = type("P", (), {"step": lambda self, m: steps.append(m)})()
    on = boot.prepare(settings, "tcg", kernel, progress=progress)
    assert on.guest.view is View.NARROW and not any("sandbox is off" in s for s in steps)
    off = boot.prepare(replace(settings, sandbox=False), "tcg", kernel, progress=progress)
    assert off.guest.view is View.WHOLE and any("sandbox is off" in s for s in steps)
