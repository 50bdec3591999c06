"""Stdlib-only access to the notification queue API for the Python benchmarks.

Notification pipes come from ``os.pipe2`` with ``O_NOTIFICATION_PIPE`` (which is
``O_EXCL``), are sized and filtered with ``fcntl.ioctl`` and watch keys through
``keyctl(2)`` called with ``ctypes`` (no libkeyutils). Constants follow the
Linux 6.12 UAPI headers ``linux/watch_queue.h`` and ``linux/keyctl.h``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import struct
from collections.abc import Iterator
from dataclasses import dataclass

O_NOTIFICATION_PIPE = os.O_EXCL
IOC_WATCH_QUEUE_SET_SIZE = (ord("W") << 8) | 0x60  # _IO('W', 0x60)
IOC_WATCH_QUEUE_SET_FILTER = (ord("W") << 8) | 0x61  # _IO('W', 0x61)

WATCH_TYPE_META = 0
WATCH_TYPE_KEY_NOTIFY = 1
WATCH_META_LOSS_NOTIFICATION = 1
WATCH_INFO_LENGTH = 0x7F
NOTIFY_KEY_REVOKED = 5
NOTIFY_KEY_SETATTR = 7
KEY_NOTIFICATION_SIZE = 16

KEY_SPEC_SESSION_KEYRING = -3
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_SETPERM = 5
KEYCTL_WATCH_KEY = 32
PERM = 0x3F000000 | 0x003F0000  # KEY_POS_ALL | KEY_USR_ALL

# keyctl(2) syscall numbers per architecture.
_NR_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "i686": 288, "i386": 288}

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class Unsupported(Exception):
    """The running kernel lacks a feature the benchmark needs (a skip, not a failure)."""


def _errname(err: int) -> str:
    return errno.errorcode.get(err, str(err))


def keyctl(cmd: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    """keyctl(2) through syscall(); raises OSError on failure."""
    nr = _NR_KEYCTL.get(platform.machine())
    if nr is None:
        raise Unsupported(f"keyctl syscall number unknown for {platform.machine()}")
    args = [ctypes.c_long(v) for v in (a2, a3, a4, a5)]
    ret = _syscall(ctypes.c_long(nr), ctypes.c_long(cmd), *args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"keyctl({cmd}): {_errname(err)}")
    return int(ret)


def post_setperm() -> None:
    """One NOTIFY_KEY_SETATTR post on the session keyring."""
    keyctl(KEYCTL_SETPERM, KEY_SPEC_SESSION_KEYRING, PERM)


@dataclass
class Queue:
    rfd: int
    wfd: int

    def close(self) -> None:
        os.close(self.rfd)
        os.close(self.wfd)


def open_queue(nr_notes: int) -> Queue:
    """A non-blocking notification pipe of ``nr_notes`` slots; Unsupported on ENOPKG."""
    try:
        rfd, wfd = os.pipe2(O_NOTIFICATION_PIPE | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        reason = f"pipe2(O_NOTIFICATION_PIPE): {_errname(exc.errno or 0)}"
        if exc.errno == errno.ENOPKG:
            raise Unsupported(reason + ": kernel built without CONFIG_WATCH_QUEUE") from exc
        raise
    fcntl.ioctl(rfd, IOC_WATCH_QUEUE_SET_SIZE, nr_notes)
    return Queue(rfd, wfd)


def watch_session_keyring(q: Queue, watch_id: int) -> None:
    try:
        keyctl(KEYCTL_WATCH_KEY, KEY_SPEC_SESSION_KEYRING, q.rfd, watch_id)
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            raise Unsupported(
                "keyctl(KEYCTL_WATCH_KEY): EOPNOTSUPP: kernel built without "
                "CONFIG_KEY_NOTIFICATIONS"
            ) from exc
        raise


def set_filter(q: Queue, type_: int, subtypes: int) -> None:
    """One type filter; subtypes is the bitmask of accepted subtypes (< 32)."""
    flt = struct.pack("=II", 1, 0) + struct.pack("=III8I", type_, 0, 0, subtypes, *([0] * 7))
    # A mutable buffer is passed to the kernel by address (an int argument would be taken
    # as a C int and overflow for a 64-bit pointer).
    fcntl.ioctl(q.rfd, IOC_WATCH_QUEUE_SET_FILTER, bytearray(flt), True)


def probe() -> None:
    """Raise Unsupported (with the reason) unless queues and key watches work.

    Also joins a fresh anonymous session keyring, so the benchmarks never touch
    the keyring of whoever started them.
    """
    open_queue(1).close()
    keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0)
    q = open_queue(1)
    try:
        watch_session_keyring(q, 0x7F)
    finally:
        q.close()


def records(buf: bytes) -> Iterator[tuple[int, int, int]]:
    """(type, subtype, length) of each record in one read()'s worth of bytes."""
    off = 0
    while off + 8 <= len(buf):
        word, info = struct.unpack_from("=II", buf, off)
        length = info & WATCH_INFO_LENGTH
        if length < 8:
            raise ValueError(f"malformed record length {length} at offset {off}")
        yield word & 0xFFFFFF, word >> 24, length
        off += length


def drain(fd: int, size: int = 8192) -> tuple[int, int]:
    """Read until EAGAIN; return (key records, loss records)."""
    keys = losses = 0
    while True:
        try:
            buf = os.read(fd, size)
        except BlockingIOError:
            return keys, losses
        if not buf:
            return keys, losses
        for type_, subtype, _ in records(buf):
            if type_ == WATCH_TYPE_KEY_NOTIFY:
                keys += 1
            elif type_ == WATCH_TYPE_META and subtype == WATCH_META_LOSS_NOTIFICATION:
                losses += 1
