"""bubblewrap around a host command that runs code we do not trust (a series' Makefiles,
its sources compiled): an argv in, a bwrap argv out, kept as data and golden-tested.

The command sees the toolchain (``/usr``, the few files of ``/etc`` it reads) and the
paths it is given, read-only unless given as writable, a private ``/tmp``, its own
``/proc`` and a minimal ``/dev``; no ``$HOME``, no ``/root``, no other user files, no
network (unless asked: a network ccache remote), no capabilities, an empty environment
but for what it is handed. docs/security.md says what this does and does not stop.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from watchbench.errors import CommandError, SandboxError
from watchbench.host.runner import Runner, default_runner

BWRAP = "bwrap"
SETTING = "watchbench.sandbox"
TURN_OFF = ("set `sandbox: false` under `watchbench:` in invoke.yaml, or export "
            "INVOKE_WATCHBENCH_SANDBOX=0 (a series' build then runs with your rights: "
            "docs/security.md)")
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
# The top-level directories merged-/usr systems keep as links into /usr (Debian 12 does);
# where they are real directories they are bound read-only instead.
ROOT_DIRS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
# What of /etc a compiler, make, perl, awk (an alternatives link) and ccache read.
ETC = ("/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
       "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/localtime", "/etc/perl",
       "/etc/ccache.conf")
# Namespaces (user, pid, net, ipc, uts, cgroup), killed with its parent, no terminal to
# inject into, no capabilities even as root (a capable root could remount a bind writable).
ISOLATION = ("--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL")


@dataclass(frozen=True)
class RootLayout:
    """How the host's top-level system directories look: links (``/bin -> usr/bin``) or
    real directories. Read from the host once (``host_layout``); tests give their own."""

    links: tuple[tuple[str, str], ...] = (("/bin", "usr/bin"), ("/sbin", "usr/sbin"),
                                          ("/lib", "usr/lib"), ("/lib64", "usr/lib64"))
    dirs: tuple[str, ...] = ()


def host_layout(root: Path = Path("/")) -> RootLayout:
    links, dirs = [], []
    for name in ROOT_DIRS:
        path = root / name.lstrip("/")
        if path.is_symlink():
            links.append((name, os.readlink(path)))
        elif path.is_dir():
            dirs.append(name)
    return RootLayout(tuple(links), tuple(dirs))


@dataclass(frozen=True)
class Sandbox:
    """What one sandboxed command may see. ``readable``/``writable``: host paths bound at
    the same place; ``env``: its whole environment (PATH, HOME=/tmp added)."""

    readable: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    share_net: bool = False  # a network ccache remote (docs/security.md: what that allows)
    layout: RootLayout = field(default_factory=RootLayout)
    etc: tuple[str, ...] = ETC
    bwrap: str = BWRAP

    def binds(self) -> list[str]:
        """Bind arguments, parents before children (a writable build dir inside a
        read-only tree stays writable), each path once (writable wins)."""
        modes: dict[str, bool] = {}
        for path in self.readable:
            modes.setdefault(os.path.normpath(path), False)
        for path in self.writable:
            modes[os.path.normpath(path)] = True
        out: list[str] = []
        for path in sorted(modes, key=lambda p: (p.count("/"), p)):
            out += ["--bind" if modes[path] else "--ro-bind", path, path]
        return out

    def argv(self, command: Iterable[str | os.PathLike], cwd: Path | None = None) -> list[str]:
        argv = [self.bwrap, *ISOLATION]
        if self.share_net:
            argv.append("--share-net")
        argv += ["--ro-bind", "/usr", "/usr"]
        for link, target in self.layout.links:
            argv += ["--symlink", target, link]
        for name in self.layout.dirs:
            argv += ["--ro-bind", name, name]
        for name in self.etc:
            argv += ["--ro-bind-try", name, name]
        if self.share_net:
            argv += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf",
                     "--ro-bind-try", "/etc/hosts", "/etc/hosts"]
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", *self.binds(),
                 "--remount-ro", "/", "--clearenv"]
        env = {"PATH": PATH, "HOME": "/tmp", "LANG": "C.UTF-8", **dict(self.env)}
        for name in sorted(env):
            argv += ["--setenv", name, env[name]]
        if cwd is not None:
            argv += ["--chdir", str(cwd)]
        return [*argv, "--", *_niced(), *map(os.fspath, command)]


def _niced() -> list[str]:
    """A command started at a niceness above 0 yields inside the sandbox too.

    ``--new-session`` gives the command a session, so a scheduler autogroup, of its own,
    whose niceness is 0 whatever the command's (host.runner._keep_niceness says why that
    matters): a shell sets the autogroup's first, then runs the command in its place.
    Without CAP_SYS_ADMIN the kernel takes one such change per 0.1 s on the whole host
    (EAGAIN otherwise), and the runner has just made one for bwrap's own session: the
    shell tries again for up to 2 s, then runs the command anyway."""
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    if nice <= 0:
        return []
    return ["/bin/sh", "-c",
            f"i=0; until echo {nice} 2>/dev/null > /proc/self/autogroup; do "
            f'i=$((i + 1)); [ "$i" -ge 20 ] && break; sleep 0.1; done; exec "$@"', "sh"]


def probe_argv(bwrap: str = BWRAP) -> list[str]:
    """The cheapest command that needs what every sandboxed one needs (the namespaces)."""
    return [bwrap, *ISOLATION, "--ro-bind", "/", "/", "true"]


_WORKS: set[str] = set()  # bwrap binaries that ran the probe in this process


def require(runner: Runner = default_runner, bwrap: str = BWRAP) -> None:
    """Stop unless a sandbox can be had here (probed once per process, ~10 ms): bwrap
    installed and user namespaces allowed. The error names the setting that turns the
    sandbox off."""
    if bwrap in _WORKS:
        return
    try:
        runner.run(probe_argv(bwrap), timeout=30)
    except CommandError as exc:
        missing = exc.returncode is None
        why = (f"{bwrap} is not installed" if missing else
               "bubblewrap cannot create its namespaces here (user namespaces refused, as in "
               "some containers): " + (exc.output.strip().splitlines() or ["?"])[-1])
        raise SandboxError(
            f"the build sandbox is unavailable: {why}",
            hint=("`./wb deps` installs bubblewrap; or " if missing else
                  "allow unprivileged user namespaces (sysctl "
                  "kernel.unprivileged_userns_clone=1, or the container's seccomp profile); "
                  "or ") + TURN_OFF) from exc
    _WORKS.add(bwrap)


def off_warning() -> str:
    """Said on every run that builds or boots with the sandbox turned off."""
    return (f"warning: the sandbox is off ({SETTING} is false): a series' Makefiles and "
            "sources run with your rights and its guest sees the host's whole /")


# What a sandboxed command printed when it reached outside what it may see.
_REACHED = re.compile(
    r"(?P<path>/[^\s:'\"`]+)['\"`]?: (?P<why>Read-only file system|Permission denied|"
    r"No such file or directory|Directory nonexistent)"
    r"|(?:cannot create|can't create) (?P<path2>/[^\s:]+): (?P<why2>[A-Z][\w -]+)"
    r"|file not found: (?P<path3>/\S+)")


@dataclass(frozen=True)
class Reach:
    """A path a sandboxed command tried and could not have, and what it got."""

    path: str
    why: str

    def __str__(self) -> str:
        return f"{self.path} ({self.why})"


def reaches(log: str, sandbox: Sandbox, writes_only: bool = False) -> list[Reach]:
    """The paths outside ``sandbox`` a command's output says it tried (once each, in
    order): a write into a read-only place, a read of a host file it cannot see.
    ``writes_only``: only refused writes (what a build that succeeded may still print)."""
    inside = [os.path.normpath(p) for p in (*sandbox.writable, "/tmp")]
    visible = [*inside, *(os.path.normpath(p) for p in sandbox.readable), "/usr", "/proc",
               "/dev", *sandbox.etc]
    found: dict[str, Reach] = {}
    for match in _REACHED.finditer(log):
        path = match["path"] or match["path2"] or match["path3"]
        why = match["why"] or match["why2"] or "not found"
        write = why.startswith("Read-only") or match["path2"] is not None
        if writes_only and not write:
            continue
        allowed = inside if write else visible
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in allowed):
            continue
        found.setdefault(path, Reach(path, why))
    return list(found.values())


def describe(reached: list[Reach], limit: int = 5) -> str:
    shown = ", ".join(map(str, reached[:limit]))
    more = f" and {len(reached) - limit} more" if len(reached) > limit else ""
    return f"it tried to reach outside its sandbox: {shown}{more}"


def sandboxed(command: list[str], sandbox: Sandbox | None, cwd: Path | None = None) -> list[str]:
    """``command`` as it runs: inside ``sandbox``, or as it is (None: the sandbox is off)."""
    return command if sandbox is None else sandbox.argv(command, cwd)


def environment(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(env.items()))
