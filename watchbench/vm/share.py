"""What a guest left in its writable share, checked before the host reads or writes a
byte of it: regular files (and directories) only, each within ``Limits``.

The share is ``security_model=mapped-file`` (vm.qemu.Share), so a guest-made symlink,
fifo or device node is a regular file on the host whose guest type is kept in
``.virtfs_metadata/<name>``; such an entry is refused by its guest type, and any host
entry that is no regular file or directory is refused by its own. The check runs once
QEMU has exited, so nothing changes the share after it. Host writes into the share go
through ``write_file`` (O_NOFOLLOW, a regular file only) all the same.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from watchbench.vm.errors import HostileGuest

META_DIR = ".virtfs_metadata"  # QEMU's mapped-file metadata, hidden from the guest
META_ROOT = ".virtfs_metadata_root"
_MODE = re.compile(r"^virtfs\.mode=(\d+)$", re.M)
MIB = 1 << 20


def size_text(n: float) -> str:
    """A size as people read it: 2.1 GiB, 64 MiB, 256 KiB, 1.5 MiB, 700 B."""
    if n >= 1 << 30:
        return f"{n / (1 << 30):.3g} GiB"
    if n >= MIB:
        return f"{n / MIB:.4g} MiB"
    return f"{n / 1024:.4g} KiB" if n >= 1024 else f"{n:.0f} B"


@dataclass(frozen=True)
class Limits:
    """What a guest may hand back: its console log, one file of its share, the whole
    share, one line (a record) of its report channel. Generous for every suite here
    (a full run's raw/ is a few MB, a debug check's console ~20 MB)."""

    console_bytes: int = 64 * MIB
    channel_bytes: int = 64 * MIB  # the report port: every command's output
    file_bytes: int = 64 * MIB
    share_bytes: int = 256 * MIB
    record_bytes: int = 1 * MIB
    entries: int = 10_000


LIMITS = Limits()

_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a fifo",
          stat.S_IFCHR: "a character device node", stat.S_IFBLK: "a block device node",
          stat.S_IFSOCK: "a socket"}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), f"a special file (mode {mode:o})")


def guest_mode(entry: Path) -> int | None:
    """The mode the guest gave ``entry`` (mapped-file metadata), None when it set none."""
    meta = entry.parent / META_DIR / entry.name
    try:
        if not stat.S_ISREG(os.lstat(meta).st_mode):
            return None
        with open(meta, "rb", opener=_no_follow(os.O_RDONLY)) as fh:
            text = fh.read(4096).decode("ascii", "replace")
    except OSError:
        return None
    match = _MODE.search(text)
    return int(match[1]) if match else None


def check_share(root: Path, limits: Limits = LIMITS, log: Path | None = None) -> int:
    """Refuse (HostileGuest, naming the entry) a share holding anything but regular
    files and directories, a file over ``limits.file_bytes`` or a total over
    ``limits.share_bytes``; returns the total. Nothing is followed, opened or changed."""
    total, seen = 0, 0
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name in (META_DIR, META_ROOT):
                    continue
                seen += 1
                path = Path(entry.path)
                where = path.relative_to(root)
                if seen > limits.entries:
                    raise HostileGuest(f"the guest left over {limits.entries} entries in its "
                                       f"share {root}", log=log, hint=HINT)
                mode = entry.stat(follow_symlinks=False).st_mode
                made = guest_mode(path)
                if made is not None and not (stat.S_ISREG(made) or stat.S_ISDIR(made)):
                    raise HostileGuest(f"the guest made {_kind(made)} in its share: {where} "
                                       "(refused; the host never follows or opens it)",
                                       log=log, hint=HINT)
                if stat.S_ISDIR(mode):
                    pending.append(path)
                    continue
                if not stat.S_ISREG(mode):
                    raise HostileGuest(f"{_kind(mode)} in the guest's share: {where} "
                                       "(refused; the host never follows or opens it)",
                                       log=log, hint=HINT)
                size = entry.stat(follow_symlinks=False).st_size
                if size > limits.file_bytes:
                    raise HostileGuest(f"the guest wrote {size_text(size)} to {where}, over "
                                       f"the {size_text(limits.file_bytes)} a result file "
                                       "may hold (refused, not read)", log=log, hint=HINT)
                total += size
                if total > limits.share_bytes:
                    raise HostileGuest(f"the guest wrote over {size_text(limits.share_bytes)} "
                                       f"of results to {root} (refused, not read)",
                                       log=log, hint=HINT)
    return total


HINT = ("a kernel under test controls its guest: this one tried to hand the host something "
        "no benchmark makes (docs/security.md); the console log shows what it ran")


def _no_follow(flags: int):
    def opener(path: str, _flags: int) -> int:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    return opener


def write_file(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` in a guest's share: never through a symlink (O_NOFOLLOW),
    never into a fifo or a device (O_NONBLOCK, then a regular file or nothing)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        raise HostileGuest(f"cannot write {path}: {exc.strerror} (a link or a special file "
                           "the guest left in its share?)", hint=HINT) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise HostileGuest(f"{path} in the guest's share is not a regular file "
                               "(refused)", hint=HINT)
        fh.truncate(0)
        fh.write(data)


def read_file(path: Path, limit: int = LIMITS.file_bytes) -> str:
    """``read_bytes`` as text (undecodable bytes replaced)."""
    return read_bytes(path, limit).decode("utf-8", "replace")


def read_bytes(path: Path, limit: int = LIMITS.file_bytes) -> bytes:
    """Read a file of a guest's share: not through a symlink, not a special file, at most
    ``limit`` bytes (more is refused, not truncated)."""
    try:
        with open(path, "rb", opener=_no_follow(os.O_RDONLY)) as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise HostileGuest(f"{path} in the guest's share is not a regular file "
                                   "(refused)", hint=HINT)
            data = fh.read(limit + 1)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink, refused by O_NOFOLLOW
            raise HostileGuest(f"{path} in the guest's share is a symbolic link (refused)",
                               hint=HINT) from exc
        raise
    if len(data) > limit:
        raise HostileGuest(f"{path} holds over {size_text(limit)} (refused)", hint=HINT)
    return data
