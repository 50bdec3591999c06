"""The command layer: what each task prints and which exit code it gives.

Every task in ``tasks.py`` is one call into a module here. Only this layer prints (the
domain reports through the ``Progress`` it is handed) and only it turns a
``WatchbenchError`` into a message and an exit code (``command``). Below it, flows and
stages return data.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from invoke.exceptions import Exit

from watchbench.errors import WatchbenchError
from watchbench.settings import Settings

EXIT_INTERRUPTED = 130


def settings_of(c: Any) -> Settings:
    """Settings from the ``watchbench`` section of invoke's config (defaults, invoke.yaml,
    user overrides)."""
    section = c.config.get("watchbench", {}) if hasattr(c, "config") else {}
    return Settings.from_mapping(_plain(section))


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def command(func: Callable[..., int | None]) -> Callable[..., None]:
    """A task body: its returned int is the exit code; a WatchbenchError becomes its
    message (with the hint and the log path) on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = func(*args, **kwargs)
        except WatchbenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=EXIT_INTERRUPTED) from None
        if code:
            raise Exit(code=code)

    return wrapper
