"""Boot a kernel, run commands in the guest, get their output and exit codes back.

Output and exit codes travel over the guest's second serial port (a file on the host),
never parsed out of kernel messages. Every boot keeps its console log; a guest past its
deadline is killed with its process group; crashes are raised with the console excerpt.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from watchbench.errors import CommandError
from watchbench.guest import hostview
from watchbench.guest.hostview import WHOLE, HostView, View
from watchbench.guest.initramfs import GuestCommand, job_initramfs, job_script
from watchbench.host.runner import Runner, default_runner
from watchbench.settings import data_root
from watchbench.vm import console
from watchbench.vm.errors import GuestCrash, GuestError, GuestHang, HostileGuest
from watchbench.vm.plugin import OUTPUT as PLUGIN_OUTPUT
from watchbench.vm.qemu import ARCHS, Share, VmSpec, qemu_argv
from watchbench.vm.share import HINT, LIMITS, Limits, check_share, size_text

SHARE_CHECK_S = 2.0  # how often a running guest's share is checked against its limits

_VERSIONS: dict[str, str] = {}


@dataclass
class CommandResult:
    index: int
    command: GuestCommand
    returncode: int | None = None
    output: list[str] = field(default_factory=list)
    guest_start: float = 0.0
    guest_end: float = 0.0
    # Console lines seen when it began, when each output line arrived and when it ended:
    # which command (and which of its results) a kernel splat on the console belongs to.
    console_begin: int = 0
    output_console: list[int] = field(default_factory=list)
    console_end: int | None = None
    host_began: float = 0.0  # time.monotonic() when its WB-BEGIN was read (its limit)


@dataclass
class BootResult:
    argv: list[str]
    console_log: Path
    channel_log: Path
    commands: list[CommandResult]
    wall_seconds: float
    guest_seconds: float | None
    release: str
    warnings: list[console.Incident]
    console: list[str] = field(default_factory=list)  # the console log's lines, as read

    @property
    def last_returncode(self) -> int:
        return self.commands[-1].returncode if self.commands else 0


class Channel:
    """Incremental reader of the guest's report port (a growing file), at most ``chunk``
    bytes a poll; ``longest`` is the longest line (or unfinished line) seen."""

    def __init__(self, path: Path, chunk: int = 16 << 20):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.chunk = chunk
        self.longest = 0

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def poll(self) -> list[str]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read(self.chunk)
        except FileNotFoundError:
            return []
        self.offset += len(data)
        chunks = (self.partial + data).split(b"\n")
        self.partial = chunks.pop()
        self.longest = max([self.longest, len(self.partial), *map(len, chunks)])
        return [c.decode("utf-8", "replace").rstrip("\r") for c in chunks]


def _flood(console_bytes: int, channel: Channel, results: Path, limits: Limits,
           check_results: bool, log: Path) -> str | None:
    """Why a guest must be stopped for what it hands back, if it must: a console, a report
    port or a single record (line) over its limit, or a share over its limits (checked
    every few seconds, ``check_results``; vm.share)."""
    if console_bytes > limits.console_bytes:
        return (f"the guest flooded its console: over {size_text(limits.console_bytes)} "
                "(stopped; the log is kept, truncated)")
    if channel.size() > limits.channel_bytes:
        return (f"the guest flooded its report port: over {size_text(limits.channel_bytes)} "
                "of command output (stopped)")
    if channel.longest > limits.record_bytes:
        return (f"the guest printed a line (a record) over "
                f"{size_text(limits.record_bytes)} (stopped)")
    if check_results:
        try:
            check_share(results, limits, log)
        except HostileGuest as exc:
            return exc.message + " (stopped)"
    return None


def _truncate(path: Path, limit: int, what: str) -> None:
    """Cut a flooded log to ``limit`` bytes and say so at its end."""
    try:
        with path.open("r+b") as fh:
            fh.truncate(min(limit, path.stat().st_size))
            fh.seek(0, os.SEEK_END)
            fh.write(f"\n[watchbench: {what} truncated at {size_text(limit)}]\n".encode())
    except FileNotFoundError:
        pass


class JobState:
    """Folds channel lines into per-command results."""

    def __init__(self, commands: list[GuestCommand], on_output: Callable[[int, str], None] | None):
        self.results = [CommandResult(i, c) for i, c in enumerate(commands)]
        self.on_output = on_output
        self.current: CommandResult | None = None
        self.release = ""
        self.done_at: float | None = None
        self.errors: list[str] = []
        self.console_seen = 0  # console lines read so far (set by the boot loop)

    def feed(self, line: str) -> None:
        """One report line; a malformed one (the kernel under test controls the guest) is
        noted in ``errors``, never a crash of ours."""
        try:
            self._feed(line)
        except (ValueError, IndexError):
            self.errors.append(f"malformed report line: {line[:120]!r}")

    def _feed(self, line: str) -> None:
        head, _, rest = line.partition(" ")
        if head == "O" and self.current is not None:
            self.current.output.append(rest)
            self.current.output_console.append(self.console_seen)
            if self.on_output:
                self.on_output(self.current.index, rest)
        elif head == "WB-READY":
            self.release = rest.split()[0] if rest else ""
        elif head == "WB-BEGIN":
            index, uptime = rest.split()
            self.current = self.results[int(index)]
            self.current.guest_start = float(uptime)
            self.current.console_begin = self.console_seen
            self.current.host_began = time.monotonic()
        elif head == "WB-END" and self.current is not None:
            _, rc, uptime = rest.split()
            self.current.returncode = int(rc)
            self.current.guest_end = float(uptime)
            self.current.console_end = self.console_seen
            self.current = None
        elif head == "WB-DONE":
            self.done_at = float(rest)
        elif head == "WB-ERROR":
            self.errors.append(rest)


def _partial(exc: GuestError, state: JobState, lines: list[str]) -> GuestError:
    """``exc`` carrying what the guest did before it hung or stopped."""
    exc.commands, exc.console = state.results, lines
    return exc


def _overdue(state: JobState, elapsed: float, timeout: float,
             boot_limit: float | None) -> tuple[str, str] | None:
    """Why a guest must be killed now, if it must: past the boot's deadline, no command
    begun within ``boot_limit``, or a command past its own limit. (why, what it was running
    when the deadline does not say it)."""
    if elapsed > timeout:
        current = state.current
        return (f"guest killed after {timeout:.0f} s (deadline)",
                f"; it was running command {current.index}: {' '.join(current.command.argv)}"
                if current else "")
    if boot_limit is not None and elapsed > boot_limit and \
            not any(r.host_began for r in state.results):
        return f"guest killed: no command began within {boot_limit:.0f} s of boot", ""
    late = state.current
    if late is not None and late.command.limit is not None and \
            time.monotonic() - late.host_began > late.command.limit:
        return (f"guest killed: command {late.index} ({' '.join(late.command.argv)}) ran "
                f"past its {late.command.limit:.0f} s limit"), ""
    return None


def qemu_version(runner: Runner = default_runner, arch: str = "x86_64") -> str:
    """The first line of ``qemu-system-* --version``, once per process: part of every
    run's provenance, and of the fingerprint that decides which shards may be merged."""
    binary = ARCHS[arch].binary
    if binary not in _VERSIONS:
        _VERSIONS[binary] = runner.run([binary, "--version"]).stdout.splitlines()[0].strip()
    return _VERSIONS[binary]


def host_path() -> str:
    """PATH for commands run on the host side: this virtualenv first, then the usual dirs."""
    return f"{Path(sys.prefix) / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _prune(boots: Path, keep: int = 40) -> None:
    """Keep the newest ``keep`` boot directories (console logs, channel, results)."""
    def age(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:  # pruned meanwhile by a boot beside this one
            return 0.0

    old = sorted((p for p in boots.iterdir() if p.is_dir()), key=age)
    for path in old[:-keep] if keep else old:
        shutil.rmtree(path, ignore_errors=True)


def boot_dir(cache_dir: Path) -> Path:
    boots = cache_dir / "boots"
    boots.mkdir(parents=True, exist_ok=True)
    _prune(boots)
    # the thread's id too: two boots of one command may start in the same instant
    path = boots / (f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-"
                    f"{threading.get_native_id()}-{time.monotonic_ns() % 100000}")
    path.mkdir()
    return path


@dataclass
class Guest:
    """A kernel + base initramfs + accelerator, bootable any number of times."""

    kernel: Path
    base_initrd: Path
    accel: str
    cache_dir: Path
    cpus: int = 2
    memory_mb: int = 1024
    project_root: Path = field(default_factory=data_root)  # never the cwd: your kernel tree
    runner: Runner = default_runner
    plugin: Path | None = None  # the instruction-count plugin (vm.plugin), if profiling,
    plugin_symbols: tuple[Path, Path, Path] | None = None  # vm.qemu.VmSpec.plugin_symbols
    plugin_args: tuple[str, ...] = ()  # vm.qemu.VmSpec.plugin_args (the cache model's)
    qemu_args: tuple[str, ...] = ()  # vm.qemu.VmSpec.qemu_args (the cache model's)
    # Boot parameters the setup needs (the cache model's), before the user's kernel_args.
    append: tuple[str, ...] = ()
    # The run's raw/ shared with the guest (9p, at /results). A cache model boot whose
    # commands are all guest-side goes without: under icount the share's replies land at
    # moments of virtual time that follow the host's, and the guest's timing, then its
    # addresses and its misses, diverge from boot to boot (docs/cache-model.md).
    results_share: bool = True
    # What of the host the host side sees (guest.hostview). The pipeline's guests
    # (vm.boot.prepare: bench, ci, check, bisect, all) are NARROW unless the sandbox is
    # off; vm.run --host and vm.shell are WHOLE, as is a Guest made by hand (tests, scripts).
    view: View = View.WHOLE
    limits: Limits = LIMITS  # what it may hand back (vm.share)
    # The user's extra boot parameters (settings kernel_args, --kernel-args): after every
    # boot's own ``append``, so in each QEMU argv and so in the provenance.
    kernel_args: tuple[str, ...] = ()

    def host_view(self, commands: list[GuestCommand] = ()) -> HostView:
        if self.view is View.WHOLE:
            return WHOLE
        return hostview.narrow(self.project_root, self.cache_dir,
                               [c.argv for c in commands if c.side == "host"])

    def spec(self, workdir: Path, results: Path | None, host_root: bool,
             append: tuple[str, ...] = (), commands: list[GuestCommand] = (),
             view: HostView | None = None) -> VmSpec:
        """``host_root``: the host side is used, so its view (``view``, or ``host_view``:
        the caller that has it already saves reading /etc again) is shared."""
        shares = []
        if host_root:
            view = view or self.host_view(commands)
            shares += [Share(m.tag, m.host, readonly=True) for m in view.mounts]
        if results is not None and self.results_share:
            shares.append(Share("results", results))
        out = (results or workdir) / PLUGIN_OUTPUT if self.plugin else None
        return VmSpec(self.kernel, workdir / "initrd.cpio.gz", workdir / "channel.log",
                      self.accel, self.cpus, self.memory_mb, shares=tuple(shares),
                      append=(*append, *self.append, *self.kernel_args),
                      plugin=self.plugin, plugin_out=out, plugin_symbols=self.plugin_symbols,
                      plugin_args=self.plugin_args, qemu_args=self.qemu_args)

    def run(self, commands: list[GuestCommand], *, timeout: float, results: Path | None = None,
            on_output: Callable[[int, str], None] | None = None,
            allow_warnings: bool = False, append: tuple[str, ...] = (),
            judge: bool = True, boot_limit: float | None = None,
            view: HostView | None = None) -> BootResult:
        """Boot, run ``commands`` in order, power off; raise on crash, hang or early stop.
        ``judge`` False: console incidents are returned (``warnings``) for the caller to
        judge, not raised; a hang or early stop still raises, carrying the commands'
        results so far (``commands``) and the console lines (``console``). ``boot_limit``:
        seconds until the first command begins, and a command's own ``limit`` after that,
        so a hang is killed long before ``timeout``. ``view``: the host view the caller
        took already (its spec went into a manifest), so /etc is read once a boot."""
        workdir = boot_dir(self.cache_dir)
        results = results or workdir / "results"
        results.mkdir(parents=True, exist_ok=True)
        host_root = any(c.side == "host" for c in commands)
        if not host_root:
            view = WHOLE  # nothing mounted
        elif view is None:
            view = self.host_view(commands)
        spec = self.spec(workdir, results, host_root, append, commands, view)
        job_initramfs(self.base_initrd, job_script(commands, self.project_root, host_path(),
                                                   view=view, results_share=self.results_share),
                      spec.initrd, view.archives())
        argv = qemu_argv(spec)
        (workdir / "qemu-argv.txt").write_text("\n".join(argv) + "\n")
        console_log = workdir / "console.log"
        state = JobState(commands, on_output)
        channel = Channel(spec.channel_file)
        start = time.monotonic()
        lines: list[str] = []
        console_bytes, checked, flood = 0, start, None
        with self.runner.spawn(argv, log=console_log) as proc:
            for line in proc.lines(poll=0.1):
                if line is not None:
                    lines.append(line)
                    console_bytes += len(line) + 1
                state.console_seen = len(lines)
                for event in channel.poll():
                    state.feed(event)
                check_results = time.monotonic() - checked > SHARE_CHECK_S
                checked = time.monotonic() if check_results else checked
                flood = _flood(console_bytes, channel, results, self.limits, check_results,
                               console_log)
                if flood:
                    break
                overdue = _overdue(state, time.monotonic() - start, timeout, boot_limit)
                if overdue:
                    why, running = overdue
                    since = time.monotonic() - proc.last_line_at
                    raise _partial(GuestHang(f"{why}; last console line {since:.0f} s before: "
                                             f"{proc.last_line!r}{running}", log=console_log),
                                   state, lines)
            qemu_rc = proc.wait() if flood is None else None
        if flood:
            _truncate(console_log, self.limits.console_bytes, "console")
            _truncate(spec.channel_file, self.limits.channel_bytes, "report port")
            raise _partial(HostileGuest(flood, log=console_log, hint=HINT), state, lines)
        try:
            check_share(results, self.limits, console_log)  # before the host reads a byte
        except HostileGuest as exc:
            raise _partial(exc, state, lines) from None
        state.console_seen = len(lines)
        for event in channel.poll():
            state.feed(event)
        wall = time.monotonic() - start
        found = console.incidents(lines)
        worst = console.root_cause(found)
        if judge and worst and (worst.kind != "warning" or not allow_warnings):
            raise GuestCrash(worst.kind, f"guest {worst.kind} at console line {worst.line_number}: "
                             f"{worst.line}\n{worst.excerpt}", log=console_log)
        if qemu_rc != 0 and state.done_at is None:
            raise CommandError(argv, qemu_rc, "\n".join(lines[-15:]), log=console_log)
        if state.done_at is None:
            unfinished = next((r for r in state.results if r.returncode is None), None)
            what = (f"command {unfinished.index} ({' '.join(unfinished.command.argv)})"
                    if unfinished else "its job")
            raise _partial(GuestError(
                f"guest stopped before finishing {what}; last console line: "
                f"{lines[-1] if lines else '(none)'}"
                + (f"; guest said: {'; '.join(state.errors)}" if state.errors else ""),
                log=console_log), state, lines)
        return BootResult(argv, console_log, spec.channel_file, state.results, round(wall, 2),
                          state.done_at, state.release, found, lines)

    def shell(self) -> int:
        """An interactive guest console (Ctrl-A X quits QEMU)."""
        workdir = boot_dir(self.cache_dir)
        shell = replace(self, view=View.WHOLE)  # the user's own console: the host's /
        spec = shell.spec(workdir, workdir / "results", host_root=True)
        (workdir / "results").mkdir()
        job_initramfs(self.base_initrd, job_script([], self.project_root, host_path(),
                                                   interactive=True), spec.initrd)
        return self.runner.interactive(qemu_argv(spec))
