"""py-pipe-read: draining a full notification queue with os.read() from Python.

Each round (untimed) fills the queue with ``queue_size`` 16-byte NOTIFY_KEY_SETATTR
records, then the timed part reads them with a buffer of ``read_size`` bytes. The
same is measured for an ordinary pipe holding the same records.
"""

from __future__ import annotations

import os
from typing import Any

import wqpy


def _drain_exact(fd: int, read_size: int, want: int) -> int:
    got = reads = 0
    while got < want:
        got += len(os.read(fd, read_size))
        reads += 1
    if got != want:
        raise AssertionError(f"read {got} bytes, expected {want}")
    return reads


def _run(benchmark: Any, opts: dict[str, int], read_size: int, kind: str) -> None:
    n = opts["queue_size"]
    want = n * wqpy.KEY_NOTIFICATION_SIZE
    reads_total = 0
    if kind == "notification":
        q = wqpy.open_queue(n)
        wqpy.watch_session_keyring(q, 1)
        rfd, wfd = q.rfd, q.wfd

        def fill() -> None:
            for _ in range(n):
                wqpy.post_setperm()
    else:
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        record = bytes(wqpy.KEY_NOTIFICATION_SIZE)

        def fill() -> None:
            for _ in range(n):
                os.write(wfd, record)

    def drain() -> None:
        nonlocal reads_total
        reads_total += _drain_exact(rfd, read_size, want)

    try:
        benchmark.pedantic(
            drain, setup=fill, rounds=opts["rounds"], iterations=1, warmup_rounds=opts["warmup"]
        )
    finally:
        os.close(rfd)
        os.close(wfd)
    rounds = opts["rounds"] + opts["warmup"]
    benchmark.extra_info.update(
        {
            "benchmark": "py-pipe-read",
            "params": {"pipe": kind, "read_size": read_size, "record_size": 16, "queue_size": n},
            "records_per_round": n,
            "bytes_per_round": want,
            "records_per_read": n * rounds / reads_total,
        }
    )


def test_notification(
    benchmark: Any, wq_supported: None, opts: dict[str, int], read_size: int
) -> None:
    _run(benchmark, opts, read_size, "notification")


def test_plain(benchmark: Any, wq_supported: None, opts: dict[str, int], read_size: int) -> None:
    _run(benchmark, opts, read_size, "plain")
