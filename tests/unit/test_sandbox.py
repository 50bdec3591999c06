"""The build sandbox as data: the bwrap argv (golden), the probe and its error, what a
sandboxed make's log says it tried outside, and the read-only remote cache. The real
sandbox builds hostile series in integration/test_sandbox_integration.py."""

from dataclasses import replace
from pathlib import Path

import pytest

from tests.fakes import FakeRunner
from watchbench.errors import CommandError, SandboxError, SandboxViolation
from watchbench.host import sandbox
from watchbench.host.sandbox import RootLayout, Sandbox
from watchbench.kernel import ccache
from watchbench.kernel.kmake import KernelMake, worktree_git_dirs
from watchbench.settings import Settings

MERGED = RootLayout()  # Debian 12: /bin, /sbin, /lib, /lib64 are links into /usr


def test_golden_argv():
    box = Sandbox(readable=(Path("/c/trees/t/src"),),
                  writable=(Path("/c/ccache"), Path("/c/trees/t/build/h")),
                  env=(("CCACHE_DIR", "/c/ccache"),), layout=MERGED, etc=("/etc/passwd",))
    assert box.argv(["make", "-C", "/c/trees/t/src"]) == [
        "bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--ro-bind-try", "/etc/passwd", "/etc/passwd",
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--bind", "/c/ccache", "/c/ccache",
        "--ro-bind", "/c/trees/t/src", "/c/trees/t/src",
        "--bind", "/c/trees/t/build/h", "/c/trees/t/build/h",
        "--remount-ro", "/", "--clearenv",
        "--setenv", "CCACHE_DIR", "/c/ccache", "--setenv", "HOME", "/tmp",
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        "--", "make", "-C", "/c/trees/t/src"]


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no autogroups")
def test_a_niced_build_yields_inside_the_sandbox_too():
    """bwrap's --new-session starts an autogroup of niceness 0, where a nice-19 build
    would take half the CPU from the work it yields to: the sandboxed command's autogroup
    gets the caller's niceness (a real bwrap, from a nice-19 thread)."""
    import os
    import shutil
    import threading

    from watchbench.host.runner import Runner

    if shutil.which("bwrap") is None:
        pytest.skip("no bwrap")
    seen: dict[str, str] = {}

    def niced() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        seen["argv"] = " ".join(Sandbox().argv(["cat", "/proc/self/autogroup"]))
        # several in a row: each but the first finds the host's last change under 0.1 s old
        seen["out"] = "".join(Runner().run(Sandbox().argv(["cat", "/proc/self/autogroup"]))
                              .stdout for _ in range(3))

    thread = threading.Thread(target=niced)
    thread.start()
    thread.join()
    assert [line.split()[-1] for line in seen["out"].splitlines()] == ["19"] * 3, seen
    assert "echo 19 2>/dev/null > /proc/self/autogroup" in seen["argv"]
    assert Runner().run(Sandbox().argv(["cat", "/proc/self/autogroup"])).stdout.split()[-2:] \
        == ["nice", "0"]


def test_a_writable_dir_inside_a_read_only_one_is_bound_after_it_and_stays_writable():
    box = Sandbox(readable=(Path("/t"), Path("/t/out")), writable=(Path("/t/out"),))
    assert box.binds() == ["--ro-bind", "/t", "/t", "--bind", "/t/out", "/t/out"]


def test_no_home_no_root_no_network_unless_a_network_remote():
    argv = Sandbox(layout=MERGED).argv(["true"])
    assert not any(a in ("/root", "/home", str(Path.home())) for a in argv)
    assert "--share-net" not in argv and "--clearenv" in argv
    assert "--share-net" in Sandbox(share_net=True, layout=MERGED).argv(["true"])


def test_a_host_without_merged_usr_gets_its_directories_bound(tmp_path):
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "lib").mkdir()
    layout = sandbox.host_layout(tmp_path)
    assert layout == RootLayout(links=(("/bin", "usr/bin"),), dirs=("/lib",))
    argv = Sandbox(layout=layout).argv(["true"])
    assert ["--symlink", "usr/bin", "/bin"] == argv[argv.index("/bin") - 2:argv.index("/bin") + 1]
    assert argv[argv.index("/lib") - 1] == "--ro-bind"


def test_the_probe_runs_once_and_its_failure_names_the_setting(monkeypatch):
    monkeypatch.setattr(sandbox, "_WORKS", set())
    runner = FakeRunner()
    sandbox.require(runner, "bwrap-ok")
    sandbox.require(runner, "bwrap-ok")
    assert runner.calls == [sandbox.probe_argv("bwrap-ok")]
    assert runner.calls[0][-4:] == ["--ro-bind", "/", "/", "true"]

    refused = FakeRunner({"bwrap-ns": CommandError(["bwrap-ns"], 1, "bwrap: No permissions "
                                                   "to creating new namespace")})
    with pytest.raises(SandboxError) as caught:
        sandbox.require(refused, "bwrap-ns")
    assert "namespaces" in caught.value.message and "No permissions" in caught.value.message
    assert "INVOKE_WATCHBENCH_SANDBOX=0" in caught.value.hint
    assert "sandbox: false" in caught.value.hint

    missing = FakeRunner({"bwrap-none": CommandError(["bwrap-none"], None, "No such file")})
    with pytest.raises(SandboxError, match="not installed") as caught:
        sandbox.require(missing, "bwrap-none")
    assert "./wb deps" in caught.value.hint
    assert "bwrap-ns" not in sandbox._WORKS  # a refusal is asked again next time


# What a hostile series' build prints in the sandbox (dash, gcc, gas; checked with bwrap).
HOSTILE_LOG = """  CC      kernel/watch_queue.o
/bin/sh: 1: cannot create /root/pwned: Directory nonexistent
sh: 1: cannot create /etc/pwned: Read-only file system
/c/trees/t/src/kernel/watch_queue.c:3:10: fatal error: /root/.ssh/id_rsa: No such file or directory
kernel/wq.S:2: Error: file not found: /etc/shadow
  CC      kernel/x.o
/c/trees/t/build/h/include/generated/x.h: No such file or directory
"""


def test_reaches_name_what_the_build_tried_outside():
    box = Sandbox(readable=(Path("/c/trees/t/src"),), writable=(Path("/c/trees/t/build/h"),))
    assert [str(r) for r in sandbox.reaches(HOSTILE_LOG, box)] == [
        "/root/pwned (Directory nonexistent)", "/etc/pwned (Read-only file system)",
        "/root/.ssh/id_rsa (No such file or directory)", "/etc/shadow (not found)"]
    assert [r.path for r in sandbox.reaches(HOSTILE_LOG, box, writes_only=True)] == [
        "/root/pwned", "/etc/pwned"]
    assert sandbox.reaches("  CC kernel/fork.o\n", box) == []


class Logged(FakeRunner):
    """make as it ran: writes ``text`` to the log, fails with ``rc``."""

    def __init__(self, text: str, rc: int = 0):
        super().__init__()
        self.text, self.rc = text, rc

    def run(self, argv, *, log=None, **kw):
        self.calls.append([str(a) for a in argv])
        if argv[0] == "bwrap" and argv[-1] == "true":
            return super().run(argv)
        if log:
            Path(log).write_text(self.text)
        if self.rc:
            raise CommandError(argv, self.rc, self.text, log=log)
        from watchbench.host.runner import Completed
        return Completed(list(argv), 0, self.text, "", 0.0)

    def stream(self, argv, *, log, on_line=None, **kw):
        return self.run(argv, log=log)


def test_a_build_that_succeeded_but_was_refused_a_write_outside_is_stopped(tmp_path):
    make = KernelMake(tmp_path / "src", tmp_path / "out", sandboxed=True,
                      runner=Logged(HOSTILE_LOG))
    with pytest.raises(SandboxViolation) as caught:
        make.build("bzImage", tmp_path / "build.log")
    assert "/root/pwned (Directory nonexistent)" in caught.value.message
    assert caught.value.log == tmp_path / "build.log"
    assert make.runner.calls[-1][0] == "bwrap" and "make" in make.runner.calls[-1]


def test_a_failed_build_names_the_host_file_it_tried_to_read(tmp_path):
    log = "/x/src/kernel/a.c:1:10: fatal error: /root/.ssh/id_rsa: No such file or directory\n"
    make = KernelMake(tmp_path / "src", tmp_path / "out", sandboxed=True,
                      runner=Logged(log, rc=2))
    with pytest.raises(SandboxViolation, match=r"/root/.ssh/id_rsa \(No such file"):
        make.build("bzImage", tmp_path / "build.log")
    plain = KernelMake(tmp_path / "src", tmp_path / "out", runner=Logged(log, rc=2))
    with pytest.raises(Exception) as caught:
        plain.build("bzImage", tmp_path / "build.log")
    assert not isinstance(caught.value, SandboxViolation)  # unsandboxed: no claim about it


def test_make_sees_the_tree_read_only_and_its_build_and_cache_dirs_writable(tmp_path):
    make = KernelMake(tmp_path / "src", tmp_path / "out", ccache_dir=tmp_path / "cc",
                      ccache_remote="file:///srv/cc redis://h:1", ccache_trusted=False,
                      sandboxed=True)
    box = make.sandbox(make.env())
    assert box.readable == (tmp_path / "src", Path("/srv/cc"))
    assert box.writable == (tmp_path / "out", tmp_path / "cc")
    # untrusted: no network, so no network remote (a hostile Makefile could talk to the
    # server itself, past the read-only attribute: docs/security.md)
    assert not box.share_net
    env = dict(box.env)
    assert env["CCACHE_REMOTE_STORAGE"] == "file:///srv/cc|read-only=true"
    trusted = KernelMake(tmp_path / "src", tmp_path / "out", ccache_dir=tmp_path / "cc",
                         ccache_remote="file:///srv/cc redis://h:1", ccache_trusted=True,
                         sandboxed=True)
    box = trusted.sandbox(trusted.env())
    assert Path("/srv/cc") in box.writable and box.share_net
    assert dict(box.env)["CCACHE_REMOTE_STORAGE"] == "file:///srv/cc redis://h:1"


def test_an_untrusted_build_leaves_a_network_remote_out_and_says_so(tmp_path):
    from tests.fakes import Steps
    from watchbench.kernel.build import _usable_remotes

    settings = replace(Settings(), ccache_remote=f"redis://cache.example.org file://{tmp_path}")
    steps = Steps()
    assert [r.scheme for r in _usable_remotes(settings, steps)] == ["file"]
    assert steps.lines == ["warning: remote ccache redis://cache.example.org:6379 not used: "
                           "an untrusted build has no network",
                           "  (a trusted run uses it: ccache_trusted: true, or --trusted)"]


def test_a_worktree_build_reads_the_users_git_objects(tmp_path):
    repo = tmp_path / "linux" / ".git"
    own = repo / "worktrees" / "src"
    own.mkdir(parents=True)
    (own / "commondir").write_text("../..\n")
    src = tmp_path / "cache" / "src"
    src.mkdir(parents=True)
    (src / ".git").write_text(f"gitdir: {own}\n")
    assert worktree_git_dirs(src) == (repo, own)
    box = KernelMake(src, tmp_path / "out", sandboxed=True).sandbox({})
    assert repo in box.readable and repo not in box.writable
    assert worktree_git_dirs(tmp_path / "linux") == ()


def test_untrusted_remote_entries_are_read_only():
    assert ccache.read_only("redis://h:1|read-only=false|connect-timeout=50 file:///x") == (
        "redis://h:1|connect-timeout=50|read-only=true file:///x|read-only=true")
    untrusted = KernelMake(Path("/s"), Path("/o"), ccache_dir=Path("/cc"),
                           ccache_remote="redis://h:1", ccache_reshare=True,
                           ccache_trusted=False).env()
    assert untrusted["CCACHE_REMOTE_STORAGE"] == "redis://h:1|read-only=true"
    assert "CCACHE_RESHARE" not in untrusted  # resharing is a write too


def test_the_sandbox_is_on_and_the_cache_untrusted_by_default():
    assert Settings().sandbox is True and Settings().ccache_trusted is False
    assert "sandbox is off" in sandbox.off_warning()
