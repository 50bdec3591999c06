"""Failures of a booted guest; each carries the console log path and an excerpt."""

from __future__ import annotations

from watchbench.errors import WatchbenchError


class GuestError(WatchbenchError):
    """The guest did not finish its job (crashed, hung, or stopped early)."""


class GuestCrash(GuestError):
    """A panic, Oops, BUG or WARNING appeared on the console."""

    def __init__(self, kind: str, message: str, **kw):
        self.kind = kind
        super().__init__(message, **kw)


class GuestHang(GuestError):
    """The guest outlived its deadline and was killed."""
