"""``./wb`` run in this process (its Program, our tasks), for the tests that read what it
prints: invoke's parser pops the help of each task it reads, so it is put back after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from watchbench.cli import tasks

# Each task object, looked up once: a lookup by name merges the collection's whole
# configuration (about 0.1 ms), and saving the helps for each run looked up every task.
TASKS = {name: tasks.ns[name] for name in tasks.ns.task_names}


@contextlib.contextmanager
def helps_kept() -> Iterator[None]:
    """Every task's help as it was, after the run (a later test reads the options' help)."""
    helps = {name: dict(task.help) for name, task in TASKS.items()}
    try:
        yield
    finally:
        for name, given in helps.items():
            TASKS[name].help = given
