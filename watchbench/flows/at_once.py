"""Boots side by side, for the gate's rounds and bisect's samples: how many may run at
once (``boot_jobs``), and running them so (``at_once``). Under icount a guest's figures
count its instructions, not host time (measured: bench/scripts/icount_load.py, README),
so boots may share the host; under tcg and kvm they may not, since each slows the other."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

from watchbench.errors import InputError
from watchbench.host.progress import Progress
from watchbench.host.runner import Runner

T = TypeVar("T")


def boot_jobs(requested: int, accel: str, per_batch: int) -> int:
    """How many of ``per_batch`` boots run at once: ``requested`` (0: the cores this
    process may use), no more than the batch, and 1 under tcg and kvm (more is refused
    there)."""
    if requested < 0:
        raise InputError(f"--jobs {requested}: give 0 (automatic) or a number of boots")
    if accel != "icount":
        if requested > 1:
            raise InputError(f"--jobs {requested} with --accel {accel}: boots at once would "
                             "slow each other and move the figures",
                             hint="use --accel icount, or --jobs 1")
        return 1
    return max(1, min(requested or len(os.sched_getaffinity(0)), per_batch))


def say_jobs(progress: Progress, jobs: int) -> None:
    """The progress line of boots at once, which says why their figures still hold."""
    if jobs > 1:
        progress.step(f"{jobs} boots at once (icount: figures count guest instructions)")


def at_once(calls: Sequence[Callable[[], T]], jobs: int, runner: Runner) -> list[T]:
    """Each call's result, in order, up to ``jobs`` of them running at once. The first
    call that fails (or a Ctrl-C) stops the rest at once, not after the boots listed
    before it: the runner kills its children (the other guests) and starts none until
    ``resume``, and the calls still queued are cancelled, so no guest outlives the
    command."""
    if jobs <= 1:
        return [call() for call in calls]
    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="boot") as pool:
            futures = [pool.submit(call) for call in calls]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for future in futures:  # a failure first, whichever boot it was
                    if future in done and future.exception() is not None:
                        future.result()
                return [future.result() for future in futures]
            except BaseException:  # Ctrl-C or a failed boot: stop the other guests
                runner.kill_all()
                for future in futures:
                    future.cancel()  # those not started yet never start
                raise
    finally:
        runner.resume()
