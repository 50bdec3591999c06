"""The correctness check's steps, declared once, in boot order.

``suite.check.plan`` (each step's argv), ``flows.check`` (what ``--only`` accepts), the
``check`` task's help (``cli.check_help``) and the tests all read this table: a new step
is a row here, its argv in ``plan`` beside its program, and its test. Pure data, no
imports of ours, so that the task help reads it without loading the check.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Declared:
    """One step as the table declares it."""

    name: str
    # What it checks, one line for the task's help ('' for a step that is not picked on
    # its own: it comes with ``comes_with``).
    does: str
    # Seconds it may run before the guest counts as hung: about ten times what it took on
    # the debug kernel under TCG here (README), so a deadlock fails the check in minutes,
    # not at the end of a long boot deadline. The stress adds its own time; keyutils'
    # tests take this each (``suite.check.plan``).
    limit: float
    # A real client, which skips itself when the host lacks it (keyctl, the tree's sample,
    # keyutils' suite). Every other step needs only the debug kernel, which configure
    # proved to have what it needs, so a step of ours that skips everything (say, because
    # pipe2(O_NOTIFICATION_PIPE) or SET_SIZE now fails) is a finding, not a skip.
    client: bool = False
    # It prints its results only when it ends: a splat while it runs cannot be pinned on
    # one of its tests.
    results_at_end: bool = False
    comes_with: str = ""  # picked by --only whenever this other step is


TABLE = (
    Declared("kmemleak-clear", "", 60.0, comes_with="kmemleak"),
    Declared("conformance", "our API conformance suite (wq-conformance)", 300.0),
    Declared("faults", "the n-th allocation of each call fails, for every n", 300.0),
    Declared("stress", "posts, reads and watch changes race (--stress-seconds)", 120.0,
             results_at_end=True),
    Declared("keyctl-client", "keyctl watch_session sees a script's key changes", 180.0,
             client=True),
    Declared("watch-test", "the tree's samples/watch_queue/watch_test.c", 180.0,
             client=True, results_at_end=True),
    Declared("keyutils-tests", "keyutils' own tests (settings check.keyutils_tests)", 300.0,
             client=True),
    Declared("kmemleak", "leaks, between a clear before the first step and a scan", 180.0),
)

STEPS = tuple(d.name for d in TABLE)  # every step's name, in boot order
BY_NAME = {d.name: d for d in TABLE}
