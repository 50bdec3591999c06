"""What of the host the guest's host side (``GuestCommand`` side "host": the Python
benchmarks, the check scripts) sees: never the host's ``/``, but a root of its own in guest
memory holding read-only shares of the toolchain (``/usr``), the Python runtime and the
virtualenv, the project's guest code (``userspace/``), a few copied files of ``/etc`` and
the host paths its commands name (a client built for this kernel, a test suite).

``WHOLE`` (the host's ``/``, read-only) is kept for ``vm.run --host`` and ``vm.shell``,
the user's explicit choice, and for ``sandbox: false`` (docs/security.md).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

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


@dataclass(frozen=True)
class HostView:
    """The host side's root: shares and the links of a merged /usr (``/bin -> usr/bin``)."""

    view: View
    mounts: tuple[Mount, ...] = ()
    links: tuple[tuple[str, str], ...] = ()

    def job_lines(self) -> list[str]:
        """The job script's lines that mount this view (init.sh's functions)."""
        if self.view is View.WHOLE:
            return ["mount_host"]
        lines = ["mount_view"]
        lines += [f"view_mount {m.tag} {shlex.quote(m.at)}" for m in self.mounts]
        lines += [f"view_link {shlex.quote(link)} {shlex.quote(target)}" for link, target in self.links]
        return [*lines, "host_pseudo"]


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


def prepared_etc(cache_dir: Path, root: Path = Path("/")) -> Path:
    """A directory holding copies of the ``ETC`` files (links kept as links), keyed by
    their content, so boots beside each other share it and none changes under another."""
    digest = hashlib.sha256()
    names = [n for n in ETC if (root / "etc" / n).exists() or (root / "etc" / n).is_symlink()]
    for name in names:
        src = root / "etc" / name
        for path in sorted([src, *src.rglob("*")] if src.is_dir() and not src.is_symlink()
                           else [src]):
            digest.update(str(path.relative_to(root)).encode())
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(path.read_bytes())
    dest = cache_dir / "hostview" / f"etc-{digest.hexdigest()[:16]}"
    if dest.is_dir():
        return dest
    partial = dest.with_name(f"{dest.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in names:
        src = root / "etc" / name
        if src.is_symlink():
            os.symlink(os.readlink(src), partial / name)
        elif src.is_dir():
            shutil.copytree(src, partial / name, symlinks=True)
        else:
            shutil.copyfile(src, partial / name)
    try:
        partial.rename(dest)
    except OSError:  # made meanwhile by a boot beside this one
        shutil.rmtree(partial, ignore_errors=True)
    return dest


def narrow(project_root: Path, cache_dir: Path, argvs: Iterable[Iterable[str]] = (),
           runtime: tuple[Path, ...] | None = None, root: Path = Path("/")) -> HostView:
    """The view a host-side command needs: /usr, the Python runtime (``sys.base_prefix``,
    ``sys.prefix``: the virtualenv), ``userspace/``, the prepared /etc and what
    ``argvs`` name. Each directory once, a directory inside another one left out."""
    runtime = runtime if runtime is not None else (Path(sys.base_prefix).resolve(),
                                                   Path(sys.prefix))
    wanted = [root / "usr", *runtime, project_root / "userspace", *named_paths(argvs)]
    layout = host_layout(root)
    links, dirs = list(layout.links), [root / name.lstrip("/") for name in layout.dirs]
    chosen: list[tuple[Path, str]] = []
    for path in sorted({*wanted, *dirs}, key=lambda p: (len(p.parts), str(p))):
        if not _covered(path, [p for p, _ in chosen]):
            chosen.append((path, "/" + str(path.relative_to(root))))
    chosen.append((prepared_etc(cache_dir, root), "/etc"))
    mounts = tuple(Mount(f"hv{i}", host, at) for i, (host, at) in enumerate(chosen))
    return HostView(View.NARROW, mounts, tuple(links))
