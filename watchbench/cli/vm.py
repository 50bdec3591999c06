"""vm.run, vm.shell, vm.probe and initramfs: booting the built kernel by hand."""

from __future__ import annotations

import sys
from typing import Any

from watchbench.cli import command, settings_of
from watchbench.cli.options import TIMEOUT, VM_ACCEL, boot_options
from watchbench.cli.standing import built_here, head_place
from watchbench.errors import InputError
from watchbench.guest.initramfs import base_initramfs
from watchbench.host.progress import Progress
from watchbench.vm.accel import kvm_verdict
from watchbench.vm.boot import prepare, run_command

EXIT_NOT_RUN = 2  # the guest ended before the command reported an exit status


@command
def run(c: Any, argv: list[str], host: bool, accel: str | None, timeout: object,
        kernel_args: str | None = None, kconfig_add: list[str] | None = None,
        uncommitted: bool = False) -> int:
    """Boot, run one command streaming its output; its exit code is ours."""
    accel, timeout = VM_ACCEL.parse(accel), TIMEOUT.parse(timeout)
    if not argv:
        raise InputError("no command to run in the guest",
                         hint="give the command after --, e.g. ./wb vm.run -- cat /proc/version")
    settings = boot_options(settings_of(c), "vm.run", kernel_args, kconfig_add)
    progress = Progress("vm")
    kernel = built_here(settings, head_place(settings, "vm.run", uncommitted=uncommitted),
                        progress)  # inside your checkout: HEAD's kernel
    prepared = prepare(settings, accel, kernel=kernel, progress=progress)
    progress.step(f"booting {prepared.kernel.release} ({prepared.guest.accel}); "
                  f"running on the {'host-root' if host else 'busybox'} side: {' '.join(argv)}")
    result = run_command(prepared, argv, host, timeout or settings.qemu.boot_timeout,
                         on_line=lambda line: print(line, flush=True))
    rc = result.last_returncode
    print(f"[vm] exit {rc}; {result.wall_seconds:.1f} s wall, guest clock "
          f"{result.guest_seconds:.2f} s; console log {result.console_log}", file=sys.stderr)
    return rc if rc is not None else EXIT_NOT_RUN


@command
def shell(c: Any, accel: str | None) -> int:
    accel = VM_ACCEL.parse(accel)
    return prepare(settings_of(c), accel, progress=Progress("vm")).guest.shell()


@command
def probe(c: Any, refresh: bool) -> None:
    verdict = kvm_verdict(settings_of(c).cache_dir, refresh=refresh)
    print(f"kvm: {'works' if verdict.works else 'unusable'} ({verdict.reason})")


@command
def initramfs(c: Any) -> None:
    print(base_initramfs(settings_of(c)))
