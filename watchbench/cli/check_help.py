"""The `check` task's help about its steps, written from their one table
(``suite.check_steps``), so that the help names every step the plan runs and says what
each does, and a new step needs no edit here."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import TypeVar

from watchbench.suite.check_steps import TABLE

MARK = "{steps}"  # the line of the task's docstring the step list replaces
NAME_WIDTH = 16  # the longest name and two spaces
DOES_WIDTH = 56  # with its indentation, a line of `./wb --help check` within 78 columns

# The steps a user picks with --only (a step that comes with another is not listed).
LISTED = tuple(d for d in TABLE if d.does)

ONLY = f"comma-separated steps: {', '.join(d.name for d in LISTED)} (default: all)"

F = TypeVar("F", bound=Callable[..., object])


def step_lines() -> list[str]:
    """One entry per listed step in boot order: its name, then what it does."""
    lines = []
    for declared in LISTED:
        does = textwrap.wrap(declared.does, DOES_WIDTH)
        lines.append(f"{declared.name:<{NAME_WIDTH}}{does[0]}")
        lines += [" " * NAME_WIDTH + more for more in does[1:]]
    return lines


def with_steps(body: F) -> F:
    """``body`` with the ``{steps}`` line of its docstring replaced by the step list, at
    that line's indentation (invoke reads the docstring when the task is made)."""
    doc = body.__doc__ or ""
    marked = next(line for line in doc.splitlines() if line.strip() == MARK)
    indent = marked[:len(marked) - len(marked.lstrip())]
    body.__doc__ = doc.replace(marked, "\n".join(indent + line for line in step_lines()))
    return body
