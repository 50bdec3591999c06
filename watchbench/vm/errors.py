"""Failures of a booted guest; each carries the console log path and an excerpt."""

from __future__ import annotations

from typing import Any

from watchbench.errors import WatchbenchError


class GuestError(WatchbenchError):
    """The guest did not finish its job (crashed, hung, or stopped early)."""

    # A guest that hung or stopped early says what it did first (Guest.run): each
    # command's result so far (vm.session.CommandResult) and the console lines. None: it
    # carries none (QEMU itself failed, or a crash was judged).
    commands: list[Any] | None = None
    console: list[str] | None = None


class GuestCrash(GuestError):
    """A panic, Oops, BUG or WARNING appeared on the console."""

    def __init__(self, kind: str, message: str, **kw):
        self.kind = kind
        super().__init__(message, **kw)


class GuestHang(GuestError):
    """The guest outlived its deadline and was killed."""


class HostileGuest(GuestError):
    """The guest did what no benchmark does: flooded its console, its report port or its
    share, or left links or special files there. Stopped; its log kept (truncated)."""
