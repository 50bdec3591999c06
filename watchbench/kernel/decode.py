"""A finding's stack trace to file:line: the tree's own ``scripts/decode_stacktrace.sh`` on
the ``vmlinux`` kept beside the kernel (kernel.build keeps both when the kernel was built
with debug info; the debug kernel's fragment turns it on).

The script is the series' code, so it runs in the build sandbox (host.sandbox): it sees the
toolchain and the kernel's kept files read-only, a private /tmp, no network, no $HOME.
With the sandbox turned off it runs as make then does, with the user's rights.

Decoding is best effort. A missing vmlinux, script or debug info, a script that fails or
outlives its time: the raw trace stays, with one short reason (``NotDecoded``). Nothing
here raises: a finding is a finding, decoded or not.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import StrEnum

from watchbench.errors import CommandError, CommandTimeout, WatchbenchError
from watchbench.host import sandbox
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel.build import DECODE_DIR, Kernel

# A frame as the script finds one (its own test): name+0xOFFSET/0xSIZE.
FRAME = re.compile(r"[^+\s]+\+0x[0-9a-f]+/0x[0-9a-f]+")
# A frame it resolved: "name (path/file.c:123)", inlined callers after it in the brackets.
RESOLVED = re.compile(r"\S \([^()\s]+:\d+")
# Seconds all of a check's decoding may take: addr2line on a debug vmlinux takes about a
# second a frame, and a check has a few findings worth decoding, not hundreds.
BUDGET = 300.0
# The script's environment: the host's binutils (the kernel was built with the host's gcc),
# never debuginfod (a network lookup by build id).
ENV = {"CROSS_COMPILE": "", "LLVM": "", "DEBUGINFOD_URLS": ""}
DETAIL = 160  # characters of a failure's last line kept as its detail


class NotDecoded(StrEnum):
    """Why a trace stays raw."""

    NO_DEBUG_INFO = "the kernel was built without debug info"
    NO_VMLINUX = "no vmlinux was kept with this kernel"
    NO_SCRIPT = "the tree has no scripts/decode_stacktrace.sh"
    NO_SANDBOX = "no sandbox to run the tree's script in"
    FAILED = "decode_stacktrace.sh failed"
    TIMED_OUT = "decode_stacktrace.sh timed out"
    OUT_OF_TIME = "the time for decoding ran out"
    UNRESOLVED = "no frame resolved to a file:line"


@dataclass(frozen=True)
class Decoded:
    """One trace's decoding: the decoded text, or why there is none (``why`` None and no
    text: there was nothing to decode)."""

    text: str = ""
    why: NotDecoded | None = None
    detail: str = ""

    def reason(self) -> str:
        """Why not, in one short line ('' when decoded or nothing to decode)."""
        if self.why is None:
            return ""
        return f"{self.why} ({self.detail})" if self.detail else str(self.why)


def has_frames(text: str) -> bool:
    return FRAME.search(text) is not None


def command(kernel: Kernel) -> list[str]:
    """The script on the kept vmlinux; ``auto``: it strips the tree's path from each file
    by where it finds init/main.c, so frames read kernel/watch_queue.c:215."""
    return ["bash", str(kernel.decode_script), str(kernel.vmlinux), "auto"]


def box(kernel: Kernel) -> sandbox.Sandbox:
    """What the script may see: the kept vmlinux and scripts, read-only; nothing else of
    the user's, nothing writable but its private /tmp (decodecode's temporary files)."""
    return sandbox.Sandbox(readable=(kernel.vmlinux, kernel.dir / DECODE_DIR),
                           env=sandbox.environment(ENV), layout=sandbox.host_layout())


def argv(kernel: Kernel, sandboxed: bool) -> list[str]:
    """The argv the runner starts: in the sandbox, or (sandbox off) as it is."""
    return sandbox.sandboxed(command(kernel), box(kernel) if sandboxed else None,
                             cwd=kernel.dir / DECODE_DIR)


def cannot(kernel: Kernel) -> NotDecoded | None:
    """Why no trace of this kernel can be decoded, before running anything."""
    if not kernel.has_debug_info():
        return NotDecoded.NO_DEBUG_INFO
    if not kernel.vmlinux.is_file():
        return NotDecoded.NO_VMLINUX
    if not kernel.decode_script.is_file():
        return NotDecoded.NO_SCRIPT
    return None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:DETAIL] if lines else ""


def decode_one(kernel: Kernel, text: str, *, sandboxed: bool, timeout: float,
               runner: Runner = default_runner) -> Decoded:
    """One trace through the script (``cannot`` already said it may run)."""
    try:
        done = runner.run(argv(kernel, sandboxed), input=text.rstrip("\n") + "\n",
                          env=None if sandboxed else ENV, timeout=timeout)
    except CommandTimeout:
        return Decoded(why=NotDecoded.TIMED_OUT, detail=f"after {timeout:.0f} s")
    except CommandError as exc:
        status = "could not start" if exc.returncode is None else f"exit {exc.returncode}"
        last = _last_line(exc.output)
        return Decoded(why=NotDecoded.FAILED, detail=f"{status}: {last}" if last else status)
    # the script ends a frame with " $module", a space when there is none
    out = "\n".join(line.rstrip() for line in done.stdout.rstrip("\n").splitlines())
    if not RESOLVED.search(out):
        return Decoded(why=NotDecoded.UNRESOLVED, detail=_last_line(done.stderr))
    return Decoded(out)


def decode(kernel: Kernel, texts: list[str], *, sandboxed: bool,
           runner: Runner = default_runner, budget: float = BUDGET) -> list[Decoded]:
    """Each of ``texts`` decoded, or why not; a text without a frame is left alone (an
    empty ``Decoded``). One script run per trace, all within ``budget`` seconds; never
    raises."""
    why, detail = cannot(kernel), ""
    if why is None and sandboxed:
        try:
            sandbox.require(runner)
        except WatchbenchError as exc:
            why, detail = NotDecoded.NO_SANDBOX, exc.message.split(": ", 1)[-1][:DETAIL]
    out: list[Decoded] = []
    deadline = time.monotonic() + budget
    for text in texts:
        if not has_frames(text):
            out.append(Decoded())
        elif why is NotDecoded.NO_SANDBOX:
            out.append(Decoded(why=why, detail=detail))
        elif why is not None:
            out.append(Decoded(why=why))
        elif (left := deadline - time.monotonic()) <= 1:
            out.append(Decoded(why=NotDecoded.OUT_OF_TIME, detail=f"{budget:.0f} s"))
        else:
            try:
                out.append(decode_one(kernel, text, sandboxed=sandboxed, timeout=left,
                                      runner=runner))
            except (WatchbenchError, OSError) as exc:  # best effort: never the check's end
                out.append(Decoded(why=NotDecoded.FAILED, detail=str(exc)[:DETAIL]))
    return out
