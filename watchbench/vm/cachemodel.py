"""The cache model of the instruction-count plugin (``wb-insns.c``, ``cache=on``): its
configuration as plugin arguments, and user-space programs run under it.

The plugin simulates the caches of one configuration, given as plugin arguments; its
defaults are ``DEFAULT`` here, a Skylake-class x86 part (the plugin's header comment says
why). Running a program under ``qemu-x86_64`` (QEMU's user mode, Debian ``qemu-user``)
with the plugin is how the model is checked without a kernel: by the fast tests and by
bench/scripts/cache_model_vs_cachegrind.py, which holds it against Cachegrind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from watchbench.host.runner import Runner, default_runner
from watchbench.settings import ProfileSettings, cache_level

QEMU_USER = "qemu-x86_64"  # Debian qemu-user, the same QEMU release as qemu-system-x86


class CacheModel(StrEnum):
    """Whether a profiled boot's plugin simulates caches (settings profile.cache_model)."""

    OFF = "off"
    ON = "on"


@dataclass(frozen=True)
class Level:
    """One cache: its size, associativity and line, in bytes."""

    size: int
    assoc: int
    line: int

    @classmethod
    def parse(cls, text: str) -> Level:
        """``SIZE:ASSOC:LINE`` (``32K:8:64``), checked as the plugin checks it."""
        return cls(*cache_level(text))

    def arg(self, sep: str) -> str:
        return sep.join(str(v) for v in (self.size, self.assoc, self.line))


@dataclass(frozen=True)
class CacheConfig:
    """I1, D1 and LL, as the plugin and Cachegrind both take them."""

    # The defaults are the settings' (profile.l1i, l1d, ll), declared there once.
    i1: Level = Level.parse(ProfileSettings.l1i)
    d1: Level = Level.parse(ProfileSettings.l1d)
    ll: Level = Level.parse(ProfileSettings.ll)

    @classmethod
    def from_settings(cls, profile: ProfileSettings) -> CacheConfig | None:
        """The configured caches, or None when the model is off."""
        if CacheModel(profile.cache_model) is CacheModel.OFF:
            return None
        return cls(Level.parse(profile.l1i), Level.parse(profile.l1d), Level.parse(profile.ll))

    def plugin_args(self) -> list[str]:
        """``cache=on`` and the three levels (``:`` inside a value: QEMU splits on ``,``)."""
        return ["cache=on", f"l1i={self.i1.arg(':')}", f"l1d={self.d1.arg(':')}",
                f"ll={self.ll.arg(':')}"]

    def cachegrind_args(self) -> list[str]:
        return [f"--I1={self.i1.arg(',')}", f"--D1={self.d1.arg(',')}",
                f"--LL={self.ll.arg(',')}"]

    def describe(self) -> str:
        """``I1 32768:8:64 D1 32768:8:64 LL 8388608:16:64``: for the provenance."""
        return " ".join(f"{name} {':'.join(str(v) for v in level)}"
                        for name, level in self.levels().items())

    def levels(self) -> dict[str, tuple[int, int, int]]:
        """As ``Insns.cache`` reads them back from the plugin's file."""
        return {name: (lv.size, lv.assoc, lv.line)
                for name, lv in (("I1", self.i1), ("D1", self.d1), ("LL", self.ll))}


DEFAULT = CacheConfig()

# A boot with the model is kept steady, so that its addresses, and so its misses, are
# the same boot to boot (docs/cache-model.md, "Repeatability"): the guest's random
# numbers come from a seeded generator (RDRAND under TCG asks the host's entropy
# otherwise, and it seeds the kernel's pool), its clock starts at a fixed instant and
# follows virtual time (the wall clock feeds the pool too), and user space is not
# randomised. Instructions do not need it; they were equal boot to boot without it.
STEADY_QEMU = ("-seed", "1", "-rtc", "base=2026-01-01T00:00:00,clock=vm")
STEADY_APPEND = ("norandmaps",)


def steady() -> str:
    """What keeps a model boot steady, for the provenance."""
    return f"guest kept steady: {' '.join(STEADY_APPEND)}, {' '.join(STEADY_QEMU)}"


def run_user(plugin: Path, argv: Sequence[str | Path], out: Path,
             cache: CacheConfig | None = DEFAULT, runner: Runner = default_runner,
             timeout: float = 600) -> Path:
    """Run a static x86-64 program under ``qemu-x86_64`` with the plugin, the cache model
    on with ``cache`` (off when None); the plugin's file (results.profile.read_insns)."""
    args = ",".join([f"file={plugin}", f"out={out}", *(cache.plugin_args() if cache else [])])
    runner.run([QEMU_USER, "-plugin", args, *[str(a) for a in argv]], timeout=timeout)
    return out
