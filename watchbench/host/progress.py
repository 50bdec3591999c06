"""Progress lines that fit the terminal: one live line on a TTY, sparse lines in logs/CI.

With ``width`` (the gate's progress) every line fits that many columns in a log too: a
flow names its places once, in full (``place``), and later lines show an absolute path
relative to the current directory when under it, else as ``…/<last two parts>`` (the
run id and file, the kernel key...); what is still too long wraps, indented. Without a
width, lines are printed as they are: tests/integration parse full paths out of
`./wb bench` and `./wb build` lines.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
import time
from pathlib import Path
from typing import TextIO

ELLIPSIS = "…"
LOG_WIDTH = 80  # the columns of a CI log's lines (``width``)
# An absolute path of two or more parts, not inside a word ("1/4", "and/or" are not paths).
_PATH = re.compile(r"(?<![\w./~…-])/[\w.+@%=~-]+(?:/[\w.+@%=~-]+)+/?")


def short_path(path: str | Path, cwd: Path | None = None) -> str:
    """``path`` for a line of a log: relative to ``cwd`` when under it (still a path one
    can paste), else ``…/<last two parts>``; a path of three parts or fewer stays as it
    is. (A form relative to a named place, ``…/runs/ID/results.parquet``, was longer and
    could push what a line names off its first line.)"""
    text = str(path)
    full = Path(os.path.normpath(text))
    if not full.is_absolute():
        return text
    here = Path(os.path.normpath(cwd if cwd is not None else os.getcwd()))
    if here != Path("/") and full.is_relative_to(here) and full != here:
        return str(full.relative_to(here))
    if len(full.parts) <= 4:  # "/", and three parts: short enough
        return text
    return f"{ELLIPSIS}/" + "/".join(full.parts[-2:])


def fit_lines(text: str, width: int, indent: str = "  ") -> list[str]:
    """``text`` wrapped to ``width`` at spaces, continuation lines indented; a word
    longer than a line (seldom, once paths are short) is cut where the line ends."""
    out: list[str] = []
    for line in text.splitlines() or [""]:
        out += textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=True,
                             break_on_hyphens=False, drop_whitespace=True) or [""]
    return out


class Progress:
    """Reports the steps of a long job; ``update`` is throttled so logs stay short.
    ``width``: fit every line to it (see the module docstring); None: print as given."""

    def __init__(self, topic: str, stream: TextIO | None = None, every: float = 15.0,
                 width: int | None = None):
        self.topic = topic
        self.stream = stream or sys.stderr
        self.every = every
        self.width = width
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._live = False

    def _clear(self) -> None:
        if self._live:
            self.stream.write("\r\033[K")
            self._live = False

    def shorten(self, message: str) -> str:
        """The message with its absolute paths short (``short_path``), with a width."""
        if self.width is None:
            return message

        def one(match: re.Match[str]) -> str:
            text, tail = match[0], ""
            while text.endswith((".", "/")) and len(text) > 1:  # a sentence's full stop
                text, tail = text[:-1], text[-1] + tail
            return short_path(text) + tail

        return _PATH.sub(one, message)

    def _lines(self, message: str) -> list[str]:
        text = f"[{self.topic}] {self.shorten(message)}"
        if self.width is None:
            return [text]
        return fit_lines(text, self.width, " " * (len(self.topic) + 5))

    def _write(self, lines: list[str]) -> None:
        self._clear()
        self.stream.write("".join(f"{line}\n" for line in lines))
        self.stream.flush()

    def step(self, message: str) -> None:
        """A new stage: always printed."""
        self._write(self._lines(message))

    def place(self, label: str, path: Path) -> None:
        """Say once, in full, where a kind of file goes (``label: path``), so that later
        lines may name paths short; relative to the current directory when under it."""
        full = Path(os.path.abspath(path))
        here = Path(os.getcwd())
        under = here != Path("/") and full.is_relative_to(here) and full != here
        self._write([f"[{self.topic}] {label}: {full.relative_to(here) if under else full}"])

    def update(self, message: str) -> None:
        """A status within a stage: rewritten in place on a TTY, else every ``every`` s."""
        now = time.monotonic()
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            text = f"[{self.topic}] {self.shorten(message)}"
            self.stream.write("\r\033[K" + text[:width])
            self._live = True
            self.stream.flush()
        elif now - self._last >= self.every:
            self._write(self._lines(message))
            self._last = now

    def done(self, message: str) -> None:
        self.step(message)


class Silent(Progress):
    """For tests and library use: says nothing."""

    def __init__(self) -> None:
        super().__init__("silent")

    def step(self, message: str) -> None:  # noqa: D102
        pass

    def update(self, message: str) -> None:  # noqa: D102
        pass

    def place(self, label: str, path: Path) -> None:  # noqa: D102
        pass
