"""Progress lines that fit the terminal: one live line on a TTY, sparse lines in logs/CI."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


class Progress:
    """Reports the steps of a long job; ``update`` is throttled so logs stay short."""

    def __init__(self, topic: str, stream: TextIO | None = None, every: float = 15.0):
        self.topic = topic
        self.stream = stream or sys.stderr
        self.every = every
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._live = False

    def _clear(self) -> None:
        if self._live:
            self.stream.write("\r\033[K")
            self._live = False

    def step(self, message: str) -> None:
        """A new stage: always printed."""
        self._clear()
        self.stream.write(f"[{self.topic}] {message}\n")
        self.stream.flush()

    def update(self, message: str) -> None:
        """A status within a stage: rewritten in place on a TTY, else every ``every`` s."""
        now = time.monotonic()
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r\033[K" + f"[{self.topic}] {message}"[:width])
            self._live = True
            self.stream.flush()
        elif now - self._last >= self.every:
            self.stream.write(f"[{self.topic}] {message}\n")
            self.stream.flush()
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
