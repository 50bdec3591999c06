"""The guest's userspace: static C programs, busybox, our init, packed as a cpio.gz.

The base archive is cached by the hash of everything in it. Each boot appends a tiny
second archive holding /wb/job.sh (the kernel unpacks concatenated archives in order),
so changing the commands never rebuilds the base.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import threading
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from watchbench.errors import BuildError, CommandError, InputError
from watchbench.guest import cpio
from watchbench.guest.hostview import WHOLE, HostView
from watchbench.host.files import write_atomically
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel.build import compiler_version
from watchbench.settings import Settings

CFLAGS = ["-static", "-O2", "-Wall", "-Werror"]
BUSYBOX = Path("/bin/busybox")


@dataclass(frozen=True)
class Program:
    name: str
    sources: tuple[Path, ...]


def _guest_file(name: str) -> bytes:
    return (resources.files("watchbench") / "guest" / name).read_bytes()


def discover_programs(userspace: Path) -> list[Program]:
    """Programs from userspace/programs.toml, else every .c with a main() on its own."""
    manifest = userspace / "programs.toml"
    if manifest.exists():
        data = tomllib.loads(manifest.read_text())
        programs = []
        for name, spec in sorted(data.get("programs", {}).items()):
            sources = tuple(userspace / s for s in spec.get("sources", []))
            missing = [str(s) for s in sources if not s.exists()]
            if not sources or missing:
                raise InputError(f"{manifest}: program {name!r} lists missing sources: {missing}")
            programs.append(Program(name, sources))
        return programs
    singles = [p for p in sorted(userspace.glob("*.c")) if "main(" in p.read_text()]
    shared = [p for p in sorted(userspace.glob("*.c")) if p not in singles]
    return [Program(p.stem, (p, *shared)) for p in singles]


def _digest(paths: list[Path], *extra: bytes) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for blob in extra:
        digest.update(blob)
    return digest.hexdigest()[:16]


def compile_programs(settings: Settings, runner: Runner = default_runner) -> dict[str, Path]:
    """Compile every guest program statically (cached by sources + compiler); name -> binary."""
    userspace = settings.project_root / "userspace"
    programs = discover_programs(userspace) if userspace.is_dir() else []
    session_src = settings.cache_dir / "guest-src" / "wb-session.c"
    session_src.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(session_src, _guest_file("wb-session.c"))  # another command may compile it
    programs.append(Program("wb-session", (session_src,)))
    compiler = compiler_version(runner).encode()
    inputs = sorted({s for p in programs for s in p.sources} | set(userspace.glob("*.h")))
    key = _digest(inputs, compiler, " ".join(CFLAGS).encode(),
                  repr([(p.name, [s.name for s in p.sources]) for p in programs]).encode())
    out = settings.cache_dir / "userspace" / key
    binaries = {p.name: out / p.name for p in programs}
    if all(b.exists() for b in binaries.values()):
        return binaries
    out.mkdir(parents=True, exist_ok=True)
    for program in programs:
        partial = out / f".{program.name}.tmp-{os.getpid()}-{threading.get_ident()}"
        argv = ["gcc", *CFLAGS, f"-I{userspace}", "-o", str(partial), *map(str, program.sources)]
        try:
            runner.run(argv, timeout=300)
        except CommandError as exc:
            raise BuildError(f"guest program {program.name} does not compile:\n{exc.output.strip()}",
                             hint="fix the source; guest programs build with " + " ".join(CFLAGS)) from exc
        partial.rename(out / program.name)
    return binaries


def base_initramfs(settings: Settings, runner: Runner = default_runner) -> Path:
    """busybox + our init + the compiled programs, cached by content."""
    if not BUSYBOX.exists():
        raise BuildError(f"{BUSYBOX} is missing", hint="run `./wb deps` (Debian package busybox-static)")
    binaries = compile_programs(settings, runner)
    init = _guest_file("init.sh")
    key = _digest([BUSYBOX, *binaries.values()], init)
    path = settings.cache_dir / "initramfs" / f"base-{key}.cpio.gz"
    if path.exists():
        return path
    entries = [cpio.directory(d) for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "root",
                                            "wb", "results", "host", "usr", "usr/bin")]
    entries += [
        cpio.char_device("dev/console", 5, 1),
        cpio.host_file("bin/busybox", BUSYBOX),
        cpio.symlink("bin/sh", "busybox"),
        cpio.file("init", init, executable=True),
    ]
    entries += [cpio.host_file(f"bin/{name}", binary) for name, binary in sorted(binaries.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, cpio.gzipped(entries))


@dataclass(frozen=True)
class GuestCommand:
    """One command for the guest: ``side`` is 'guest' (busybox) or 'host' (host root via 9p)."""

    argv: tuple[str, ...]
    side: str = "guest"
    required: bool = False  # when it fails, the guest runs nothing after it
    limit: float | None = None  # seconds it may run before the guest is killed (None: the boot's)


def job_script(commands: list[GuestCommand], host_cwd: Path, host_path: str,
               interactive: bool = False, view: HostView = WHOLE,
               results_share: bool = True) -> str:
    """The /wb/job.sh that init sources: shares to mount (``view``: what of the host the
    host side sees; ``results_share``: the run's raw/, vm.session.Guest.results_share),
    then one wb_run per command."""
    lines = ["# generated by watchbench", f"WB_HOST_CWD={shlex.quote(str(host_cwd))}",
             f"WB_HOST_PATH={shlex.quote(host_path)}",
             *(["mount_results"] if results_share else [])]
    if any(c.side == "host" for c in commands) or interactive:
        lines += view.job_lines()
    for index, command in enumerate(commands):
        if command.side not in ("guest", "host"):
            raise InputError(f"unknown command side {command.side!r} (use guest or host)")
        lines.append(f"wb_run {index} {command.side} " + " ".join(map(shlex.quote, command.argv)))
        if command.required:
            lines.append("wb_last_ok || wb_finish")
    if interactive:
        lines.append("echo 'watchbench guest shell; the host root is at /host; exit powers off'")
        lines.append("setsid cttyhack sh")
    return "\n".join(lines) + "\n"


def job_initramfs(base: Path, script: str, dest: Path, extra: tuple[Path, ...] = ()) -> Path:
    """base archive + ``extra`` archives (the host view's copied /etc) + a last archive
    holding /wb/job.sh, written to ``dest`` (the kernel unpacks them in turn)."""
    job = cpio.gzipped([cpio.directory("wb"), cpio.file("wb/job.sh", script.encode())])
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(b"".join(p.read_bytes() for p in (base, *extra)) + job)
    return dest
