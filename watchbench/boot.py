"""From the active tree to a guest ready to boot: build (cached), initramfs, accelerator."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from watchbench.build import Kernel, build
from watchbench.initramfs import GuestCommand, base_initramfs
from watchbench.progress import Progress
from watchbench.runner import Runner, default_runner
from watchbench.settings import Settings
from watchbench.vm.accel import resolve
from watchbench.vm.session import Guest


@dataclass
class Prepared:
    guest: Guest
    kernel: Kernel
    accel_reason: str


def prepare(settings: Settings, accel: str | None = None, kernel: Kernel | None = None,
            runner: Runner = default_runner, progress: Progress | None = None) -> Prepared:
    """The built kernel of the active tree (built now if needed) in a Guest."""
    progress = progress or Progress("vm")
    kernel = kernel or build(settings, runner=runner)
    initrd = base_initramfs(settings, runner)

    def guest(accel_name: str) -> Guest:
        return Guest(kernel.bzimage, initrd, accel_name, settings.cache_dir, settings.qemu.cpus,
                     settings.qemu.memory_mb, settings.project_root, runner)

    def boot_probe(limit: float) -> None:
        guest("kvm").run([GuestCommand(("true",))], timeout=limit)

    chosen, why = resolve(accel or settings.qemu.accel, settings.cache_dir, runner, boot_probe)
    progress.step(f"accelerator {chosen} ({why})")
    return Prepared(guest(chosen), kernel, why)


def vm_run(settings: Settings, argv: list[str], host: bool = False, accel: str | None = None,
           timeout: float | None = None) -> int:
    """Boot, run one command streaming its output, return its exit code."""
    prepared = prepare(settings, accel)
    progress = Progress("vm")
    progress.step(f"booting {prepared.kernel.release} ({prepared.guest.accel}); "
                  f"running on the {'host-root' if host else 'busybox'} side: {' '.join(argv)}")

    def echo(_index: int, line: str) -> None:
        print(line, flush=True)

    result = prepared.guest.run([GuestCommand(tuple(argv), "host" if host else "guest")],
                                timeout=timeout or settings.qemu.boot_timeout, on_output=echo)
    rc = result.last_returncode
    print(f"[vm] exit {rc}; {result.wall_seconds:.1f} s wall, guest clock "
          f"{result.guest_seconds:.2f} s; console log {result.console_log}", file=sys.stderr)
    return rc
