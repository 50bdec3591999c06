"""What of the host the guest's host side (``GuestCommand`` side "host": the Python
benchmarks, the check scripts) sees: never the host's ``/``, but a root of its own in guest
memory holding read-only shares of the toolchain (``/usr``), the Python runtime and the
virtualenv, the project's guest code (``userspace/``) and the host paths its commands name
(a client built for this kernel, a test suite); and copies of a few files of ``/etc``,
carried in the initramfs: each share is a virtio device, and each one costs a TCG boot
tens of milliseconds (probed, mounted, reset at power-off).

``WHOLE`` (the host's ``/``, read-only) is kept for ``vm.run --host`` and ``vm.shell``,
the user's explicit choice, and for ``sandbox: false`` (docs/security.md).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from watchbench.guest import cpio
from watchbench.host.files import write_atomically
from watchbench.host.sandbox import host_layout


class View(StrEnum):
    """How much of the host the host side sees."""

    NARROW = "narrow"  # what it needs, read-only (bench, ci, check, bisect, all)
    WHOLE = "whole"  # the host's / read-only (vm.run --host, vm.shell, sandbox: false)


# What of /etc the runtime and the check scripts read (the loader's cache, names of
# users and groups, time zone, the alternatives links): copied, never shared whole
# (/etc/shadow, credentials).
ETC = ("alternatives", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group",
       "nsswitch.conf", "localtime", "hosts", "bash.bashrc", "profile", "inputrc")


@dataclass(frozen=True)
class Mount:
    """A read-only share: host directory ``host`` at ``at`` in the host side's root."""

    tag: str
    host: Path
    at: str


# Where the initramfs carries the copied /etc (``etc_archive``) for view_copy to place.
ETC_IN_GUEST = "wb/etc"


@dataclass(frozen=True)
class HostView:
    """The host side's root: shares, the links of a merged /usr (``/bin -> usr/bin``) and
    the copied /etc (``etc``: an initramfs segment holding ``ETC_IN_GUEST``)."""

    view: View
    mounts: tuple[Mount, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    etc: Path | None = None

    def job_lines(self) -> list[str]:
        """The job script's lines that mount this view (init.sh's functions)."""
        if self.view is View.WHOLE:
            return ["mount_host"]
        lines = ["mount_view"]
        if self.etc is not None:  # first: a share a command names inside /etc goes on top
            lines.append(f"view_copy /{ETC_IN_GUEST} /etc")
        lines += [f"view_mount {m.tag} {shlex.quote(m.at)}" for m in self.mounts]
        lines += [f"view_link {shlex.quote(link)} {shlex.quote(target)}" for link, target in self.links]
        return [*lines, "host_pseudo"]

    def archives(self) -> tuple[Path, ...]:
        """Initramfs segments the job's archive must be preceded by."""
        return () if self.etc is None else (self.etc,)


WHOLE = HostView(View.WHOLE, (Mount("hostroot", Path("/"), "/"),))


def _covered(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def named_paths(argvs: Iterable[Iterable[str]]) -> list[Path]:
    """Host directories the commands name by absolute path (a file: its directory),
    never ``/`` itself."""
    out: list[Path] = []
    for argv in argvs:
        for arg in argv:
            if not arg.startswith("/") or arg == "/":
                continue
            path = Path(os.path.normpath(arg))
            if path.is_file():
                path = path.parent
            if path.is_dir() and path != Path("/"):
                out.append(path)
    return out


def etc_entries(root: Path = Path("/")) -> list[cpio.Entry]:
    """The ``ETC`` files of ``root`` as archive entries under ``ETC_IN_GUEST`` (links kept
    as links, never followed), parents first, in a fixed order."""
    entries = [cpio.directory("wb"), cpio.directory(ETC_IN_GUEST)]
    for name in ETC:
        src = root / "etc" / name
        todo = [src] if src.exists() or src.is_symlink() else []
        while todo:
            path = todo.pop(0)
            inside = f"{ETC_IN_GUEST}/{path.relative_to(root / 'etc')}"
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                entries.append(cpio.symlink(inside, os.readlink(path)))
            elif stat.S_ISDIR(mode):
                entries.append(cpio.directory(inside))
                todo[:0] = sorted(path.iterdir())
            elif stat.S_ISREG(mode):
                entries.append(cpio.host_file(inside, path))
    return entries


def etc_archive(cache_dir: Path, root: Path = Path("/")) -> Path:
    """The copied /etc as a gzipped initramfs segment, keyed by its content: made once,
    shared by the boots beside each other, never changed under one of them."""
    entries = etc_entries(root)
    digest = hashlib.sha256(cpio.archive(entries)).hexdigest()[:16]
    dest = cache_dir / "hostview" / f"etc-{digest}.cpio.gz"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(dest, cpio.gzipped(entries))
    return dest


def python_paths(path: Iterable[str] | None = None) -> tuple[Path, ...]:
    """Where the host side's Python finds its packages: the runtime, the virtualenv, and
    every site-packages on ``sys.path`` outside them (``pip install --user``'s in your
    home, one a .pth line adds); never the working directory (your kernel tree)."""
    found = [Path(sys.base_prefix).resolve(), Path(sys.prefix)]
    for entry in sys.path if path is None else path:
        where = Path(entry) if entry else None
        if where is not None and where.is_absolute() and \
                where.name in ("site-packages", "dist-packages") and where.is_dir():
            found.append(where)
    return tuple(dict.fromkeys(found))


def narrow(project_root: Path, cache_dir: Path, argvs: Iterable[Iterable[str]] = (),
           runtime: tuple[Path, ...] | None = None, root: Path = Path("/")) -> HostView:
    """The view a host-side command needs: /usr, the Python runtime (``python_paths``:
    ``sys.base_prefix``, the virtualenv, a user or .pth site-packages), ``userspace/``, what
    ``argvs`` name and the copied /etc. Each directory once, a directory inside another
    one left out."""
    runtime = runtime if runtime is not None else python_paths()
    wanted = [root / "usr", *runtime, project_root / "userspace", *named_paths(argvs)]
    layout = host_layout(root)
    links, dirs = list(layout.links), [root / name.lstrip("/") for name in layout.dirs]
    chosen: list[tuple[Path, str]] = []
    for path in sorted({*wanted, *dirs}, key=lambda p: (len(p.parts), str(p))):
        if not _covered(path, [p for p, _ in chosen]):
            chosen.append((path, "/" + str(path.relative_to(root))))
    mounts = tuple(Mount(f"hv{i}", host, at) for i, (host, at) in enumerate(chosen))
    return HostView(View.NARROW, mounts, tuple(links), etc_archive(cache_dir, root))
