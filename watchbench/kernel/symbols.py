"""Kernel addresses to function names, from the ``System.map`` kept beside each built kernel.

The profile boots with ``nokaslr``, so the link-time addresses are the run-time ones.
User-space addresses (the lower half of the x86-64 address space) are one bucket,
``[user]``; kernel addresses outside the kernel's text are ``[unknown]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from watchbench.errors import BuildError
from watchbench.host.files import write_atomically

USER = "[user]"
UNKNOWN = "[unknown]"
# The x86-64 interrupt entries (idtentry): what runs from there to the iretq is asynchronous.
IRQ_ENTRIES = ("asm_sysvec_", "asm_common_interrupt", "asm_spurious_interrupt")
# The function that runs pending softirqs, in an interrupt's exit or when a task enables
# bottom halves again: asynchronous too, from its entry to its return. The first of these
# the kernel has (6.10 moved the loop out of __do_softirq, which may now tail-call it).
SOFTIRQ_FUNCTIONS = ("handle_softirqs", "__do_softirq")
KERNEL_HALF = 0xFFFF800000000000  # x86-64: addresses from here up are the kernel's
TEXT_TYPES = frozenset("tTwW")
TEXT_END = ("_etext", "__end_rodata", "_end")


class SymbolMap:
    """Sorted text symbols of one kernel; ``names(addresses)`` maps many at once."""

    def __init__(self, starts: np.ndarray, names: list[str], text_end: int):
        self.starts = starts
        self.names = np.array(names + [UNKNOWN], dtype=object)
        self.text_end = text_end

    @classmethod
    def load(cls, path: Path) -> SymbolMap:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise BuildError(f"{path}: no symbol map for this kernel ({exc.strerror})",
                             hint="rebuild the kernel (`./wb build --force`): the build "
                                  "keeps System.map beside bzImage") from exc
        entries: dict[int, str] = {}
        ends: dict[str, int] = {}
        for line in lines:
            parts = line.split()
            if len(parts) != 3:
                continue
            address, kind, name = int(parts[0], 16), parts[1], parts[2]
            if name in TEXT_END:
                ends[name] = address
            if kind in TEXT_TYPES and address >= KERNEL_HALF:
                entries.setdefault(address, name)  # the first name of an alias set
        if not entries:
            raise BuildError(f"{path}: no kernel text symbols", log=path)
        starts = np.array(sorted(entries), dtype=np.uint64)
        end = next((ends[n] for n in TEXT_END if n in ends), int(starts[-1]) + 1)
        return cls(starts, [entries[int(a)] for a in starts], end)

    def write_starts(self, path: Path, prefixes: tuple[str, ...] = (),
                     exact: tuple[str, ...] = ()) -> Path:
        """The start addresses (of the symbols named ``prefixes*`` or ``exact``, if given),
        sorted, one hex number a line: what the plugin reads."""
        keep = [a for a, n in zip(self.starts, self.names, strict=False)
                if not (prefixes or exact) or n.startswith(prefixes or ("\0",)) or n in exact]
        return write_atomically(path, "".join(f"{int(a):x}\n" for a in keep))

    def has(self, name: str) -> bool:
        return name in set(self.names)

    def names_of(self, addresses: np.ndarray) -> np.ndarray:
        """The function holding each address, ``[user]`` or ``[unknown]``."""
        addresses = np.asarray(addresses, dtype=np.uint64)
        index = np.searchsorted(self.starts, addresses, side="right") - 1
        unknown = len(self.names) - 1
        index = np.where((index < 0) | (addresses >= np.uint64(self.text_end)), unknown, index)
        names = self.names[index]
        return np.where(addresses < np.uint64(KERNEL_HALF), USER, names)
