"""From a built kernel to a guest ready to boot: the initramfs and the accelerator.

Without a kernel, the active tree as it stands is built first (``Composer.current``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from watchbench.guest.hostview import View
from watchbench.guest.initramfs import GuestCommand, base_initramfs
from watchbench.host import sandbox
from watchbench.host.progress import Progress, Silent
from watchbench.host.runner import Runner, default_runner
from watchbench.kernel import trees
from watchbench.kernel.build import Kernel
from watchbench.kernel.variant import Composer
from watchbench.settings import Settings, kernel_words
from watchbench.vm.accel import resolve
from watchbench.vm.qemu import Accel
from watchbench.vm.session import BootResult, Guest


@dataclass
class Prepared:
    guest: Guest
    kernel: Kernel
    accel_reason: str


def prepare(settings: Settings, accel: str | None = None, kernel: Kernel | None = None,
            runner: Runner = default_runner, progress: Progress | None = None,
            judge_probe: bool = True) -> Prepared:
    """``kernel`` (default: the active tree's, built now if needed) in a Guest.
    ``judge_probe`` False: when ``auto`` must probe KVM with this kernel, a splat on its
    console does not count against KVM (a candidate's debug kernel may splat; that is the
    check's finding, not the host's verdict on KVM, which is cached for a day)."""
    progress = progress or Silent()
    kernel = kernel or Composer(settings, trees.active(settings), runner, progress).current()
    initrd = base_initramfs(settings, runner)

    view = View.NARROW if settings.sandbox else View.WHOLE
    if not settings.sandbox:
        progress.step(sandbox.off_warning())

    def guest(accel_name: str) -> Guest:
        return Guest(kernel.bzimage, initrd, accel_name, settings.cache_dir, settings.qemu.cpus,
                     settings.qemu.memory_mb, settings.project_root, runner, view=view,
                     kernel_args=kernel_words(settings.kernel_args))

    def boot_probe(limit: float) -> None:
        # The probe asks whether KVM works on this host (its verdict is cached for all
        # runs): it boots without the user's extra parameters.
        replace(guest(Accel.KVM), kernel_args=()).run([GuestCommand(("true",))],
                                                      timeout=limit, judge=judge_probe)

    chosen, why = resolve(accel or settings.qemu.accel, settings.cache_dir, runner, boot_probe)
    progress.step(f"accelerator {chosen} ({why})")
    return Prepared(guest(chosen), kernel, why)


def run_command(prepared: Prepared, argv: list[str], host: bool, timeout: float,
                on_line: Callable[[str], None]) -> BootResult:
    """Boot once and run one command on the busybox or the host side, its output handed
    line by line to ``on_line`` as it arrives. The host side of ``vm.run --host`` sees the
    host's whole / read-only: the user's explicit choice (docs/security.md)."""
    guest = replace(prepared.guest, view=View.WHOLE) if host else prepared.guest
    return guest.run([GuestCommand(tuple(argv), "host" if host else "guest")],
                              timeout=timeout, on_output=lambda _index, line: on_line(line))
