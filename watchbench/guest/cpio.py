"""A deterministic newc cpio writer (what the kernel unpacks as initramfs).

Written here rather than piping find|cpio|gzip so archives are byte-for-byte reproducible
(fixed mtimes, sorted entries) and no shell pipeline is needed.
"""

from __future__ import annotations

import gzip
import io
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    path: str  # inside the archive, no leading slash
    mode: int  # full st_mode (type + permissions)
    data: bytes = b""  # file contents, or the link target for symlinks
    rdev: tuple[int, int] = (0, 0)  # major, minor of a device node


def _header(ino: int, entry: Entry, size: int) -> bytes:
    name = entry.path.encode() + b"\0"
    fields = [ino, entry.mode, 0, 0, 1, 0, size, 0, 0, *entry.rdev, len(name), 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name
    return head + b"\0" * (-len(head) % 4)


def archive(entries: list[Entry]) -> bytes:
    """The uncompressed newc archive of ``entries`` (parents must be listed before children)."""
    out = io.BytesIO()
    for ino, entry in enumerate(entries, 1):
        out.write(_header(ino, entry, len(entry.data)))
        out.write(entry.data + b"\0" * (-len(entry.data) % 4))
    out.write(_header(0, Entry("TRAILER!!!", 0), 0))
    return out.getvalue()


def gzipped(entries: list[Entry]) -> bytes:
    return gzip.compress(archive(entries), compresslevel=6, mtime=0)


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def file(path: str, data: bytes, executable: bool = False) -> Entry:
    return Entry(path, stat.S_IFREG | (0o755 if executable else 0o644), data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))


def host_file(path: str, source: Path) -> Entry:
    mode = source.stat().st_mode
    return file(path, source.read_bytes(), executable=bool(mode & 0o111))
