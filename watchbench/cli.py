"""Glue between invoke tasks and the package: settings from invoke's config, clean errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from invoke.exceptions import Exit

from watchbench.errors import WatchbenchError
from watchbench.settings import Settings


def settings_of(c: Any) -> Settings:
    """Settings from the ``watchbench`` section of invoke.yaml (and user overrides)."""
    section = c.config.get("watchbench", {}) if hasattr(c, "config") else {}
    return Settings.from_mapping(_plain(section))


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a WatchbenchError into its message on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except WatchbenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper
