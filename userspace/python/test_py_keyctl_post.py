"""py-keyctl-post: what a Python caller pays per key notification post.

Each timed round makes ``batch`` keyctl(KEYCTL_SETPERM) calls through ctypes on the
session keyring; between rounds (untimed) every queue is drained, so with a batch
no larger than the queue nothing is lost (credit-style flow control).
"""

from __future__ import annotations

from typing import Any

import wqpy


def _run(benchmark: Any, opts: dict[str, int], case: str, nq: int) -> None:
    batch = min(opts["iterations"], opts["queue_size"]) if nq else opts["iterations"]
    queues = [wqpy.open_queue(opts["queue_size"]) for _ in range(nq)]
    delivered = losses = 0
    rounds_done = 0
    try:
        for i, q in enumerate(queues):
            if case == "filtered":
                wqpy.set_filter(q, wqpy.WATCH_TYPE_KEY_NOTIFY, 1 << wqpy.NOTIFY_KEY_REVOKED)
            wqpy.watch_session_keyring(q, i)

        def setup() -> None:
            nonlocal delivered, losses, rounds_done
            for q in queues:
                k, lo = wqpy.drain(q.rfd)
                delivered += k
                losses += lo
            rounds_done += 1

        def post_batch() -> None:
            for _ in range(batch):
                wqpy.post_setperm()

        benchmark.pedantic(
            post_batch,
            setup=setup,
            rounds=opts["rounds"],
            iterations=1,
            warmup_rounds=opts["warmup"],
        )
        setup()
    finally:
        for q in queues:
            q.close()
    # Each round (warm-up ones too) was drained by the setup() that followed it.
    posted = batch * nq * (rounds_done - 1)
    benchmark.extra_info.update(
        {
            "benchmark": "py-keyctl-post",
            "params": {
                "case": case,
                "queues": nq,
                "batch": batch,
                "queue_size": opts["queue_size"] if nq else 0,
                "filter": "reject" if case == "filtered" else "none",
                "flow": "credit",
            },
            "ops_per_round": batch,
            "counts": {
                "posted": posted,
                "delivered": delivered,
                "lost": 0 if case == "filtered" else posted - delivered,
            },
            "loss_records": losses,
        }
    )
    if case == "watched":
        assert delivered == posted, f"{posted - delivered} records lost despite flow control"
    if case == "filtered":
        assert delivered == 0, "the filter let records through"


def test_baseline(benchmark: Any, wq_supported: None, opts: dict[str, int]) -> None:
    _run(benchmark, opts, "baseline", 0)


def test_watched(benchmark: Any, wq_supported: None, opts: dict[str, int], queues: int) -> None:
    _run(benchmark, opts, "watched", queues)


def test_filtered(benchmark: Any, wq_supported: None, opts: dict[str, int], queues: int) -> None:
    _run(benchmark, opts, "filtered", queues)
