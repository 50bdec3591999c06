"""Exceptions that carry the reason, where to look and what to do.

Every failure a user can hit is one of these: the CLI prints ``str(exc)``, which
holds the what, the where (a file, a log path) and the hint, and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path


class WatchbenchError(Exception):
    """A failure with a message, an optional log path and an optional hint."""

    exit_code = 2

    def __init__(self, message: str, *, log: Path | str | None = None, hint: str | None = None):
        self.message = message
        self.log = Path(log) if log else None
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.log:
            parts.append(f"log: {self.log}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class CommandError(WatchbenchError):
    """A host command exited non-zero (or could not start)."""

    def __init__(self, argv: list[str], returncode: int | None, output: str = "", **kw):
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-15:])
        status = "could not start" if returncode is None else f"exited {returncode}"
        msg = f"command {status}: {' '.join(argv)}"
        if tail:
            msg += "\n" + tail
        super().__init__(msg, **kw)


class CommandTimeout(WatchbenchError):
    """A host command outlived its deadline and was killed with its process group."""


class InputError(WatchbenchError):
    """Bad user input (a patch, a series file, a fragment); nothing was changed."""


class TreeError(WatchbenchError):
    """The kernel tree is missing, dirty or not where it should be."""


class PatchError(WatchbenchError):
    """A patch of a series failed to apply; the tree was restored."""


class ConfigError(WatchbenchError):
    """A kconfig fragment is malformed, conflicts, or an option did not survive."""


class BuildError(WatchbenchError):
    """The kernel (or a guest program) failed to build."""


class SandboxError(WatchbenchError):
    """The sandbox a series' code must run in cannot be had here (bwrap, user namespaces)."""


class SandboxViolation(BuildError):
    """A sandboxed build tried to reach outside its sandbox (a write, a host file)."""


class DepsError(WatchbenchError):
    """A host tool is missing and could not be installed."""


class ResultsError(WatchbenchError):
    """Benchmark results are unreadable, incompatible or not comparable; no file was changed."""


class InternalError(WatchbenchError):
    """An exception nobody expected (a bug): its traceback is in the log it names."""
