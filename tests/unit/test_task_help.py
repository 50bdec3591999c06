"""Every task's help reads like a man page: what it does, its options (invoke lists
them), its exit status, the files it reads and writes, and an example that runs; every
line of `./wb --help TASK` and of `./wb --list` within 80 columns."""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import shlex

import pytest

from tests.program import helps_kept
from watchbench.cli import tasks
from watchbench.cli.program import SECTIONS, WatchbenchProgram, help_parts

NAMES = sorted(tasks.ns.task_names)
LIST_WIDTH = 60  # what --list leaves a first line beside the longest name, in 80 columns


def _wb(argv: list[str]) -> str:
    """What ``./wb ARGV`` prints, run in this process (its Program, our tasks)."""
    out = io.StringIO()
    with helps_kept(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            WatchbenchProgram(namespace=tasks.ns, name="watchbench", binary="./wb").run(
                ["./wb", *argv])
        except SystemExit as exc:
            assert exc.code in (0, None), out.getvalue()
    return out.getvalue()


def _sections(name: str) -> dict[str, list[str]]:
    """The docstring's sections, each heading with its lines (no blank ones)."""
    _, rest = help_parts(inspect.getdoc(tasks.ns[name]) or "")
    found: dict[str, list[str]] = {}
    for line in rest.splitlines():
        if line.strip() in SECTIONS:
            found[line.strip()] = []
        elif line.strip():
            found[list(found)[-1]].append(line)
    return found


@pytest.mark.parametrize("name", NAMES)
def test_every_task_says_what_it_does_its_exit_status_files_and_an_example(name):
    doc = inspect.getdoc(tasks.ns[name]) or ""
    description, _ = help_parts(doc)
    first = description.splitlines()[0] if description else ""
    assert first and len(first) <= LIST_WIDTH and first[-1] in ".?", first
    sections = _sections(name)
    assert list(sections) == list(SECTIONS), (name, list(sections))
    assert sections["Exit status:"] and all(
        re.match(r"  (\d+|N) +\S", line) for line in sections["Exit status:"]), name
    assert [line.split()[0] for line in sections["Files:"]
            if not line.startswith("    ")] == ["reads", "writes"], name
    assert any(f"./wb {name}" in line for line in sections["Example:"]), name


@pytest.mark.parametrize("name", NAMES)
def test_the_example_of_every_task_gives_only_options_it_has(name):
    with helps_kept():
        known = {f"--{a.name.replace('_', '-')}" for a in tasks.ns[name].get_arguments()}
    for line in _sections(name)["Example:"]:
        words = shlex.split(line.split("./wb ", 1)[1].split(" -- ")[0])
        given = {w.split("=")[0] for w in words[1:] if w.startswith("--")}
        assert given <= known, (name, sorted(given - known))


@pytest.mark.parametrize("name", NAMES)
def test_help_is_in_the_order_of_a_man_page_within_80_columns(name):
    text = _wb(["--help", name])
    over = [line for line in text.splitlines() if len(line) > 80]
    assert over == [], over
    description, _ = help_parts(inspect.getdoc(tasks.ns[name]) or "")
    marks = [f"  {description.splitlines()[0]}", "Options:", *SECTIONS]
    at = [text.index(mark) for mark in marks]
    assert at == sorted(at), (name, at)
    assert "Docstring:" not in text


def test_the_list_gives_each_task_one_line_in_80_columns():
    lines = [line for line in _wb(["--list"]).splitlines() if line.strip()]
    assert all(len(line) <= 80 for line in lines)
    shown = [line.split()[0] for line in lines[1:]]
    assert sorted(shown) == NAMES  # no line is a continuation of the one before


def test_a_run_parses_with_the_tasks_it_names_only():
    """The parser holds the named tasks only (invoke deep-copies each one it holds, at
    every start); an option of another task is still refused by name."""
    program = WatchbenchProgram(namespace=tasks.ns, name="watchbench", binary="./wb")
    with helps_kept(), contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(SystemExit) as done:
            program.run(["./wb", "--help", "ci"])
    assert done.value.code in (0, None) and set(program.parser.contexts) == {"ci"}
    for given, name in (("--help=kernel.status", "kernel.status"), ("-hgc", "gc")):
        # the task named inside a word of its own
        assert _wb([given]).startswith(f"Usage: ./wb [--core-opts] {name} "), given
    out = io.StringIO()
    with helps_kept(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        with pytest.raises(SystemExit) as refused:
            WatchbenchProgram(namespace=tasks.ns, name="watchbench", binary="./wb").run(
                ["./wb", "report", "--series", "x"])  # ci's option, not report's
    assert refused.value.code == 2 and "report: unknown option --series" in out.getvalue()
